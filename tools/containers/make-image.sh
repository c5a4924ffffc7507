#!/usr/bin/env bash
# Build a minimal local Debian 12 image for podman, with no registry.
#
#   tools/containers/make-image.sh NAME:TAG [--with-python-venv VENV]... [--include PKG]...
#
# Makes localhost/NAME:TAG from `debootstrap --variant=minbase bookworm` with python3, curl
# and procps (the stand-in engines in tests/standins run on that python3), imported with
# `podman import`. The mirror is the Debian mirror apt already uses (read from
# /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; MIRROR=URL overrides it).
#
# --with-python-venv VENV   the image will run VENV's interpreter with VENV and its base
#     Python mounted read-only at their host paths (see docs/containers.md for the mounts).
#     Adds the Debian packages that hold the system libraries the interpreter and VENV's
#     native extensions link against (found with ldd on this host, mapped with dpkg -S),
#     so nothing is missing inside the image. VENV itself is not copied in.
# --include PKG             one more Debian package (repeatable).
#
# Cached: the image carries a label recipec.recipe=HASH of everything that decides its
# content (suite, variant, package list, mirror); if localhost/NAME:TAG exists with the same
# label, nothing is built. FORCE=1 rebuilds. Prints each step's time. Needs root and podman
# configured (tools/containers/setup-podman.sh).
set -euo pipefail
shopt -s inherit_errexit

readonly SUITE=bookworm
readonly VARIANT=minbase
readonly BASE_PACKAGES=(python3 curl procps)
readonly LABEL=recipec.recipe
: "${WORK_ROOT:=/var/tmp/recipec-images}"   # debootstrap's scratch root and package cache
: "${FORCE:=0}"

die() {
    printf 'make-image.sh: error: %s\n' "$*" >&2
    exit 1
}

say() {
    printf 'make-image.sh: %s\n' "$*" >&2
}

usage() {
    die "usage: make-image.sh NAME:TAG [--with-python-venv VENV]... [--include PKG]..."
}

# debian_mirror: the first Debian archive (not -security, not a third-party repository)
# that apt uses for this suite, from deb822 .sources files or one-line .list files.
debian_mirror() {
    local file line uris="" suites="" types="" found=""
    shopt -s nullglob
    for file in /etc/apt/sources.list.d/*.sources; do
        # Stanzas are separated by blank lines; a stanza is complete at a blank line or EOF.
        while IFS= read -r line || [[ -n ${line} ]]; do
            # A comment line is not a stanza break; only a blank line is.
            [[ ${line} =~ ^[[:space:]]*# ]] && continue
            if [[ -z ${line//[[:space:]]/} ]]; then
                found=$(stanza_mirror "${types}" "${uris}" "${suites}") && break 2
                uris="" suites="" types=""
                continue
            fi
            case ${line} in
                URIs:*) uris=${line#URIs:} ;;
                Suites:*) suites=${line#Suites:} ;;
                Types:*) types=${line#Types:} ;;
            esac
        done <"${file}"
        found=$(stanza_mirror "${types}" "${uris}" "${suites}") && break
        uris="" suites="" types=""
    done
    if [[ -z ${found} ]]; then
        for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [[ -r ${file} ]] || continue
            # deb [options] URI SUITE COMPONENTS...
            while read -r -a words; do
                [[ ${#words[@]} -ge 3 && ${words[0]} == deb ]] || continue
                [[ ${words[1]} == \[* ]] && words=("${words[0]}" "${words[@]:2}")
                found=$(stanza_mirror deb "${words[1]}" "${words[2]}") && break 2
            done < <(sed 's/#.*//' "${file}")
        done
    fi
    shopt -u nullglob
    [[ -n ${found} ]] || return 1
    printf '%s\n' "${found}"
}

# stanza_mirror TYPES URIS SUITES: print the first URI if this source is the Debian archive
# for SUITE (its Suites list has SUITE itself; bookworm-security lives elsewhere).
stanza_mirror() {
    local types=$1 uris=$2 suites=$3 word uri
    [[ " ${types} " == *" deb "* ]] || return 1
    for word in ${suites}; do
        if [[ ${word} == "${SUITE}" ]]; then
            for uri in ${uris}; do
                [[ ${uri} == */debian || ${uri} == */debian/ ]] || continue
                printf '%s\n' "${uri}"
                return 0
            done
        fi
    done
    return 1
}

