#!/usr/bin/env bash
# A real SLURM cluster of N emulated nodes on this one machine, for testing the
# bundles recipec compiles for the SLURM target (sbatch + one srun task per node).
#
#   tools/slurm/cluster.sh up [N]   install (Debian packages) and start munged,
#                                   slurmctld and N slurmd (n1..nN); wait until idle
#   tools/slurm/cluster.sh down     stop exactly the daemons this script started
#   tools/slurm/cluster.sh status   print sinfo; exit 0 only if the cluster is up
#   tools/slurm/cluster.sh env      print KEY=value lines (SLURM_CONF, SLURM_JOBCOMP_LOG, ...)
#
# Every emulated node is a `slurmd -N nK` on 127.0.0.1 with its own port; all share this
# machine's CPUs, memory and ports. State, logs, PID files and the job completion log
# live under SLURM_TEST_DIR (default /tmp/recipec-slurm). Needs root (SlurmUser=root).
#
# slurm.conf is written to $SLURM_TEST_DIR/slurm.conf and /etc/slurm/slurm.conf is made a
# symlink to it (unless that path holds a configuration this script did not write), so
# client commands work without SLURM_CONF, including inside jobs that do not inherit the
# submitter's environment. Exporting SLURM_CONF (see `env`) works in every case.
set -euo pipefail
shopt -s inherit_errexit

: "${SLURM_TEST_DIR:=/tmp/recipec-slurm}"
: "${SLURM_UP_TIMEOUT_S:=60}"     # bound on waiting for all nodes to be idle
: "${SLURM_STOP_TIMEOUT_S:=20}"   # bound on waiting for a daemon to exit after SIGTERM
: "${SLURMCTLD_PORT:=6817}"
: "${SLURMD_BASE_PORT:=17000}"    # node nK listens on SLURMD_BASE_PORT + K
: "${SLURM_NODE_MEM_MB:=4000}"    # RealMemory per node, capped by what the machine has

readonly DIR="${SLURM_TEST_DIR}"
readonly CONF="${DIR}/slurm.conf"
readonly JOBCOMP_LOG="${DIR}/jobcomp.log"
readonly NODES_FILE="${DIR}/nodes"
readonly RUN_DIR="${DIR}/run"
readonly LOG_DIR="${DIR}/log"
readonly MUNGE_PID="${DIR}/munge/munged.pid"
readonly SYSTEM_CONF=/etc/slurm/slurm.conf
readonly MARKER="# written by recipec tools/slurm/cluster.sh"
readonly PACKAGES=(slurmctld slurmd slurm-client munge)

die() {
    printf 'cluster.sh: error: %s\n' "$*" >&2
    exit 1
}

say() {
    printf 'cluster.sh: %s\n' "$*" >&2
}

# The daemons read the configuration through -f; client commands through SLURM_CONF.
export SLURM_CONF="${CONF}"

ctld_pidfile() { printf '%s/slurmctld.pid\n' "${RUN_DIR}"; }
slurmd_pidfile() { printf '%s/slurmd-%s.pid\n' "${RUN_DIR}" "$1"; }

# alive PID: the process exists and is not a zombie. (On a machine whose PID 1 does not
# reap orphans, an exited daemon stays in /proc as a zombie forever.)
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# pid_of PIDFILE COMM MATCH: print the PID recorded in PIDFILE if that process is alive,
# is named COMM and has MATCH in its command line (guards against a reused PID).
pid_of() {
    local pidfile=$1 comm=$2 match=$3 pid cmdline
    [[ -r ${pidfile} ]] || return 1
    pid=$(<"${pidfile}")
    [[ ${pid} =~ ^[0-9]+$ ]] || return 1
    alive "${pid}" || return 1
    [[ $(<"/proc/${pid}/comm") == "${comm}" ]] || return 1
    cmdline=$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null) || return 1
    [[ ${cmdline} == *"${match}"* ]] || return 1
    printf '%s\n' "${pid}"
}

