#!/usr/bin/env bash
# shellcheck shell=bash
# lib.sh: the guards every script of a recipec bundle sources. The same file in every bundle: what
# differs between bundles (tunables, services, ports) is in launch.sh and node.sh. Sourcing it checks
# the tunables and sets the traps; it starts nothing by itself.
#
# Its promises: each service runs in its own process group, with a PID file and a log; every wait
# has a deadline and checks, every tick, that each service started so far is still alive; while
# serving, a monitor keeps doing so; one trap on EXIT/INT/TERM/HUP stops exactly the process groups
# this script started (TERM, a grace period, then KILL) and nothing else; a watchdog does the same
# if the launcher is killed by SIGKILL.
#
# Sections, in the order a run meets them:
#   0. setup       strict mode, the tunables' check, the state the sections share
#   1. basics      log, die, clock_ms, proc_stat, proc_start, a failed service's log tail
#   2. preflight   commands on PATH, free ports, leftovers of an earlier run
#   3. start       start_service, critical, watch_remote, the watchdog
#   4. readiness   probe, pause, wait_ready, run_over
#   5. monitor     check_alive, check_health, serve_until_exit, serve, serve_while_up
#   6. teardown    stop_services, on_exit, on_signal, the traps
# Needs bash 4.4 or newer; uses bash 5 features where present (docs/bash.md). Tested function by
# function in tests/bats/, and as whole bundles in tests/faults/.

####################################################################################################
# 0. setup
# Sourcing the library checks the tunables at once: a typo fails before anything starts.
####################################################################################################

set -euo pipefail
shopt -s inherit_errexit

for _tunable in READY_TIMEOUT_S PROBE_INTERVAL_S PROBE_TIMEOUT_S UNHEALTHY_AFTER GRACE_PERIOD_S LOG_TAIL_LINES; do
  if [[ ! ${!_tunable:-} =~ ^[0-9]+$ ]]; then
    printf 'recipec: %s must be a whole number of seconds or a count, got "%s"\n' "$_tunable" "${!_tunable:-}" >&2
    exit 1
  fi
done
unset _tunable
if ((PROBE_INTERVAL_S < 1)); then
  printf 'recipec: PROBE_INTERVAL_S must be at least 1\n' >&2
  exit 1
fi

declare -A SERVICE_PID=() SERVICE_LOG=() SERVICE_URL=() SERVICE_FAILS=() REMOTE_URL=()
declare -A SERVICE_STATUS=() # exit status of a service that has ended, once collected
declare -A SERVICE_NOTE=()   # what a failure names besides the service (container.sh: its container)
TEARDOWN_HOOKS=()            # functions stop_services runs after the process groups have ended
WATCHDOG_ALSO=()             # functions the watchdog needs besides lib.sh's own
STARTED=()   # local services in start order; teardown walks it backwards
CRITICAL=()  # local services whose exit, with any status, ends the run
# bash >= 5.1 can wait for the first of several PIDs (wait -n -p): a pause or a probe then ends the
# moment a critical service exits, not at the next tick. Older bash notices at the next tick.
WAIT_ANY=0
if ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))); then
  WAIT_ANY=1
fi

####################################################################################################
# 1. basics
# Messages, time and process identity, used by every section below.
####################################################################################################

log() {
  local now
  TZ=UTC printf -v now '%(%H:%M:%S)T' -1 # a builtin: no fork for a log line
  printf '%s recipec[%s] %s\n' "$now" "${NODE_LABEL:-launch}" "$*" >&2
}

