"""The compiled validators (compiler/compiled.py) against the pydantic models they come from.

Every run validates with a pydantic-core SchemaValidator built from a cached JSON form of the
models' core schema. These tests hold it to the models: on every recipe and fixture in the
repository, and on hundreds of mutations of them, both give the same values or the same errors.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest
import yaml

from recipec import compiled
from recipec.errors import RecipecError
from recipec.load import load_file
from recipec.model import Changelog, Recipe
from conftest import ROOT
from harness import resolved_data

RECIPE_FILES = sorted([*(ROOT / "recipes").glob("*.yaml"), *(ROOT / "tests" / "rules").glob("*/*.yaml"),
                       *(ROOT / "tests" / "corpus").glob("*.yaml")])


def _yaml(path: Path):
    try:
        return resolved_data(path)  # extends merged: what validation sees
    except RecipecError:
        return None  # the loader's business (test_corpus), not the validator's


def as_data(value):
    """Records as plain dicts, recursively: what BaseModel.model_dump() gives for the models."""
    if isinstance(value, compiled.Record):
        return {k: as_data(v) for k, v in value.__dict__.items()}
    if isinstance(value, list):
        return [as_data(v) for v in value]
    if isinstance(value, dict):
        return {k: as_data(v) for k, v in value.items()}
    return value


# Values a YAML file can hold that the models refuse somewhere: text over two lines (one-line
# fields), a date and a !!binary (where JSON is expected), a JSON mapping holding a date.
_HOSTILE = ("a\nb", "a\u2028b", datetime.date(2001, 1, 1), b"hi", {"k": [datetime.date(2001, 1, 1)]})


def _parent(data, path: tuple):
    for key in path[:-1]:
        data = data[key]
    return data


def _mutations(data: dict):
    """Each leaf replaced by values of the wrong type or range, and each key dropped, one at a time;
    plus an unknown key next to each known one."""
    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                yield (*path, key)
                yield from walk(value, (*path, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield (*path, i)
                yield from walk(value, (*path, i))
    for path in list(walk(data, ())):
        for replacement in (None, -1, 0, 70000, "x", "", [1], {"a": 1}, True, 1.5, *_HOSTILE):
            mutated = copy.deepcopy(data)
            _parent(mutated, path)[path[-1]] = replacement
            yield f"{path}={replacement!r}", mutated
        mutated = copy.deepcopy(data)
        parent = _parent(mutated, path)
        if isinstance(parent, dict):
            del parent[path[-1]]
            yield f"del {path}", mutated
            parent[f"{path[-1]}x"] = 1
            yield f"unknown next to {path}", mutated


def _outcome(validate, data):
    try:
        return "ok", validate(data)
    except pydantic.ValidationError as exc:  # pydantic's is pydantic-core's, re-exported
        errors = exc.errors(include_url=False)
        for err in errors:  # a value error's ctx holds the exception itself: compare its words
            if "error" in err.get("ctx", {}):
                err["ctx"]["error"] = repr(err["ctx"]["error"])
        return "errors", errors


def _same(model, name: str, data) -> None:
    kind, value = _outcome(model.model_validate, data)
    got_kind, got = _outcome(compiled.validator(name).validate_python, data)
    assert got_kind == kind
    if kind == "ok":
        expected = value.model_dump() if name == "recipe" else [e.model_dump() for e in value.root]
        assert as_data(got) == expected
    else:
        assert got == value


@pytest.mark.parametrize("path", RECIPE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_recipe_and_fixture_validates_as_the_model_does(path):
    data = _yaml(path)
    _same(Recipe, "recipe", data)


@pytest.mark.parametrize("recipe", ["kimik2.5", "tiny-cpu"])
def test_mutations_validate_as_the_model_does(recipe):
    data = resolved_data(ROOT / "recipes" / f"{recipe}.yaml")
    count = 0
    for label, mutated in _mutations(data):
        try:
            _same(Recipe, "recipe", mutated)
        except AssertionError as exc:
            raise AssertionError(f"{recipe}: {label}") from exc
        count += 1
    assert count > 900  # the walk reached every leaf: ~90 keys and list items, 10+ variants each


def test_changelogs_validate_as_the_model_does():
    sys.path.insert(0, str(ROOT / "bench"))
    from corpus import changelog

    entries = yaml.safe_load(changelog(300)) + yaml.safe_load((ROOT / "perf-changelog.yaml").read_text())
    _same(Changelog, "changelog", entries)
    count = 0
    for label, mutated in _mutations({"log": entries[:3]}):
        _same(Changelog, "changelog", mutated["log"] if "log" in mutated else mutated)
        count += 1
    assert count > 100
    # The cross-field rule (compiler/constraints.py) runs in both.
    combined = dict(entries[0], **{"append-only": True, "evals-only": True})
    _same(Changelog, "changelog", [combined])
    assert _outcome(compiled.validator("changelog").validate_python, [combined])[0] == "errors"


def test_records_are_frozen_and_compare_by_value():
    data = yaml.safe_load((ROOT / "tests" / "data" / "kimik2.5-flat.yaml").read_text())
    first = compiled.validator("recipe").validate_python(data)
    second = compiled.validator("recipe").validate_python(copy.deepcopy(data))
    assert first == second and first is not second
    assert type(first).__name__ == "Recipe" and repr(first).startswith("Recipe(name='kimik2.5'")
    with pytest.raises(AttributeError, match="frozen"):
        first.name = "other"
    with pytest.raises(AttributeError, match="frozen"):
        del first.prefill.port
    assert first.router.port == 8000  # a model default (RouterSpec()) comes back as a Record too
    assert type(first.router).__name__ == "RouterSpec"


def test_known_keys_follow_the_models():
    assert compiled.known_keys("recipe", ()) == [f.alias for f in Recipe.model_fields.values()]
    role = compiled.known_keys("recipe", ("prefill",))
    assert "tensor-parallel-size" in role and "kv-transfer" in role
    child = compiled.known_keys("recipe", ("prefill", "kv-transfer", "connectors", 0))
    assert child == compiled.known_keys("recipe", ("decode", "kv-transfer"))
    assert "extra-config" in child
    assert compiled.known_keys("recipe", ("engine", "args")) == []  # free-form: no keys to suggest
    assert compiled.known_keys("changelog", (0,))[:2] == ["config-keys", "description"]


def test_a_model_that_cannot_be_compiled_is_refused_by_name():
    class Odd(pydantic.BaseModel):
        value: int

        @pydantic.field_validator("value")
        @classmethod
        def _even(cls, v):
            return v

    with pytest.raises(TypeError, match="cannot be compiled"):
        compiled._data(Odd.__pydantic_core_schema__, ("Odd",), pydantic.BaseModel)


# The cache, in fresh processes with their own cache directory.

PROBE = """
import json, sys
sys.argv = ["recipec", "build", "kimik2.5", "-o", sys.argv[1]]
from recipec.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "pydantic.main": "pydantic.main" in sys.modules,
                  "recipec.model": "recipec.model" in sys.modules}))