ctld_pid() { pid_of "$(ctld_pidfile)" slurmctld "${CONF}"; }
slurmd_pid() { pid_of "$(slurmd_pidfile "$1")" slurmd "-N $1 "; }
munged_pid() { pid_of "${MUNGE_PID}" munged "${MUNGE_PID}"; }

# stop_pid NAME PID: SIGTERM, wait up to SLURM_STOP_TIMEOUT_S, then SIGKILL.
stop_pid() {
    local name=$1 pid=$2 deadline
    say "stopping ${name} (pid ${pid})"
    kill -TERM "${pid}" 2>/dev/null || return 0
    deadline=$((SECONDS + SLURM_STOP_TIMEOUT_S))
    while alive "${pid}" && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if alive "${pid}"; then
        say "${name} (pid ${pid}) ignored SIGTERM for ${SLURM_STOP_TIMEOUT_S}s; sending SIGKILL"
        kill -KILL "${pid}" 2>/dev/null || true
        while alive "${pid}"; do sleep 0.1; done
    fi
}

current_nodes() {
    [[ -r ${NODES_FILE} ]] && cat "${NODES_FILE}" || printf '0\n'
}

# Set while install_packages has its own policy-rc.d in place; removed on any exit.
OWN_POLICY_RC=""
remove_own_policy_rc() {
    if [[ -n ${OWN_POLICY_RC} ]]; then
        rm -f "${OWN_POLICY_RC}"
        OWN_POLICY_RC=""
    fi
}
trap remove_own_policy_rc EXIT

install_packages() {
    local missing=0 cmd policy=/usr/sbin/policy-rc.d rc=0
    for cmd in slurmctld slurmd sinfo srun munged mungekey; do
        command -v "${cmd}" >/dev/null || missing=1
    done
    ((missing)) || return 0
    [[ -x /usr/bin/apt-get ]] || die "SLURM is not installed and there is no apt-get"
    say "installing ${PACKAGES[*]}"
    # Keep the packages' maintainer scripts from starting daemons this script would not own
    # (exit 101 = "action forbidden" to invoke-rc.d).
    if [[ ! -e ${policy} ]]; then
        OWN_POLICY_RC=${policy}
        printf '#!/bin/sh\nexit 101\n' >"${policy}"
        chmod 755 "${policy}"
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq || rc=$?
    if ((rc == 0)); then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${PACKAGES[@]}" >/dev/null || rc=$?
    fi
    remove_own_policy_rc
    ((rc == 0)) || die "apt-get failed (exit ${rc})"
}

ensure_munge_key() {
    local key=/etc/munge/munge.key
    if [[ ! -s ${key} ]]; then
        say "creating ${key}"
        mkdir -p /etc/munge
        mungekey -c -k "${key}"
    fi
    chown munge:munge "${key}"
    chmod 400 "${key}"
}

start_munged() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        return 0  # a munged (ours or the system's) already answers
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge "${DIR}/munge"
    chown munge:munge /run/munge /var/log/munge /var/lib/munge "${DIR}/munge"
    chmod 755 /run/munge
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged --pid-file="${MUNGE_PID}" \
        || die "munged failed to start; see /var/log/munge/munged.log"
    local deadline=$((SECONDS + 10))
    until munge -n 2>/dev/null | unmunge >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "munged does not answer: $(tail -n 5 /var/log/munge/munged.log 2>&1)"
        sleep 0.2
    done
}

