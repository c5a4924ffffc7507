#!/usr/bin/env bash
# Build the local images the tests run services in (no registry is reachable in CI):
#
#   tools/containers/make-test-images.sh [ENGINES_VENV]
#
#   localhost/recipec-standin:bookworm   python3 for the stand-in engines (tests/faults, tests/slurm)
#   localhost/recipec-engines:test       + the system libraries of ENGINES_VENV's interpreter and
#                                        extensions (tests/engines mounts the venv read-only)
#
# Each is skipped when it exists with the same recipe (make-image.sh's label), so a second run
# costs a second. The names are the ones tests/podman.py uses.
set -euo pipefail
shopt -s inherit_errexit
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)

start=$SECONDS
"$here/make-image.sh" recipec-standin:bookworm
if (($# > 0)); then
  "$here/make-image.sh" recipec-engines:test --with-python-venv "$1"
fi
printf 'make-test-images.sh: images ready in %ss\n' "$((SECONDS - start))" >&2
