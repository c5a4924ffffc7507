"""Quality gates on every generated script: strict mode, shellcheck, bash -n, no forbidden forms."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

SCRIPTS = sorted((ROOT / "golden").rglob("*.sh"))
STRICT_HEAD = "set -euo pipefail\nshopt -s inherit_errexit\n"


def test_there_are_scripts_to_check():
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck_clean_without_disables(script: Path):
    text = script.read_text()
    assert "shellcheck disable" not in text
    proc = subprocess.run(["shellcheck", "--external-sources", "--severity=style", script.name],
                          cwd=script.parent, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("bundle", sorted({s.parent for s in SCRIPTS}), ids=lambda p: str(p.relative_to(ROOT)))
def test_shellcheck_follows_lib_sh_from_any_directory(bundle: Path, tmp_path):
    """`shellcheck -x path/to/bundle/*.sh` from the repository root (or anywhere) finds lib.sh:
    the scripts say `source-path=SCRIPTDIR`, not a path relative to wherever shellcheck runs."""
    scripts = sorted(bundle.glob("*.sh"))
    for cwd, names in ((ROOT, [str(s.relative_to(ROOT)) for s in scripts]), (tmp_path, [str(s) for s in scripts])):
        proc = subprocess.run(["shellcheck", "-x", "--severity=style", *names], cwd=cwd,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_bash_parses(script: Path):
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_strict_mode_first(script: Path):
    lines = script.read_text().splitlines(keepends=True)
    assert lines[0] == "#!/usr/bin/env bash\n"
    code = [ln for ln in lines[1:] if ln.strip() and not ln.lstrip().startswith("#")]
    assert "".join(code[:2]) == STRICT_HEAD, f"{script}: first commands must be {STRICT_HEAD!r}"


FORBIDDEN = {
    "eval": re.compile(r"(^|[;&|({\s])eval(\s|$)"),
    "pkill": re.compile(r"\bpkill\b"),
    "killall": re.compile(r"\bkillall\b"),
    "docker stop": re.compile(r"docker\s+stop"),
    "handler that cannot fire": re.compile(r"&\s*\)\s*\|\|"),
}


def _code(script: Path) -> list[tuple[int, str]]:
    return [(i, ln) for i, ln in enumerate(script.read_text().splitlines(), 1)
            if ln.strip() and not ln.lstrip().startswith("#")]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_forbidden_constructs(script: Path):
    for lineno, line in _code(script):
        for what, pattern in FORBIDDEN.items():
            assert not pattern.search(line), f"{script.name}:{lineno}: {what}: {line.strip()}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_background_start_is_the_guarded_one(script: Path):
    """The only `&` starts are start_service's own, pause's sleep, probe's curl and container.sh's
    runtime_call (each pid kept; the last three close the watchdog's pipe, fd 9)."""
    allowed = {") >\"$logfile\" 2>&1 </dev/null &", "sleep \"$seconds\" 9>&- &",
               "timeout -k 2 \"$seconds\" \"$@\" >\"$out\" 2>&1 </dev/null 9>&- &",
               "curl --silent --fail --output /dev/null --noproxy '*' --max-time \"$PROBE_TIMEOUT_S\" "
               "-- \"$1\" 2>/dev/null 9>&- &"}
    for lineno, line in _code(script):
        stripped = line.strip()
        if re.search(r"(^|[^&])&\s*$", stripped):
            assert stripped in allowed, f"{script.name}:{lineno}: bare background start: {stripped}"


def _statements(script: Path, command: str) -> list[str]:
    """Every call of command, with its continuation lines joined."""
    lines = script.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        if re.match(rf"^\s*{command}\s", line):
            stmt = line
            while stmt.endswith("\\"):
                i += 1
                stmt = stmt[:-1] + " " + lines[i].strip()
            out.append(stmt.strip())
    return out


def test_every_start_and_wait_is_guarded():
    starts = [s for script in SCRIPTS for s in _statements(script, "start_service")]
    assert len(starts) >= 8
    for stmt in starts:
        assert stmt.endswith("|| exit 1"), stmt
    # wait_ready exits by itself (die) on every failure: it is never followed by a handler that
    # could swallow that, nor run in the background.
    waits = [s for script in SCRIPTS for s in _statements(script, "wait_ready")]
    assert len(waits) >= 4
    for stmt in waits:
        assert "||" not in stmt and not stmt.endswith("&"), stmt