"""


def _probe(tmp_path: Path, cache: Path, out: str, **env) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / out)], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "XDG_CACHE_HOME": str(cache), **env})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def _entry(cache: Path) -> Path:
    entries = sorted((cache / "recipec" / "validators").glob("recipe-*.json"))
    assert len(entries) == 1, entries
    return entries[0]


def test_a_warm_cache_skips_pydantic_and_builds_the_same_bundle(tmp_path):
    cache = tmp_path / "cache"
    cold = _probe(tmp_path, cache, "cold")
    assert cold == {"code": 0, "pydantic.main": True, "recipec.model": True}
    warm = _probe(tmp_path, cache, "warm")
    assert warm == {"code": 0, "pydantic.main": False, "recipec.model": False}
    for name in ("launch.sh", "node.sh", "lib.sh"):
        assert (tmp_path / "cold" / name).read_bytes() == (tmp_path / "warm" / name).read_bytes()
    assert (tmp_path / "warm" / "launch.sh").read_bytes() == (ROOT / "golden/kimik2.5/slurm/launch.sh").read_bytes()


@pytest.mark.parametrize("damage", ["torn", "not-a-schema", "names-a-foreign-function"])
def test_a_damaged_cache_entry_is_compiled_again(tmp_path, damage):
    cache = tmp_path / "cache"
    _probe(tmp_path, cache, "first")
    entry = _entry(cache)
    text = entry.read_text()
    entry.write_text({"torn": text[: len(text) // 2],
                      "not-a-schema": json.dumps({"type": "no-such-type"}),
                      # What a tampered entry could try: it must be refused, never imported.
                      "names-a-foreign-function": text.replace('"builtins:dict"', '"os:system"')}[damage])
    again = _probe(tmp_path, cache, "again")
    assert again["code"] == 0 and again["pydantic.main"]  # compiled from the models
    assert _entry(cache).read_text() == text  # and the entry repaired
    assert _probe(tmp_path, cache, "third")["pydantic.main"] is False


def test_no_cache_means_no_cache_directory(tmp_path):
    cache = tmp_path / "cache"
    result = _probe(tmp_path, cache, "out", RECIPEC_NO_CACHE="1")
    assert result["code"] == 0 and result["pydantic.main"]
    assert not cache.exists()
