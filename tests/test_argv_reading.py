"""catalog/argv.py keeps each flag's reading (a flag and its values, per catalog): a reading must
be the same whether it was kept or not, and a value that fills a free positional must be read in
its place every time (which positionals are still free depends on what came before it)."""

from __future__ import annotations

import pytest

from recipec.catalog import argv
from recipec.catalog.argv import catalog_for, read_argv

ARGVS = [
    ["--enforce-eager", "x", "--enforce-eager", "y", "--port", "8000", "--port", "abc"],
    ["stray", "--enforce-eager", "x"],  # the stray takes the positional first: x does not get it
    ["--port=8000", "loose", "--max-num-seqs", "1", "2", "--tensor-parallel-size"],
    ["--kv-transfer-config.kv_role", "kv_producer", "--kv-transfer-config.nope", "1", "--no-enforce-eager"],
    ["--max-num-seq", "4", "--gpu-memory-utilizaton", "0.9", "--kv-cache-dtype", "fp9"],
]


def _read(words: list, positionals_used: int = 0) -> list:
    catalog, _, _ = catalog_for("vllm", "0.33.0")
    return [(p, v) for p, v in read_argv(list(words), catalog, positionals_used)]


@pytest.mark.parametrize("words", ARGVS)
@pytest.mark.parametrize("positionals_used", [0, 1])
def test_a_kept_reading_is_the_reading(words, positionals_used, monkeypatch):
    monkeypatch.setattr(argv, "_FLAG_READINGS", {})
    first = _read(words, positionals_used)
    again = _read(words, positionals_used)  # from the kept flags
    monkeypatch.setattr(argv, "_FLAG_READINGS", {})
    fresh = _read(words, positionals_used)
    assert first == again == fresh
    assert first  # every argv above has something wrong


def test_a_stray_is_read_in_its_place_every_time(monkeypatch):
    monkeypatch.setattr(argv, "_FLAG_READINGS", {})
    for _ in range(2):
        found = [p for p, _ in _read(["--enforce-eager", "x", "--enforce-eager", "x"])]
        assert [p.parser_accepts for p in found] == [True, False], found
        assert "positional model_tag" in found[0].message and "positional" not in found[1].message
    # after a stray took the positional, the same flag and value no longer get it
    found = [p for p, _ in _read(["loose", "--enforce-eager", "x"])]
    assert [p.parser_accepts for p in found] == [True, False], found
