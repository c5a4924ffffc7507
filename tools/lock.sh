#!/usr/bin/env bash
# Refresh the lock files CI installs from (users' installs keep pyproject.toml's ranges):
#   requirements/ci.lock       recipec + its test and report extras + pip/setuptools: one universal
#                              resolution for every Python from 3.10 (the floor) up, a pin that
#                              differs by version under a marker (numpy 2.2 on 3.10, 2.4 on 3.11+),
#                              so the README's `pip install -c requirements/ci.lock` holds on each
#   requirements/engines.lock  the engines venv (tools/engines/setup-venv.sh), frozen from a fresh build
#
# Usage: tools/lock.sh [ci|engines|all]   (default all; needs uv: pip install uv)
# Then run the tests, and read `git diff requirements/` before committing.
set -euo pipefail
shopt -s inherit_errexit

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd -- "$repo"
what=${1:-all}

lock_ci() {
    command -v uv >/dev/null || { echo "lock.sh: uv not found (pip install uv)" >&2; exit 1; }
    # The existing lock is uv's preference: a refresh moves only what must move.
    uv pip compile pyproject.toml requirements/build.in --extra test --extra report \
        --universal --python-version 3.10 \
        --no-header --annotation-style line --quiet -o requirements/ci.lock
    echo "lock.sh: wrote requirements/ci.lock"
}

lock_engines() {
    local venv
    venv=$(mktemp -d)
    trap 'rm -rf -- "$venv"' RETURN
    RECIPEC_ENGINES_UNLOCKED=1 tools/engines/setup-venv.sh "$venv/v"
    {
        echo "# The engines venv, frozen by tools/lock.sh engines from tools/engines/setup-venv.sh's pins."
        "$venv/v/bin/python" -m pip freeze --exclude-editable | LC_ALL=C sort
    } >requirements/engines.lock
    echo "lock.sh: wrote requirements/engines.lock"
}

case "$what" in
    ci) lock_ci ;;
    engines) lock_engines ;;
    all) lock_ci; lock_engines ;;
    *) echo "usage: tools/lock.sh [ci|engines|all]" >&2; exit 2 ;;
esac
