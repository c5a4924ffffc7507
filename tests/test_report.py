"""`recipec report`: result directories -> throughput.png, latency.png and report.json (issue 15).

The charts are checked on what they plot (the figures' line data, and report.json), not only on
the files existing; a missing matplotlib is one clear error, exit 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ROOT, run_recipec

PNG = b"\x89PNG\r\n\x1a\n"


def results(folder: Path, scale: float, concurrencies=(1, 2, 4)) -> Path:
    """A result directory as a bundle's sweep leaves it: one JSON a point, a summary, other files."""
    folder.mkdir(parents=True)
    for c in concurrencies:
        (folder / f"r-c{c}-n{4 * c}.json").write_text(json.dumps({
            "point": f"c{c}", "max_concurrency": c, "num_prompts": 4 * c, "completed": 4 * c, "failed": 0,
            "output_throughput": scale * c, "request_throughput": c / 2, "median_ttft_ms": 10.0 * c + scale,
            "p99_ttft_ms": 30.0 * c, "median_tpot_ms": 2.0 * c, "p99_tpot_ms": 5.0 * c}))
    (folder / "summary.csv").write_text("point\n")
    (folder / "other.json").write_text('{"not": "a point"}')
    return folder


def test_report_draws_every_directory_on_each_chart(tmp_path):
    pytest.importorskip("matplotlib")
    a = results(tmp_path / "a" / "run-1", 100.0)
    b = results(tmp_path / "b" / "run-1", 50.0, (1, 2))
    proc = run_recipec("report", str(a), str(b), "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    for name in ("throughput.png", "latency.png"):
        data = (tmp_path / "out" / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [s["label"] for s in report["series"]] == ["a/run-1", "b/run-1"]  # same names: told apart
    assert [p["concurrency"] for p in report["series"][0]["points"]] == [1, 2, 4]
    assert [p["output_throughput"] for p in report["series"][1]["points"]] == [50.0, 100.0]
    assert report["charts"]["latency.png"] == {"title": "Latency vs throughput", "x": "output_throughput",
                                               "y": ["median_ttft_ms", "median_tpot_ms"]}


def test_the_figures_plot_the_results(tmp_path):
    pytest.importorskip("matplotlib")
    from recipec.report import collect, figures

    series = collect([results(tmp_path / "x", 100.0, (4, 1, 2)), results(tmp_path / "y", 10.0, (8,))])
    figs = figures(series)
    lines = figs["throughput.png"].axes[0].lines
    assert [ln.get_label() for ln in lines] == ["x", "y"]
    assert lines[0].get_xydata().tolist() == [[1, 100.0], [2, 200.0], [4, 400.0]]  # sorted by concurrency
    assert lines[1].get_xydata().tolist() == [[8, 80.0]]
    latency = figs["latency.png"].axes[0].lines
    assert [ln.get_label() for ln in latency] == ["x median TTFT", "x median TPOT", "y median TTFT", "y median TPOT"]
    assert latency[0].get_xydata().tolist() == [[100.0, 110.0], [200.0, 120.0], [400.0, 140.0]]
    assert latency[3].get_xydata().tolist() == [[80.0, 16.0]]


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "not a directory"),
    (lambda d: d.mkdir(), "no benchmark results"),
    (lambda d: (d.mkdir(), (d / "p.json").write_text("{broken")), "p.json: not a benchmark result"),
])
def test_a_directory_without_results_is_one_clear_error(tmp_path, setup, message):
    folder = tmp_path / "r"
    setup(folder)
    proc = run_recipec("report", str(folder), "-o", str(tmp_path / "out"))
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_without_matplotlib_report_says_which_extra_and_exits_1(tmp_path):
    folder = results(tmp_path / "r", 1.0)
    code = ("import sys; sys.modules['matplotlib'] = None; sys.argv = ['recipec'] + sys.argv[1:]; "
            "from recipec.cli import main; main()")
    proc = subprocess.run([sys.executable, "-c", code, "report", str(folder), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == ("recipec report needs matplotlib, an optional extra: "
                                   "pip install 'recipec[report]'")
    assert not (tmp_path / "out").exists()
