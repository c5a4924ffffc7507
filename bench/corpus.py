"""The generated inputs bench/run.py lints: recipe variations and an InferenceX-format changelog.

recipe(i) is kimik2.5 (its flat form) with a distinct name and config key, varied ports, TP and LMCache
sizes; changelog(n) is about n lines of entries in InferenceX's perf-changelog.yaml format (globs,
multi-line descriptions, optional flags). tests/test_compiled.py validates the changelog too.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# kimik2.5 written out flat (tests/data; test_profiles holds it equal to the composed recipe): 1,000
# self-contained recipes, as before profiles, so the figures stay comparable.
BASE = (ROOT / "tests" / "data" / "kimik2.5-flat.yaml").read_text()
REPO = "SemiAnalysisAI/InferenceX"


def recipe(i: int) -> str:
    text = BASE.replace("name: kimik2.5\n", f"name: bench-{i:04d}\n", 1)
    text = text.replace("config-key: kimik2.5-fp4-mi355x-vllm-disagg-agentic",
                        f"config-key: bench-{i:04d}-fp4-mi355x-vllm-disagg", 1)
    text = text.replace("  port: 8100\n", f"  port: {8100 + i % 50}\n", 1)
    text = text.replace("  l1-size-gb: 1200\n", f"  l1-size-gb: {1000 + i % 400}\n", 1)
    if i % 3 == 1:
        text = text.replace("  workers-per-node: 1\n  tensor-parallel-size: 8\n  port: 82",
                            "  workers-per-node: 2\n  tensor-parallel-size: 4\n  port: 82", 1)
    return text.replace("job-name: kimik2.5-1p1d", f"job-name: bench-{i:04d}", 1)


def changelog(lines: int) -> str:
    """InferenceX-style entries (globs, multi-line descriptions, optional flags) up to `lines`."""
    out: list[str] = []
    n = 0
    while len(out) < lines:
        n += 1
        out += ["- config-keys:", f"    - bench-{n % 1000:04d}-fp4-mi355x-vllm-disagg"]
        if n % 4 == 0:
            out.append("    - bench-0*")
        out.append("  description:")
        out += [f'    - "Change {n}, part {k}: raise max-num-seqs and re-tune the LMCache L1 size"'
                for k in range(1 + n % 3)]
        out.append(f"  pr-link: https://github.com/{REPO}/pull/{n}")
        if n % 10 == 0:
            out += ["  scenario-type:", "    - agentic-coding"]
        if n % 25 == 0:
            out.append("  evals-only: true")
        out.append("")
    return "\n".join(out) + "\n"
