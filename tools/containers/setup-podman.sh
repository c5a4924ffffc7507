#!/usr/bin/env bash
# Install and configure podman on a Debian 12 machine, for the container tests.
#
#   tools/containers/setup-podman.sh          install (if missing), configure, check
#
# Installs Debian's podman, runc, catatonit (the init behind `podman run --init`) and
# debootstrap (tools/containers/make-image.sh builds images with it; no registry is
# reachable here). Then writes /etc/containers/containers.conf, because podman's defaults
# fail on this machine kind (cgroups v1/hybrid, no systemd, a capped RLIMIT_NOFILE):
#   - crun: "cgroups in hybrid mode not supported"             -> runtime = "runc"
#   - systemd cgroup manager without a running systemd          -> cgroup_manager = "cgroupfs"
#   - default ulimits: "setrlimit RLIMIT_NOFILE: Operation not permitted"
#                                                               -> default_ulimits = []
# The file is written only if it is absent or was written by this script (marker line); a
# configuration someone else wrote is left alone and the script fails naming it. Idempotent:
# a second run changes nothing. Needs root. Ends by running `podman info` as a check.
set -euo pipefail
shopt -s inherit_errexit

readonly CONF=/etc/containers/containers.conf
readonly MARKER="# written by recipec tools/containers/setup-podman.sh"
readonly PACKAGES=(podman runc catatonit debootstrap)

die() {
    printf 'setup-podman.sh: error: %s\n' "$*" >&2
    exit 1
}

say() {
    printf 'setup-podman.sh: %s\n' "$*" >&2
}

[[ $# -eq 0 ]] || die "no arguments expected (got: $*)"
[[ ${EUID} -eq 0 ]] || die "needs root (installs packages and writes ${CONF})"

start=${SECONDS}

# Install only what is missing, so a configured machine needs no network.
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

desired() {
    cat <<EOF
${MARKER}
# podman's defaults fail on this machine kind; see tools/containers/setup-podman.sh.
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
EOF
}

if [[ -e ${CONF} ]] && ! grep -qxF -- "${MARKER}" "${CONF}"; then
    die "${CONF} exists and was not written by this script; add to it by hand:" \
        "[containers] default_ulimits = [] / [engine] cgroup_manager = \"cgroupfs\", runtime = \"runc\""
fi
if [[ ! -e ${CONF} ]] || [[ $(<"${CONF}") != "$(desired)" ]]; then
    mkdir -p -- "$(dirname -- "${CONF}")"
    # Replace atomically: podman never reads a half-written file.
    tmp=$(mktemp -- "${CONF}.XXXXXX")
    desired >"${tmp}"
    chmod 644 -- "${tmp}"
    mv -f -- "${tmp}" "${CONF}"
    say "wrote ${CONF}"
else
    say "${CONF} already up to date"
fi

# The check: podman reads the configuration and reports what it will use.
info=$(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}' 2>&1) \
    || die "podman info failed: ${info}"
[[ ${info} == "runc cgroupfs" ]] \
    || die "podman uses '${info}', expected 'runc cgroupfs' (is CONTAINERS_CONF set?)"
say "ok: podman $(podman version --format '{{.Client.Version}}'), runtime runc, cgroupfs," \
    "ready in $((SECONDS - start))s"
