#!/usr/bin/env bash
# shellcheck shell=bash
# container.sh: the run-time side of container runtimes, sourced after lib.sh by the launch scripts
# of a bundle whose services run in containers (the recipe's `container` section). The same file in
# every such bundle: the runtime's words for each service (podman run ... IMAGE) are in the launch
# scripts, computed by recipec; this library knows only how to check, watch and remove.
#
# Its promises, on top of lib.sh's: before anything starts, every image this node runs is there
# (checked, or pulled, with a deadline) and every mount source exists; each container is named
# (run id or job id + service) and must be running within CONTAINER_START_TIMEOUT_S of its start;
# teardown, and the watchdog after a SIGKILL of the launcher, remove exactly the containers this
# script named, by those names. Every runtime call has a deadline and is KILLed 2 s after it (a
# hung runtime ignores TERM: docs/containers.md).
#
# Sections: 0. setup  1. runtime calls  2. preflight  3. start  4. teardown

####################################################################################################
# 0. setup
####################################################################################################

set -euo pipefail
shopt -s inherit_errexit

: "${RUNTIME_CALL_TIMEOUT_S:=30}" # seconds one runtime call (inspect, rm) may take
for _tunable in IMAGE_TIMEOUT_S CONTAINER_START_TIMEOUT_S RUNTIME_CALL_TIMEOUT_S; do
  if [[ ! ${!_tunable:-} =~ ^[0-9]+$ ]] || ((${!_tunable} < 1)); then
    printf 'recipec: %s must be a whole number of seconds (at least 1), got "%s"\n' "$_tunable" "${!_tunable:-}" >&2
    exit 1
  fi
done
unset _tunable

declare -A CONTAINER_RUNTIME=() CONTAINER_NAME=()
NAMED_CONTAINERS=() # "RUNTIME NAME" of every container this script named, in start order
TEARDOWN_HOOKS+=(remove_containers)
WATCHDOG_ALSO+=(remove_named)

####################################################################################################
# 1. runtime calls
####################################################################################################

# runtime_call SECONDS CMD...: run a runtime command with a deadline; RUNTIME_MSG holds the end of
# what it printed. Its output goes to a file, never a pipe: a hung runtime's children hold a pipe
# open long after it. In the background and waited for, so a signal is handled at once.
RUNTIME_MSG=""
runtime_call() {
  local seconds=$1 pid status=0 out="$LOG_DIR/.runtime-call.$$"
  shift
  timeout -k 2 "$seconds" "$@" >"$out" 2>&1 </dev/null 9>&- &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    wait "$pid" 2>/dev/null || true
  done
  wait "$pid" 2>/dev/null || status=$?
  RUNTIME_MSG=$(tail -n 3 -- "$out" 2>/dev/null | tr '\n' ' ' || true)
  RUNTIME_MSG=${RUNTIME_MSG% }
  {
    printf '$ %s\n' "$*"
    cat -- "$out"
    printf '(status %s)\n' "$status"
  } >>"$LOG_DIR/runtime.log" 2>/dev/null || true
  rm -f -- "$out"
  if ((status == 124 || status == 137)); then
    RUNTIME_MSG="no answer within ${seconds}s (status $status)${RUNTIME_MSG:+: $RUNTIME_MSG}"
  fi
  return "$status"
}

####################################################################################################
# 2. preflight
# Before anything starts: a missing image, mount source or runtime fails here, in seconds, not
# after a model load.
####################################################################################################

# preflight_mounts PATH...: every host path the containers mount must exist (a runtime fails on a
# missing one only when the container starts, or silently creates it).
preflight_mounts() {
  local path bad=0
  for path in "$@"; do
    if [[ ! -e $path ]]; then
      log "ERROR: mount source $path does not exist on this node"
      bad=1
    fi
  done
  ((bad == 0)) || die "mount sources missing: nothing was started"
}

