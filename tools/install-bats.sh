#!/usr/bin/env bash
# Install bats (the lib.sh unit tests, tests/bats/) where it is missing: Debian's package.
set -euo pipefail
shopt -s inherit_errexit
if command -v bats >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  printf 'install-bats: no bats and no apt-get: install bats-core (https://github.com/bats-core/bats-core)\n' >&2
  exit 1
fi
sudo=()
((EUID == 0)) || sudo=(sudo)
"${sudo[@]}" apt-get install -y --no-install-recommends bats
