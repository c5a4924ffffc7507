"""Lint keeps what it works out once per distinct input (an argv's reading, an engine's flag words,
a node's start order) for the variants that repeat it: a variant whose input differs gets its own
answer. One lint process over a matrix whose values differ only in type (true, 1, 1.0), and in one
flag's value, must report exactly the variants that are wrong, at their own matrix values."""

from __future__ import annotations

import shutil

from conftest import ROOT, run_recipec

SWEEP = """\
extends: kimik2.5
name: kimik2.5-sweep
config-key: kimik2.5-fp4-mi355x-sweep
variants:
  - matrix:
      engine.args.enable-prefix-caching: [true, 1, 1.0, false]
      engine.args.max-num-seqs: [64, x64]
"""


def test_variants_equal_as_keys_but_not_as_words_get_their_own_findings(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.recipec]\n")
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    (tmp_path / "recipes").mkdir()
    shutil.copy(ROOT / "recipes" / "kimik2.5.yaml", tmp_path / "recipes")
    (tmp_path / "recipes" / "kimik2.5-sweep.yaml").write_text(SWEEP)
    proc = run_recipec("lint", "--only", "recipes", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    switch = ("RC802 prefill-0, decode-0: --enable-prefix-caching is a switch and takes no value, but '1' "
              "follows it (write true or false for a switch: true gives the flag alone, false its --no- form)")
    seqs = ("RC804 prefill-0, decode-0: --max-num-seqs: 'x64' is not a whole number (use one of the values "
            "the pinned version accepts)")
    at = "recipes/kimik2.5-sweep.yaml"
    # 1 and 1.0 (each with both max-num-seqs) write `--enable-prefix-caching 1`; true and false write
    # the switch alone and its --no- form, though true == 1 == 1.0 as keys. x64: four variants.
    assert proc.stdout.splitlines() == ([f"{at}:6:49: {switch}"] * 2 + [f"{at}:6:52: {switch}"] * 2
                                        + [f"{at}:7:38: {seqs}"] * 4), proc.stdout
