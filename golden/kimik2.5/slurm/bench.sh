#!/usr/bin/env bash
# shellcheck shell=bash
# bench.sh: the benchmark step of a recipec bundle, sourced after lib.sh by the script that runs the
# router's node. The same file in every bundle with a benchmark: the points, their argv and the
# thresholds are in launch.sh/node.sh (computed by the plan). It starts nothing by itself.
#
# Its promises: the first point runs only once the stack has answered a real completion through
# the router (and, where the engines count requests on /metrics, once prefill and decode both
# counted it: /health is 200 even when PD has silently fallen back to decode-only); every point is
# a service of its own (lib.sh's guards: the stack is checked while it runs); a point whose client
# fails, or whose result fails the validity gate, stops the sweep with exit 1 naming the point,
# and the results of the points before it stay where they are, summarised.
#
# Sections:
#   1. results    the run's result directory (never another run's)
#   2. answers    check_answers: readiness that means "answers"
#   3. sweep      bench_point, bench_gate, bench_cooldown
#   4. summary    bench_summary: summary.csv and summary.md of the points done
# Needs lib.sh (log, die, start_service, serve_until_exit, check_alive, pause_ms), curl, and python
# to read JSON: the one in the benchmark's image where the benchmark runs in a container (the node
# script sets BENCH_READER to the runtime's words for it), else BENCH_PYTHON from the node's PATH;
# BENCH_PYTHON, when set, wins (a host interpreter: no container start per read). Tested in tests/bats/7-bench.bats
# and as whole bundles in tests/faults/test_bench.py.

set -euo pipefail
shopt -s inherit_errexit

for _tunable in ANSWER_TIMEOUT_S BENCH_COOLDOWN_S BENCH_MIN_OUTPUT_TOKENS BENCH_MAX_FAILED; do
  if [[ ! ${!_tunable:-} =~ ^[0-9]+$ ]]; then
    printf 'recipec: %s must be a whole number, got "%s"\n' "$_tunable" "${!_tunable:-}" >&2
    exit 1
  fi
done
unset _tunable
if [[ ! ${BENCH_MIN_COMPLETED_RATIO:-} =~ ^(0?\.[0-9]+|0|1|1\.0*)$ ]]; then
  printf 'recipec: BENCH_MIN_COMPLETED_RATIO must be a fraction from 0 to 1, got "%s"\n' \
    "${BENCH_MIN_COMPLETED_RATIO:-}" >&2
  exit 1
fi
if [[ -n ${BENCH_PYTHON:-} ]] && ! command -v -- "$BENCH_PYTHON" >/dev/null; then
  printf 'recipec: BENCH_PYTHON=%s is not a command on this node\n' "$BENCH_PYTHON" >&2
  exit 1
fi
BENCH_READER=() # the words that run python in the benchmark's image (set by the node script)

RESULT_DIR=""
BENCH_DONE=() # result files of the points that passed, in sweep order

####################################################################################################
# 1. results
####################################################################################################

# bench_result_dir ROOT NAME: RESULT_DIR, a new empty directory ROOT/NAME for this run's results.
# A directory that holds anything (another run's results, a reused RUN_ID) is never written into:
# the next free NAME-2, NAME-3, ... is taken instead. mkdir claims it atomically.
bench_result_dir() {
  local root=$1 name=$2 dir n=1
  mkdir -p -- "$root" || die "cannot create the result root $root"
  dir=$root/$name
  until mkdir -- "$dir" 2>/dev/null; do
    if [[ -d $dir && -z $(ls -A -- "$dir") ]]; then
      break
    fi
    ((n++ < 1000)) || die "no free result directory $root/$name-N"
    dir=$root/$name-$n
  done
  RESULT_DIR=$dir
  log "results of this run: $RESULT_DIR"
}

