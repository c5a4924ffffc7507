#!/usr/bin/env bats
# lib.sh section 4: readiness (probe, pause, wait_first, service_of, run_over, wait_ready).
load helpers

@test "probe: the URL's answer, by curl's status" {
  ready up
  lib 'probe http://x/up && echo "up: yes"; probe http://x/down || echo "down: no"'
  [[ $output == *'up: yes'*'down: no'* ]]
}

@test "probe: a critical service exiting cuts a slow probe short (bash >= 5.1)" {
  ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) || skip "bash < 5.1"
  printf '#!/bin/sh\nsleep 5\n' >"$FAKE/bin/curl"
  lib 'start_service a "$here/a.log" "" -- sleep 0.3 || exit 1; critical a
       clock_ms; t=$NOW_MS; probe http://x/slow || { clock_ms; echo "failed after $((NOW_MS - t))ms"; }'
  [[ $output =~ failed\ after\ ([0-9]+)ms ]] && ((BASH_REMATCH[1] < 2000)) # the fake curl takes 5 s
}

@test "service_of: the name a PID was started as, without a subshell" {
  lib 'start_service a "$here/a.log" "" -- sleep 60 || exit 1
       service_of "${SERVICE_PID[a]}" && echo "is $SERVICE_OF"; service_of 1 || echo "1: none"'
  [[ $output == *'is a'*'1: none'* ]]
}

@test "wait_first and any_exited: the first critical service to exit, with its status" {
  ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))) || skip "bash < 5.1"
  lib 'start_service a "$here/a.log" "" -- sleep 60 || exit 1
       start_service b "$here/b.log" "" -- bash -c "exit 4" || exit 1; critical a b
       any_exited || echo "none yet"
       wait_first; echo "first: $WAITED_PID=${SERVICE_PID[b]} status $WAITED_STATUS b=${SERVICE_STATUS[b]}"
       any_exited && echo "one has"'
  [[ $output =~ first:\ ([0-9]+)=([0-9]+)\ status\ 4\ b=4 ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]
  [[ $output == *'none yet'*'one has'* ]]
}

@test "pause and pause_ms: as long as asked, cut short when a critical service exits" {
  lib 'clock_ms; t=$NOW_MS; pause_ms 1200; clock_ms; echo "full: $((NOW_MS - t))ms"
       start_service a "$here/a.log" "" -- sleep 0.2 || exit 1; critical a
       clock_ms; t=$NOW_MS; pause; pause; clock_ms; echo "cut: $((NOW_MS - t))ms"'
  [[ $output =~ full:\ ([0-9]+)ms ]] && ((BASH_REMATCH[1] >= 1150 && BASH_REMATCH[1] < 2500))
  [[ $output =~ cut:\ ([0-9]+)ms ]]
  if ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))); then
    ((BASH_REMATCH[1] < 700)) # one interval is 1000 ms; the exit ended it, the second pause at once
  fi
}

@test "run_over: the other node's status decides this one's" {
  lib 'run_over || echo "no file: not over"
       RUN_OVER_FILE=$here/node0.status
       for s in 0 143 129 5; do echo "$s" >"$RUN_OVER_FILE"; run_over; echo "$s -> $RUN_OVER_STATUS"; done'
  [[ $output == *'no file: not over'*'0 -> 0'*'143 -> 143'*'129 -> 129'*'5 -> 1'* ]]
}

@test "wait_ready: returns once every service answers" {
  lib 'start_service a "$here/a.log" http://x/a -- sleep 60 || exit 1; critical a
       watch_remote r http://x/r
       (sleep 0.5; : >"$FAKE/urls/a"; sleep 0.3; : >"$FAKE/urls/r") &
       wait_ready a r; echo "both ready"'
  [ "$status" -eq 0 ]
  [[ $output == *'a is ready after 0s'*'r is ready after'*'both ready'* ]]
}

@test "wait_ready: a service that exits fails the wait at once, named, with its log" {
  lib 'start_service a "$here/a.log" http://x/a -- bash -c "echo dying; sleep 0.3; exit 3" || exit 1
       critical a; SECONDS=0; wait_ready a'
  [ "$status" -eq 1 ]
  [[ $output =~ ERROR:\ a\ \(pid\ [0-9]+\)\ exited\ with\ status\ 3 ]]
  [[ $output == *'| dying'* && $output != *'not ready after'* ]]
}

@test "wait_ready: the deadline, READY_TIMEOUT_S, names what was not ready" {
  READY_TIMEOUT_S=1 lib 'start_service a "$here/a.log" http://x/a -- sleep 60 || exit 1; critical a
       wait_ready a'
  [ "$status" -eq 1 ]
  [[ $output == *'ERROR: not ready after 1s: a'* ]]
}