# clock_ms: NOW_MS, the time in milliseconds (EPOCHREALTIME, bash >= 5; else whole seconds).
NOW_MS=0
clock_ms() {
  local t=${EPOCHREALTIME:-}
  if [[ -n $t ]]; then
    t=${t/[.,]/}
    NOW_MS=$((10#$t / 1000))
  else
    NOW_MS=$((SECONDS * 1000))
  fi
}

die() {
  log "ERROR: $*"
  exit 1
}

# proc_stat PID: PROC_STAT, the fields of /proc/PID/stat after the command name (which may hold
# spaces): 0 the state, 1 the parent, 2 the process group, 19 the start time; status 1 if there is
# no such process.
PROC_STAT=()
proc_stat() {
  local line
  PROC_STAT=()
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  read -r -a PROC_STAT <<<"${line##*) }"
}

# proc_start PID: PROC_START, when process PID started (clock ticks since boot, field 22 of
# /proc/PID/stat); status 1 if it does not run (a zombie has ended). A PID can be reused; a PID
# with its start time names one process for good.
PROC_START=""
proc_start() {
  PROC_START=""
  proc_stat "$1" || return 1
  [[ ${PROC_STAT[0]} != Z ]] || return 1
  PROC_START=${PROC_STAT[19]}
}

# show_log_tail NAME: the last lines a service wrote, for the reader of a failure.
show_log_tail() {
  local file=${SERVICE_LOG[$1]:-}
  if [[ -z $file || ! -s $file ]]; then
    log "$1 wrote nothing to its log"
    return 0
  fi
  log "last ${LOG_TAIL_LINES} lines of $file:"
  tail -n "$LOG_TAIL_LINES" -- "$file" | sed 's/^/    | /' >&2 || true
}

# fail_service NAME MESSAGE: report a broken service with its log, then end the run.
fail_service() {
  log "ERROR: $1 $2${SERVICE_NOTE[$1]:-}"
  show_log_tail "$1"
  exit 1
}

####################################################################################################
# 2. preflight
# Before anything starts: what the run needs must be there, and nothing may be in its way.
####################################################################################################

# require_commands CMD[=WHO]...: every command this node runs must be on PATH before anything
# starts; WHO says what needs it, for the message.
require_commands() {
  local missing=() word cmd
  for word in "$@"; do
    cmd=${word%=*}
    if ! command -v -- "$cmd" >/dev/null 2>&1; then
      if [[ $word == *=* ]]; then
        missing+=("$cmd (needed by ${word##*=})")
      else
        missing+=("$cmd")
      fi
    fi
  done
  if ((${#missing[@]} > 0)); then
    for word in "${missing[@]}"; do
      log "ERROR: not found on PATH: $word"
    done
    die "commands missing: nothing was started"
  fi
}

# listen_inodes PORT: socket inodes listening on PORT, from /proc/net (Linux, any address, IPv4
# and IPv6). Needs no ss: iproute2 is missing from minimal images.
listen_inodes() {
  local suffix
  printf -v suffix ':%04X' "$1"
  awk -v suffix="$suffix" '$4 == "0A" && substr($2, length($2) - 4) == suffix { print $10 }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null || true
}

# port_in_use PORT: is anything listening on PORT? ss where it works, else /proc/net, else a
# connection attempt to 127.0.0.1 (sees loopback and wildcard listeners only).
port_in_use() {
  local out
  if command -v ss >/dev/null 2>&1 && out=$(ss -Hltn "sport = :$1" 2>/dev/null); then
    [[ -n $out ]]
  elif [[ -r /proc/net/tcp ]]; then
    [[ -n $(listen_inodes "$1") ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# port_holder PORT: "pid N (command)" of what listens on PORT, where the system can tell (another
# user's processes stay hidden unless this runs as root); empty otherwise.
port_holder() {
  local out inode fd pid comm
  if command -v ss >/dev/null 2>&1 && out=$(ss -Hltnp "sport = :$1" 2>/dev/null) && [[ -n $out ]]; then
    if [[ $out =~ \(\(\"([^\"]*)\",pid=([0-9]+) ]]; then
      printf 'pid %s (%s)\n' "${BASH_REMATCH[2]}" "${BASH_REMATCH[1]}"
    fi
    return 0
  fi
  for inode in $(listen_inodes "$1"); do
    fd=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$inode\]" -print -quit 2>/dev/null || true)
    [[ -n $fd ]] || continue
    pid=${fd#/proc/}
    pid=${pid%%/*}
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    printf 'pid %s (%s)\n' "$pid" "${comm:-?}"
    return 0
  done
}

# preflight_ports PORT SERVICE PURPOSE [...]: every port must be free before anything starts.
preflight_ports() {
  local bad=0 holder
  while (($# >= 3)); do
    if port_in_use "$1"; then
      holder=$(port_holder "$1")
      log "ERROR: port $1, wanted by $2 ($3), is already in use${holder:+ by $holder}"
      bad=1
    fi
    shift 3
  done
  ((bad == 0)) || die "ports taken: nothing was started"
}

# --- Leftovers: a new launch over what an earlier one left ------------------------------------
# If the launcher and its watchdog were both killed, services of that run may still hold their
# ports; this launch would then fail later, on one of them, naming a port instead of the cause.
# So a launch first reads the PID files an earlier run left and names what still runs.
RUN_PIDFILE=""

# begin_run DIR ROOT: refuse to start over leftovers of an earlier run (in DIR, or in any run
# directory under ROOT); record this launcher's PID in DIR; point ROOT/latest at DIR.
begin_run() {
  local dir
  local -a dirs=("$1")
  for dir in "$2"/*/; do
    dir=${dir%/}
    [[ -L $dir || $dir == "$1" || ! -d $dir ]] || dirs+=("$dir")
  done
  check_leftovers "${dirs[@]}"
  RUN_PIDFILE=$1/launcher.pid
  printf '%s\n' "$$" >"$RUN_PIDFILE"
  if [[ ${1%/*} == "$2" ]]; then
    ln -sfn -- "${1##*/}" "$2/latest" 2>/dev/null || true
  fi
  log "logs of this run: $1"
}

# check_leftovers DIR...: die naming every service (and launcher) of an earlier run that still
# runs, with how to stop it; PID files of processes that have ended are stale and removed.
check_leftovers() {
  local dir file name pid found=0
  for dir in "$@"; do
    for file in "$dir"/*.pid; do
      [[ -f $file ]] || continue
      name=${file##*/}
      name=${name%.pid}
      pid=""
      read -r pid 2>/dev/null <"$file" || true
      if [[ ! $pid =~ ^[0-9]+$ ]]; then
        rm -f -- "$file"
      elif [[ $name == launcher ]] && recorded_process "$pid" "$file"; then
        log "ERROR: this bundle is already running: launcher pid $pid (logs in $dir); stop it with: kill $pid"
        found=1
      elif [[ $name != launcher ]] && recorded_group "$pid" "$file"; then
        log "ERROR: an earlier run left $name running: process group $pid (PID file $file); stop it with: kill -TERM -- -$pid"
        found=1
      else
        rm -f -- "$file"
      fi
    done
  done
  ((found == 0)) || die "an earlier run of this bundle is still running: nothing was started"
}

# recorded_group PGID FILE: does the service FILE recorded still run: its leader, or, the leader
# gone, what is left of its process group (vLLM's EngineCore outlives its API server)?
recorded_group() {
  if proc_start "$1"; then
    recorded_process "$1" "$2"
  else
    scan_live # a PGID cannot be reused while its group has members; zombies are no members
    [[ -n ${LIVE_GROUP[$1]:-} ]]
  fi
}

# recorded_process PID FILE: is process PID the one FILE recorded? A PID file is written just after
# its process starts: a process that started later (1 s of slack: the boot time is in whole
# seconds) only got the PID again.
recorded_process() {
  local key value btime="" ticks mtime
  proc_start "$1" || return 1
  while read -r key value; do
    if [[ $key == btime ]]; then
      btime=$value
      break
    fi
  done </proc/stat
  ticks=$(getconf CLK_TCK 2>/dev/null) || ticks=100
  mtime=$(stat -c %Y -- "$2" 2>/dev/null) || return 0
  [[ -n $btime ]] || return 0
  ((btime + PROC_START / ticks <= mtime + 1))
}

####################################################################################################
# 3. start
# Every service in its own session, recorded, and told to the watchdog.
####################################################################################################

# start_service NAME LOGFILE READY_URL [VAR=VALUE ...] -- COMMAND [ARG ...]
# Starts COMMAND in a new session (its own process group: teardown reaches its children too),
# with the given environment, output to LOGFILE and a PID file beside it. Returns 1 when it cannot.
start_service() {
  local name=$1 logfile=$2 url=$3
  shift 3
  local -a assignments=()
  while (($#)) && [[ $1 != -- ]]; do
    assignments+=("$1")
    shift
  done
  if [[ ${1:-} != -- || $# -lt 2 ]]; then
    log "ERROR: start_service $name: no command after --"
    return 1
  fi
  shift
  if [[ -n ${SERVICE_PID[$name]:-} ]]; then
    log "ERROR: $name was already started"
    return 1
  fi
  if ! command -v -- "$1" >/dev/null 2>&1; then
    log "ERROR: cannot start $name: '$1' is not on PATH"
    return 1
  fi
  if ! : >"$logfile"; then
    log "ERROR: cannot start $name: cannot write its log $logfile"
    return 1
  fi
  [[ -n $WATCHDOG_PID ]] || start_watchdog "${logfile%/*}/watchdog.log"
  (
    for assignment in "${assignments[@]}"; do
      export "${assignment?}"
    done
    exec setsid "$@" 9>&- # the watchdog's pipe: only the launcher may hold it open
  ) >"$logfile" 2>&1 </dev/null &
  local pid=$! tries=0
  watch_group "$pid" "$name"
  SERVICE_PID[$name]=$pid
  SERVICE_LOG[$name]=$logfile
  SERVICE_URL[$name]=$url
  SERVICE_FAILS[$name]=0
  STARTED+=("$name")
  printf '%s\n' "$pid" >"${logfile%.log}.pid"
  # The child calls setsid itself: until it has, there is no process group $pid. Wait
  # (microseconds, as a rule; at most 5 s) until the child leads its group, or is gone, so that
  # callers find the group; a teardown inside this wait finds the service registered above and
  # TERMs its group once it exists (term_new_groups).
  while proc_stat "$pid" && [[ ${PROC_STAT[2]:-} != "$pid" ]] && ((tries++ < 500)); do
    sleep 0.01
  done
  log "started $name (pid $pid, log $logfile)"
}

# critical NAME...: these services must live as long as the run; any exit ends it.
critical() {
  CRITICAL+=("$@")
}

# watch_remote NAME URL: a service on another node, known only by its readiness URL.
watch_remote() {
  REMOTE_URL[$1]=$2
  SERVICE_FAILS[$1]=0
}

# --- Watchdog: services never outlive a launcher killed by SIGKILL ---------------------------
# SIGKILL (kill -9, the OOM killer, a node agent) cannot be trapped, and every service runs in a
# session of its own, so nothing else would stop them. The watchdog is a small process in its own
# session (a kill of the launcher's process group misses it too) that learns each service's
# process group through a pipe from the launcher and takes the end of that pipe, which only the
# launcher holds, as the launcher's end: no polling, and no launcher PID that could be reused.
# The launcher's own teardown says "over" first; otherwise the watchdog stops every group it was
# told of: TERM, GRACE_PERIOD_S, KILL. It logs to watchdog.log beside the services' logs.
# The pipe is fd 9; every child the launcher starts closes it (9>&-), or the pipe would stay open
# as long as that child lives.
WATCHDOG_PID=""

# start_watchdog LOGFILE: start it (bash, the functions below, its own session).
start_watchdog() {
  local code
  code=$(declare -f log clock_ms proc_stat proc_start scan_live watchdog stop_groups "${WATCHDOG_ALSO[@]}")
  exec 9> >(exec setsid bash -c "set -uo pipefail; $code; watchdog \"\$@\"" watchdog \
    "$GRACE_PERIOD_S" "${NODE_LABEL:-launch}" >>"$1" 2>&1)
  WATCHDOG_PID=$!
}

# watch_group PGID NAME: tell the watchdog about a new group, with its leader's start time. A
# subshell writes, so a watchdog that is gone costs a warning, not the launcher (SIGPIPE).
watch_group() {
  proc_start "$1" || PROC_START=0
  if ! (printf '%s %s %s\n' "$1" "$PROC_START" "$2" >&9) 2>/dev/null; then
    log "WARNING: the watchdog is gone: $2 would outlive a SIGKILL of this launcher"
  fi
}

# end_watchdog: the launcher has torn down itself: "over", then close the pipe and reap it.
end_watchdog() {
  [[ -n $WATCHDOG_PID ]] || return 0
  (printf 'over\n' >&9) 2>/dev/null || true
  exec 9>&-
  wait "$WATCHDOG_PID" 2>/dev/null || true
  WATCHDOG_PID=""
}

# watchdog GRACE LABEL: read "PGID START NAME" lines until the pipe ends; stop those groups unless
# the launcher said "over". "container RUNTIME NAME" lines (container.sh) name containers it then
# removes, by name, once the groups have been stopped.
watchdog() {
  local grace=$1 pgid start name
  local -a groups=() names=() containers=()
  declare -gA LIVE_GROUP=() LIVE_PID=()
  NODE_LABEL="$2 watchdog"
  while read -r pgid start name; do
    if [[ $pgid == over ]]; then
      exit 0
    elif [[ $pgid == container ]]; then
      containers+=("$start $name")
      continue
    fi
    groups+=("$pgid:$start")
    names+=("$name")
  done
  ((${#groups[@]} + ${#containers[@]} > 0)) || exit 0
  log "the launcher ended without tearing down (SIGKILL?): stopping ${names[*]}"
  ((${#groups[@]} == 0)) || stop_groups "$grace" "${groups[@]}"
  for name in "${containers[@]}"; do
    log "removing container ${name#* } (${name%% *})"
    remove_named /dev/stdout "${name%% *}" "${name#* }" || log "could not remove container ${name#* }"
  done
}

# stop_groups GRACE PGID:START...: TERM each group that is still the one started (a leader
# with another start time is a reused PID: left alone; a group whose leader has gone is still
# ours, its PGID cannot be reused while it has members), KILL what is left after GRACE seconds.
# Zombies do not count (scan_live): orphans are reaped by init, which may take its time.
stop_groups() {
  local grace=$1 item pgid deadline
  shift
  local -a left=() still=()
  for item in "$@"; do
    pgid=${item%%:*}
    if proc_start "$pgid" && [[ $PROC_START != "${item#*:}" ]]; then
      continue
    fi
    kill -TERM -- "-$pgid" 2>/dev/null && left+=("$pgid")
  done
  log "TERM sent to process groups: ${left[*]:-none still running}"
  clock_ms
  deadline=$((NOW_MS + grace * 1000))
  while ((${#left[@]} > 0 && NOW_MS < deadline)); do
    sleep 0.1
    scan_live
    still=()
    for pgid in "${left[@]}"; do
      [[ -z ${LIVE_GROUP[$pgid]:-} ]] || still+=("$pgid")
    done
    left=("${still[@]}")
    clock_ms
  done
  if ((${#left[@]} > 0)); then
    log "still running after ${grace}s: KILL to ${left[*]}"
    for pgid in "${left[@]}"; do
      kill -KILL -- "-$pgid" 2>/dev/null || true
    done
  fi
  log "done"
}

####################################################################################################
# 4. readiness
# Every wait is bounded and interruptible, and fails the moment a service it started exits.
####################################################################################################

# wait_first PID...: wait until the first of PID... or of the critical services ends (bash >= 5.1),
# or a signal arrives (its trap then ends the run). Sets WAITED_PID and WAITED_STATUS, and records
# a service's exit status in SERVICE_STATUS.
WAITED_PID=""
WAITED_STATUS=0
wait_first() {
  local -a pids=("$@")
  local name
  for name in "${CRITICAL[@]}"; do
    [[ -n ${SERVICE_STATUS[$name]:-} ]] || pids+=("${SERVICE_PID[$name]}")
  done
  WAITED_PID=""
  WAITED_STATUS=0
  # 2>/dev/null: bash's own "Killed" job notice; the exit is reported by name, with its status.
  wait -n -p WAITED_PID "${pids[@]}" 2>/dev/null || WAITED_STATUS=$?
  if [[ -n $WAITED_PID ]] && service_of "$WAITED_PID"; then
    SERVICE_STATUS[$SERVICE_OF]=$WAITED_STATUS
  fi
}

# any_exited: has a critical service already been seen to exit?
any_exited() {
  local name
  for name in "${CRITICAL[@]}"; do
    [[ -z ${SERVICE_STATUS[$name]:-} ]] || return 0
  done
  return 1
}

# probe URL: one HTTP GET. curl runs in the background and is waited for, so a signal during a slow
# probe is handled at once, not after PROBE_TIMEOUT_S; so is a critical service that exits meanwhile
# (the probe then fails, and the caller's check_alive names the service).
probe() {
  local curl_pid status=0
  curl --silent --fail --output /dev/null --noproxy '*' --max-time "$PROBE_TIMEOUT_S" -- "$1" 2>/dev/null 9>&- &
  curl_pid=$!
  if ((WAIT_ANY)); then
    wait_first "$curl_pid"
    if [[ $WAITED_PID == "$curl_pid" ]]; then
      return "$WAITED_STATUS"
    fi
    kill "$curl_pid" 2>/dev/null || true
    wait "$curl_pid" 2>/dev/null || true
    return 1
  fi
  wait "$curl_pid" 2>/dev/null || status=$?
  return "$status"
}

# service_of PID: set SERVICE_OF to the name of the service started with PID; status 1 if none
# was. A variable, not output: $(service_of ...) would fork a subshell of the launcher each time.
SERVICE_OF=""
service_of() {
  local name
  SERVICE_OF=""
  for name in "${STARTED[@]}"; do
    if [[ ${SERVICE_PID[$name]} == "$1" ]]; then
      SERVICE_OF=$name
      return 0
    fi
  done
  return 1
}

# pause [PID...]: one probe interval, cut short when a critical service (or a given PID) exits or a
# signal arrives: the waits are interruptible, where a foreground sleep would delay the trap.
pause() {
  pause_ms $((PROBE_INTERVAL_S * 1000)) "$@"
}

# pause_ms MS [PID...]: pause for MS milliseconds.
pause_ms() {
  local sleep_pid seconds
  printf -v seconds '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
  shift
  ! any_exited || return 0
  sleep "$seconds" 9>&- &
  sleep_pid=$!
  if ((WAIT_ANY)); then
    wait_first "$sleep_pid" "$@"
    if [[ $WAITED_PID != "$sleep_pid" ]]; then
      kill "$sleep_pid" 2>/dev/null || true
      wait "$sleep_pid" 2>/dev/null || true
    fi
  else
    wait "$sleep_pid" 2>/dev/null || true
  fi
}

# run_over: has the run ended on another node? RUN_OVER_FILE, where set, holds that node's exit
# status once it has (on SLURM: the router node's status file in the shared LOG_DIR). A node waiting
# for a remote service cannot otherwise tell "not up yet" from "came and went between two probes" (a
# quick client step): it would wait READY_TIMEOUT_S and then fail a run that succeeded.
# RUN_OVER_STATUS is what this node then exits with: 0 only if that run succeeded; the same signal
# status if it was stopped by one (scancel stops every node: this one must not report success just
# because it noticed first); 1 if it failed.
RUN_OVER_STATUS=1
RUN_OVER_SEEN=""
run_over() {
  local status=""
  [[ -n ${RUN_OVER_FILE:-} ]] || return 1
  read -r status 2>/dev/null <"$RUN_OVER_FILE" || [[ -n $status ]] || return 1
  case $status in
    0 | 129 | 130 | 143) RUN_OVER_STATUS=$status ;;
    *) RUN_OVER_STATUS=1 ;;
  esac
  RUN_OVER_SEEN=$status
}

# wait_ready NAME...: until each answers its readiness URL; dies at the deadline or as soon as
# any critical service of this node exits. Probes start 0.1 s apart and back off to PROBE_INTERVAL_S:
# a quick service is seen ready at once, a slow one costs one probe an interval.
wait_ready() {
  local -a pending=("$@") still
  local start deadline name url step=100
  clock_ms
  start=$NOW_MS
  deadline=$((NOW_MS + READY_TIMEOUT_S * 1000))
  log "waiting for ${pending[*]} to be ready (at most ${READY_TIMEOUT_S}s)"
  while :; do
    check_alive
    if run_over; then
      log "the run is over ($RUN_OVER_FILE: $RUN_OVER_SEEN): not waiting for ${pending[*]}"
      exit "$RUN_OVER_STATUS"
    fi
    still=()
    for name in "${pending[@]}"; do
      url=${SERVICE_URL[$name]:-${REMOTE_URL[$name]:-}}
      if probe "$url"; then
        clock_ms
        log "$name is ready after $(((NOW_MS - start) / 1000))s"
      else
        check_alive
        still+=("$name")
      fi
    done
    pending=("${still[@]}")
    ((${#pending[@]} > 0)) || return 0
    clock_ms
    if ((NOW_MS >= deadline)); then
      for name in "${pending[@]}"; do
        if [[ -n ${SERVICE_PID[$name]:-} ]]; then
          show_log_tail "$name"
        fi
      done
      die "not ready after ${READY_TIMEOUT_S}s: ${pending[*]}"
    fi
    pause_ms $((step < deadline - NOW_MS ? step : deadline - NOW_MS))
    step=$((step * 2 < PROBE_INTERVAL_S * 1000 ? step * 2 : PROBE_INTERVAL_S * 1000))
  done
}

####################################################################################################
# 5. serving monitor
# While serving, every critical service is checked: its exit at once, its health every tick.
####################################################################################################

# reap NAME: record the exit status of a service that is no longer running (once).
reap() {
  local status=0
  if [[ -z ${SERVICE_STATUS[$1]:-} ]]; then
    wait "${SERVICE_PID[$1]}" 2>/dev/null || status=$?
    SERVICE_STATUS[$1]=$status
  fi
}

# check_alive: fail the run at once if any critical service has exited, whatever its status.
check_alive() {
  local name pid
  for name in "${CRITICAL[@]}"; do
    pid=${SERVICE_PID[$name]}
    if [[ -n ${SERVICE_STATUS[$name]:-} ]] || ! kill -0 "$pid" 2>/dev/null; then
      reap "$name"
      fail_service "$name" "(pid $pid) exited with status ${SERVICE_STATUS[$name]}"
    fi
  done
}

# check_health NAME...: a live process that stops answering is as broken as a dead one.
check_health() {
  local name url
  for name in "$@"; do
    url=${SERVICE_URL[$name]:-${REMOTE_URL[$name]:-}}
    [[ -n $url ]] || continue
    if probe "$url"; then
      SERVICE_FAILS[$name]=0
    else
      check_alive # a service that exited is reported as such, not as a failed probe
      SERVICE_FAILS[$name]=$((SERVICE_FAILS[$name] + 1))
      log "$name did not answer $url (${SERVICE_FAILS[$name]} of $UNHEALTHY_AFTER)"
      if ((SERVICE_FAILS[$name] >= UNHEALTHY_AFTER)); then
        fail_service "$name" "is alive but has not answered $url for $UNHEALTHY_AFTER probes"
      fi
    fi
  done
}

# serve_until_exit NAME: keep every critical service checked while NAME (the client step) runs;
# return NAME's exit status.
serve_until_exit() {
  local name=$1 pid=${SERVICE_PID[$1]} status=0
  log "all services ready; $name is running"
  while [[ -z ${SERVICE_STATUS[$name]:-} ]] && kill -0 "$pid" 2>/dev/null; do
    check_alive
    check_health "${CRITICAL[@]}"
    pause "$pid"
  done
  reap "$name"
  status=${SERVICE_STATUS[$name]}
  show_log_tail "$name"
  log "$name exited with status $status"
  return "$status"
}

# serve: keep every critical service checked until a signal ends the run.
serve() {
  log "all services ready; serving until SIGINT or SIGTERM"
  while :; do
    check_alive
    check_health "${CRITICAL[@]}"
    pause
  done
}

# serve_while_up NAME: serve while NAME (a remote service, the router) answers. Returns once the
# run is over: RUN_OVER_STATUS when RUN_OVER_FILE says so, 0 once NAME has stopped answering for
# UNHEALTHY_AFTER probes (a shared filesystem may show the status file later than that).
serve_while_up() {
  local name=$1 fails=0
  log "all services ready; serving while $name is up"
  while :; do
    check_alive
    if run_over; then
      log "the run is over ($RUN_OVER_FILE: $RUN_OVER_SEEN)"
      return "$RUN_OVER_STATUS"
    fi
    check_health "${CRITICAL[@]}"
    if probe "${REMOTE_URL[$name]}"; then
      fails=0
    else
      check_alive
      fails=$((fails + 1))
      if ((fails >= UNHEALTHY_AFTER)); then
        log "$name has stopped answering: the run is over"
        return 0
      fi
    fi
    pause
  done
}

####################################################################################################
# 6. teardown
# One trap stops exactly what this script started, whatever ended the run.
####################################################################################################

# scan_live: LIVE_GROUP[pgid] and LIVE_PID[pid] for every process that still runs. Zombies do not
# count: an orphaned grandchild stays a zombie until init reaps it, which some inits do only every
# second or so.
declare -A LIVE_GROUP=() LIVE_PID=()
scan_live() {
  local stat pid
  LIVE_GROUP=()
  LIVE_PID=()
  for stat in /proc/[0-9]*/stat; do
    pid=${stat#/proc/}
    pid=${pid%/stat}
    proc_stat "$pid" || continue
    if [[ ${PROC_STAT[0]} != Z ]]; then
      LIVE_GROUP[${PROC_STAT[2]}]=1
      LIVE_PID[$pid]=1
    fi
  done
}

# still_running PID: does the process, or any process of the group it leads, still run (as of the
# last scan_live)? Without /proc, ask the kernel.
still_running() {
  if [[ -r /proc/self/stat ]]; then
    [[ -n ${LIVE_GROUP[$1]:-} || -n ${LIVE_PID[$1]:-} ]]
  else
    kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null
  fi
}

# is_child PID: is PID a running child of this shell?
is_child() {
  if [[ ! -r /proc/self/stat ]]; then
    kill -0 "$1" 2>/dev/null
    return
  fi
  proc_stat "$1" && [[ ${PROC_STAT[1]} == "$$" ]]
}

# signal_group SIGNAL PID: the process group PID leads (the service and all its children), or PID
# alone if it has not yet made its own group (a signal can arrive between fork and setsid).
# SIGNALLED_GROUP says which: 1 when the group got it.
SIGNALLED_GROUP=0
signal_group() {
  SIGNALLED_GROUP=1
  kill "-$1" -- "-$2" 2>/dev/null && return 0
  SIGNALLED_GROUP=0
  kill "-$1" "$2" 2>/dev/null
}

# stop_services: TERM every process group this script started, newest first; KILL what is left
# after GRACE_PERIOD_S; reap them; remove their PID files. Nothing this script did not start is
# signalled.
stop_services() {
  local pid name
  term_all
  if ((${#TEARDOWN_TARGETS[@]} > 0)); then
    await_stop
    for pid in "${TEARDOWN_TARGETS[@]}"; do # reap; never block on one that survived KILL
      [[ -n ${LIVE_PID[$pid]:-} ]] || wait "$pid" 2>/dev/null || true
    done
  fi
  for name in "${STARTED[@]}"; do
    rm -f -- "${SERVICE_LOG[$name]%.log}.pid"
  done
  for name in "${TEARDOWN_HOOKS[@]}"; do
    "$name" || true
  done
  end_watchdog
  if ((${#TEARDOWN_STOPPED[@]} > 0)); then
    log "stopped: ${TEARDOWN_STOPPED[*]}${TEARDOWN_KILLED[*]:+ (KILL needed: ${TEARDOWN_KILLED[*]})}"
  fi
}

# term_all: TERM every child of this shell: services newest first, and children that are not (yet)
# known services (the pause or probe under way, or a service whose PID was not recorded because
# the signal arrived between its fork and the next line). A job that has ended may have left its
# PID to another process: only this shell's children are signalled. Fills TEARDOWN_TARGETS (every
# PID signalled), TEARDOWN_UNGROUPED (those with no group of their own yet), TEARDOWN_STOPPED.
TEARDOWN_TARGETS=()
TEARDOWN_UNGROUPED=()
TEARDOWN_STOPPED=()
TEARDOWN_KILLED=()
term_all() {
  local name pid i
  local -a others=()
  mapfile -t others < <(jobs -p)
  for pid in "${others[@]}"; do
    if ! service_of "$pid" && is_child "$pid"; then
      term_target "$pid" || true
    fi
  done
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    name=${STARTED[i]}
    if term_target "${SERVICE_PID[$name]}"; then
      log "stopping $name (process group ${SERVICE_PID[$name]}): TERM"
      TEARDOWN_STOPPED+=("$name")
    fi
  done
}

# term_target PID: TERM PID's group (or PID alone) and note it; status 1 if it had already ended.
term_target() {
  local status=0
  signal_group TERM "$1" || status=1
  ((SIGNALLED_GROUP)) || TEARDOWN_UNGROUPED+=("$1")
  TEARDOWN_TARGETS+=("$1")
  return "$status"
}

# await_stop: wait until every target has ended; KILL what is left after GRACE_PERIOD_S
# (TEARDOWN_KILLED). Zombies do not count (scan_live).
await_stop() {
  local pid deadline
  local -a alive=()
  clock_ms
  deadline=$((NOW_MS + GRACE_PERIOD_S * 1000))
  while :; do
    scan_live
    alive=()
    for pid in "${TEARDOWN_TARGETS[@]}"; do
      if still_running "$pid"; then
        alive+=("$pid")
      fi
    done
    ((${#alive[@]} > 0)) || return 0
    term_new_groups
    clock_ms
    if ((NOW_MS >= deadline)); then
      if ((${#TEARDOWN_KILLED[@]} > 0)); then
        log "ERROR: still running after KILL: process groups ${alive[*]}"
        return 0
      fi
      for pid in "${alive[@]}"; do
        name_of "$pid"
        log "$NAME_OF did not stop within ${GRACE_PERIOD_S}s of TERM: sending KILL"
        signal_group KILL "$pid" || true
        TEARDOWN_KILLED+=("$NAME_OF")
      done
      deadline=$((NOW_MS + 5000)) # KILL cannot be ignored; only a process stuck in the kernel stays
    fi
    sleep 0.1
  done
}

# term_new_groups: a TERM sent before a service's setsid reached the PID alone, still the forked
# shell, and can be lost there (a busy machine widens that window): once the group exists, TERM
# it, once.
term_new_groups() {
  local pid
  local -a pending=()
  for pid in "${TEARDOWN_UNGROUPED[@]}"; do
    if kill -0 -- "-$pid" 2>/dev/null; then
      name_of "$pid"
      log "$NAME_OF made its process group after the TERM: TERM again, to the group"
      kill -TERM -- "-$pid" 2>/dev/null || true
    elif kill -0 "$pid" 2>/dev/null; then
      pending+=("$pid")
    fi
  done
  TEARDOWN_UNGROUPED=("${pending[@]}")
}

# name_of PID: NAME_OF, the name of the service started as PID, or "pid PID".
NAME_OF=""
name_of() {
  if service_of "$1"; then
    NAME_OF=$SERVICE_OF
  else
    NAME_OF="pid $1"
  fi
}

# write_status STATUS: where STATUS_FILE is set (a SLURM node; launch.sh reads it), this script's
# exit status. Whole or not at all (a temporary file renamed over it): another node reading it
# never sees an empty file.
write_status() {
  [[ -n ${STATUS_FILE:-} ]] || return 0
  { printf '%s\n' "$1" >"$STATUS_FILE.tmp$$" && mv -f -- "$STATUS_FILE.tmp$$" "$STATUS_FILE"; } 2>/dev/null || true
}

# Only the launcher's own shell tears down: it started the services and alone can reap them. A
# subshell of it must never; yet CI once saw a second process with the launcher's state tear the
# stack down mid-run and "exit status 0" while the launcher went on. In a subshell the traps only
# leave it (and the launcher forks no subshell while it serves: service_of, log).
# The status is written first (SLURM may SIGKILL a slow teardown). Teardown must finish, so a signal
# during it does not cut it short; but it is remembered: a run stopped by a signal never reports
# success (a node that saw the run end just before scancel reached it).
LATE_SIGNAL=0
on_exit() {
  local status=$?
  trap - EXIT
  if [[ $BASHPID != "$$" ]]; then
    exit "$status"
  fi
  trap 'LATE_SIGNAL=130' INT
  trap 'LATE_SIGNAL=143' TERM
  trap 'LATE_SIGNAL=129' HUP
  write_status "$status"
  stop_services
  if ((status == 0 && LATE_SIGNAL != 0)); then
    log "a signal arrived during teardown: not reporting success"
    status=$LATE_SIGNAL
    write_status "$status"
  fi
  [[ -z $RUN_PIDFILE ]] || rm -f -- "$RUN_PIDFILE"
  log "exit status $status"
  exit "$status"
}

on_signal() {
  if [[ $BASHPID != "$$" ]]; then
    exit "$2"
  fi
  log "received SIG$1: tearing down"
  exit "$2"
}

# A signal ignored when bash started cannot be trapped (bash's rule): a launcher started as
# `./launch.sh &` from a script (INT and QUIT ignored) or by a tool that ignores TERM keeps
# running when sent it. Say so at once, and how to stop it instead; SIGHUP ignored is nohup's purpose.
warn_untrappable() {
  local traps
  traps=$(trap -p INT TERM)
  if [[ $traps == *"trap -- '' SIGINT"* ]]; then
    log "WARNING: SIGINT was ignored when this launcher started, so it cannot be trapped: Ctrl-C does nothing; stop it with SIGTERM (kill $$)"
  fi
  if [[ $traps == *"trap -- '' SIGTERM"* ]]; then
    log "WARNING: SIGTERM was ignored when this launcher started, so it cannot be trapped: stop it with SIGINT (kill -INT $$)"
  fi
}

trap on_exit EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

warn_untrappable
