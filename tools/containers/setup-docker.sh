#!/usr/bin/env bash
# Install, configure and start a docker daemon on a Debian 12 machine, for the docker tests.
#
#   tools/containers/setup-docker.sh          install (if missing), configure, start (if down), check
#   tools/containers/setup-docker.sh stop     stop the daemon this script started
#
# kimik2.5 runs its services in docker (as InferenceX's AMD nodes do), so docker must run for real,
# not only podman. Installs Debian's docker.io (dockerd, containerd; a newer docker client already
# on PATH is kept: it negotiates the daemon's API). This machine kind has no systemd, so the daemon
# is started here, in its own session, logging to /var/log/recipec-dockerd.log; its PID goes to
# /run/recipec-dockerd.pid so that `stop` ends exactly it. /etc/docker/daemon.json: the cgroupfs
# driver (no systemd) and no default ulimits (the machine caps RLIMIT_NOFILE; dockerd's default
# would fail like podman's), written only where absent. No registry is reachable here: images come
# from podman (`podman save | docker load`, tests/podman.py). Idempotent. Needs root.
set -euo pipefail
shopt -s inherit_errexit

readonly CONF=/etc/docker/daemon.json
readonly LOG=/var/log/recipec-dockerd.log
readonly PIDFILE=/run/recipec-dockerd.pid
readonly PACKAGES=(docker.io)
readonly START_TIMEOUT_S=60

die() {
    printf 'setup-docker.sh: error: %s\n' "$*" >&2
    exit 1
}

say() {
    printf 'setup-docker.sh: %s\n' "$*" >&2
}

[[ ${EUID} -eq 0 ]] || die "needs root (installs packages, writes ${CONF}, starts dockerd)"

if [[ ${1:-} == stop ]]; then
    [[ -s ${PIDFILE} ]] || exit 0
    pid=$(<"${PIDFILE}")
    if kill -0 "${pid}" 2>/dev/null && [[ $(cat "/proc/${pid}/comm" 2>/dev/null) == dockerd ]]; then
        kill -TERM "${pid}"
        for _ in $(seq 100); do
            kill -0 "${pid}" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f -- "${PIDFILE}"
    say "dockerd stopped"
    exit 0
fi
[[ $# -eq 0 ]] || die "usage: setup-docker.sh [stop]"

start=${SECONDS}
missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null) || status=
    [[ ${status} == "install ok installed" ]] || missing+=("${pkg}")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian 12 only"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
fi

if [[ ! -e ${CONF} ]]; then
    mkdir -p -- "$(dirname -- "${CONF}")"
    tmp=$(mktemp -- "${CONF}.XXXXXX")
    printf '%s\n' '{"exec-opts": ["native.cgroupdriver=cgroupfs"], "default-ulimits": {}}' >"${tmp}"
    chmod 644 -- "${tmp}"
    mv -f -- "${tmp}" "${CONF}"
    say "wrote ${CONF}"
fi

if ! docker info >/dev/null 2>&1; then
    say "starting dockerd (log: ${LOG})"
    setsid /usr/sbin/dockerd >>"${LOG}" 2>&1 </dev/null &
    echo $! >"${PIDFILE}"
    deadline=$((SECONDS + START_TIMEOUT_S))
    until docker info >/dev/null 2>&1; do
        kill -0 "$(<"${PIDFILE}")" 2>/dev/null || die "dockerd exited; last lines of ${LOG}: $(tail -n 5 -- "${LOG}")"
        ((SECONDS < deadline)) || die "dockerd did not answer within ${START_TIMEOUT_S}s (see ${LOG})"
        sleep 0.5
    done
fi

info=$(docker info --format '{{.ServerVersion}} {{.CgroupDriver}}' 2>&1) || die "docker info failed: ${info}"
say "ok: docker daemon ${info}, ready in $((SECONDS - start))s"
