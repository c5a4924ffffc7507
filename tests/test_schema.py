"""The checked-in JSON Schemas validate what ships (with the jsonschema library, as an editor would),
and every recipe names its schema in a yaml-language-server modeline."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from conftest import ROOT
from harness import resolved_data

RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
PASSING_FIXTURES = sorted((ROOT / "tests" / "rules").glob("*/pass*.yaml"))


def validator(name: str):
    schema = json.loads((ROOT / "schema" / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", RECIPES + PASSING_FIXTURES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_recipes_validate_against_the_schema(path):
    errors = list(validator("recipe.schema.json").iter_errors(resolved_data(path)))
    assert errors == [], [e.message for e in errors]


def test_the_schema_rejects_what_the_model_rejects():
    data = resolved_data(RECIPES[0])
    data["prefill"]["worker-per-node"] = 1
    data["decode"]["tensor-parallel-size"] = "eight"
    messages = sorted(e.message for e in validator("recipe.schema.json").iter_errors(data))
    assert any("'worker-per-node' was unexpected" in m for m in messages), messages
    assert any("'eight' is not of type 'integer'" in m for m in messages), messages


def test_changelog_validates_against_its_schema():
    v = validator("changelog.schema.json")
    data = yaml.safe_load((ROOT / "perf-changelog.yaml").read_text())
    assert list(v.iter_errors(data)) == []
    data[0]["pr_link"] = data[0].pop("pr-link")
    assert [e.validator for e in v.iter_errors(data)] in (["required", "additionalProperties"],
                                                          ["additionalProperties", "required"])


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipes_start_with_the_schema_modeline(path):
    first = path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schema/recipe.schema.json"
    assert (path.parent / "../schema/recipe.schema.json").resolve().is_file()


@pytest.mark.parametrize("path", PASSING_FIXTURES[:1] + sorted((ROOT / "tests" / "rules").glob("*/fail*.yaml"))[:1])
def test_rule_fixtures_carry_the_modeline_too(path):
    first = path.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../../schema/recipe.schema.json"
    assert (path.parent / "../../../schema/recipe.schema.json").resolve().is_file()
