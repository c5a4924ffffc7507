#!/usr/bin/env bats
# lib.sh section 5: the serving monitor (reap, check_alive, check_health, serve*).
load helpers

@test "reap: a service's exit status, collected once" {
  lib 'start_service a "$here/a.log" "" -- bash -c "exit 6" || exit 1; sleep 0.3
       reap a; reap a; echo "status ${SERVICE_STATUS[a]}"'
  [[ $output == *'status 6'* ]]
}

@test "check_alive: quiet while all live; an exit with status 0 still ends the run" {
  lib 'start_service a "$here/a.log" "" -- sleep 60 || exit 1
       start_service b "$here/b.log" "" -- true || exit 1; critical a
       sleep 0.3; check_alive; echo "a alive, b not critical"
       critical b; check_alive; echo after'
  [ "$status" -eq 1 ]
  [[ $output == *'a alive, b not critical'* ]]
  [[ $output =~ ERROR:\ b\ \(pid\ [0-9]+\)\ exited\ with\ status\ 0 ]]
  [[ $output != *after* ]]
}

@test "check_health: a live service that stops answering fails after UNHEALTHY_AFTER probes" {
  ready a
  lib 'start_service a "$here/a.log" http://x/a -- sleep 60 || exit 1; critical a
       check_health a; echo "fails=${SERVICE_FAILS[a]}"; rm "$FAKE/urls/a"
       check_health a; echo "fails=${SERVICE_FAILS[a]}"; check_health a; echo after'
  [ "$status" -eq 1 ]
  [[ $output == *'fails=0'*'a did not answer http://x/a (1 of 2)'*'fails=1'* ]]
  [[ $output == *'ERROR: a is alive but has not answered http://x/a for 2 probes'* && $output != *after* ]]
}

@test "serve_until_exit: the client's status is returned, its log shown" {
  lib 'start_service client "$here/client.log" "" -- bash -c "echo ran; sleep 0.5; exit 5" || exit 1
       status=0; serve_until_exit client || status=$?; echo "returned $status"'
  [[ $output == *'| ran'*'client exited with status 5'*'returned 5'* ]]
}

@test "serve_until_exit: a critical service dying while the client runs ends the run" {
  lib 'start_service a "$here/a.log" "" -- bash -c "sleep 0.4; exit 2" || exit 1; critical a
       start_service client "$here/client.log" "" -- sleep 60 || exit 1
       serve_until_exit client; echo after'
  [ "$status" -eq 1 ]
  [[ $output =~ ERROR:\ a\ \(pid\ [0-9]+\)\ exited\ with\ status\ 2 && $output != *after* ]]
}

@test "serve: serves until a critical service exits (or a signal)" {
  ready a
  lib 'start_service a "$here/a.log" http://x/a -- bash -c "sleep 1.5; exit 9" || exit 1; critical a
       serve'
  [ "$status" -eq 1 ]
  [[ $output == *'serving until SIGINT or SIGTERM'* && $output =~ a\ \(pid\ [0-9]+\)\ exited\ with\ status\ 9 ]]
}

@test "serve_while_up: returns 0 once the remote router stops answering" {
  ready router
  lib 'watch_remote router http://x/router; (sleep 0.5; rm "$FAKE/urls/router") &
       serve_while_up router; echo "returned $?"'
  [[ $output == *'router has stopped answering: the run is over'*'returned 0'* ]]
}

@test "serve_while_up: returns what the router node's status file says" {
  ready router
  lib 'watch_remote router http://x/router; RUN_OVER_FILE=$here/node0.status
       (sleep 0.5; echo 143 >"$RUN_OVER_FILE") &
       status=0; serve_while_up router || status=$?; echo "returned $status"'
  [[ $output == *'the run is over ('*'node0.status: 143)'*'returned 143'* ]]
}
