"""Every fault scenario (scenarios.py) against a real generated local bundle with stand-in engines.

Each asserts the exit status, a message naming the service, the service's log tail, the time from
the fault to the launcher's exit, and that no process of the bundle survives (grandchildren too).
"""

from __future__ import annotations

import re

import pytest

from scenarios import SCENARIOS, play

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_fault(scenario, tmp_path):
    out = play(scenario, tmp_path)
    run = out.run
    context = f"{scenario.name}: {scenario.summary}\n{run.stderr}"
    if scenario.status is None:
        assert run.returncode != 0, context
    else:
        assert run.returncode == scenario.status, context
    assert re.search(out.message, run.stderr), f"no {out.message!r} in:\n{context}"
    if scenario.tail is not None:  # the service's own words, printed as its log tail
        assert re.search(r"last \d+ lines of \S+\.log:", run.stderr), context
        assert "    | " in run.stderr and scenario.tail in run.stderr, context
    assert scenario.min_s <= out.detect_s <= scenario.bound_s, (
        f"{scenario.name}: fault -> exit took {out.detect_s:.2f}s, expected "
        f"{scenario.min_s}..{scenario.bound_s}s\n{context}")
    if scenario.nothing_started:
        assert "started " not in run.stderr, context
    assert run.marks.get("errors") is None, run.marks
    scenario.check(run, out.setup)
    assert run.leftovers == [], f"processes left behind: {run.leftovers}\n{context}"
    assert not list((out.setup.bundle / "logs").glob("*.pid")), "PID files left behind"
