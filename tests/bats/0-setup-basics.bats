#!/usr/bin/env bats
# lib.sh sections 0 (setup) and 1 (basics).
load helpers

@test "setup: a tunable that is not a whole number stops the launcher before anything" {
  GRACE_PERIOD_S=2s lib 'echo reached'
  [ "$status" -eq 1 ]
  [[ $output == *'GRACE_PERIOD_S must be a whole number of seconds or a count, got "2s"'* ]]
  [[ $output != *reached* ]]
}

@test "setup: PROBE_INTERVAL_S must be at least 1" {
  PROBE_INTERVAL_S=0 lib 'echo reached'
  [ "$status" -eq 1 ]
  [[ $output == *'PROBE_INTERVAL_S must be at least 1'* ]]
}

@test "setup: WAIT_ANY is on exactly where bash has wait -n -p (5.1)" {
  lib 'echo "wait_any=$WAIT_ANY"'
  if ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))); then
    [[ $output == *wait_any=1* ]]
  else
    [[ $output == *wait_any=0* ]]
  fi
}

@test "log: UTC time, the node's label, the message, on stderr" {
  lib 'NODE_LABEL=node1:n2; log "hello there" 2>&1 >/dev/null'
  [ "$status" -eq 0 ]
  [[ ${lines[0]} =~ ^[0-9]{2}:[0-9]{2}:[0-9]{2}\ recipec\[node1:n2\]\ hello\ there$ ]]
}

@test "clock_ms: milliseconds that advance" {
  lib 'clock_ms; a=$NOW_MS; sleep 0.2; clock_ms; echo "delta=$((NOW_MS - a))"'
  [[ $output =~ delta=([0-9]+) ]]
  ((BASH_REMATCH[1] >= 150 && BASH_REMATCH[1] < 2000))
}

@test "die: the message as an ERROR, exit 1" {
  lib 'die "it broke"; echo after'
  [ "$status" -eq 1 ]
  [[ $output == *'ERROR: it broke'* ]]
  [[ $output != *after* ]]
}

@test "proc_start: the start time of a running process; none for a gone one or a zombie" {
  lib 'proc_start $$; echo "self=$PROC_START"
       sleep 0 & z=$!; sleep 0.2   # a zombie until reaped
       proc_start "$z" || echo "zombie: not running"
       wait "$z"; proc_start "$z" || echo "gone: not running"'
  [[ $output =~ self=[0-9]+ ]]
  [[ $output == *'zombie: not running'* && $output == *'gone: not running'* ]]
}

@test "proc_stat: state, parent and process group, even when the command name holds ') '" {
  ln -s "$(command -v sleep)" "$BATS_TEST_TMPDIR/a) b c"
  lib '"$here/a) b c" 30 & c=$!; sleep 0.2
       proc_stat "$c" && echo "state=${PROC_STAT[0]} parent=${PROC_STAT[1]} group=${PROC_STAT[2]}"
       echo "launcher=$$ group_of_launcher=$(cut -d " " -f 5 "/proc/$$/stat")"  # bash: no space in its name
       kill "$c"; wait "$c" || true; proc_stat "$c" || echo "gone: none"'
  [[ $output =~ state=S\ parent=([0-9]+)\ group=([0-9]+) ]]
  parent=${BASH_REMATCH[1]} group=${BASH_REMATCH[2]}
  [[ $output == *"launcher=$parent group_of_launcher=$group"* ]]
  [[ $output == *'gone: none'* ]]
}

@test "show_log_tail: the last LOG_TAIL_LINES lines, marked; or that there were none" {
  lib 'printf "%s\n" one two three four five >"$here/a.log"; : >"$here/b.log"
       SERVICE_LOG[a]=$here/a.log; SERVICE_LOG[b]=$here/b.log
       show_log_tail a; show_log_tail b'
  [[ $output == *'last 3 lines of'*'    | three'*'    | four'*'    | five'* ]]
  [[ $output != *'| two'* ]]
  [[ $output == *'b wrote nothing to its log'* ]]
}

@test "fail_service: names the service, shows its log, exit 1" {
  lib 'echo "boom (simulated)" >"$here/s.log"; SERVICE_LOG[s]=$here/s.log
       fail_service s "exited with status 3"; echo after'
  [ "$status" -eq 1 ]
  [[ $output == *'ERROR: s exited with status 3'*'| boom (simulated)'* ]]
  [[ $output != *after* ]]
}
