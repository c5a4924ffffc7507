#!/usr/bin/env bats
# lib.sh section 6: teardown (stop_services and its parts, on_exit, on_signal, the traps).
load helpers

@test "scan_live and still_running: live groups and PIDs; zombies are not running" {
  lib 'setsid sleep 60 & g=$!; sleep 0 & z=$!; sleep 0.2
       scan_live; still_running "$g" && echo "group runs"; still_running "$z" || echo "zombie does not"
       kill "$g"'
  [[ $output == *'group runs'*'zombie does not'* ]]
}

@test "is_child: this shell's children only" {
  lib 'sleep 60 & c=$!; is_child "$c" && echo "child"; is_child 1 || echo "1: not a child"; kill "$c"'
  [[ $output == *'child'*'1: not a child'* ]]
}

@test "signal_group: the group when there is one, else the PID alone, and says which" {
  lib 'setsid sleep 60 & g=$!; sleep 60 & p=$!; sleep 0.2
       signal_group TERM "$g"; echo "group: $SIGNALLED_GROUP"
       signal_group TERM "$p"; echo "pid alone: $SIGNALLED_GROUP"
       signal_group TERM 999999999 || echo "gone: fails"'
  [[ $output == *'group: 1'*'pid alone: 0'*'gone: fails'* ]]
}

@test "stop_services: TERM newest first, KILL after the grace period, PID files removed" {
  lib 'start_service first "$here/first.log" "" -- sleep 60 || exit 1
       start_service stubborn "$here/stubborn.log" "" -- bash -c "trap \"\" TERM; sleep 61 & wait" || exit 1
       sleep 0.3; clock_ms; t=$NOW_MS; stop_services; clock_ms; echo "took $((NOW_MS - t))ms"
       ls "$here"/*.pid 2>/dev/null || echo "no PID files"'
  [[ $output == *'stopping stubborn'*'stopping first'* ]]
  [[ $output == *'stubborn did not stop within 1s of TERM: sending KILL'* ]]
  [[ $output == *'stopped: stubborn first (KILL needed: stubborn)'* && $output == *'no PID files'* ]]
  [[ $output =~ took\ ([0-9]+)ms ]] && ((BASH_REMATCH[1] >= 1000 && BASH_REMATCH[1] < 2500)) # grace 1 s
}

@test "term_all: children not yet known as services are stopped too" {
  lib 'sleep 62 & stray=$!; term_all; echo "targets=${TEARDOWN_TARGETS[*]} stray=$stray"
       await_stop; kill -0 "$stray" 2>/dev/null || echo "stray stopped"'
  [[ $output =~ targets=([0-9]+)\ stray=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]
  [[ $output == *'stray stopped'* ]]
}

@test "term_target and term_new_groups: a PID TERMed before its setsid gets the TERM again as a group" {
  lib 'bash -c "trap \"\" TERM; sleep 0.4; trap - TERM; exec setsid sleep 63" & p=$!; sleep 0.1
       term_target "$p"; echo "ungrouped=${TEARDOWN_UNGROUPED[*]}"
       sleep 0.6; term_new_groups; echo "left=[${TEARDOWN_UNGROUPED[*]}]"; sleep 0.2
       kill -0 "$p" 2>/dev/null || echo "stopped"'
  [[ $output =~ ungrouped=[0-9]+ ]]
  [[ $output == *'made its process group after the TERM: TERM again, to the group'*'left=[]'*'stopped'* ]]
}

@test "await_stop: returns as soon as everything has ended" {
  lib 'start_service a "$here/a.log" "" -- sleep 60 || exit 1; term_all
       clock_ms; t=$NOW_MS; await_stop; clock_ms; echo "waited $((NOW_MS - t))ms"'
  [[ $output =~ waited\ ([0-9]+)ms ]] && ((BASH_REMATCH[1] < 900))
  [[ $output != *KILL* ]]
}

@test "name_of: the service's name, or the PID" {
  lib 'start_service a "$here/a.log" "" -- sleep 60 || exit 1
       name_of "${SERVICE_PID[a]}"; echo "[$NAME_OF]"; name_of 42; echo "[$NAME_OF]"'
  [[ $output == *'[a]'*'[pid 42]'* ]]
}

@test "write_status: the whole status or nothing, only where STATUS_FILE is set" {
  lib 'write_status 3; STATUS_FILE=$here/node.status; write_status 143; cat "$STATUS_FILE"
       ls "$here" | grep -c tmp || true'
  [[ ${lines[0]} == 143 ]]
  [[ $output == *$'\n0'* ]]
}

@test "on_exit: tears down, writes the status, exits with it" {
  lib 'STATUS_FILE=$here/node.status; start_service a "$here/a.log" "" -- sleep 60 || exit 1; exit 4'
  [ "$status" -eq 4 ]
  [[ $output == *'stopping a'*'exit status 4'* ]]
  [ "$(<"$BATS_TEST_TMPDIR/node.status")" = 4 ]
}

@test "on_exit: a signal during teardown turns a success into that signal's status" {
  lib 'STATUS_FILE=$here/node.status
       start_service s "$here/s.log" "" -- bash -c "trap \"kill -TERM \$PPID\" TERM; sleep 64 & wait" || exit 1
       sleep 0.3; exit 0' # the service answers the teardown'"'"'s TERM with a TERM to the launcher
  [ "$status" -eq 143 ]
  [[ $output == *'a signal arrived during teardown: not reporting success'*'exit status 143'* ]]
  [ "$(<"$BATS_TEST_TMPDIR/node.status")" = 143 ]
}

@test "on_exit and on_signal: in a subshell they only leave it" {
  lib 'start_service a "$here/a.log" "" -- sleep 60 || exit 1
       (trap on_exit EXIT; exit 0) || true; (on_signal TERM 143) || true
       kill -0 -- "-${SERVICE_PID[a]}" && echo "a still up"; exit 3'
  [ "$status" -eq 3 ]
  [[ $output == *'a still up'* && $output != *'received SIGTERM'* ]]
}

@test "on_signal: SIGTERM, SIGINT and SIGHUP tear down with 143, 130, 129" {
  for pair in TERM:143 INT:130 HUP:129; do
    lib "start_service a \"\$here/a.log\" '' -- sleep 60 || exit 1; kill -${pair%:*} \$\$; sleep 5"
    [ "$status" -eq "${pair#*:}" ]
    [[ $output == *"received SIG${pair%:*}: tearing down"*'stopping a'* ]]
  done
}

@test "warn_untrappable: a launcher started with SIGINT ignored says so" {
  lib 'echo ok'
  [[ $output != *WARNING* ]]
  run python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execvp("bash", ["bash", sys.argv[1]])' "$BATS_TEST_TMPDIR/launcher.sh"
  [[ $output == *'WARNING: SIGINT was ignored when this launcher started, so it cannot be trapped'* ]]
}