# render_conf N: print slurm.conf for nodes n1..nN.
render_conf() {
    local n=$1 host cpus mem_mb total_mb
    host=$(hostname)
    cpus=$(nproc)
    total_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    # slurmd drains a node whose configured memory exceeds what it finds; every emulated
    # node sees the whole machine, so cap each at 90 % of it.
    mem_mb=$((total_mb * 9 / 10))
    ((SLURM_NODE_MEM_MB < mem_mb)) && mem_mb=${SLURM_NODE_MEM_MB}
    cat <<EOF
${MARKER}
# ${n} emulated nodes on one machine; do not edit, \`cluster.sh up\` rewrites it.
ClusterName=recipec
SlurmctldHost=${host}(127.0.0.1)
SlurmctldPort=${SLURMCTLD_PORT}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${JOBCOMP_LOG}
MailProg=/bin/true
# Short timeouts so teardown tests are fast.
KillWait=5
MessageTimeout=10
SlurmdTimeout=60
SlurmctldTimeout=60
InactiveLimit=0
MinJobAge=600
UnkillableStepTimeout=30
StateSaveLocation=${DIR}/ctld
SlurmdSpoolDir=${DIR}/spool/%n
SlurmctldPidFile=${RUN_DIR}/slurmctld.pid
SlurmdPidFile=${RUN_DIR}/slurmd-%n.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=n[1-${n}] NodeHostname=${host} NodeAddr=127.0.0.1 Port=[$((SLURMD_BASE_PORT + 1))-$((SLURMD_BASE_PORT + n))] CPUs=${cpus} RealMemory=${mem_mb} State=UNKNOWN
PartitionName=debug Nodes=n[1-${n}] Default=YES OverSubscribe=FORCE MaxTime=INFINITE State=UP
EOF
}

# link_system_conf: point /etc/slurm/slurm.conf at ours, unless it holds a configuration
# this script did not write (a symlink to a vanished or marked file counts as ours).
link_system_conf() {
    if [[ -e ${SYSTEM_CONF} || -L ${SYSTEM_CONF} ]]; then
        if [[ ! -L ${SYSTEM_CONF} ]] \
            || { [[ -e ${SYSTEM_CONF} ]] && ! grep -qxF "${MARKER}" "${SYSTEM_CONF}"; }; then
            say "${SYSTEM_CONF} is not ours; leaving it. Export SLURM_CONF=${CONF} (see \`cluster.sh env\`)."
            return 0
        fi
    fi
    mkdir -p "${SYSTEM_CONF%/*}"
    ln -sfn "${CONF}" "${SYSTEM_CONF}"
}

start_ctld() {
    say "starting slurmctld"
    slurmctld -f "${CONF}" || die "slurmctld failed to start: $(tail -n 20 "${LOG_DIR}/slurmctld.log" 2>&1)"
}

start_slurmd() {
    local node=$1
    mkdir -p "${DIR}/spool/${node}"
    say "starting slurmd ${node}"
    # The trailing -f keeps "-N nK " (with a space) in the command line, which slurmd_pid matches.
    slurmd -N "${node}" -f "${CONF}" \
        || die "slurmd ${node} failed to start: $(tail -n 20 "${LOG_DIR}/slurmd-${node}.log" 2>&1)"
}

stop_cluster_daemons() {
    local n k pid
    n=$(current_nodes)
    for ((k = 1; k <= n; k++)); do
        if pid=$(slurmd_pid "n${k}"); then stop_pid "slurmd n${k}" "${pid}"; fi
    done
    if pid=$(ctld_pid); then stop_pid slurmctld "${pid}"; fi
}

