#!/usr/bin/env python3
"""recipec's cost against Python's own floor, side by side, in one table.

    python bench/run.py [--runs 7] [--profile] [--against OTHER_CHECKOUT_DIR] [--instructions]

Every figure is the median of --runs fresh processes (as a user or CI runs recipec), measured in this
one run, the rows taken round-robin (run k of every row under the same load): CPU time (user +
system) of the process, its wall time, and its peak memory (max RSS), each taken from os.wait4 for
exactly that process. CPU time is the headline: on a busy machine wall time measures the neighbours
too. Rows:

  floor         python -c "import yaml, pydantic, jinja2, click"
  floor, no teardown   the same, ending in os._exit(0): recipec ends that way (compiler/cli.py
                run()), so this row is the like-for-like comparison; the ratios to it are printed
                under the table
  build         recipec build kimik2.5 (new process; the per-user caches of compiled templates and
                validators warm, as after the first run, and cold, as on the first run)
  lint repo     recipec lint in this repository (recipes + perf-changelog.yaml)
  lint N        recipec lint of N generated recipes (N = 10, 100, 1000; bench/corpus.py)
  variants      recipec lint of kimik2.5 on profiles and a 4 x 4 x 4 matrix of its variants (66 recipes),
                and of kimik2.5 alone in the same project (the marginal cost of a variant)
  changelog     recipec lint of a 6,000-line InferenceX-format changelog

--against adds the build and lint rows of another checkout (e.g. a `git worktree` of the commit
before), run from its own folder as `python -m compiler.cli` with this interpreter and libraries,
taken in the same round-robin: "within 10% of the commit before"
is then read off one table, under one load, instead of two runs minutes apart.

--instructions adds, for the floor, build, lint-repository, lint start-up and variants rows (and
--against's), the number of instructions each executes under valgrind's callgrind (one run each,
~40 s apiece): the same count whatever else the machine is doing, so a 5% change is visible on a
machine too busy to time. The variants rows also give instructions per variant.

--profile adds `python -X importtime` of a build (the 15 costliest imports) and the in-process time
of each stage. Measures; asserts nothing. Targets (issues): build <= 1.3x floor, lint repo <= 1.5x
floor, per-recipe lint cost <= 2 ms, linear growth, per-variant lint cost <= 2 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import REPO, changelog, recipe  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def run_once(argv: list[str], cwd: Path, env: dict | None) -> tuple[float, float, float]:
    """CPU seconds (user + system), wall seconds and peak MiB of one fresh process, from os.wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[:6])} ... failed ({os.waitstatus_to_exitcode(status)}):\n{err[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024


def measure(cases: list[tuple], runs: int) -> list[tuple[str, dict]]:
    """Each case (name, argv, cwd, env, runs or None) run `runs` times, round-robin: run k of every
    case is taken under the same load, so a busy minute moves the floor and the rows together
    instead of skewing their ratio. Medians of CPU and wall time, the largest peak memory."""
    samples: dict[str, list] = {case[0]: [] for case in cases}
    for k in range(max(case[4] or runs for case in cases)):
        for name, argv, cwd, env, own_runs in cases:
            if k < (own_runs or runs):
                samples[name].append(run_once(argv, cwd, env))
    return [(name, {"cpu": statistics.median(c for c, _, _ in samples[name]),
                    "wall": statistics.median(w for _, w, _ in samples[name]),
                    "rss": max(r for _, _, r in samples[name])}) for name, *_ in cases]


def recipec(*args: str) -> list[str]:
    return [PY, "-m", "recipec.cli", *args]


def other_checkout(folder: str) -> tuple[list[str], Path]:
    """(argv prefix, root) of another checkout: its compiler/ folder imported from its own root (the
    source folder is `compiler` in every layout recipec had; an installed recipec is never used)."""
    root = Path(folder).resolve()
    if not (root / "compiler" / "cli.py").is_file():
        raise SystemExit(f"--against {folder}: no compiler/cli.py there")
    return [PY, "-m", "compiler.cli"], root


def instructions(argv: list[str], cwd: Path, env: dict | None = None) -> int:
    """Instructions one process executes (valgrind --tool=callgrind; load-independent)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv], cwd=cwd,
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])} ... failed under valgrind:\n{proc.stderr[-2000:]}")
    for line in proc.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[-1].strip())
    raise SystemExit("valgrind printed no instruction count")


def profile(work: Path) -> None:
    proc = subprocess.run([PY, "-X", "importtime", "-m", "recipec.cli", "build", "kimik2.5", "-o",
                           str(work / "p")], cwd=ROOT, capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        parts = line.replace("import time:", "").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            rows.append((int(parts[1]), int(parts[0]), parts[2].rstrip()))
    print("\nimport time of a build (cumulative ms, self ms, module), top 15:")
    for cum, own, name in sorted(rows, reverse=True)[:15]:
        print(f"  {cum / 1000:7.1f} {own / 1000:7.1f}  {name}")
    code = (
        "import time; t=[time.process_time()]\n"
        "import yaml, pydantic, jinja2, click; t.append(time.process_time())\n"
        "from pathlib import Path; from recipec import cli; from recipec.load import load_file\n"
        "from recipec.plan import build_plan; from recipec.render import render_bundle\n"
        "from recipec.write import write_bundle; t.append(time.process_time())\n"
        "d = load_file(Path('recipes/kimik2.5.yaml')); t.append(time.process_time())\n"
        "from recipec.validate import validate_recipe; r = validate_recipe(d); t.append(time.process_time())\n"
        "from recipec.rules import check_recipe; from recipec.config import project_config\n"
        "c = check_recipe(r, d, project_config(Path('recipes'))); t.append(time.process_time())\n"
        "p = build_plan(r, 'slurm', recipe_path='x', recipe_sha256='y'); t.append(time.process_time())\n"
        f"f = render_bundle(p); t.append(time.process_time())\n"
        f"write_bundle(f, Path({str(work / 'stages')!r})); t.append(time.process_time())\n"
        "names = ['floor imports', 'cli modules', 'load', 'validate', 'check', 'plan', 'render', 'write']\n"
        "print('\\nstages of a build, in one process (CPU ms):')\n"
        "[print(f'  {n:15} {1000 * (b - a):7.1f}') for n, a, b in zip(names, t, t[1:])]\n"
    )
    subprocess.run([PY, "-c", code], cwd=ROOT)


def make_variants_repo(folder: Path) -> int:
    """A project of kimik2.5 on this repository's profiles and one file of 4 x 4 x 4 variants of it;
    returns how many recipes and variants lint checks there."""
    (folder / "recipes").mkdir(parents=True)
    (folder / "pyproject.toml").write_text("[tool.recipec]\n")
    shutil.copytree(ROOT / "profiles", folder / "profiles")
    shutil.copy(ROOT / "recipes" / "kimik2.5.yaml", folder / "recipes")
    (folder / "recipes" / "kimik2.5-sweep.yaml").write_text(
        "extends: kimik2.5\nname: kimik2.5-sweep\nconfig-key: kimik2.5-fp4-mi355x-sweep\nvariants:\n"
        "  - matrix:\n"
        "      engine.args.max-num-seqs: [64, 128, 192, 256]\n"
        "      lmcache.l1-size-gb: [300, 600, 900, 1200]\n"
        "      health.probe-interval-s: [2, 3, 4, 5]\n"
        "    name: s{engine.args.max-num-seqs}-l1-{lmcache.l1-size-gb}-p{health.probe-interval-s}\n")
    return 2 + 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--against", metavar="DIR", help="another checkout of recipec, measured beside this one")
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind")
    opts = parser.parse_args()
    # Measured as installed: pip byte-compiles a package it installs, and an editable install writes
    # __pycache__ on first import, unless PYTHONDONTWRITEBYTECODE is set (as on some CI images):
    # then every run would compile recipec's ~4,000 lines again (~15 ms) while the floor's libraries
    # load compiled.
    subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "compiler")], check=True)
    work = Path(tempfile.mkdtemp(prefix="recipec-bench-"))
    # The per-user caches of this run alone: on a shared machine another checkout's runs (other
    # models, another package name) replace the cached validators with their own, and every run
    # here would then compile them again, at random. --against's checkout gets a folder of its own.
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    try:
        (work / "recipes").mkdir()
        shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
        for i in range(1000):
            (work / "recipes" / f"bench-{i:04d}.yaml").write_text(recipe(i))
        log = changelog(6000)
        (work / "changelog.yaml").write_text(log)
        (work / "empty.yaml").write_text("[]\n")
        (work / "empty").mkdir()  # no recipes/ here: lint of nothing but an empty changelog
        (work / "empty" / "perf-changelog.yaml").write_text("[]\n")
        # its own project root: without it the walk up finds work/pyproject.toml and its 1,000 recipes
        (work / "empty" / "pyproject.toml").write_text("[tool.recipec]\n")
        variants = make_variants_repo(work / "variants")
        make_variants_repo(work / "one")  # the same project without the sweep: the first recipe's cost
        (work / "one" / "recipes" / "kimik2.5-sweep.yaml").unlink()
        nocache = {**os.environ, "RECIPEC_NO_CACHE": "1"}
        run_once(recipec("build", "kimik2.5", "-o", str(work / "b")), ROOT, None)  # warm the caches
        files = {n: [f"recipes/bench-{i:04d}.yaml" for i in range(n)] for n in (10, 100, 1000)}
        cases = [
            ("floor: import yaml, pydantic, jinja2, click", [PY, "-c", "import yaml, pydantic, jinja2, click"],
             ROOT, None, None),
            ("floor, no teardown (ends in os._exit)",
             [PY, "-c", "import yaml, pydantic, jinja2, click, os; os._exit(0)"], ROOT, None, None),
            ("recipec build kimik2.5", recipec("build", "kimik2.5", "-o", str(work / "b")), ROOT, None, None),
            ("recipec build kimik2.5 (caches cold)", recipec("build", "kimik2.5", "-o", str(work / "b")),
             ROOT, nocache, None),
            ("recipec lint (this repository)", recipec("lint"), ROOT, None, None),
            ("recipec lint, start-up (empty changelog)", recipec("lint"), work / "empty", None, None),
            *((f"recipec lint, {n} recipes", recipec("lint", *files[n], "--changelog", "empty.yaml"), work, None,
               max(3, opts.runs // 2) if n == 1000 else None) for n in (10, 100, 1000)),
            ("recipec lint, kimik2.5 on profiles alone", recipec("lint", "--only", "recipes"),
             work / "one", None, None),
            (f"recipec lint, {variants} variants on profiles", recipec("lint", "--only", "recipes"),
             work / "variants", None, None),
            (f"recipec lint, changelog of {log.count(chr(10))} lines",
             recipec("lint", "--changelog", "changelog.yaml", "--repo", REPO, "recipes/bench-0000.yaml"), work,
             None, None),
        ]
        if opts.against:
            before, other_root = other_checkout(opts.against)
            subprocess.run([PY, "-m", "compileall", "-q", str(other_root / "compiler")], check=True)
            own = {**os.environ, "XDG_CACHE_HOME": str(work / "cache-against")}
            run_once([*before, "build", "kimik2.5", "-o", str(work / "ob")], other_root, own)  # warm its caches
            cases[3:3] = [("against: build kimik2.5", [*before, "build", "kimik2.5", "-o", str(work / "ob")],
                           other_root, own, None),
                          ("against: lint (its repository)", [*before, "lint"], other_root, own, None)]
        rows = measure(cases, opts.runs)
        floor = rows[0][1]["cpu"]
        print(f"{'':46} {'CPU ms':>8} {'x floor':>8} {'wall ms':>8} {'peak MiB':>9}")
        for name, r in rows:
            print(f"{name:46} {r['cpu'] * 1000:8.1f} {r['cpu'] / floor:8.2f} {r['wall'] * 1000:8.1f} "
                  f"{r['rss']:9.1f}")
        by = dict(rows)
        start = by["recipec lint, start-up (empty changelog)"]["cpu"]
        lint_n = {n: by[f"recipec lint, {n} recipes"]["cpu"] for n in (10, 100, 1000)}
        per = {n: (lint_n[n] - start) / n * 1000 for n in lint_n}
        slope = (lint_n[1000] - lint_n[100]) / 900 * 1000
        bare = by["floor, no teardown (ends in os._exit)"]["cpu"]
        print(f"\nlike for like (both without teardown): build {by['recipec build kimik2.5']['cpu'] / bare:.2f}x, "
              f"lint of this repository {by['recipec lint (this repository)']['cpu'] / bare:.2f}x the floor")
        print(f"per recipe above start-up: 10: {per[10]:.2f} ms, 100: {per[100]:.2f} ms, "
              f"1000: {per[1000]:.2f} ms; marginal 100 -> 1000: {slope:.2f} ms/recipe")
        swept = by[f"recipec lint, {variants} variants on profiles"]["cpu"]
        per_variant = (swept - start) / variants * 1000
        # The first recipe pays for the pipeline's first use (validators, catalogs, rules): the
        # marginal figure is what each further variant costs.
        marginal = (swept - by["recipec lint, kimik2.5 on profiles alone"]["cpu"]) / (variants - 1) * 1000
        print(f"per variant above start-up ({variants} recipes and variants of one kimik2.5 sweep on "
              f"profiles): {per_variant:.2f} ms; marginal (above kimik2.5 alone): {marginal:.2f} ms")
        changelog_row = next(r for name, r in rows if name.startswith("recipec lint, changelog"))
        print(f"changelog above start-up: {(changelog_row['cpu'] - start) * 1000:.1f} ms")
        if opts.against:
            print(f"against {opts.against}: build {by['recipec build kimik2.5']['cpu'] / by['against: build kimik2.5']['cpu']:.2f}x, "
                  f"lint of the repository {by['recipec lint (this repository)']['cpu'] / by['against: lint (its repository)']['cpu']:.2f}x")
        if opts.instructions:
            print("\ninstructions executed (callgrind, one run each; millions):")
            counted = {name: instructions(argv, cwd, env) for name, argv, cwd, env, _ in cases
                       if name.startswith(("floor, no teardown", "recipec build kimik2.5", "against:",
                                           "recipec lint (this", "recipec lint, start-up",
                                           "recipec lint, kimik2.5 on profiles alone",
                                           f"recipec lint, {variants} variants"))
                       and env is not nocache}
            bare_i = counted["floor, no teardown (ends in os._exit)"]
            for name, count in counted.items():
                print(f"  {name:46} {count / 1e6:8.1f}  {count / bare_i:5.2f}x floor")
            swept_i = counted[f"recipec lint, {variants} variants on profiles"]
            above = (swept_i - counted["recipec lint, start-up (empty changelog)"]) / variants
            extra = (swept_i - counted["recipec lint, kimik2.5 on profiles alone"]) / (variants - 1)
            print(f"  per variant: {above / 1e6:.2f} M above start-up, {extra / 1e6:.2f} M marginal "
                  "(above kimik2.5 alone)")
            if opts.against:
                print(f"  against: build {counted['recipec build kimik2.5'] / counted['against: build kimik2.5']:.3f}x, "
                      f"lint {counted['recipec lint (this repository)'] / counted['against: lint (its repository)']:.3f}x")
        loads = os.getloadavg()
        print(f"(median of {opts.runs} runs; load average {loads[0]:.1f} on {os.cpu_count()} CPUs)")
        if opts.profile:
            profile(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
