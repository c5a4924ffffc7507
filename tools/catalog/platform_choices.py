#!/usr/bin/env python3
"""Add the platform-dependent choices of vLLM flags to an engine catalog, read from vLLM's source.

The catalog's parser dump runs on vLLM's CPU platform (no GPU where it is made), where
--kv-cache-dtype and --attention-backend have no choices: what a value may be depends on the
attention backends the accelerator's platform can pick. This reads, without importing vLLM (its
GPU wheel does not import here), the unpacked wheel's source:

- platforms/{rocm,cuda,cpu}.py: the AttentionBackendEnum members each platform selects;
- v1/attention/backends/registry.py: the class of each member;
- each class's `supported_kv_cache_dtypes` (the base AttentionBackend's where a class sets none),
  literal lists or a module constant;
- config/cache.py: the CacheDType Literal (every kv-cache dtype vLLM knows, on any platform).

and writes `platform_choices` into the catalog JSON:
  {"source": ..., "families": {"amd": "rocm", ...}, "flags": {"--kv-cache-dtype": {"any": [...],
   "rocm": [...], "cuda": [...], "cpu": [...]}, "--attention-backend": {...}}}

Usage: platform_choices.py VLLM_SRC CATALOG_JSON [--wheel NAME --sha256 HEX]
  (VLLM_SRC: the `vllm/` folder of `unzip vllm-0.33.0-*.whl`; tools/catalog/make-all.sh runs it)
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

PLATFORMS = ("rocm", "cuda", "cpu")
# recipec's accelerator families (preflight.py accelerator_family) -> vLLM's platform module.
FAMILIES = {"amd": "rocm", "nvidia": "cuda", "cpu": "cpu"}


def _literal(node, module: ast.Module):
    """A list literal, list(NAME)/tuple(NAME)/NAME of a module-level literal, else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("list", "tuple") \
            and node.args:
        return _literal(node.args[0], module)
    if isinstance(node, ast.Name):
        for stmt in module.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else \
                [stmt.target] if isinstance(stmt, ast.AnnAssign) else []
            if any(getattr(t, "id", None) == node.id for t in targets) and stmt.value is not None:
                return _literal(stmt.value, module)
        return None
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None
    return list(value) if isinstance(value, (list, tuple, set, frozenset)) else None


def class_attr(src: Path, dotted: str, attr: str):
    """`attr` of class `dotted` (module.path.Class) as a literal list, or None."""
    module_path, _, cls = dotted.rpartition(".")
    file = src.parent / (module_path.replace(".", "/") + ".py")
    if not file.is_file():
        return None
    module = ast.parse(file.read_text())
    for node in ast.walk(module):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for stmt in node.body:
                target = stmt.target if isinstance(stmt, ast.AnnAssign) else \
                    stmt.targets[0] if isinstance(stmt, ast.Assign) else None
                if getattr(target, "id", None) == attr and stmt.value is not None:
                    return _literal(stmt.value, module)
    return None


def registry(src: Path) -> dict[str, str]:
    """AttentionBackendEnum member -> module.Class."""
    module = ast.parse((src / "v1/attention/backends/registry.py").read_text())
    for node in ast.walk(module):
        if isinstance(node, ast.ClassDef) and node.name == "AttentionBackendEnum":
            return {t.id: s.value.value for s in node.body if isinstance(s, ast.Assign)
                    for t in s.targets if isinstance(t, ast.Name) and isinstance(s.value, ast.Constant)
                    and isinstance(s.value.value, str)}
    raise SystemExit("no AttentionBackendEnum in registry.py")


def platform_backends(src: Path, platform: str) -> list[str]:
    module = ast.parse((src / "platforms" / f"{platform}.py").read_text())
    return sorted({n.attr for n in ast.walk(module) if isinstance(n, ast.Attribute)
                   and isinstance(n.value, ast.Name) and n.value.id == "AttentionBackendEnum"})


def cache_dtypes(src: Path) -> list[str]:
    module = ast.parse((src / "config/cache.py").read_text())
    for stmt in module.body:
        if isinstance(stmt, ast.Assign) and getattr(stmt.targets[0], "id", None) == "CacheDType":
            return [e.value for e in stmt.value.slice.elts]
    raise SystemExit("no CacheDType in config/cache.py")


def choices(src: Path) -> dict:
    classes = registry(src)
    base = class_attr(src, "vllm.v1.attention.backend.AttentionBackend", "supported_kv_cache_dtypes") or []
    out = {"--kv-cache-dtype": {"any": cache_dtypes(src)}, "--attention-backend": {"any": sorted(classes)}}
    for platform in PLATFORMS:
        members = [m for m in platform_backends(src, platform) if m in classes]
        dtypes: set[str] = set()
        for member in members:
            found = class_attr(src, classes[member], "supported_kv_cache_dtypes")
            dtypes.update(found if found is not None else base)
        out["--kv-cache-dtype"][platform] = sorted(dtypes)
        out["--attention-backend"][platform] = members
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="the vllm/ folder of the unpacked wheel")
    ap.add_argument("catalog", type=Path)
    ap.add_argument("--wheel", default="")
    ap.add_argument("--sha256", default="")
    args = ap.parse_args(argv)
    catalog = json.loads(args.catalog.read_text())
    catalog["platform_choices"] = {
        "source": (f"read from the source of {args.wheel or 'the vllm wheel'}"
                   + (f" (sha256 {args.sha256})" if args.sha256 else "")
                   + " by tools/catalog/platform_choices.py: each platform's AttentionBackendEnum members "
                   "(platforms/{rocm,cuda,cpu}.py), their supported_kv_cache_dtypes, config/cache.py CacheDType"),
        "families": FAMILIES,
        "flags": choices(args.src),
    }
    args.catalog.write_text(json.dumps(catalog, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