# venv_packages VENV: Debian packages owning the system libraries that VENV's interpreter
# (through its base Python's prefix) and every shared object under VENV link against.
# A library that no package owns (e.g. a CUDA toolkit under /usr/local that one optional
# extension links to) cannot be provided by the image: it is named on stderr, not fatal.
venv_packages() {
    local venv=$1 python prefix lib owner
    python=$(readlink -f -- "${venv}/bin/python") || die "${venv}/bin/python: not found"
    [[ -x ${python} ]] || die "${venv}/bin/python: not an executable"
    prefix=$(dirname -- "$(dirname -- "${python}")")
    {
        printf '%s\n' "${python}"
        find "${venv}" -type f \( -name '*.so' -o -name '*.so.*' \) -print
        # The base Python's own extensions: its site-packages is not on the venv's path, and
        # tkinter (X11, Tk) is never imported by a server.
        find "${prefix}/lib" \( -path '*/site-packages' -o -name '_tkinter*' \) -prune -o \
            -type f \( -name '*.so' -o -name '*.so.*' \) -print
    } | while IFS= read -r elf; do
        # ldd prints "name => /path (addr)"; a non-ELF file or a static binary prints nothing.
        ldd -- "${elf}" 2>/dev/null || true
    done | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u | while IFS= read -r lib; do
        # Libraries inside VENV or the prefix are mounted with them.
        case ${lib} in "${venv}"/* | "${prefix}"/*) continue ;; esac
        if owner=$(dpkg -S -- "$(readlink -f -- "${lib}")" 2>/dev/null) \
            || owner=$(dpkg -S -- "${lib}" 2>/dev/null); then
            printf '%s\n' "${owner%%:*}"
        else
            say "warning: ${lib} (linked by a file in ${venv}) is in no Debian package: not in the image"
        fi
    done | sort -u
}

(($# >= 1)) || usage
ref=$1
shift
[[ ${ref} =~ ^[a-z0-9][a-z0-9._-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*$ ]] \
    || die "image reference '${ref}' must be NAME:TAG (lower-case name, no registry part)"
image=localhost/${ref}
extra=()
while (($#)); do
    case $1 in
        --with-python-venv)
            (($# >= 2)) || usage
            [[ -d $2 ]] || die "--with-python-venv $2: no such directory"
            start=${SECONDS}
            found_text=$(venv_packages "$2") || die "could not list the packages $2 needs"
            mapfile -t found <<<"${found_text}"
            say "$2 needs ${#found[@]} Debian packages (${found[*]}), found in $((SECONDS - start))s"
            extra+=("${found[@]}")
            shift 2
            ;;
        --include)
            (($# >= 2)) || usage
            extra+=("$2")
            shift 2
            ;;
        *) usage ;;
    esac
done

[[ ${EUID} -eq 0 ]] || die "needs root (debootstrap)"
command -v podman >/dev/null || die "podman not found (run tools/containers/setup-podman.sh)"
command -v debootstrap >/dev/null || die "debootstrap not found (run tools/containers/setup-podman.sh)"

mirror=${MIRROR:-}
if [[ -z ${mirror} ]]; then
    mirror=$(debian_mirror) || die "no Debian ${SUITE} mirror found in /etc/apt (set MIRROR=URL)"
fi

mapfile -t packages < <(printf '%s\n' "${BASE_PACKAGES[@]}" "${extra[@]}" | sort -u)
include=$(IFS=,; printf '%s' "${packages[*]}")
recipe="suite=${SUITE} variant=${VARIANT} include=${include} mirror=${mirror}"
hash=$(printf '%s\n' "${recipe}" | sha256sum)
hash=${hash:0:16}

if [[ ${FORCE} != 1 ]] && podman image exists "${image}"; then
    have=$(podman image inspect --format "{{index .Labels \"${LABEL}\"}}" "${image}") \
        || die "podman image inspect ${image} failed"
    if [[ ${have} == "${hash}" ]]; then
        say "${image} is up to date (${LABEL}=${hash}), nothing to build"
        exit 0
    fi
    say "${image} has ${LABEL}=${have:-none}, want ${hash}: rebuilding"
fi

say "building ${image}: ${recipe}"
mkdir -p -- "${WORK_ROOT}/cache"
rootfs=$(mktemp -d -- "${WORK_ROOT}/rootfs.XXXXXX")
# The root filesystem is scratch: removed whatever happens.
trap 'rm -rf -- "${rootfs}"' EXIT

start=${SECONDS}
log=${WORK_ROOT}/debootstrap.log
if ! debootstrap --variant="${VARIANT}" --include="${include}" \
    --cache-dir="${WORK_ROOT}/cache" "${SUITE}" "${rootfs}" "${mirror}" >"${log}" 2>&1; then
    tail -n 20 -- "${log}" >&2 || true
    die "debootstrap failed (full log: ${log})"
fi
# apt's package lists and the debs are not needed at run time.
rm -rf -- "${rootfs}/var/lib/apt/lists"/* "${rootfs}/var/cache/apt"/*.bin
say "debootstrap: $((SECONDS - start))s, $(du -sh -- "${rootfs}" | cut -f1)"

start=${SECONDS}
tar -C "${rootfs}" --numeric-owner -c . \
    | podman import --quiet --change "LABEL ${LABEL}=${hash}" --change 'CMD ["/bin/bash"]' - "${image}" >/dev/null \
    || die "podman import of ${image} failed"
say "podman import: $((SECONDS - start))s"
say "ok: ${image} (${LABEL}=${hash})"
