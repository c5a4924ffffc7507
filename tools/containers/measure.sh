#!/usr/bin/env bash
# Measure podman's behaviour on this machine, for docs/containers.md.
#
#   tools/containers/measure.sh IMAGE     (e.g. localhost/recipec-base:test from make-image.sh)
#
# Prints: start overhead of a local image (median of RUNS), start-to-ready of the stand-in
# server bare vs in podman, what SIGKILL of the foreground client, SIGTERM with and without
# --init, `podman stop -t N`, `podman rm -f` do, and the exact messages and exit codes of a
# missing image, a bad mount source, a container that exits at once and a hanging runtime.
# Every container it makes is named recipec-measure-<pid>-<what> and removed on exit.
set -euo pipefail
shopt -s inherit_errexit

: "${RUNS:=10}"
: "${PORT:=18931}"

STANDIN_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../../tests/standins" && pwd)
readonly PREFIX="recipec-measure-$$"

die() {
    printf 'measure.sh: error: %s\n' "$*" >&2
    exit 1
}

(($# == 1)) || die "usage: measure.sh IMAGE"
image=$1
podman image exists "${image}" || die "no image ${image} (tools/containers/make-image.sh)"

names=()
cleanup() {
    local name
    for name in "${names[@]}"; do
        podman rm -f -t 0 "${name}" >/dev/null 2>&1 || true
    done
    rm -rf -- "${scratch:-/nonexistent}"
}
trap cleanup EXIT
scratch=$(mktemp -d)

now() { date +%s.%N; }
since() { printf '%.3f' "$(bc <<<"$(now) - $1")"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# wait_health URL: seconds until URL answers 200 (bounded at 20 s).
wait_health() {
    local t0=$1 url=$2 i
    for ((i = 0; i < 2000; i++)); do
        if curl -fs -o /dev/null "${url}"; then
            since "${t0}"
            return 0
        fi
        sleep 0.01
    done
    return 1
}

echo "== podman $(podman version --format '{{.Client.Version}}'), $(runc --version | head -n1), image ${image}"

echo "== start overhead: podman run --rm --network host IMAGE true (${RUNS} runs)"
times=()
for ((i = 0; i < RUNS; i++)); do
    t0=$(now)
    podman run --rm --network host "${image}" true
    times+=("$(since "${t0}")")
done
echo "   runs: ${times[*]}"
echo "   median: $(printf '%s\n' "${times[@]}" | median) s"
times=()
for ((i = 0; i < RUNS; i++)); do
    t0=$(now)
    podman run --rm --init --network host "${image}" true
    times+=("$(since "${t0}")")
done
echo "   with --init, median: $(printf '%s\n' "${times[@]}" | median) s"

echo "== stand-in start-to-ready (GET /health 200), bare vs podman (${RUNS} runs each)"
bare=() boxed=()
for ((i = 0; i < RUNS; i++)); do
    t0=$(now)
    python3 "${STANDIN_DIR}/standin.py" --port "${PORT}" >/dev/null 2>&1 &
    pid=$!
    bare+=("$(wait_health "${t0}" "http://127.0.0.1:${PORT}/health")")
    kill "${pid}"
    wait "${pid}" || true
    name=${PREFIX}-ready-${i}
    names+=("${name}")
    t0=$(now)
    podman run -d --rm --init --name "${name}" --network host -v "${STANDIN_DIR}:${STANDIN_DIR}:ro" \
        "${image}" python3 "${STANDIN_DIR}/standin.py" --port "${PORT}" >/dev/null
    boxed+=("$(wait_health "${t0}" "http://127.0.0.1:${PORT}/health")")
    podman stop -t 5 "${name}" >/dev/null
done
echo "   bare:   ${bare[*]}  median $(printf '%s\n' "${bare[@]}" | median) s"
echo "   podman: ${boxed[*]}  median $(printf '%s\n' "${boxed[@]}" | median) s"

echo "== SIGKILL of the foreground podman run client"
name=${PREFIX}-fg
names+=("${name}")
podman run --rm --init --name "${name}" --network host "${image}" sleep 600 >/dev/null 2>&1 &
client=$!
for ((i = 0; i < 100; i++)); do
    [[ $(podman inspect --format '{{.State.Status}}' "${name}" 2>/dev/null) == running ]] && break
    sleep 0.05
done
kill -KILL "${client}"
wait "${client}" || echo "   client exit status: $?"
sleep 1
echo "   after 1 s: $(podman inspect --format 'status={{.State.Status}} pid={{.State.Pid}}' "${name}" 2>&1)"
t0=$(now)
podman stop -t 2 "${name}" >/dev/null
echo "   podman stop -t 2 (sleep as child of catatonit): $(since "${t0}") s"
sleep 0.5
echo "   after stop: $(podman container exists "${name}" && echo 'still exists' || echo 'removed (--rm fired via conmon)')"

echo "== SIGTERM to PID 1 without --init (sleep ignores it as PID 1)"
name=${PREFIX}-noinit
names+=("${name}")
podman run -d --name "${name}" --network host "${image}" sleep 600 >/dev/null
t0=$(now)
podman stop -t 2 "${name}" 2>&1 | sed 's/^/   /'
echo "   podman stop -t 2 without --init: $(since "${t0}") s, $(podman inspect --format 'exit={{.State.ExitCode}}' "${name}")"
podman rm "${name}" >/dev/null
name=${PREFIX}-init
names+=("${name}")
podman run -d --init --name "${name}" --network host "${image}" sleep 600 >/dev/null
t0=$(now)
podman stop -t 2 "${name}" >/dev/null
echo "   podman stop -t 2 with --init: $(since "${t0}") s, $(podman inspect --format 'exit={{.State.ExitCode}}' "${name}")"
podman rm "${name}" >/dev/null
name=${PREFIX}-rmf
names+=("${name}")
podman run -d --init --name "${name}" --network host "${image}" sleep 600 >/dev/null
t0=$(now)
podman rm -f "${name}" >/dev/null
echo "   podman rm -f of a running --init container: $(since "${t0}") s"
podman run -d --name "${name}" --network host "${image}" sleep 600 >/dev/null
t0=$(now)
podman rm -f -t 0 "${name}" >/dev/null
echo "   podman rm -f -t 0 without --init: $(since "${t0}") s"

echo "== liveness: podman wait / inspect"
name=${PREFIX}-live
names+=("${name}")
podman run -d --name "${name}" --network host "${image}" sh -c 'sleep 1; exit 7' >/dev/null
echo "   running: $(podman inspect --format '{{.State.Pid}} {{.State.Status}}' "${name}")"
echo "   podman wait prints: $(podman wait "${name}")"
echo "   exited: $(podman inspect --format '{{.State.Pid}} {{.State.Status}} {{.State.ExitCode}}' "${name}")"
podman rm "${name}" >/dev/null
out=$(podman inspect --format '{{.State.Status}}' "${PREFIX}-never" 2>&1) && rc=0 || rc=$?
echo "   inspect of an unknown name: rc=${rc}: ${out}"

# show WHAT CMD...: the command's exit code, time and output.
show() {
    local what=$1 out rc t0
    shift
    t0=$(now)
    out=$("$@" 2>&1) && rc=0 || rc=$?
    printf '   %s: rc=%s in %ss\n' "${what}" "${rc}" "$(since "${t0}")"
    printf '%s\n' "${out}" | sed 's/^/      | /' | tail -n 4
}

echo "== failures"
show "missing image" podman run --rm --network host localhost/recipec-no-such-image:0 true
show "missing image, --pull=never" podman run --rm --pull=never --network host localhost/recipec-no-such-image:0 true
show "bad mount source" podman run --rm --network host -v /nonexistent/recipec:/x:ro "${image}" true
show "missing command" podman run --rm --network host "${image}" /no/such/binary
show "exits at once (exit 3)" podman run --rm --network host "${image}" sh -c 'echo dying >&2; exit 3'
name=${PREFIX}-once
names+=("${name}")
show "exits at once, detached" podman run -d --name "${name}" --network host "${image}" sh -c 'exit 3'
sleep 0.5
echo "   then: $(podman inspect --format '{{.State.Status}} exit={{.State.ExitCode}}' "${name}")"
# A runtime that never answers: an OCI runtime binary that sleeps (30 s, so what it leaves
# behind ends by itself). podman ignores SIGTERM meanwhile: only timeout's KILL stops it.
cat >"${scratch}/hang-runtime" <<'EOF'
#!/bin/sh
exec sleep 30
EOF
chmod +x "${scratch}/hang-runtime"
name=${PREFIX}-hang
names+=("${name}")
# Not through show(): the runtime's own children inherit podman's stdout, and a command
# substitution waits for every writer of its pipe (measured: 840 s, until `sleep 600` ended).
t0=$(now)
timeout -k 2 10 podman --runtime "${scratch}/hang-runtime" run --rm --name "${name}" --network host \
    "${image}" true >"${scratch}/hang.out" 2>&1 && rc=0 || rc=$?
echo "   hanging runtime (timeout -k 2 10): rc=${rc} in $(since "${t0}")s: $(tail -n 2 "${scratch}/hang.out")"
echo "   then: $(podman ps -a --filter "name=${name}" --format '{{.Names}} {{.Status}}')"
echo "   left behind: $(pgrep -a -x sleep | grep -w 30 || echo nothing)"