# preflight_dirs PATH...: directories the containers share (a KV directory) are created here.
preflight_dirs() {
  mkdir -p -- "$@" || die "cannot create the directories the containers mount: $*"
}

# preflight_image RUNTIME IMAGE SERVICE...: IMAGE is on this node, or is pulled within
# IMAGE_TIMEOUT_S; otherwise die naming node, image, services and the runtime's own words.
preflight_image() {
  local runtime=$1 image=$2 start
  shift 2
  clock_ms
  start=$NOW_MS
  case $runtime in
    podman | docker)
      if runtime_call "$RUNTIME_CALL_TIMEOUT_S" "$runtime" image inspect --format '{{.Id}}' "$image"; then
        log "image $image is on this node ($runtime)"
        return 0
      fi
      log "image $image is not on this node ($RUNTIME_MSG): $runtime pull (at most ${IMAGE_TIMEOUT_S}s)"
      runtime_call "$IMAGE_TIMEOUT_S" "$runtime" pull "$image" || image_failed "$runtime" "$image" "$*"
      ;;
    apptainer)
      # A SIF file or sandbox must be there; a URI (docker://...) is pulled into apptainer's cache.
      if [[ $image == /* ]]; then
        [[ -r $image ]] || { RUNTIME_MSG="no such file"; image_failed "$runtime" "$image" "$*"; }
      else
        runtime_call "$IMAGE_TIMEOUT_S" apptainer exec --cleanenv "$image" true || image_failed "$runtime" "$image" "$*"
      fi
      ;;
    pyxis)
      # One step with the image imports it on this node (enroot import); a wrong tag or an
      # unreachable registry fails here, not in a service's step.
      runtime_call "$IMAGE_TIMEOUT_S" srun --overlap --nodes=1 --ntasks=1 --nodelist="${SLURMD_NODENAME:?}" \
        --container-image="$image" true || image_failed "$runtime" "$image" "$*"
      ;;
    *) die "unknown container runtime $runtime" ;;
  esac
  clock_ms
  log "image $image ready for $* after $(((NOW_MS - start) / 1000))s"
}

# image_failed RUNTIME IMAGE SERVICES: the image cannot be had on this node.
image_failed() {
  die "image $2 ($1, for $3) is not available on this node: ${RUNTIME_MSG:-no message}: nothing was started"
}

####################################################################################################
# 3. start
####################################################################################################

# track_container SERVICE RUNTIME NAME IMAGE: SERVICE starts next, in a container of RUNTIME named
# NAME. Recorded (and told to the watchdog) before the start, so no window leaves it unnamed.
track_container() {
  CONTAINER_RUNTIME[$1]=$2
  CONTAINER_NAME[$1]=$3
  SERVICE_NOTE[$1]=" ($2 container $3, image $4)" # lib.sh's fail_service names it in a failure
  log "$1 starts in${SERVICE_NOTE[$1]}"
  NAMED_CONTAINERS+=("$2 $3")
  [[ -n $WATCHDOG_PID ]] || start_watchdog "$LOG_DIR/watchdog.log"
  if ! (printf 'container %s %s\n' "$2" "$3" >&9) 2>/dev/null; then
    log "WARNING: the watchdog is gone: container $3 would outlive a SIGKILL of this launcher"
  fi
}

# await_containers SERVICE...: each one's container is running within CONTAINER_START_TIMEOUT_S of
# now. Its client's exit is reported as the service's (check_alive, with the runtime's message in
# its log); a runtime that neither starts it nor fails is reported here, not at READY_TIMEOUT_S.
await_containers() {
  local -a pending=("$@") still
  local name state deadline step=100
  clock_ms
  deadline=$((NOW_MS + CONTAINER_START_TIMEOUT_S * 1000))
  while ((${#pending[@]} > 0)); do
    check_alive
    still=()
    for name in "${pending[@]}"; do
      # A client that has ended: its container has too (teardown removes it). A critical
      # service's exit is check_alive's to report, the client step's its caller's.
      kill -0 "${SERVICE_PID[$name]}" 2>/dev/null || continue
      state=""
      if runtime_call "$RUNTIME_CALL_TIMEOUT_S" "${CONTAINER_RUNTIME[$name]}" container inspect \
        --format '{{.State.Status}}' "${CONTAINER_NAME[$name]}"; then
        state=$RUNTIME_MSG
      fi
      if [[ $state == running || $state == exited || $state == stopped ]]; then
        continue # exited: its client is about to say so, with the status (check_alive)
      fi
      still+=("$name")
    done
    pending=("${still[@]}")
    ((${#pending[@]} > 0)) || break
    clock_ms
    if ((NOW_MS >= deadline)); then
      for name in "${pending[@]}"; do
        fail_service "$name" "is not running ${CONTAINER_START_TIMEOUT_S}s after its start: the ${CONTAINER_RUNTIME[$name]} runtime did not start it (last: ${RUNTIME_MSG:-no answer})"
      done
    fi
    pause_ms $((step < deadline - NOW_MS ? step : deadline - NOW_MS))
    step=$((step * 2 < PROBE_INTERVAL_S * 1000 ? step * 2 : PROBE_INTERVAL_S * 1000))
  done
  log "containers running: $*"
}

####################################################################################################
# 4. teardown
# lib.sh's teardown first TERMs each runtime client (the runtime passes TERM to the container's
# init), waits GRACE_PERIOD_S and KILLs the clients; a KILLed client leaves its container running,
# so each named container is then removed by its name. Nothing else is touched.
####################################################################################################

# remove_containers: remove every container this script named (teardown hook of stop_services).
remove_containers() {
  local item runtime
  local -a list
  local -A names=()
  ((${#NAMED_CONTAINERS[@]} > 0)) || return 0
  for item in "${NAMED_CONTAINERS[@]}"; do
    names[${item%% *}]+=" ${item#* }"
  done
  for runtime in "${!names[@]}"; do
    read -r -a list <<<"${names[$runtime]}" # container names are single words (runtimes refuse others)
    if remove_named "$LOG_DIR/runtime.log" "$runtime" "${list[@]}"; then
      log "removed the containers of this run ($runtime):${names[$runtime]}"
    else
      log "ERROR: $runtime could not remove every container of this run:${names[$runtime]} (see $LOG_DIR/runtime.log)"
    fi
  done
  NAMED_CONTAINERS=()
}

# remove_named LOGFILE RUNTIME NAME...: force-remove the named containers, gone or not; the
# runtime's words are appended to LOGFILE (also run by the watchdog, which has only this function
# and lib.sh's basics).
remove_named() {
  local logfile=$1 runtime=$2 status=0
  shift 2
  printf '$ %s rm %s\n' "$runtime" "$*" >>"$logfile" 2>/dev/null || logfile=/dev/null
  case $runtime in
    podman)
      timeout -k 2 "${RUNTIME_CALL_TIMEOUT_S:-30}" podman rm --force --time 0 --ignore -- "$@" \
        >>"$logfile" 2>&1 </dev/null 9>&- || status=$?
      ;;
    docker)
      # A container already gone is what was wanted: only other errors count.
      timeout -k 2 "${RUNTIME_CALL_TIMEOUT_S:-30}" docker rm --force -- "$@" \
        >>"$logfile.docker" 2>&1 </dev/null 9>&- || status=$?
      if ((status == 1)) && ! grep -v -e 'No such container' -e '^[^E]' -- "$logfile.docker" >/dev/null 2>&1; then
        status=0
      fi
      cat -- "$logfile.docker" >>"$logfile" 2>/dev/null || true
      rm -f -- "$logfile.docker"
      ;;
  esac
  printf '(status %s)\n' "$status" >>"$logfile" 2>/dev/null || true
  return "$status"
}
