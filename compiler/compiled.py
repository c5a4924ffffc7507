"""The validators every run uses, compiled from the pydantic models in model.py.

model.py's models are the source of truth; pydantic turns each into a core schema, and its Rust
engine (pydantic-core) validates against that. The core schema is data but for three kinds of
reference: the model classes it instantiates, default factories, and model-validator functions.
This module writes it out as JSON with those references named, caches the JSON per user
(compiler/cache.py), and builds the same pydantic-core SchemaValidator from it on later runs. The
validation and its errors are pydantic-core's, as before; what a run no longer pays is importing
pydantic's Python layer and building the schema (~90 ms, half a build; docs/performance.md).

Validated objects are Records: one small frozen class per model, with the model's field names as
attributes (all that plan and the rules read), in place of the BaseModel subclasses.

The cache key is the bytes of model.py, constraints.py, placement/__init__.py (the targets) and
this file, the pydantic and pydantic-core versions and Python's: a change to any of them compiles
again. A damaged entry is compiled again too; RECIPEC_NO_CACHE=1 compiles every run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
from typing import Any

ROOTS = {"recipe": "Recipe", "changelog": "Changelog"}
_SOURCES = ("model.py", "constraints.py", "compiled.py", "placement/__init__.py")  # the last: model's Target
# Modules whose functions a compiled schema may name: the constraints, and default factories.
_CALLABLE_MODULES = (f"{__package__}.constraints", "builtins")


class Record:
    """A validated model's value: attributes as the model's fields, frozen like the models."""

    __slots__ = ("__dict__", "__pydantic_extra__", "__pydantic_fields_set__", "__pydantic_private__")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set '{name}'")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete '{name}'")

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


@functools.lru_cache(maxsize=None)
def record_class(name: str) -> type:
    return type(name, (Record,), {"__slots__": ()})


def validator(name: str):
    """The pydantic-core SchemaValidator of ROOTS[name] ("recipe" or "changelog")."""
    return _compiled(name)[1]


def known_keys(name: str, keypath: tuple) -> list[str]:
    """The keys (aliases) the model at keypath accepts, for a did-you-mean; [] where no model is."""
    schema = _compiled(name)[0]
    defs = {d["ref"]: d for d in schema.get("definitions", ())}
    node = schema
    for part in keypath:
        if isinstance(part, int):
            node = _unwrap(node, defs, "list")
            node = node.get("items_schema") if node else None
        else:
            fields = _unwrap(node, defs, "model-fields")
            field = next((f for n, f in (fields or {}).get("fields", {}).items()
                          if (f.get("validation_alias") or n) == part), None)
            node = field["schema"] if field else None
        if node is None:
            return []
    fields = _unwrap(node, defs, "model-fields")
    return [f.get("validation_alias") or n for n, f in fields["fields"].items()] if fields else []


def _unwrap(node: dict, defs: dict, kind: str) -> dict | None:
    """Follow wrappers (definitions, references, defaults, nullable, validators, models) to `kind`."""
    while node is not None and node.get("type") != kind:
        t = node.get("type")
        if t == "definition-ref":
            node = defs.get(node["schema_ref"])
        elif t in ("definitions", "default", "nullable", "model", "function-after", "function-before"):
            node = node["schema"]
        else:
            return None
    return node


@functools.lru_cache(maxsize=None)
def _compiled(name: str) -> tuple[dict, Any]:
    from pydantic_core import SchemaError, SchemaValidator

    from .cache import cache_dir

    folder = cache_dir("validators")
    try:
        path = os.path.join(folder, f"{name}-{_key(name)}.json") if folder else None
    except OSError:  # the sources are not there to key on (a sourceless install): no cache
        path = None
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                schema = json.load(f, object_hook=_resolve)
            return schema, SchemaValidator(schema)
        except (OSError, ValueError, TypeError, KeyError, ImportError, AttributeError, SchemaError):
            pass  # not there yet, or damaged (a torn write, an edit): compile it
    text = json.dumps(compile_schema(name))  # key order kept: fields validate and report in order
    if path is not None:
        _store(folder, path, name, text)
    schema = json.loads(text, object_hook=_resolve)
    return schema, SchemaValidator(schema)


def _key(name: str) -> str:
    import importlib.util

    import pydantic_core

    digest = hashlib.sha256(f"{name}|{pydantic_core.__version__}|{sys.version_info[:2]}".encode())
    # pydantic's own version by the bytes of its version.py, found without importing pydantic (its
    # package import costs ~14 ms, which a warm run never otherwise pays).
    spec = importlib.util.find_spec("pydantic")
    if spec is not None and spec.origin:
        with open(os.path.join(os.path.dirname(spec.origin), "version.py"), "rb") as f:
            digest.update(f.read())
    here = os.path.dirname(os.path.abspath(__file__))
    for source in _SOURCES:
        with open(os.path.join(here, source), "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()[:32]


def _store(folder: str, path: str, name: str, text: str) -> None:
    """Write atomically (a concurrent run reads the old entry or the new, never half), and drop this
    name's entries of other keys (older models or pydantic versions)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        for entry in os.listdir(folder):
            if entry.startswith(f"{name}-") and entry.endswith(".json") and entry != os.path.basename(path):
                os.unlink(os.path.join(folder, entry))
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _resolve(obj: dict) -> Any:
    """json object_hook: the named references of compile_schema back to classes and functions."""
    if len(obj) == 1:
        if "$record" in obj:
            return record_class(obj["$record"])
        if "$py" in obj:
            module, _, attr = obj["$py"].partition(":")
            if module not in _CALLABLE_MODULES:
                raise ImportError(f"a compiled schema may not name {obj['$py']}")
            import importlib

            return getattr(importlib.import_module(module), attr)
    return obj


