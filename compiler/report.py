"""`recipec report`: benchmark result directories -> charts people read.

Takes one or more result directories a bundle's benchmark wrote (one `vllm bench serve` JSON a
point); gives, in the output directory, throughput.png (output throughput against concurrency) and
latency.png (median TTFT and TPOT against output throughput), one line per result directory so that
runs compare on one chart, and report.json: the data each chart plots, point by point.

matplotlib is an optional extra (`pip install 'recipec[report]'`), imported only here, only when
drawing; a bundle never needs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .errors import ReportError, UsageError

SUMMARY_FILES = ("summary.csv", "summary.md")
# The charts: file -> (title, x key, [(y key, label)], x label, y label).
CHARTS = {
    "throughput.png": ("Output throughput vs concurrency", "concurrency", [("output_throughput", "")],
                       "concurrency", "output tokens/s"),
    "latency.png": ("Latency vs throughput", "output_throughput",
                    [("median_ttft_ms", "median TTFT"), ("median_tpot_ms", "median TPOT")],
                    "output tokens/s", "ms"),
}
FIELDS = ("point", "concurrency", "num_prompts", "completed", "failed", "request_throughput", "output_throughput",
          "median_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "p99_tpot_ms", "median_itl_ms", "p99_itl_ms")


@dataclass(frozen=True)
class Series:
    label: str
    directory: str
    points: tuple  # dicts of FIELDS, by concurrency


def read_results(directory: Path) -> list[dict]:
    """The points of one result directory, by concurrency."""
    if not directory.is_dir():
        raise ReportError(f"{directory}: not a directory")
    points = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ReportError(f"{path}: not a benchmark result ({exc})") from None
        if not isinstance(data, dict) or "max_concurrency" not in data or "output_throughput" not in data:
            continue  # not a point of a sweep (another tool's JSON)
        point = {k: data.get(k) for k in FIELDS}
        point["concurrency"] = data["max_concurrency"]
        point["point"] = data.get("point") or path.stem
        points.append(point)
    if not points:
        raise ReportError(f"{directory}: no benchmark results (*.json of `vllm bench serve --save-result`)")
    return sorted(points, key=lambda p: (p["concurrency"] is None, p["concurrency"] or 0))


def _labels(dirs: list[Path]) -> list[str]:
    """Each directory's name, with its parent's where two names are the same."""
    names = [d.resolve().name for d in dirs]
    return [f"{d.resolve().parent.name}/{n}" if names.count(n) > 1 else n for d, n in zip(dirs, names)]


def collect(dirs: list[Path]) -> list[Series]:
    return [Series(label, str(d), tuple(read_results(d))) for d, label in zip(dirs, _labels(dirs))]


def figures(series: list[Series]) -> dict:
    """{chart file: matplotlib Figure}, every series a line on each."""
    try:
        import matplotlib
    except ImportError:
        raise ReportError("recipec report needs matplotlib, an optional extra: pip install 'recipec[report]'") \
            from None
    matplotlib.use("Agg")  # files only; no display
    from matplotlib.figure import Figure

    out = {}
    for name, (title, x_key, ys, x_label, y_label) in CHARTS.items():
        fig = Figure(figsize=(7, 4.5), dpi=100)
        ax = fig.add_subplot()
        for s in series:
            for y_key, what in ys:
                pts = [p for p in s.points if p.get(x_key) is not None and p.get(y_key) is not None]
                label = f"{s.label} {what}".strip()
                ax.plot([p[x_key] for p in pts], [p[y_key] for p in pts], marker="o", label=label)
                if x_key == "concurrency":
                    for p in pts:
                        ax.annotate(p["point"], (p[x_key], p[y_key]), textcoords="offset points", xytext=(4, 4),
                                    fontsize=7)
        ax.set_title(title)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out[name] = fig
    return out


def write_report(dirs: list[Path], out: Path) -> list[Path]:
    """Draw the charts of dirs into out (created); returns the files written."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: -o must be a directory")
    series = collect(dirs)
    figs = figures(series)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in figs.items():
        fig.savefig(out / name)
        written.append(out / name)
    data = {"charts": {name: {"title": c[0], "x": c[1], "y": [y for y, _ in c[2]]} for name, c in CHARTS.items()},
            "series": [{"label": s.label, "directory": s.directory, "points": list(s.points)} for s in series]}
    (out / "report.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    written.append(out / "report.json")
    return written
