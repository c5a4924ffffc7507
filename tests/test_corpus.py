"""Adversarial inputs: every one is a clean error (position where it has one), exit 1 (2 for a bad
command line), never a traceback, and never a bundle or a staging directory left behind.

tests/corpus/*.yaml carry their expected lint finding in an `# expect:` line; inputs that cannot be
committed (over 1 MiB, not UTF-8, NUL, 100,000 levels deep) are generated here. Every rule's failing
fixture (tests/rules/*/fail*.yaml) is part of the corpus too, built with --strict.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_recipec

CORPUS = sorted((ROOT / "tests" / "corpus").glob("*.yaml"))
RULE_FAILURES = sorted((ROOT / "tests" / "rules").glob("*/fail*.yaml"))
_EXPECT = re.compile(r"^# expect: (.*)$", re.M)


def generated(folder: Path) -> dict[str, bytes]:
    """Bad inputs made on the fly, by name."""
    good = (ROOT / "tests" / "rules" / "RC201" / "pass.yaml").read_bytes()
    laughs = b"a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + b"".join(
        b"a%d: &a%d [%s]\n" % (i, i, b", ".join([b"*a%d" % (i - 1)] * 10)) for i in range(1, 10))
    return {
        "over-1mib.yaml": good + b"# " + b"x" * (1024 * 1024) + b"\n",
        "deep-flow-100k.yaml": b"a: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        "deep-block-200k.yaml": b"- " * 200_000 + b"x\n",
        "deep-mapping-20k.yaml": b"a: " + b"{b: " * 20_000 + b"1" + b"}" * 20_000 + b"\n",
        "alias-bomb-10-levels.yaml": laughs,
        "many-values.yaml": b"a: [" + b", ".join([b"1"] * 250_000) + b"]\n",
        "not-utf8.yaml": good.replace(b"a rule fixture", b"a rule \xff fixture"),
        "latin1.yaml": good.replace(b"a rule fixture", "caf\u00e9".encode("latin-1")),
        "utf16.yaml": good.decode().encode("utf-16"),
        "nul-byte.yaml": good.replace(b"name: fixture", b"name: fix\0ture"),
        "empty.yaml": b"",
        "crlf-and-tab.yaml": good.replace(b"\n", b"\r\n").replace(b"  nodes: 1", b"\tnodes: 1", 1),
    }


def build_clean(recipe: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """Build into tmp_path/out; assert the failure left nothing behind."""
    out = tmp_path / "out"
    proc = run_recipec("build", recipe, "-o", str(out), *extra, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip(), "an error must say what is wrong"
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(".out.")]
    return proc


# One process builds them all (a process per input costs ~0.7 s of imports each): every build goes
# through the real CLI entry point; an exception other than SystemExit is recorded as a traceback.
_DRIVER = """
import contextlib, io, json, sys, traceback
from recipec.cli import main
results = {}
for name, args in json.load(sys.stdin).items():
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args, prog_name="recipec")
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            err.write(traceback.format_exc())
            code = "Traceback"
    results[name] = [code, out.getvalue(), err.getvalue()]
json.dump(results, sys.stdout)
"""


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, tuple]:
    """`recipec build` of every corpus input (generated ones, tests/corpus/, the rules' failures)."""
    base = tmp_path_factory.mktemp("corpus")
    gen, out = base / "gen", base / "out"
    gen.mkdir()
    out.mkdir()
    jobs = {}
    for name, data in generated(gen).items():
        (gen / name).write_bytes(data)
        jobs[name] = ["build", str(gen / name), "-o", str(out / name)]
    for path in CORPUS:
        jobs[path.name] = ["build", path.relative_to(ROOT).as_posix(), "-o", str(out / path.name)]
    for path in RULE_FAILURES:
        key = f"{path.parent.name}/{path.name}"
        jobs[key] = ["build", path.relative_to(ROOT).as_posix(), "--strict", "-o", str(out / key.replace("/", "-"))]
    proc = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps(jobs), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"results": json.loads(proc.stdout), "leftovers": sorted(p.name for p in out.iterdir())}


def test_the_corpus_is_big_enough():
    assert len(CORPUS) + len(generated(Path("."))) + len(RULE_FAILURES) >= 40
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("name", [p.name for p in CORPUS] + list(generated(Path(".")))
                         + [f"{p.parent.name}/{p.name}" for p in RULE_FAILURES])
def test_build_fails_cleanly(name, builds):
    code, out, err = builds["results"][name]
    assert code == 1, (code, err)
    assert "Traceback" not in err, err
    first = err.splitlines()[0]
    assert re.match(r"^[^:\n]+:\d+:\d+: ", first), f"no file:line:col in {first!r}"
    assert out == ""


def test_no_bundle_and_no_staging_directory_is_left(builds):
    assert builds["leftovers"] == []