def compile_schema(name: str) -> dict:
    """ROOTS[name]'s core schema as JSON-ready data, references named (imports pydantic: slow)."""
    import pydantic

    from . import model

    root = getattr(model, ROOTS[name])
    root.model_rebuild()
    return _data(root.__pydantic_core_schema__, (ROOTS[name],), pydantic.BaseModel)


def _data(node: Any, path: tuple, base_model: type) -> Any:
    if isinstance(node, dict):
        if node.get("type") == "model" and node.get("root_model"):
            # A RootModel validates as its root: a changelog is the list of its entries.
            return _data(node["schema"], path, base_model)
        if node.get("type") == "model" and (node.get("custom_init") or node.get("post_init")):
            raise TypeError(f"{'.'.join(path)}: a model with its own __init__ or post-init cannot be compiled")
        out = {}
        for key, value in node.items():
            if key in ("metadata", "serialization"):
                continue  # JSON-Schema hooks and serializers: validation never reads them
            if key == "cls":
                out[key] = {"$record": value.__name__}
            elif key in ("ref", "schema_ref"):
                # pydantic's refs end in the class's id(): drop it, so the same models give the
                # same bytes in every process.
                out[key] = re.sub(r":\d+$", "", value)
            elif key == "default" and isinstance(value, base_model):
                # A model instance as default: its data, validated into a Record when used.
                out[key] = value.model_dump(by_alias=True)
                out["validate_default"] = True
            else:
                out[key] = _data(value, (*path, str(key)), base_model)
        return out
    if isinstance(node, (list, tuple)):
        return [_data(v, (*path, str(i)), base_model) for i, v in enumerate(node)]
    if node is None or isinstance(node, (str, int, float, bool)):
        return node
    if callable(node) and getattr(node, "__module__", None) in _CALLABLE_MODULES:
        ref = f"{node.__module__}:{node.__qualname__}"
        if node.__module__ == "builtins" and node not in (dict, list):
            raise TypeError(f"{'.'.join(path)}: {ref} is not a default factory recipec compiles")
        return {"$py": ref}
    raise TypeError(f"{'.'.join(path)}: {node!r} cannot be compiled: keep models to data, and "
                    "cross-field checks in compiler/constraints.py")
