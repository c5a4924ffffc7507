"""`^...$` also matches before a trailing newline: the patterns that accept a whole value must end
in \\Z (the same slip let a word out unquoted in render.py; tests/test_security.py pins that one)."""

from __future__ import annotations

from pathlib import Path

from conftest import run_recipec


def test_a_recipe_name_with_a_trailing_newline_is_not_a_name(tmp_path: Path):
    proc = run_recipec("build", "kimik2.5\n", "-o", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stderr
    assert "is not a recipe name" in proc.stderr
    assert not (tmp_path / "out").exists()