@pytest.fixture(scope="module")
def linted() -> dict[str, list[dict]]:
    proc = run_recipec("lint", "--format", "json", *(p.relative_to(ROOT).as_posix() for p in CORPUS))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    by_file: dict[str, list[dict]] = {}
    for d in json.loads(proc.stdout):
        by_file.setdefault(Path(d["path"]).name, []).append(d)
    return by_file


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_lint_names_code_and_position(path, linted):
    expect = _EXPECT.search(path.read_text()).group(1)
    got = "; ".join(sorted({f"{d['code']} at {d['line']}:{d['col']}" for d in linted.get(path.name, [])}))
    assert got == expect
    assert all(d["message"] for d in linted[path.name])


@pytest.mark.parametrize("name,where", [
    ("over-1mib.yaml", "1:1: file is 1049"), ("deep-flow-100k.yaml", "1:36: nested deeper than 32 levels"),
    ("deep-block-200k.yaml", "nested deeper than 32 levels"), ("alias-bomb-10-levels.yaml", "2:5: YAML aliases"),
    ("not-utf8.yaml", "not UTF-8 text (byte 0xff)"), ("utf16.yaml", "1:1: not UTF-8 text (byte 0xff)"),
    ("nul-byte.yaml", "4:10: file contains a NUL character"), ("many-values.yaml", "more than 200000 values"),
    ("empty.yaml", "1:1: RC100 (top level): input should be a valid dictionary"),
])
def test_generated_inputs_say_what_is_wrong(name, where, builds):
    assert where in builds["results"][name][2], builds["results"][name][2]


# --- names and output paths -------------------------------------------------------------------------

@pytest.mark.parametrize("ref,code,message", [
    ("..", 2, "is not a recipe name"),
    ("kimik2.5/..", 1, "no such file"),
    ("../../../../../../etc/passwd", 1, "RC100 (top level): input should be a valid dictionary"),
    ("/etc", 1, "is a directory, not a file"),
    ("/dev/zero", 1, "not a regular file"),
    ("Kimik2.5", 2, "is not a recipe name"),
    ("kimik2.5;reboot", 2, "is not a recipe name"),
    ("no-such-recipe", 2, "no recipe named 'no-such-recipe'"),
])
def test_recipe_references(tmp_path, ref, code, message):
    proc = build_clean(ref, tmp_path)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr


def test_fifo_is_not_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.yaml")
    proc = build_clean(str(tmp_path / "pipe.yaml"), tmp_path)
    assert proc.returncode == 1 and "not a regular file" in proc.stderr


def test_set_cannot_walk_the_name_out_of_build(tmp_path):
    proc = build_clean(str(ROOT / "recipes" / "kimik2.5.yaml"), tmp_path, "--set", "name=../../x")
    assert proc.returncode == 1 and "RC100 name: '../../x' does not match" in proc.stderr
    assert not (tmp_path / "build").exists()


def _refused(tmp_path: Path, out: str | Path, message: str, code: int = 1) -> subprocess.CompletedProcess:
    # by path: tmp_path is outside any project, and a name resolves only in the current project
    proc = run_recipec("build", str(ROOT / "recipes" / "kimik2.5.yaml"), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == code and "Traceback" not in proc.stderr, proc.stderr
    assert message in proc.stderr, proc.stderr
    stray = [p for p in Path(tmp_path).rglob(".*.recipec-*")]
    assert stray == []
    return proc


def test_output_is_a_file(tmp_path):
    (tmp_path / "f").write_text("keep")
    _refused(tmp_path, tmp_path / "f", "exists and is not a directory")
    assert (tmp_path / "f").read_text() == "keep"


def test_output_below_a_file(tmp_path):
    (tmp_path / "f").write_text("keep")
    _refused(tmp_path, tmp_path / "f" / "bundle", "cannot create the output directory")
    assert (tmp_path / "f").read_text() == "keep"


def test_output_is_a_symlink_to_a_directory(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    _refused(tmp_path, tmp_path / "link", "symbolic link")
    assert list((tmp_path / "real").iterdir()) == []


def test_output_is_a_dangling_symlink(tmp_path):
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    _refused(tmp_path, tmp_path / "link", "symbolic link")
    assert not (tmp_path / "nowhere").exists()


def test_output_is_a_bundle_whose_manifest_is_a_symlink(tmp_path):
    (tmp_path / "secret.json").write_text('{"recipec_version": "0"}')
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "bundle.json").symlink_to(tmp_path / "secret.json")
    (tmp_path / "b" / "notes.txt").write_text("mine")
    _refused(tmp_path, tmp_path / "b", "is not a recipec bundle")
    assert (tmp_path / "b" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("out", ["/", "."])
def test_output_is_the_root_or_the_working_directory(tmp_path, out):
    (tmp_path / "work.txt").write_text("mine")
    _refused(tmp_path, out, "is not a recipec bundle")
    assert (tmp_path / "work.txt").read_text() == "mine"


def test_output_not_writable(tmp_path):
    _refused(tmp_path, "/proc/recipec-test/bundle", "cannot create the output directory")
