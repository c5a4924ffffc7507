"""`recipec verify BUNDLE_DIR`: is a bundle on disk what its recipe builds today?

Takes a bundle directory; gives the list of drifts, each one line: a generated file edited by hand
(its sha256 is not the one bundle.json recorded), a file missing or added, the recipe changed (the
resolved recipe's digest is not bundle.json's recipe_sha256), recipec changed (another version), or
the bundle recipec builds today differs from the one on disk. bundle.json carries what this needs:
recipe_path (relative to the project root), recipe (the name, which picks a variant), overrides
(the --set texts, replayed), target, recipec_version, recipe_sha256, and files (each file's sha256).
Reads the disk, writes nothing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from . import __version__
from .errors import ProjectError, RecipecError

MANIFEST = "bundle.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(bundle: Path) -> dict:
    path = bundle / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"{bundle}: no {MANIFEST}: not a recipec bundle") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ProjectError(f"{path}: cannot read it as JSON ({exc})") from None
    need = ("recipe", "recipe_path", "recipe_sha256", "overrides", "target", "recipec_version", "files")
    if not isinstance(manifest, dict) or any(k not in manifest for k in need) or not isinstance(manifest["files"], dict):
        raise ProjectError(f"{path}: not a bundle.json this recipec can verify (it needs {', '.join(need)})",
                           hint="rebuild the bundle with this recipec")
    return manifest


def hand_edits(bundle: Path, manifest: dict) -> list[str]:
    """Files whose bytes are not what bundle.json recorded, missing files, and files no build wrote."""
    out = []
    recorded = manifest["files"]
    for name, digest in sorted(recorded.items()):
        path = bundle / name
        if not path.is_file():
            out.append(f"{name}: missing")
        elif _sha(path.read_bytes()) != digest:
            out.append(f"{name}: edited by hand (its sha256 is not the one bundle.json records)")
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        name = path.relative_to(bundle).as_posix()
        if name != MANIFEST and name not in recorded:
            out.append(f"{name}: not a file of the bundle (added by hand)")
    return out


def _project_root(bundle: Path) -> Path | None:
    from .config import project_config

    return project_config(bundle.resolve()).root or project_config(Path.cwd()).root


def rebuild(bundle: Path, manifest: dict) -> tuple[list[str], dict[str, str] | None]:
    """The drifts found by building the bundle's recipe again, and the files built (None: could not)."""
    from .pipeline import check, finish, load_source
    from .render import render_bundle
    from .variants import variant_name

    root = _project_root(bundle)
    if root is None:
        return [f"{MANIFEST}: no project found from {bundle} or here to find {manifest['recipe_path']} in"], None
    path = root / manifest["recipe_path"]
    try:
        source = load_source(path, manifest["recipe_path"])
        variant = next((v for v in source.variants if variant_name(source.doc, v) == manifest["recipe"]), None)
        loaded = finish(source, variant, tuple(manifest["overrides"]))
    except RecipecError as exc:
        return [f"recipe changed: {manifest['recipe_path']} no longer builds ({str(exc).splitlines()[0]})"], None
    out = []
    if loaded.recipe.name != manifest["recipe"]:
        out.append(f"recipe changed: {manifest['recipe_path']} no longer has a recipe or variant named "
                   f"{manifest['recipe']}")
        return out, None
    if loaded.sha256 != manifest["recipe_sha256"]:
        out.append(f"recipe changed: {manifest['recipe_path']} (or a file it extends) now resolves to sha256 "
                   f"{loaded.sha256[:12]}..., the bundle was built from {manifest['recipe_sha256'][:12]}...")
    if manifest["recipec_version"] != __version__:
        out.append(f"recipec changed: the bundle was built by recipec {manifest['recipec_version']}, this is "
                   f"{__version__}")
    try:
        checked = check(loaded)
        files = render_bundle(checked.plans[manifest["target"]])
    except (RecipecError, KeyError) as exc:
        out.append(f"recipe changed: it no longer builds for target {manifest['target']} ({exc})")
        return out, None
    return out, files


def verify(bundle: Path) -> list[str]:
    """Every drift of the bundle at ``bundle`` (empty: it is what its recipe builds today)."""
    manifest = read_manifest(bundle)
    out = hand_edits(bundle, manifest)
    drifts, files = rebuild(bundle, manifest)
    out += drifts
    if files is not None and not drifts:
        # Same recipe, same recipec version: any difference left is recipec's output itself.
        differ = [name for name in sorted(set(files) | set(manifest["files"]) | {MANIFEST})
                  if not (bundle / name).is_file() or (bundle / name).read_text(encoding="utf-8", errors="replace")
                  != files.get(name)]
        edited = {line.split(":", 1)[0] for line in out}
        for name in differ:
            if name not in edited:
                out.append(f"{name}: not what recipec {__version__} builds from the recipe today")
    return out