# bench_python ARG...: python ARG..., where result JSON is read: BENCH_PYTHON when set, else python
# in the benchmark's image (BENCH_READER: a one-shot container, bounded like the runtime's image
# calls), else nowhere (no interpreter was given).
bench_python() {
  if [[ -n ${BENCH_PYTHON:-} ]]; then
    "$BENCH_PYTHON" "$@"
  elif ((${#BENCH_READER[@]} > 0)); then
    timeout -k 5 "$IMAGE_TIMEOUT_S" "${BENCH_READER[@]}" "$@" </dev/null
  else
    printf 'no interpreter to read results with: BENCH_PYTHON is empty\n'
    return 1
  fi
}

####################################################################################################
# 2. answers
####################################################################################################

# How many requests an engine's /metrics says it finished: vLLM's vllm:request_success_total,
# summed over its labels (finish reason, engine). Prints nothing for a page without the metric.
readonly BENCH_METRIC=vllm:request_success_total

# count_requests URL...: the sum of BENCH_METRIC over the engines at URL...; status 1 when any of
# them does not answer /metrics or does not have the metric (then PD cannot be checked).
count_requests() {
  local url page total=0 value
  for url in "$@"; do
    page=$(curl --silent --fail --noproxy '*' --max-time "$PROBE_TIMEOUT_S" -- "$url" 2>/dev/null) || return 1
    value=$(awk -v m="$BENCH_METRIC" 'index($1, m) == 1 && (length($1) == length(m) || substr($1, length(m) + 1, 1) == "{") {
              s += $NF; n++ } END { if (n) printf "%d\n", s }' <<<"$page")
    [[ -n $value ]] || return 1
    total=$((total + value))
  done
  printf '%s\n' "$total"
}

# The text of a completion answer, from the JSON in the file $1: status 0 when it is non-empty.
readonly BENCH_PY_ANSWER='
import json, sys
try:
    answer = json.load(open(sys.argv[1], encoding="utf-8"))
    choice = answer["choices"][0]
    text = choice.get("text")
    if text is None:
        text = (choice.get("message") or {}).get("content") or ""
except Exception as exc:
    print("not a completion: %s" % exc)
    sys.exit(1)
if not text:
    print("an empty answer")
    sys.exit(1)
print("%d characters" % len(text))
'

# check_answers ROUTER_URL BODY [-- PREFILL_METRICS_URL... -- DECODE_METRICS_URL...]: one real
# completion (BODY, JSON) through the router must come back with text within ANSWER_TIMEOUT_S;
# then, given the engines' /metrics URLs, prefill and decode must each have counted it.
check_answers() {
  local url=$1/v1/completions body=$2 answer=$LOG_DIR/answers.json
  shift 2
  local -a prefill=() decode=()
  if [[ ${1:-} == -- ]]; then
    shift
    while (($#)) && [[ $1 != -- ]]; do
      prefill+=("$1")
      shift
    done
    shift || true
    decode=("$@")
  fi
  local p_before="" d_before="" code="" verdict="" start deadline left
  if ((${#prefill[@]} + ${#decode[@]})); then
    p_before=$(count_requests "${prefill[@]}") || p_before=""
    d_before=$(count_requests "${decode[@]}") || d_before=""
  fi
  clock_ms
  start=$NOW_MS
  deadline=$((NOW_MS + ANSWER_TIMEOUT_S * 1000))
  log "asking the router for one completion (at most ${ANSWER_TIMEOUT_S}s): $url"
  while :; do
    check_alive
    # One try may take up to a minute (a first completion can be slow), never past the deadline;
    # between tries the stack is checked again.
    left=$(((deadline - NOW_MS + 999) / 1000))
    left=$((left > 60 ? 60 : left > 0 ? left : 1))
    code=$(curl --silent --noproxy '*' --max-time "$left" --output "$answer" \
      --write-out '%{http_code}' -H 'Content-Type: application/json' --data-binary "$body" -- "$url" \
      2>/dev/null) || code=${code:-000}
    if [[ $code == 200 ]] && verdict=$(bench_python -c "$BENCH_PY_ANSWER" "$answer"); then
      break
    fi
    [[ $code == 200 ]] || verdict="HTTP $code: $(head -c 300 -- "$answer" 2>/dev/null || true)"
    clock_ms
    if ((NOW_MS >= deadline)); then
      die "the stack is healthy but does not answer: no completion from the router within ${ANSWER_TIMEOUT_S}s (last: $verdict)"
    fi
    log "no answer yet ($verdict); trying again"
    pause_ms $((PROBE_INTERVAL_S * 1000))
  done
  clock_ms
  log "the router answered ($verdict) after $((NOW_MS - start)) ms"
  ((${#prefill[@]} + ${#decode[@]})) || return 0
  if [[ -z $p_before || -z $d_before ]]; then
    log "WARNING: the engines do not count requests on /metrics ($BENCH_METRIC): not checking that prefill and decode both served it"
    return 0
  fi
  check_pd_counted "$p_before" "$d_before" "${prefill[@]}" -- "${decode[@]}"
}

# check_pd_counted P_BEFORE D_BEFORE PREFILL_URL... -- DECODE_URL...: prefill and decode must each
# count one more finished request than before the readiness completion. Engines update their
# counters just after answering, so look for up to 5 s before calling it missing.
check_pd_counted() {
  local p_before=$1 d_before=$2 p_now d_now tries=0
  shift 2
  local -a prefill=() decode=()
  while [[ $1 != -- ]]; do
    prefill+=("$1")
    shift
  done
  shift
  decode=("$@")
  while :; do
    p_now=$(count_requests "${prefill[@]}") || p_now=$p_before
    d_now=$(count_requests "${decode[@]}") || d_now=$d_before
    if ((p_now > p_before && d_now > d_before)); then
      log "prefill and decode both served it ($BENCH_METRIC: prefill $p_before -> $p_now, decode $d_before -> $d_now)"
      return 0
    fi
    ((tries++ < 25)) || break
    pause_ms 200
  done
  if ((p_now <= p_before && d_now <= d_before)); then
    die "neither prefill nor decode counted the readiness completion ($BENCH_METRIC unchanged): the router answered from elsewhere"
  elif ((p_now <= p_before)); then
    die "prefill never saw the request: PD fell back to decode-only ($BENCH_METRIC on prefill stayed at $p_before, decode $d_before -> $d_now)"
  fi
  die "decode never saw the request: the router did not disaggregate ($BENCH_METRIC on decode stayed at $d_before, prefill $p_before -> $p_now)"
}

####################################################################################################
# 3. sweep
####################################################################################################

# The validity gate of one point, from the client's result JSON (argument 1): a reason per failed
# threshold, status 1 if any. Thresholds are arguments 2-4 (BENCH_MIN_OUTPUT_TOKENS,
# BENCH_MIN_COMPLETED_RATIO, BENCH_MAX_FAILED): the reader may run in a container without our env.
readonly BENCH_PY_GATE='
import json, sys
try:
    r = json.load(open(sys.argv[1], encoding="utf-8"))
    completed, failed = int(r["completed"]), int(r.get("failed") or 0)
    sent = int(r.get("num_prompts") or completed + failed)
    tokens = int(r["total_output_tokens"])
except Exception as exc:
    print("unreadable result: %s" % exc)
    sys.exit(1)
why = []
min_tokens, min_ratio, max_failed = sys.argv[2:5]
if tokens < int(min_tokens):
    why.append("%d output tokens (at least %s needed)" % (tokens, min_tokens))
if completed < float(min_ratio) * sent:
    why.append("%d of %d requests completed (at least %s of them needed)" % (completed, sent, min_ratio))
if failed > int(max_failed):
    why.append("%d requests failed (at most %s allowed)" % (failed, max_failed))
if why:
    print("; ".join(why))
    sys.exit(1)
print("%d/%d completed, %d output tokens, %.1f output tok/s" % (completed, sent, tokens, r.get("output_throughput") or 0))
'

# bench_gate FILE: the verdict line of the validity gate on stdout; status 1 when the point fails it.
bench_gate() {
  bench_python -c "$BENCH_PY_GATE" "$1" "$BENCH_MIN_OUTPUT_TOKENS" "$BENCH_MIN_COMPLETED_RATIO" "$BENCH_MAX_FAILED"
}

# bench_fail POINT MESSAGE: end the sweep at POINT; what the earlier points measured stays, summarised.
bench_fail() {
  if ((${#BENCH_DONE[@]})); then
    bench_summary || log "WARNING: could not summarise the earlier points"
    log "the results of ${#BENCH_DONE[@]} earlier point(s) are kept in $RESULT_DIR"
  fi
  die "point $1 failed: $2"
}

# bench_point POINT FILE [NAME=VALUE ...] -- COMMAND ARG...: run one point's client as a service
# (the stack checked while it runs), then gate its result RESULT_DIR/FILE.
bench_point() {
  local point=$1 file=$RESULT_DIR/$2 status=0 verdict
  shift 2
  log "point $point: starting"
  start_service "bench-$point" "$LOG_DIR/bench-$point.log" '' "$@" || exit 1
  # (container.sh declares CONTAINER_NAME an associative array; without it there is no container)
  if declare -F await_containers >/dev/null && [[ -v "CONTAINER_NAME[bench-$point]" ]]; then
    await_containers "bench-$point" # in its container (track_container): a hung runtime fails here
  fi
  serve_until_exit "bench-$point" || status=$?
  ((status == 0)) || bench_fail "$point" "the benchmark client exited with status $status (log: $LOG_DIR/bench-$point.log)"
  [[ -s $file ]] || bench_fail "$point" "the benchmark client wrote no result $file"
  verdict=$(bench_gate "$file") || bench_fail "$point" "invalid result: $verdict ($file)"
  BENCH_DONE+=("$file")
  log "point $point: valid: $verdict"
}

# bench_cooldown: BENCH_COOLDOWN_S between two points, still checking that the stack is alive.
bench_cooldown() {
  local end
  ((BENCH_COOLDOWN_S > 0)) || return 0
  log "cooling down for ${BENCH_COOLDOWN_S}s"
  clock_ms
  end=$((NOW_MS + BENCH_COOLDOWN_S * 1000))
  while ((NOW_MS < end)); do
    check_alive
    pause_ms $((end - NOW_MS < PROBE_INTERVAL_S * 1000 ? end - NOW_MS : PROBE_INTERVAL_S * 1000))
    clock_ms
  done
}

####################################################################################################
# 4. summary
####################################################################################################

# One row per point (sweep order): throughput, and TTFT/TPOT/ITL as median and every other
# percentile the client reported; CSV for tools, Markdown for people. Arguments: the output directory, then the
# result files.
readonly BENCH_PY_SUMMARY='
import csv, json, os, sys
out, files = sys.argv[1], sys.argv[2:]
rows = [json.load(open(f, encoding="utf-8")) for f in files]
stats = ["median"] + sorted({k.split("_", 1)[0] for r in rows for k in r if k[0] == "p"
                             and k.split("_", 1)[0][1:].replace(".", "").isdigit() and k.split("_", 1)[0] != "p50"},
                            key=lambda s: float(s[1:]))
cols = ["point", "concurrency", "num_prompts", "completed", "failed", "request_throughput", "output_throughput"]
cols += ["%s_%s_ms" % (s, m) for m in ("ttft", "tpot", "itl") for s in stats
         if any("%s_%s_ms" % (s, m) in r for r in rows)]
def cell(r, c):
    if c == "point":
        return r.get("point") or os.path.basename(r["_file"])
    if c == "concurrency":
        return r.get("max_concurrency")
    v = r.get(c)
    return round(v, 3) if isinstance(v, float) else v
for r, f in zip(rows, files):
    r["_file"] = f
with open(os.path.join(out, "summary.csv.tmp"), "w", newline="", encoding="utf-8") as fh:
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if cell(r, c) is None else cell(r, c) for c in cols])
with open(os.path.join(out, "summary.md.tmp"), "w", encoding="utf-8") as fh:
    fh.write("| " + " | ".join(cols) + " |\n")
    fh.write("|" + "---|" * len(cols) + "\n")
    for r in rows:
        fh.write("| " + " | ".join("" if cell(r, c) is None else str(cell(r, c)) for c in cols) + " |\n")
os.replace(os.path.join(out, "summary.csv.tmp"), os.path.join(out, "summary.csv"))
os.replace(os.path.join(out, "summary.md.tmp"), os.path.join(out, "summary.md"))
'

# bench_summary: RESULT_DIR/summary.csv and summary.md of the points that passed.
bench_summary() {
  bench_python -c "$BENCH_PY_SUMMARY" "$RESULT_DIR" "${BENCH_DONE[@]}" || return 1
  log "summary of ${#BENCH_DONE[@]} point(s): $RESULT_DIR/summary.csv, $RESULT_DIR/summary.md"
  sed 's/^/    /' -- "$RESULT_DIR/summary.md" >&2 || true
}
