"""JSON Schema of the recipe and of the changelog, generated from the pydantic models."""

from __future__ import annotations

import json


def schema_files() -> dict[str, str]:
    from .model import Changelog, Recipe

    out = {}
    for name, model, title in (("recipe.schema.json", Recipe, "recipec recipe"),
                               ("changelog.schema.json", Changelog, "perf-changelog.yaml")):
        doc = model.model_json_schema(by_alias=True)
        doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **doc}
        out[name] = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    return out
