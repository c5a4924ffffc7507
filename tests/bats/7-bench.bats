#!/usr/bin/env bats
# bench.sh, function by function: result directory, the "answers" check, the gate, points, summary.
load helpers

# bench BODY: BODY in a fresh bash that sourced lib.sh and bench.sh, with a curl that answers from
# $FAKE/pages (a file a URL, named by the URL with / and : as _; FILE.code: its HTTP status;
# FILE.hook: run on each request, e.g. to count a completion on the engines' /metrics pages).
bench() {
  mkdir -p -- "$FAKE/pages"
  cat >"$FAKE/bin/curl" <<'CURL'
#!/usr/bin/env bash
url=${!#} out="" wo=""
while (($#)); do
  case $1 in
    --output) out=$2; shift ;;
    --write-out) wo=$2; shift ;;
  esac
  shift
done
page=$FAKE/pages/${url//[\/:]/_}
[[ -e $page ]] || { [[ -z $wo ]] || printf '000'; exit 7; }
[[ ! -e $page.hook ]] || bash "$page.hook"
code=200
[[ ! -e $page.code ]] || code=$(<"$page.code")
if [[ -n $out ]]; then cat -- "$page" >"$out"; else cat -- "$page"; fi
[[ -z $wo ]] || printf '%s' "$code"
[[ $code == 200 || -n $wo ]] || exit 22
CURL
  chmod +x "$FAKE/bin/curl"
  lib ': "${ANSWER_TIMEOUT_S:=2}" "${BENCH_COOLDOWN_S:=0}" "${BENCH_MIN_OUTPUT_TOKENS:=1}"
       : "${BENCH_MIN_COMPLETED_RATIO:=1}" "${BENCH_MAX_FAILED:=0}" "${BENCH_PYTHON:=python3}"
       LOG_DIR=$here; source "${LIB%/*}/bench.sh"
       '"$1"
}

# page URL TEXT: what the fake curl answers for URL.
page() {
  mkdir -p -- "$FAKE/pages"
  local url=$1
  printf '%s' "$2" >"$FAKE/pages/${url//[\/:]/_}"
}

metrics() { # metrics COUNT: a vLLM /metrics page that has counted COUNT finished requests
  printf '# TYPE vllm:request_success_total counter\nvllm:request_success_total{engine="0",finished_reason="length"} %s.0\nvllm:request_success_total{engine="0",finished_reason="stop"} 0.0\n' "$1"
}

ANSWER='{"choices": [{"text": " hi"}]}'

@test "bench.sh: a tunable that is not a number fails at source time" {
  BENCH_MAX_FAILED=x bench 'echo sourced'
  [ "$status" -eq 1 ]
  [[ $output == *'BENCH_MAX_FAILED must be a whole number, got "x"'* && $output != *sourced* ]]
  BENCH_MIN_COMPLETED_RATIO=1.5 bench 'echo sourced'
  [[ $output == *'BENCH_MIN_COMPLETED_RATIO must be a fraction'* && $output != *sourced* ]]
}

@test "bench_python: BENCH_PYTHON wins; else the image's reader words (bounded); else a clear failure" {
  # A runtime that prints its words, then runs the rest (after the image) as the container would.
  printf '%s\n' '#!/usr/bin/env bash' 'printf "runtime:"; printf " %s" "${@:1:3}"; echo' \
    'shift 3; exec "$@"' >"$FAKE/bin/runtime"
  chmod +x "$FAKE/bin/runtime"
  bench 'IMAGE_TIMEOUT_S=5 BENCH_READER=(runtime run --rm image python3)
         BENCH_PYTHON=; bench_python -c "print(\"in image\")"
         BENCH_PYTHON=python3; bench_python -c "print(\"on host\")"
         BENCH_PYTHON= BENCH_READER=(); bench_python -c "print(1)" || echo "none: $?"'
  [[ $output == *'runtime: run --rm image'$'\n''in image'$'\n''on host'$'\n''no interpreter to read results with: BENCH_PYTHON is empty'$'\n''none: 1'* ]]
  BENCH_PYTHON=no-such-python bench 'echo AFTER'
  [ "$status" -eq 1 ] && [[ $output == *'BENCH_PYTHON=no-such-python is not a command on this node'* ]]
  [[ $output != *AFTER* ]]
}

@test "bench_result_dir: a new directory; one holding anything is never reused" {
  bench 'root=$here/results
         bench_result_dir "$root" run; echo "1=${RESULT_DIR#$here/}"
         bench_result_dir "$root" run; echo "2=${RESULT_DIR#$here/}"
         touch "$root/run/x.json"; bench_result_dir "$root" run; echo "3=${RESULT_DIR#$here/}"
         touch "$root/run-2/x.json"; bench_result_dir "$root" run; echo "4=${RESULT_DIR#$here/}"'
  [ "$status" -eq 0 ]
  [[ $output == *'1=results/run'$'\n'* && $output == *'2=results/run'$'\n'* ]] # empty: still this run's
  [[ $output == *'3=results/run-2'* && $output == *'4=results/run-3'* ]]
}

@test "count_requests: vllm:request_success_total summed over labels and engines, nothing else" {
  page http://p1/metrics "$(metrics 3; echo 'vllm:request_success_total_created 99'; echo 'vllm:prompt_tokens_total 7')"
  page http://p2/metrics "$(metrics 2)"
  page http://none/metrics "vllm:prompt_tokens_total 1"
  bench 'echo "sum=$(count_requests http://p1/metrics http://p2/metrics)"
         count_requests http://p1/metrics http://none/metrics || echo "missing metric: status $?"
         count_requests http://gone/metrics || echo "no page: status $?"'
  [[ $output == *'sum=5'* && $output == *'missing metric: status 1'* && $output == *'no page: status 1'* ]]
}

# answers_stack P_HOOK D_HOOK: a router whose completion bumps prefill by P_HOOK and decode by D_HOOK.
answers_stack() {
  page http://r/v1/completions "$ANSWER"
  page http://p/metrics "$(metrics 0)"
  page http://d/metrics "$(metrics 0)"
  cat >"$FAKE/pages/http___r_v1_completions.hook" <<HOOK
printf '%s' "\$(printf '# TYPE x counter\nvllm:request_success_total{a="b"} $1\n')" >"\$FAKE/pages/http___p_metrics"
printf '%s' "\$(printf '# TYPE x counter\nvllm:request_success_total{a="b"} $2\n')" >"\$FAKE/pages/http___d_metrics"
HOOK
}

@test "check_answers: an answer counted by prefill and decode is ready" {
  answers_stack 1 1
  bench 'check_answers http://r "{}" -- http://p/metrics -- http://d/metrics; echo "ready: $?"'
  [ "$status" -eq 0 ]
  [[ $output == *'the router answered (3 characters)'* ]]
  [[ $output == *'prefill and decode both served it (vllm:request_success_total: prefill 0 -> 1, decode 0 -> 1)'* ]]
  [[ $output == *'ready: 0'* ]]
}

@test "check_answers: prefill never counting it is PD fallen back to decode-only" {
  answers_stack 0 1
  bench 'check_answers http://r "{}" -- http://p/metrics -- http://d/metrics; echo AFTER'
  [ "$status" -eq 1 ]
  [[ $output == *'ERROR: prefill never saw the request: PD fell back to decode-only'* && $output != *AFTER* ]]
}

@test "check_answers: decode never counting it is named too" {
  answers_stack 1 0
  bench 'check_answers http://r "{}" -- http://p/metrics -- http://d/metrics'
  [ "$status" -eq 1 ]
  [[ $output == *'ERROR: decode never saw the request: the router did not disaggregate'* ]]
}

@test "check_answers: HTTP errors until the deadline fail, with the last answer" {
  page http://r/v1/completions '{"error": "no worker"}'
  echo 503 >"$FAKE/pages/http___r_v1_completions.code"
  ANSWER_TIMEOUT_S=1 bench 'check_answers http://r "{}"; echo AFTER'
  [ "$status" -eq 1 ]
  [[ $output == *'no answer yet (HTTP 503: {"error": "no worker"}); trying again'* ]]
  [[ $output == *'ERROR: the stack is healthy but does not answer: no completion from the router within 1s (last: HTTP 503: {"error": "no worker"})'* ]]
  [[ $output != *AFTER* ]]
}

@test "check_answers: an empty text or a page that is not a completion is no answer" {
  page http://r/v1/completions '{"choices": [{"text": ""}]}'
  ANSWER_TIMEOUT_S=1 bench 'check_answers http://r "{}"'
  [ "$status" -eq 1 ] && [[ $output == *'(last: an empty answer)'* ]]
  page http://r/v1/completions 'OK'
  ANSWER_TIMEOUT_S=1 bench 'check_answers http://r "{}"'
  [ "$status" -eq 1 ] && [[ $output == *'(last: not a completion: '* ]]
}

@test "check_answers: engines without the metric are answered for, with a warning" {
  page http://r/v1/completions "$ANSWER"
  page http://p/metrics "nothing"
  page http://d/metrics "$(metrics 0)"
  bench 'check_answers http://r "{}" -- http://p/metrics -- http://d/metrics; echo "ready: $?"'
  [[ $output == *'WARNING: the engines do not count requests on /metrics'*'ready: 0'* ]]
}

# result FILE COMPLETED FAILED TOKENS [PROMPTS]: a result JSON as vllm bench serve writes it.
result() {
  printf '{"completed": %s, "failed": %s, "total_output_tokens": %s, "num_prompts": %s, "output_throughput": 12.5, "max_concurrency": 4, "point": "%s", "median_ttft_ms": 3.0, "p99_ttft_ms": 9.0, "median_tpot_ms": 1.0, "p99_tpot_ms": 2.0}' \
    "$2" "$3" "$4" "${5:-$(($2 + $3))}" "${6:-c4}" >"$1"
}

@test "bench_gate: each threshold, and the reasons together" {
  result "$BATS_TEST_TMPDIR/ok.json" 8 0 64
  result "$BATS_TEST_TMPDIR/zero.json" 8 0 0
  result "$BATS_TEST_TMPDIR/bad.json" 6 2 64
  printf 'not json' >"$BATS_TEST_TMPDIR/broken.json"
  bench 'bench_gate "$here/ok.json"; bench_gate "$here/zero.json" || echo "zero: $?"
         bench_gate "$here/bad.json" || echo "bad: $?"; bench_gate "$here/broken.json" || echo "broken: $?"
         BENCH_MAX_FAILED=2 BENCH_MIN_COMPLETED_RATIO=0.75; bench_gate "$here/bad.json"'
  [[ $output == *'8/8 completed, 64 output tokens, 12.5 output tok/s'* ]]
  [[ $output == *'0 output tokens (at least 1 needed)'*'zero: 1'* ]]
  [[ $output == *'6 of 8 requests completed (at least 1 of them needed); 2 requests failed (at most 0 allowed)'*'bad: 1'* ]]
  [[ $output == *'unreadable result: '*'broken: 1'* ]]
  [[ $output == *'6/8 completed, 64 output tokens'* ]] # thresholds from the environment
}

@test "bench_point: a valid point is kept; a failing one ends the sweep naming it, earlier results summarised" {
  result "$BATS_TEST_TMPDIR/c2.json" 4 0 32 4 c2
  result "$BATS_TEST_TMPDIR/c4.json" 8 0 0 8 c4
  bench 'bench_result_dir "$here" res
         bench_point c2 c2.json -- cp "$here/c2.json" "$RESULT_DIR/c2.json" || exit 1
         echo "done: ${#BENCH_DONE[@]}"
         bench_point c4 c4.json -- cp "$here/c4.json" "$RESULT_DIR/c4.json" || exit 1
         echo AFTER'
  [ "$status" -eq 1 ]
  [[ $output == *'point c2: valid: 4/4 completed'*'done: 1'* ]]
  [[ $output == *'the results of 1 earlier point(s) are kept in '*'ERROR: point c4 failed: invalid result: 0 output tokens'* ]]
  [[ $output != *AFTER* ]]
  [ "$(cut -d, -f1 "$BATS_TEST_TMPDIR/res/summary.csv")" = "$(printf 'point\nc2')" ]
}

@test "bench_point: the client's exit status and a missing result each fail the point" {
  bench 'bench_result_dir "$here" res; bench_point c1 c1.json -- bash -c "exit 3"'
  [ "$status" -eq 1 ] && [[ $output == *'ERROR: point c1 failed: the benchmark client exited with status 3'* ]]
  bench 'bench_result_dir "$here" res; bench_point c1 c1.json -- true'
  [ "$status" -eq 1 ] && [[ $output == *'ERROR: point c1 failed: the benchmark client wrote no result'* ]]
}

@test "bench_point: a critical service dying while a point runs ends the run" {
  bench 'start_service a "$here/a.log" "" -- bash -c "sleep 0.4; exit 2" || exit 1; critical a
         bench_result_dir "$here" res; bench_point c1 c1.json -- sleep 30; echo AFTER'
  [ "$status" -eq 1 ]
  [[ $output =~ ERROR:\ a\ \(pid\ [0-9]+\)\ exited\ with\ status\ 2 ]] && [[ $output != *AFTER* ]]
}

@test "bench_cooldown: waits, and still notices a dead service" {
  bench 'BENCH_COOLDOWN_S=1; clock_ms; t=$NOW_MS; bench_cooldown; clock_ms; echo "waited $((NOW_MS - t))ms"'
  [[ $output =~ waited\ ([0-9]+)ms ]] && ((BASH_REMATCH[1] >= 900))
  bench 'start_service a "$here/a.log" "" -- bash -c "sleep 0.3; exit 5" || exit 1; critical a
         BENCH_COOLDOWN_S=30; bench_cooldown; echo AFTER'
  [ "$status" -eq 1 ] && [[ $output == *'exited with status 5'* && $output != *AFTER* ]]
}

@test "bench_summary: CSV and Markdown, one row a point in sweep order, percentile columns" {
  result "$BATS_TEST_TMPDIR/a.json" 4 0 32 4 c8
  result "$BATS_TEST_TMPDIR/b.json" 8 0 64 8 c2
  bench 'RESULT_DIR=$here; BENCH_DONE=("$here/a.json" "$here/b.json"); bench_summary'
  [ "$status" -eq 0 ]
  run cat "$BATS_TEST_TMPDIR/summary.csv"
  [ "${lines[0]}" = "point,concurrency,num_prompts,completed,failed,request_throughput,output_throughput,median_ttft_ms,p99_ttft_ms,median_tpot_ms,p99_tpot_ms" ]
  [ "${lines[1]}" = "c8,4,4,4,0,,12.5,3.0,9.0,1.0,2.0" ]
  [ "${lines[2]%%,*}" = c2 ]
  run cat "$BATS_TEST_TMPDIR/summary.md"
  [ "${lines[1]}" = "|---|---|---|---|---|---|---|---|---|---|---|" ]
  [ "${lines[2]}" = "| c8 | 4 | 4 | 4 | 0 |  | 12.5 | 3.0 | 9.0 | 1.0 | 2.0 |" ]
}