logs_tail() {
    local f
    for f in "${LOG_DIR}"/*.log; do
        [[ -e ${f} ]] || continue
        printf '==> %s <==\n' "${f}"
        tail -n 15 "${f}"
    done
}

# nodes_ready N: true when sinfo lists nodes n1..nN, each idle, allocated, mixed or completing.
nodes_ready() {
    local n=$1 states ready
    states=$(sinfo -h -N -p debug -o '%N %t' 2>/dev/null) || return 1
    ready=$(awk '$2 ~ /^(idle|alloc|mix|comp)$/' <<<"${states}" | wc -l)
    ((ready == n))
}

wait_ready() {
    local n=$1 deadline k resumed=0 bad
    deadline=$((SECONDS + SLURM_UP_TIMEOUT_S))
    until nodes_ready "${n}"; do
        if ! ctld_pid >/dev/null; then
            die "slurmctld died while starting:"$'\n'"$(logs_tail)"
        fi
        for ((k = 1; k <= n; k++)); do
            slurmd_pid "n${k}" >/dev/null || die "slurmd n${k} died while starting:"$'\n'"$(logs_tail)"
        done
        # A node drained by an earlier test (e.g. "Kill task failed") stays drained across
        # restarts; this is a test cluster, so put it back into service once.
        if ((!resumed)); then
            bad=$(sinfo -h -N -p debug -o '%N %t' 2>/dev/null | awk '$2 ~ /^(drain|drng|drained)$/ {print $1}' | paste -sd, -) || bad=""
            if [[ -n ${bad} ]]; then
                say "resuming drained node(s) ${bad}"
                scontrol update NodeName="${bad}" State=RESUME || true
                resumed=1
            fi
        fi
        if ((SECONDS >= deadline)); then
            die "nodes not idle after ${SLURM_UP_TIMEOUT_S}s:"$'\n'"$(sinfo -N 2>&1)"$'\n'"$(logs_tail)"
        fi
        sleep 0.5
    done
}

cmd_up() {
    local n=${1:-3} k new_conf
    [[ ${n} =~ ^[1-9][0-9]*$ ]] || die "node count must be a positive integer, not '${n}'"
    ((EUID == 0)) || die "must run as root (SlurmUser=root, apt-get, munged)"
    install_packages
    ensure_munge_key
    start_munged
    mkdir -p "${DIR}/ctld" "${DIR}/spool" "${RUN_DIR}" "${LOG_DIR}"
    touch "${JOBCOMP_LOG}"

    new_conf=$(render_conf "${n}")
    if [[ ! -r ${CONF} ]] || [[ $(<"${CONF}") != "${new_conf}" ]]; then
        # A change of the node set cannot be applied by `scontrol reconfigure` (slurmctld
        # exits); restart every daemon on the new configuration.
        stop_cluster_daemons
        printf '%s\n' "${new_conf}" >"${CONF}.tmp"
        mv -f "${CONF}.tmp" "${CONF}"
        printf '%s\n' "${n}" >"${NODES_FILE}"
    fi
    link_system_conf

    ctld_pid >/dev/null || start_ctld
    for ((k = 1; k <= n; k++)); do
        slurmd_pid "n${k}" >/dev/null || start_slurmd "n${k}"
    done
    wait_ready "${n}"
    sinfo -N
    cmd_env
}

cmd_down() {
    local pid deadline
    local -a jobs=()
    if ctld_pid >/dev/null; then
        # Steps whose slurmd is gone would leave their slurmstepd behind: end the jobs first.
        mapfile -t jobs < <(squeue -h -o '%i' 2>/dev/null || true)
        if ((${#jobs[@]} > 0)); then
            say "cancelling jobs: ${jobs[*]}"
            scancel "${jobs[@]}" || true
            deadline=$((SECONDS + 30))
            while [[ -n $(squeue -h -o '%i' 2>/dev/null) ]] && ((SECONDS < deadline)); do
                sleep 0.5
            done
        fi
    fi
    stop_cluster_daemons
    if pid=$(munged_pid); then stop_pid munged "${pid}"; fi
    return 0
}

cmd_status() {
    local n
    n=$(current_nodes)
    if ((n == 0)) || ! ctld_pid >/dev/null; then
        say "down"
        return 1
    fi
    sinfo -N || return 1
    nodes_ready "${n}"
}

cmd_env() {
    printf 'SLURM_CONF=%q\n' "${CONF}"
    printf 'SLURM_JOBCOMP_LOG=%q\n' "${JOBCOMP_LOG}"
    printf 'SLURM_TEST_DIR=%q\n' "${DIR}"
    printf 'SLURM_TEST_NODES=%q\n' "$(current_nodes)"
}

main() {
    local cmd=${1:-}
    (($# > 0)) && shift
    case ${cmd} in
        up) cmd_up "$@" ;;
        down) cmd_down ;;
        status) cmd_status ;;
        env) cmd_env ;;
        *)
            printf 'usage: %s up [N] | down | status | env\n' "${0##*/}" >&2
            exit 2
            ;;
    esac
}

main "$@"
