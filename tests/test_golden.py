"""golden/ holds the expected bundles byte for byte; any unintended change fails here.

Regenerate on purpose with tools/update-golden.sh, then read `git diff golden/`.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from conftest import ROOT, run_recipec

CASES = sorted((p.parent.name, p.name) for p in (ROOT / "golden").glob("*/*") if p.is_dir())
# A recipe a target refuses (kimik2.5 on one machine: RC967) has the refusal as its golden file.
REFUSED = sorted((p.parent.name, p.stem) for p in (ROOT / "golden").glob("*/*.error"))
# tools/golden-variants.txt: RECIPE TARGET VARIANT SET... -> golden/RECIPE/TARGET-VARIANT (built with --set)
VARIANTS = {(w[0], f"{w[1]}-{w[2]}"): (w[1], w[3:]) for w in (
    line.split() for line in (ROOT / "tools" / "golden-variants.txt").read_text().splitlines())
    if w and not w[0].startswith("#")}


def test_every_recipe_has_golden_bundles_for_both_targets():
    recipes = sorted(p.stem for p in (ROOT / "recipes").glob("*.yaml"))
    assert recipes, "no recipes"
    assert sorted({(r, t) for r in recipes for t in ("local", "slurm")} | set(VARIANTS)) == sorted(CASES + REFUSED)
    assert not set(CASES) & set(REFUSED)


@pytest.mark.parametrize("recipe,target", REFUSED)
def test_refused_build_matches_golden(tmp_path, recipe, target):
    out = tmp_path / "out"
    proc = run_recipec("build", recipe, "--target", target, "-o", str(out))
    assert proc.returncode == 1
    assert proc.stderr == (ROOT / "golden" / recipe / f"{target}.error").read_text()
    assert not out.exists()  # nothing half-written


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("recipe,target", CASES)
def test_build_matches_golden(tmp_path, recipe, target):
    out = tmp_path / "out"
    folder = ROOT / "golden" / recipe / target
    target, sets = VARIANTS.get((recipe, target), (target, ()))
    run_recipec("build", recipe, "--target", target, "-o", str(out), *(a for s in sets for a in ("--set", s)),
                check=True)
    golden, built = _files(folder), _files(out)
    assert sorted(built) == sorted(golden)
    for name in golden:
        assert built[name] == golden[name], f"{name} differs from golden (tools/update-golden.sh)"


def test_builds_are_reproducible_from_any_directory(tmp_path):
    """By name from the root and from a subdirectory, by path from outside the project: one bundle,
    byte for byte (paths in it are relative to the project root)."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    run_recipec("build", "kimik2.5", "-o", str(a), check=True)
    run_recipec("build", "kimik2.5", "-o", str(b), cwd=ROOT / "tests" / "rules", check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_recipec("build", str(ROOT / "recipes" / "kimik2.5.yaml"), "-o", str(c), cwd=elsewhere, check=True)
    for other in (b, c):
        cmp = filecmp.dircmp(a, other)
        assert not cmp.diff_files and not cmp.left_only and not cmp.right_only, other
    text = (a / "launch.sh").read_text()
    assert "recipes/kimik2.5.yaml" in text
    assert str(tmp_path) not in text and str(ROOT) not in text  # no build-machine paths
