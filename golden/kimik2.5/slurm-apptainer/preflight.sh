#!/usr/bin/env bash
# shellcheck shell=bash
# preflight.sh: what a node must have before any engine starts on it, checked in seconds instead
# of found by an engine minutes into its start (issue 17). Sourced after lib.sh (it uses log and
# die); the same file in every bundle. The plan decides which checks a node runs and with what
# values; each launch script calls `node_preflight CHECK ARGS...` once per check.
#
# Checks (each named in its failure, each turned off by naming it in PREFLIGHT_SKIP):
#   model         a local model path exists; a Hugging Face id is in the HF cache when offline
#   accelerators  enough accelerators visible (device files; nvidia-smi where no /dev is readable)
#   rdma          RDMA devices exist (sysfs, what ibv_devices lists) for Mooncake over rdma
#   memory        free host memory (MemAvailable) covers the LMCache L1 size
#   logdir        the log directory is writable and has PREFLIGHT_MIN_LOG_MB free
# PREFLIGHT_SKIP: checks to skip, separated by spaces or commas, or "all" (for the rare cluster
# where a check is wrong, e.g. devices only a container runtime maps in).
# PREFLIGHT_SYS_ROOT, PREFLIGHT_PROC_ROOT, PREFLIGHT_DEV_ROOT: where /sys, /proc and /dev are read
# (tests point them at fake trees); PREFLIGHT_MIN_LOG_MB: free space the log directory needs.

set -euo pipefail
shopt -s inherit_errexit

: "${PREFLIGHT_SKIP:=}"
: "${PREFLIGHT_MIN_LOG_MB:=100}"
: "${PREFLIGHT_SYS_ROOT:=/sys}"
: "${PREFLIGHT_PROC_ROOT:=/proc}"
: "${PREFLIGHT_DEV_ROOT:=/dev}"

# node_preflight CHECK ARGS...: run one check unless PREFLIGHT_SKIP names it; a failure ends the
# run naming the node (NODE_LABEL, via log) and the check.
node_preflight() {
  local check=$1 message
  shift
  if [[ ",${PREFLIGHT_SKIP// /,}," == *",$check,"* || ",${PREFLIGHT_SKIP// /,}," == *",all,"* ]]; then
    log "preflight $check: skipped (PREFLIGHT_SKIP)"
    return 0
  fi
  if ! message=$("preflight_$check" "$@"); then
    die "preflight $check failed: $message (nothing was started; PREFLIGHT_SKIP=$check turns this check off)"
  fi
  [[ -z $message ]] || log "preflight $check: $message"
}

# preflight_model PATH OFFLINE: a path (starts with / . or ~) must exist; an id (org/name) must
# be in the Hugging Face hub cache when OFFLINE is 1 (HF_HUB_OFFLINE: vLLM cannot download it).
preflight_model() {
  local path=$1 offline=$2 hub snapshots
  case $path in
    /* | ./* | ../* | '~'*)
      path=${path/#\~/$HOME}
      [[ -e $path ]] || { printf 'model path %s does not exist on this node' "$1"; return 1; }
      printf 'model path %s exists' "$1"
      ;;
    *)
      ((offline)) || return 0
      hub=${HF_HUB_CACHE:-${HF_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/huggingface}/hub}
      snapshots=$hub/models--${path//\//--}/snapshots
      if ! compgen -G "$snapshots/*" >/dev/null; then
        printf 'model %s is not in the Hugging Face cache %s, and offline mode (HF_HUB_OFFLINE) forbids a download' "$path" "$hub"
        return 1
      fi
      printf 'model %s is in the Hugging Face cache' "$path"
      ;;
  esac
}

# count_accelerators FAMILY: ACCELERATORS, the devices of FAMILY (amd, nvidia, any) this node has.
# AMD: the render nodes of /dev/dri that a KFD topology node backs (what HIP enumerates); NVIDIA:
# /dev/nvidiaN, or `nvidia-smi -L` where no device file is there to count.
count_accelerators() {
  local family=$1 node n=0
  ACCELERATORS=0
  if [[ $family == amd || $family == any ]]; then
    for node in "$PREFLIGHT_SYS_ROOT"/class/kfd/kfd/topology/nodes/*/gpu_id; do
      [[ -r $node ]] || continue
      read -r n <"$node" || n=0
      ((n == 0)) || ACCELERATORS=$((ACCELERATORS + 1))
    done
    if ((ACCELERATORS == 0)); then
      ACCELERATORS=$(compgen -G "$PREFLIGHT_DEV_ROOT/dri/renderD*" | wc -l || true)
    fi
  fi
  if [[ $family == nvidia || $family == any ]] && ((ACCELERATORS == 0)); then
    ACCELERATORS=$(compgen -G "$PREFLIGHT_DEV_ROOT/nvidia[0-9]*" | wc -l || true)
    if ((ACCELERATORS == 0)) && [[ $PREFLIGHT_DEV_ROOT == /dev ]] && command -v nvidia-smi >/dev/null 2>&1; then
      ACCELERATORS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
    fi
  fi
}

