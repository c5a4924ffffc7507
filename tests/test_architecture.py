"""The shape of compiler/: no import circles, one plan per target, no target names outside the
placements, no Record outside validation."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "compiler"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """compiler/ modules one module imports anywhere: at top level, inside functions, under
    TYPE_CHECKING (a type-only import is an edge too: the two still cannot be read apart)."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("recipec"):
                target = node.module.removeprefix("recipec").lstrip(".")
            else:
                continue
            for alias in node.names:  # `from . import flags` imports a module, not a name
                sub = f"{target}.{alias.name}" if target else alias.name
                out.add(sub if sub in modules else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("recipec."):
                    out.add(alias.name.removeprefix("recipec."))
    return {m for m in out if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {_module(p) for p in files}
    return {_module(p): _imports(p, modules) for p in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_function_level_and_type_only_imports():
    graph = import_graph()
    assert "plan" in graph["pipeline"]  # imported inside plan_all()
    assert "model" in graph["validate"]  # imported under TYPE_CHECKING
    assert "rules.flags" in graph["rules"]  # `from . import flags` inside a function


def test_no_import_cycles_in_compiler():
    assert cycles(import_graph()) == []


def test_no_rule_plans():
    """Rules read the Plans pipeline.check made; none imports the plan stage to make its own."""
    graph = import_graph()
    planners = {m for m, imports in graph.items() if m.startswith("rules") and "plan" in imports}
    assert not planners


def test_no_target_name_outside_the_placements():
    """Where a target changes how a service is placed or started, its placement says so: no
    "local"/"slurm" literal in the stages (the CLI and model take their list from the registry)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.parent.name == "placement":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in ("local", "slurm"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def test_nothing_outside_validation_knows_about_records():
    """Validated values are compiled.py's Records for speed; other modules type them with
    validate's names and never import compiled or model, nor guard an import with TYPE_CHECKING
    for it."""
    allowed = {"compiled", "validate", "model", "schema", "constraints"}
    graph = import_graph()
    for module, imports in graph.items():
        if module not in allowed:
            assert not imports & {"compiled", "model"}, (module, imports & {"compiled", "model"})
    for path in sorted(PACKAGE.rglob("*.py")):
        if _module(path) not in allowed:
            assert "Record" not in path.read_text(), path


def test_no_template_branches_on_a_target_name():
    """Templates ask the plan what differs (plan.one_machine, plan.sbatch, the placement's own
    files), never which target it is: a new placement must not need an edit in every template."""
    templates = ROOT / "compiler" / "templates"
    found = [f"{path.relative_to(templates)}:{n}" for path in sorted(templates.rglob("*.j2"))
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"""target\s*[!=]=\s*['"]""", line)]
    assert found == []
