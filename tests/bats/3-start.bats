#!/usr/bin/env bats
# lib.sh section 3: start (start_service, critical, watch_remote, the watchdog).
load helpers

@test "start_service: own session, its environment, a log, a PID file, recorded" {
  lib 'start_service svc "$here/svc.log" http://x/svc A=1 "B=two words" -- \
         bash -c "echo \"A=\$A B=\$B\"; ps -o pid=,pgid=,sid= -p \$\$" || exit 1
       wait "${SERVICE_PID[svc]}"
       echo "pid=${SERVICE_PID[svc]} file=$(<"$here/svc.pid") started=${STARTED[*]} url=${SERVICE_URL[svc]}"
       cat "$here/svc.log"'
  [ "$status" -eq 0 ]
  [[ $output =~ pid=([0-9]+)\ file=([0-9]+)\ started=svc\ url=http://x/svc ]]
  pid=${BASH_REMATCH[1]}
  [ "$pid" = "${BASH_REMATCH[2]}" ]
  [[ $output == *'A=1 B=two words'* ]]
  [[ $output =~ $pid\ +$pid\ +$pid ]] # PID = PGID = SID: its own session
}

@test "start_service: refuses a missing command, a second start, no command after --" {
  lib 'start_service a "$here/a.log" "" -- no-such-command-x || echo "missing: 1"
       start_service b "$here/b.log" "" -- sleep 5 || exit 1
       start_service b "$here/b.log" "" -- sleep 5 || echo "twice: 1"
       start_service c "$here/c.log" "" X=1 || echo "no command: 1"'
  [[ $output == *"cannot start a: 'no-such-command-x' is not on PATH"*'missing: 1'* ]]
  [[ $output == *'b was already started'*'twice: 1'* ]]
  [[ $output == *'start_service c: no command after --'*'no command: 1'* ]]
}

@test "critical and watch_remote: what the monitor watches" {
  lib 'critical a b; watch_remote r http://n1:8000/health
       echo "critical=${CRITICAL[*]} remote=${REMOTE_URL[r]} fails=${SERVICE_FAILS[r]}"'
  [[ $output == *'critical=a b remote=http://n1:8000/health fails=0'* ]]
}

@test "start_watchdog: one per launcher; a clean teardown leaves it quiet and gone" {
  lib 'start_service svc "$here/svc.log" "" -- sleep 60 || exit 1; first=$WATCHDOG_PID
       start_service two "$here/two.log" "" -- sleep 60 || exit 1
       [[ $WATCHDOG_PID == "$first" ]] && echo "watchdog=$WATCHDOG_PID"'
  [ "$status" -eq 0 ]
  [[ $output =~ watchdog=([0-9]+) ]]
  ! kill -0 "${BASH_REMATCH[1]}" 2>/dev/null
  [ ! -s "$BATS_TEST_TMPDIR/watchdog.log" ]
}

@test "watchdog and stop_groups: the launcher SIGKILLed, every group it was told of is stopped (TERM, then KILL)" {
  lib 'start_service polite "$here/p.log" "" -- sleep 61 || exit 1
       start_service stubborn "$here/s.log" "" -- bash -c "trap \"\" TERM; sleep 62 & wait" || exit 1
       echo "groups ${SERVICE_PID[polite]} ${SERVICE_PID[stubborn]}"
       sleep 0.3; kill -KILL $$'
  [[ $output =~ groups\ ([0-9]+)\ ([0-9]+) ]]
  polite=${BASH_REMATCH[1]} stubborn=${BASH_REMATCH[2]}
  for _ in $(seq 50); do
    kill -0 -- "-$polite" 2>/dev/null || kill -0 -- "-$stubborn" 2>/dev/null || break
    sleep 0.1
  done
  ! kill -0 -- "-$polite" 2>/dev/null && ! kill -0 -- "-$stubborn" 2>/dev/null
  log=$(<"$BATS_TEST_TMPDIR/watchdog.log")
  [[ $log == *'the launcher ended without tearing down (SIGKILL?): stopping polite stubborn'* ]]
  [[ $log == *"still running after 1s: KILL to $stubborn"* ]]
}

@test "watch_group: a watchdog that is gone costs a warning, not the launcher" {
  lib 'start_service a "$here/a.log" "" -- sleep 60 || exit 1
       kill -KILL "$WATCHDOG_PID"; sleep 0.1
       start_service b "$here/b.log" "" -- sleep 60 || exit 1
       echo "still here"'
  [ "$status" -eq 0 ]
  [[ $output == *'WARNING: the watchdog is gone: b would outlive a SIGKILL of this launcher'*'still here'* ]]
}

@test "stop_groups: a leader that is another process now (reused PID) is left alone" {
  lib 'sleep 60 & other=$!
       stop_groups 1 "$other:1"; kill -0 "$other" && echo "left alone"; kill "$other"'
  [[ $output == *'TERM sent to process groups: none still running'*'left alone'* ]]
}

@test "end_watchdog: says over, closes the pipe, reaps it" {
  lib 'start_service a "$here/a.log" "" -- sleep 60 || exit 1
       w=$WATCHDOG_PID; end_watchdog; kill -0 "$w" 2>/dev/null || echo "watchdog ended"
       echo "pid now: [$WATCHDOG_PID]"'
  [[ $output == *'watchdog ended'*'pid now: []'* ]]
}