# preflight_accelerators NEED FAMILY: the node's engines use NEED accelerators.
preflight_accelerators() {
  local need=$1 family=$2
  count_accelerators "$family"
  if ((ACCELERATORS < need)); then
    printf "this node's engines need %s %s accelerator(s), %s are visible" "$need" "$family" "$ACCELERATORS"
    return 1
  fi
  printf '%s of %s accelerator(s) needed are visible' "$need" "$ACCELERATORS"
}

# preflight_rdma [DEVICE...]: Mooncake over rdma needs RDMA devices (sysfs class infiniband, what
# ibv_devices lists); the ones named in device_name must be among them.
preflight_rdma() {
  local dir=$PREFLIGHT_SYS_ROOT/class/infiniband have=() dev missing=()
  if [[ -d $dir ]]; then
    for dev in "$dir"/*; do
      [[ -e $dev ]] && have+=("${dev##*/}")
    done
  fi
  if ((${#have[@]} == 0)); then
    printf 'Mooncake uses rdma, but this node has no RDMA device (%s is empty)' "$dir"
    return 1
  fi
  for dev in "$@"; do
    [[ " ${have[*]} " == *" $dev "* ]] || missing+=("$dev")
  done
  if ((${#missing[@]} > 0)); then
    printf 'RDMA device(s) %s of device_name not on this node (it has %s)' "${missing[*]}" "${have[*]}"
    return 1
  fi
  printf 'RDMA devices: %s' "${have[*]}"
}

# preflight_memory NEED_KB WHAT: MemAvailable must cover NEED_KB (the LMCache L1 size).
preflight_memory() {
  local need_kb=$1 what=$2 avail
  avail=$(awk '$1 == "MemAvailable:" { print $2; exit }' "$PREFLIGHT_PROC_ROOT/meminfo" 2>/dev/null || true)
  if [[ ! $avail =~ ^[0-9]+$ ]]; then
    printf 'cannot read MemAvailable from %s/meminfo' "$PREFLIGHT_PROC_ROOT"
    return 1
  fi
  if ((avail < need_kb)); then
    printf '%s needs %s GiB of host memory, %s GiB are free' "$what" "$((need_kb / 1048576))" "$((avail / 1048576))"
    return 1
  fi
  printf '%s GiB free for %s' "$((avail / 1048576))" "$what"
}

# preflight_logdir DIR: DIR is writable (a file can be made there) with PREFLIGHT_MIN_LOG_MB free.
preflight_logdir() {
  local dir=$1 probe free_kb
  if ! mkdir -p -- "$dir" 2>/dev/null || ! probe=$(mktemp -- "$dir/.preflight.XXXXXX" 2>/dev/null); then
    printf 'log directory %s is not writable' "$dir"
    return 1
  fi
  rm -f -- "$probe"
  free_kb=$(df -Pk -- "$dir" 2>/dev/null | awk 'NR == 2 { print $4 }' || true)
  if [[ $free_kb =~ ^[0-9]+$ ]] && ((free_kb < PREFLIGHT_MIN_LOG_MB * 1024)); then
    printf 'log directory %s has %s MB free, less than PREFLIGHT_MIN_LOG_MB=%s' "$dir" "$((free_kb / 1024))" "$PREFLIGHT_MIN_LOG_MB"
    return 1
  fi
  printf 'log directory %s writable' "$dir"
}
