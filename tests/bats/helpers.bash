# Shared by the bats files: run a snippet of bash the way a bundle's launcher runs, after sourcing
# lib.sh with quick tunables. `run` (bats) captures its status and its output (stdout and stderr).
LIB=$(cd -- "$BATS_TEST_DIRNAME/../../compiler/templates" && pwd -P)/lib.sh
export LIB

setup() {
  FAKE=$BATS_TEST_TMPDIR/fake
  mkdir -p -- "$FAKE/bin" "$FAKE/urls"
  # A curl that answers from files: URL .../NAME succeeds while $FAKE/urls/NAME exists.
  cat >"$FAKE/bin/curl" <<'CURL'
#!/usr/bin/env bash
url=${!#}
[[ -e $FAKE/urls/${url##*/} ]] || exit 7
CURL
  chmod +x "$FAKE/bin/curl"
  export FAKE
}

# lib BODY: BODY in a fresh bash that sourced lib.sh (tunables from the environment, else quick).
lib() {
  local script=$BATS_TEST_TMPDIR/launcher.sh
  cat >"$script" <<PRELUDE
set -euo pipefail
shopt -s inherit_errexit
PATH="\$FAKE/bin:\$PATH"
: "\${READY_TIMEOUT_S:=3}" "\${PROBE_INTERVAL_S:=1}" "\${PROBE_TIMEOUT_S:=1}" "\${UNHEALTHY_AFTER:=2}"
: "\${GRACE_PERIOD_S:=1}" "\${LOG_TAIL_LINES:=3}"
here='$BATS_TEST_TMPDIR'
source "\$LIB"
PRELUDE
  printf '%s\n' "$1" >>"$script"
  run bash "$script"
}

# ready NAME: the fake curl answers .../NAME from now on.
ready() {
  : >"$FAKE/urls/$1"
}
