#!/usr/bin/env bats
# lib.sh section 2: preflight (commands, ports, leftovers of an earlier run).
load helpers

# listen: a listener on a free port, for the port checks; LISTEN_PORT, LISTEN_PID.
listen() {
  python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(60)' >"$BATS_TEST_TMPDIR/port" &
  LISTEN_PID=$!
  until [[ -s $BATS_TEST_TMPDIR/port ]]; do sleep 0.05; done
  LISTEN_PORT=$(<"$BATS_TEST_TMPDIR/port")
  export LISTEN_PORT LISTEN_PID
}

teardown() {
  [[ -z ${LISTEN_PID:-} ]] || kill "$LISTEN_PID" 2>/dev/null || true
}

@test "require_commands: every missing command named with what needs it; nothing else runs" {
  lib 'require_commands bash no-such-cmd-1=router no-such-cmd-2; echo after'
  [ "$status" -eq 1 ]
  [[ $output == *'not found on PATH: no-such-cmd-1 (needed by router)'* ]]
  [[ $output == *'not found on PATH: no-such-cmd-2'* && $output != *after* ]]
}

@test "listen_inodes: a socket inode for a listening port, none for a free one" {
  listen
  lib 'listen_inodes "$LISTEN_PORT"; echo "--"; listen_inodes 9'
  [[ ${lines[0]} =~ ^[0-9]+$ ]]
  [ "${lines[1]}" = "--" ]
}

@test "port_in_use: with ss, and without (/proc/net)" {
  listen
  printf '#!/bin/sh\nexit 1\n' >"$FAKE/bin/ss"; chmod +x "$FAKE/bin/ss"
  lib 'port_in_use "$LISTEN_PORT" && echo busy; port_in_use 9 || echo free'
  [[ $output == *busy*free* ]]
  rm "$FAKE/bin/ss"
  lib 'port_in_use "$LISTEN_PORT" && echo busy; port_in_use 9 || echo free'
  [[ $output == *busy*free* ]]
}

@test "port_holder: the PID and command of the listener" {
  listen
  printf '#!/bin/sh\nexit 1\n' >"$FAKE/bin/ss"; chmod +x "$FAKE/bin/ss" # the /proc/*/fd path
  lib 'port_holder "$LISTEN_PORT"'
  [[ $output == *"pid $LISTEN_PID (python3)"* ]]
}

@test "preflight_ports: each taken port named with its service and purpose; nothing starts" {
  listen
  lib 'preflight_ports 9 router "router HTTP" "$LISTEN_PORT" decode-0 "decode HTTP"; echo after'
  [ "$status" -eq 1 ]
  [[ $output == *"port $LISTEN_PORT, wanted by decode-0 (decode HTTP), is already in use by pid $LISTEN_PID"* ]]
  [[ $output != *'port 9,'* && $output == *'ports taken: nothing was started'* && $output != *after* ]]
}

@test "begin_run: records the launcher, points latest at the run, says where the logs are" {
  lib 'mkdir -p "$here/root/run-1"; begin_run "$here/root/run-1" "$here/root"
       echo "pid=$(<"$here/root/run-1/launcher.pid") self=$$ latest=$(readlink "$here/root/latest")"'
  [[ $output == *'logs of this run: '*'/root/run-1'* ]]
  [[ $output =~ pid=([0-9]+)\ self=([0-9]+)\ latest=run-1 ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]
  [ ! -e "$BATS_TEST_TMPDIR/root/run-1/launcher.pid" ] # removed by the teardown
}

@test "check_leftovers: a live service group of an earlier run is named with how to stop it" {
  mkdir -p "$BATS_TEST_TMPDIR/old"
  setsid sleep 60 & left=$!
  echo "$left" >"$BATS_TEST_TMPDIR/old/prefill-0.pid"
  lib 'check_leftovers "$here/old"; echo after'
  kill "$left"
  [ "$status" -eq 1 ]
  [[ $output == *"an earlier run left prefill-0 running: process group $left"*"kill -TERM -- -$left"* ]]
  [[ $output != *after* ]]
}

@test "check_leftovers: a launcher still running is named; stale PID files are removed" {
  mkdir -p "$BATS_TEST_TMPDIR/old"
  sleep 60 & launcher=$!
  echo "$launcher" >"$BATS_TEST_TMPDIR/old/launcher.pid"
  echo 999999999 >"$BATS_TEST_TMPDIR/old/decode-0.pid"
  echo junk >"$BATS_TEST_TMPDIR/old/router.pid"
  lib 'check_leftovers "$here/old"'
  kill "$launcher"
  [[ $output == *"this bundle is already running: launcher pid $launcher"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/old/decode-0.pid" ] && [ ! -e "$BATS_TEST_TMPDIR/old/router.pid" ]
}

@test "recorded_group: a group whose leader is gone but whose members live is still the service" {
  lib 'setsid bash -c "sleep 60 & exit 0" & leader=$!; wait "$leader" || true; sleep 0.2
       echo "$leader" >"$here/svc.pid"
       recorded_group "$leader" "$here/svc.pid" && echo "group lives"
       kill -- "-$leader"; sleep 0.1
       recorded_group "$leader" "$here/svc.pid" || echo "group gone"'
  [[ $output == *'group lives'*'group gone'* ]]
}

@test "recorded_process: a PID that started after its PID file was written is another process" {
  lib 'echo $$ >"$here/a.pid"; recorded_process $$ "$here/a.pid" && echo same
       touch -d @0 "$here/a.pid"; recorded_process $$ "$here/a.pid" || echo reused'
  [[ $output == *same*reused* ]]
}
