#!/usr/bin/env bats
# preflight.sh: the node checks, each against a fake /sys, /proc and /dev (PREFLIGHT_*_ROOT).
load helpers

PREFLIGHT=$(cd -- "$BATS_TEST_DIRNAME/../../compiler/templates" && pwd -P)/preflight.sh
export PREFLIGHT

# node BODY: BODY in a fresh bash that sourced lib.sh and preflight.sh, on the fake node.
node() {
  lib "NODE_LABEL=node1:n2
export PREFLIGHT_SYS_ROOT=\$here/sys PREFLIGHT_PROC_ROOT=\$here/proc PREFLIGHT_DEV_ROOT=\$here/dev
source \"\$PREFLIGHT\"
$1"
}

# gpus N: N AMD GPUs in the fake KFD topology (node 0 is the CPU, gpu_id 0).
gpus() {
  local i
  for ((i = 0; i <= $1; i++)); do
    mkdir -p "$BATS_TEST_TMPDIR/sys/class/kfd/kfd/topology/nodes/$i"
    echo $((i == 0 ? 0 : 4000 + i)) >"$BATS_TEST_TMPDIR/sys/class/kfd/kfd/topology/nodes/$i/gpu_id"
  done
}

# free_gib N: MemAvailable of N GiB.
free_gib() {
  mkdir -p "$BATS_TEST_TMPDIR/proc"
  printf 'MemTotal: %s kB\nMemAvailable: %s kB\n' $(($1 * 1048576 + 1)) $(($1 * 1048576)) >"$BATS_TEST_TMPDIR/proc/meminfo"
}

@test "node_preflight: a failed check names the node and the check, and how to skip it; nothing after runs" {
  mkdir -p "$BATS_TEST_TMPDIR/dev"
  node 'node_preflight model /no/such/model 0; echo after'
  [ "$status" -eq 1 ]
  [[ $output == *'recipec[node1:n2] ERROR: preflight model failed: model path /no/such/model does not exist on this node'* ]]
  [[ $output == *'PREFLIGHT_SKIP=model turns this check off'* && $output != *after* ]]
}

@test "node_preflight: PREFLIGHT_SKIP names checks (spaces or commas) or all" {
  PREFLIGHT_SKIP='rdma,model' node 'node_preflight model /no/such/model 0; node_preflight rdma; echo after'
  [ "$status" -eq 0 ]
  [[ $output == *'preflight model: skipped'* && $output == *'preflight rdma: skipped'* && $output == *after* ]]
  PREFLIGHT_SKIP=all node 'node_preflight memory 1 x; echo after'
  [[ $status -eq 0 && $output == *after* ]]
}

@test "preflight_model: an existing local path passes; an HF id passes online, needs the cache offline" {
  mkdir -p "$BATS_TEST_TMPDIR/m" "$BATS_TEST_TMPDIR/hub/models--org--name/snapshots/abc"
  HF_HUB_CACHE=$BATS_TEST_TMPDIR/hub node 'preflight_model "$here/m" 0; echo; preflight_model org/name 1; echo
preflight_model org/other 0; echo "online:$?"; preflight_model org/other 1 || echo " status:$?"'
  [ "$status" -eq 0 ]
  [[ $output == *'exists'* && $output == *'org/name is in the Hugging Face cache'* && $output == *'online:0'* ]]
  [[ $output == *'model org/other is not in the Hugging Face cache'*'offline mode (HF_HUB_OFFLINE) forbids a download status:1'* ]]
}

@test "preflight_accelerators: KFD GPU nodes counted (the CPU node is not); too few fail with both numbers" {
  gpus 4
  node 'preflight_accelerators 4 amd; echo; preflight_accelerators 8 amd || echo " status:$?"'
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == '4 of 4 accelerator(s) needed are visible' ]]
  [[ ${lines[1]} == "this node's engines need 8 amd accelerator(s), 4 are visible status:1" ]]
}

@test "preflight_accelerators: NVIDIA device files; render nodes where no KFD topology is readable" {
  mkdir -p "$BATS_TEST_TMPDIR/dev/dri"
  touch "$BATS_TEST_TMPDIR/dev/nvidia0" "$BATS_TEST_TMPDIR/dev/nvidia1" "$BATS_TEST_TMPDIR/dev/nvidiactl"
  touch "$BATS_TEST_TMPDIR/dev/dri/renderD128"
  node 'preflight_accelerators 2 nvidia; echo; preflight_accelerators 1 amd; echo; preflight_accelerators 3 nvidia || echo " status:$?"'
  [ "$status" -eq 0 ]
  [[ ${lines[0]} == '2 of 2 accelerator(s) needed are visible' && ${lines[1]} == '1 of 1 accelerator(s) needed are visible' ]]
  [[ ${lines[2]} == *'need 3 nvidia accelerator(s), 2 are visible status:1' ]]
}

@test "preflight_rdma: no device fails; named devices must exist; present ones pass" {
  node 'preflight_rdma || echo " status:$?"'
  [[ ${lines[0]} == *'Mooncake uses rdma, but this node has no RDMA device'*'status:1' ]]
  mkdir -p "$BATS_TEST_TMPDIR/sys/class/infiniband/mlx5_0"
  node 'preflight_rdma mlx5_0; echo; preflight_rdma mlx5_0 mlx5_1 || echo " status:$?"'
  [[ ${lines[0]} == 'RDMA devices: mlx5_0' ]]
  [[ ${lines[1]} == 'RDMA device(s) mlx5_1 of device_name not on this node (it has mlx5_0) status:1' ]]
}

@test "preflight_memory: MemAvailable must cover the L1 size; an unreadable meminfo fails" {
  node 'preflight_memory 1 x || echo " status:$?"'
  [[ ${lines[0]} == *'cannot read MemAvailable'*'status:1' ]]
  free_gib 16
  node 'preflight_memory $((8 * 1048576)) "LMCache L1 (8 GiB)"; echo; preflight_memory $((32 * 1048576)) "LMCache L1 (32 GiB)" || echo " status:$?"'
  [[ ${lines[0]} == '16 GiB free for LMCache L1 (8 GiB)' ]]
  [[ ${lines[1]} == 'LMCache L1 (32 GiB) needs 32 GiB of host memory, 16 GiB are free status:1' ]]
}

@test "preflight_logdir: writable with room passes; a file in the way or too little room fails" {
  node 'preflight_logdir "$here/logs"; echo; : >"$here/file"; preflight_logdir "$here/file/logs" || echo " status:$?"'
  [[ ${lines[0]} == "log directory $BATS_TEST_TMPDIR/logs writable" ]]
  [[ ${lines[1]} == "log directory $BATS_TEST_TMPDIR/file/logs is not writable status:1" ]]
  PREFLIGHT_MIN_LOG_MB=999999999 node 'preflight_logdir "$here/logs" || echo " status:$?"'
  [[ ${lines[0]} == *'MB free, less than PREFLIGHT_MIN_LOG_MB=999999999 status:1' ]]
}
