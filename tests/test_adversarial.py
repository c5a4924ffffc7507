"""Property-based adversarial test: recipes and changelogs with hostile strings in every string field.

Hypothesis takes kimik2.5 and puts hostile text (line breaks of every kind, quotes, $(), backticks,
`;touch MARKER`, %0A, ::error::, NUL, lone surrogates, bidi overrides, ...) in its string values,
its keys, free-form maps (env, args, extra-config, extra-directives), argv lists and --set texts, or
raw YAML (dates, !!binary, explicit tags, huge integers) in place of a value; and writes changelogs
the same way. Then, for every case:

- build (local and slurm) and lint (text, json, github) end with exit 0, 1 or 2, never a traceback;
- every finding is exactly one line (as many lines as the JSON output has findings), and no output
  line holds a line break of any kind (str.splitlines agrees with split("\\n"));
- nothing is written outside the output directory, and no marker command ever runs;
- every generated script passes `bash -n`, and no line of it holds a Unicode line break; two builds
  of one recipe are byte-identical; a sample of the bundles passes shellcheck;
- a few bundles with hostile values in every argv and env slot run against the stand-ins: exit 0,
  each value arrives byte for byte, nothing runs that the recipe only named.

recipec runs in this process (click's CliRunner): a case costs milliseconds. The default budget is
1,500 cases (600 recipes, each built for one target twice and linted in three formats; 900
changelogs, each linted in three formats) and 3 bundle runs: ~45 s on an idle 2-core machine.
RECIPEC_HYPOTHESIS_EXAMPLES=N runs N cases in each of the two main properties (and N/100 bundle
runs, at least 2), e.g. 20000 for a long run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import traceback
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recipec.cli import main
from harness import ROOT, make_standin_bin, port_overrides, run_bundle

EXAMPLES = int(os.environ.get("RECIPEC_HYPOTHESIS_EXAMPLES", "0") or 0)
BASE = yaml.safe_load((ROOT / "tests" / "data" / "kimik2.5-tp4-flat.yaml").read_text())  # fits one machine
# The client step these cases fill in, in place of kimik2.5's benchmark (a recipe has one of them).
del BASE["benchmark"]
BASE["client"] = {"command": ["vllm", "bench", "serve", "--base-url", "${ROUTER_URL}"]}
# Where a marker command would leave its file: any file here means a value was executed.
MARKER_DIR = Path(tempfile.mkdtemp(prefix="recipec-marker-"))
MARK = str(MARKER_DIR / "pwned")

FRAGMENTS = [
    "\n", "\r\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\t", "\x1b[2J",
    "\x00", "\ud800", "\udcff", "\u202e", "\u2066", "é", "\U0001f600", "'", '"', "\\", "\\n", "$", "!",
    f"$(touch {MARK}-dollar)", f"`touch {MARK}-backtick`", f";touch {MARK}-semicolon", f"\ntouch {MARK}-nl",
    f"|touch {MARK}-pipe", f"&touch {MARK}-amp", f"\u2028touch {MARK}-ls", "${PATH}", "$HOME", "*", "~",
    "%0A", "%25", "%", "::error::forged", "::error file=forged.yaml,line=1::forged", "::add-mask::x",
    "::stop-commands::tok", ":", ",", "#", " # x", "--flag", "-", "=", "{{ x }}", "{% if x %}", "{##",
    "<!--", "`", "a b", "..", "/", "../../etc", "2001-13-45", "yes", "null", "~", "0x1F", "1e999", ".inf",
]
hostile = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), min_size=1, max_size=5).map("".join)
# Raw YAML in place of a value: what the loader and the models must refuse with a position.
RAW = ["!!bool maybe", "!!timestamp soon", "!!timestamp 2001-13-45", "2001-13-45", "2001-01-01",
       "2001-01-01 10:00:00", "!!binary aGk=", "!!binary '!!'", "!!int abc", "!!float x", "1" * 4400,
       "!!seq x", "!!map x", "!!omap x", "!!set x", "!!python/object/apply:os.system ['true']", "!foo x",
       '"\\uD800"', '"a\\0b"', '"\\x85\\u2028"', "&a x", "*a", "{a: 2001-01-01}", "[!!binary aGk=]",
       "{a: [1, {b: !!timestamp 2001-01-01}]}", "<<: {a: 1}", "!!null x", "-1", "70000", "1.5", "[]", "{}"]


def _slots(data, path=()):
    """Every place a string can go: ('value', path) for each leaf, ('key', path) for each key,
    ('add', path) for each mapping (a new key), ('append', path) for each list."""
    if isinstance(data, dict):
        yield ("add", path)
        for key, value in data.items():
            yield ("key", (*path, key))
            yield from _slots(value, (*path, key))
    elif isinstance(data, list):
        yield ("append", path)
        for i, value in enumerate(data):
            yield from _slots(value, (*path, i))
    else:
        yield ("value", path)


# Free-form maps and fields recipec passes on: each gets a slot even where kimik2.5 leaves it out.
EXTRA = {"slurm": {"partition": "p", "account": "a", "extra-directives": {"mem": "1G"}},
         "router": {"args": {"api-key": "k"}, "env": {"R": "r"}}, "client": {"env": {"C": "c"}},
         "decode": {"env": {"D": "d"}, "args": {"response-role": "t"}}, "model": {"served-name": "s"},
         "lmcache": {"args": {"instance-id": "i"}, "env": {"L": "l"}}}
SEED = json.loads(json.dumps(BASE))
for section, fields in EXTRA.items():
    SEED.setdefault(section, {}).update(fields)
SEED["engine"]["args"]["chat-template"] = "c"
SLOTS = sorted(set(_slots(SEED)), key=repr)
# Slots any string passes every check in (free text recipec carries to a process or a reader):
# drawn more often, so that half the cases build and their bundles are checked too.
# (decode's own flag is one both sides need not share: a per-side tokenizer is RC960.)
_FREE_ARGS = {"chat-template", "response-role", "instance-id", "api-key"}
FREE = [(kind, path) for kind, path in SLOTS
        if (kind == "value" and (len(path) > 1 and path[-2] == "env" or path[-1] in _FREE_ARGS
                                 or path[:2] == ("client", "command") or "extra-config" in path
                                 or path in {("model", "path"), ("model", "served-name"), ("description",)}))
        or (kind == "append" and path == ("client", "command"))
        or (kind == "key" and "extra-config" in path[:-1])]


def _at(data, path):
    for key in path:
        data = data[key]
    return data


def _apply(recipe: dict, slot: tuple, text: str) -> None:
    """Put text (or a raw-YAML placeholder) at slot. Paths that a previous change removed are skipped."""
    kind, path = slot
    try:
        parent = _at(recipe, path[:-1]) if path else None
        if kind == "value":
            parent[path[-1]] = text
        elif kind == "key":
            parent[text] = parent.pop(path[-1])
        elif kind == "add":
            _at(recipe, path)[text] = text
        else:
            _at(recipe, path).append(text)
    except (KeyError, IndexError, TypeError):
        pass


def dump(data, allow_unicode: bool) -> str:
    """YAML text of data; libyaml's emitter is fast but cannot write a lone surrogate."""
    try:
        return yaml.dump(data, Dumper=yaml.CSafeDumper, allow_unicode=allow_unicode, width=10 ** 9,
                         sort_keys=False)
    except (UnicodeEncodeError, AttributeError):
        return yaml.safe_dump(data, allow_unicode=allow_unicode, width=10 ** 9, sort_keys=False)


@st.composite
def recipes(draw):
    """(YAML text of a hostile recipe, --set texts)."""
    recipe = json.loads(json.dumps(SEED))
    raws: list[str] = []
    slot_of = st.one_of(st.sampled_from(FREE), st.sampled_from(FREE), st.sampled_from(FREE), st.sampled_from(SLOTS))
    for slot in draw(st.lists(slot_of, min_size=1, max_size=3)):
        if draw(st.integers(0, 7)) == 0:  # raw YAML in place of a value
            raws.append(draw(st.sampled_from(RAW)))
            _apply(recipe, slot, f"RAWVALUE{len(raws) - 1}")
        else:
            _apply(recipe, slot, draw(hostile))
    text = dump(recipe, draw(st.booleans()))
    for i, raw in enumerate(raws):  # a placeholder as a value (as a key, it stays text)
        text = re.sub(rf"(:\s|-\s)RAWVALUE{i}\b", lambda m, raw=raw: m.group(1) + raw, text, count=1)
    sets = []
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        kind, path = draw(slot_of)
        key = ".".join(str(p) for p in path) if draw(st.booleans()) else draw(hostile)
        value = draw(st.one_of(hostile, st.sampled_from(RAW)))
        sets.append(f"{key}={value}")
    return text, sets


@st.composite
def changelogs(draw):
    keys = [BASE["config-key"], "kimik2.5*", "no-such-key"]
    entries = []
    for _ in range(draw(st.integers(1, 3))):
        entry = {"config-keys": draw(st.lists(st.one_of(st.sampled_from(keys), hostile), min_size=1, max_size=2)),
                 "description": draw(st.lists(st.one_of(st.just("A change."), hostile), min_size=1, max_size=2)),
                 "pr-link": draw(st.one_of(st.just("https://github.com/SemiAnalysisAI/InferenceX/pull/1"),
                                           hostile))}
        if draw(st.integers(0, 3)) == 0:
            entry[draw(hostile)] = draw(hostile)
        entries.append(entry)
    text = dump(entries, draw(st.booleans()))
    if draw(st.integers(0, 3)) == 0:
        text = text.replace("A change.", draw(st.sampled_from(RAW)), 1)
    return text


def recipec(*args: str):
    """(exit code, stdout, stderr) of recipec in this process; any exception but SystemExit fails."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"recipec {args!r} raised:\n"
                             + "".join(traceback.format_exception(result.exception)))
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.stderr)
    for stream in (result.stdout, result.stderr):
        # No line break of any kind inside a line, and no workflow command but our own.
        assert stream.splitlines() == stream.split("\n")[:-1] or stream == "", (args, stream)
    return result.exit_code, result.stdout, result.stderr


def no_marker():
    assert not list(MARKER_DIR.iterdir()), list(MARKER_DIR.iterdir())


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


_BASH_CHECKED: set = set()


def check_scripts(bundle: Path) -> None:
    for script in sorted(bundle.glob("*.sh")):
        text = script.read_text(encoding="utf-8")
        assert text.splitlines() == text.split("\n")[:-1], f"{script.name}: a Unicode line break"
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest in _BASH_CHECKED:
            continue
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, (script.name, proc.stderr)
        _BASH_CHECKED.add(digest)


def budget(default: int) -> int:
    # The default run (CI's) is derandomized: the same cases every run, so a red CI means a change
    # broke something. A longer run (RECIPEC_HYPOTHESIS_EXAMPLES=N) explores new cases each time.
    return EXAMPLES or default


def test_hostile_recipes_build_and_lint_cleanly(tmp_path):
    """Build (both targets, twice) and lint (every format) hostile recipes."""
    stats = {"cases": 0, "built": 0, "refused": 0}
    built: list[Path] = []
    started = time.monotonic()

    @settings(max_examples=budget(600), deadline=None, database=None, derandomize=not EXAMPLES,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(case=recipes(), target=st.sampled_from(["local", "slurm"]))
    def check(case, target):
        text, sets = case
        stats["cases"] += 1
        work = Path(tempfile.mkdtemp(dir=tmp_path))
        try:
            path = work / "r.yaml"
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            set_args = [a for s in sets for a in ("--set", s)]
            out = work / "out"
            code, _, err = recipec("build", str(path), "--target", target, "-o", str(out), *set_args)
            expected = {"r.yaml"}
            if code == 0:
                stats["built"] += 1
                expected |= {"out", "again"}
                check_scripts(out)
                again = work / "again"
                assert recipec("build", str(path), "--target", target, "-o", str(again), *set_args)[0] == 0
                assert files_of(out) == files_of(again)
                if len(built) < 400:
                    kept = tmp_path / f"bundle-{len(built)}"
                    shutil.copytree(out, kept)
                    built.append(kept)
            else:
                stats["refused"] += 1
                assert not out.exists()
                for line in err.splitlines():  # each a finding or the count, never a stack
                    assert re.match(r"^(/|r\.yaml:|--set |recipec: )", line), line
            for fmt in ("json", "text", "github"):
                lint_code, lint_out, _ = recipec("lint", str(path), "--format", fmt)
                if fmt == "json":
                    findings = json.loads(lint_out) if lint_code != 2 and lint_out.strip() else []
                elif fmt == "text":
                    assert len(lint_out.splitlines()) == len(findings), lint_out
                else:
                    assert len(lint_out.splitlines()) == len(findings), lint_out
                    for line in lint_out.splitlines():
                        assert re.match(r"^::(error|warning) file=[^,:]*,line=\d+,col=\d+,title=RC\d{3}::", line), line
            assert {p.name for p in work.iterdir()} == expected  # nothing written beside the output
            no_marker()
        finally:
            shutil.rmtree(work, ignore_errors=True)

    check()
    no_marker()
    # shellcheck costs ~2 s a bundle here: a sample, the most hostile first (most non-ASCII bytes).
    sample = sorted(built, key=lambda b: -sum(c > 127 or c < 32 for c in (b / "launch.sh").read_bytes()))[:4]
    for bundle in sample:
        scripts = sorted(p.name for p in bundle.glob("*.sh"))
        proc = subprocess.run(["shellcheck", "--external-sources", "--severity=warning", *scripts], cwd=bundle,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout
    print(f"\nhostile recipes: {stats} shellchecked {len(sample)} in {time.monotonic() - started:.1f}s")
    assert stats["built"] > 0 and stats["refused"] > 0  # the generator reaches both outcomes


def test_hostile_changelogs_lint_one_line_per_finding(tmp_path):
    stats = {"cases": 0, "findings": 0}
    started = time.monotonic()

    @settings(max_examples=budget(900), deadline=None, database=None, derandomize=not EXAMPLES,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(text=changelogs())
    def check(text):
        stats["cases"] += 1
        path = tmp_path / "c.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        code, as_json, _ = recipec("lint", "kimik2.5", "--changelog", str(path), "--format", "json")
        findings = json.loads(as_json) if code != 2 else []
        stats["findings"] += len(findings)
        _, as_text, _ = recipec("lint", "kimik2.5", "--changelog", str(path))
        assert len(as_text.splitlines()) == len(findings)
        for line in as_text.splitlines():
            assert re.match(r"^\S+:\d+:\d+: RC\d{3} ", line), line
        _, as_github, _ = recipec("lint", "kimik2.5", "--changelog", str(path), "--format", "github")
        assert len(as_github.splitlines()) == len(findings)
        for line in as_github.splitlines():
            assert re.match(r"^::(error|warning) file=[^,:]*,line=\d+,col=\d+,title=RC\d{3}::", line), line
        assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
        no_marker()

    check()
    print(f"\nhostile changelogs: {stats} in {time.monotonic() - started:.1f}s")
    assert stats["findings"] > 0


# Slots whose values reach a process (argv, env) and pass every check: a run shows they arrive
# literally and that nothing they name is ever executed.
RUN_SLOTS = [("engine", "env", "RECIPEC_HOSTILE"), ("lmcache", "env", "RECIPEC_HOSTILE"),
             ("router", "env", "RECIPEC_HOSTILE"), ("client", "env", "RECIPEC_HOSTILE"),
             ("engine", "args", "chat-template"), ("decode", "args", "response-role"),
             ("lmcache", "args", "instance-id"), ("router", "args", "api-key")]
# A flag's value that starts with '-' is read as a flag by the engines' parsers (and so by RC801/RC803):
# refused at build, rightly, so it cannot be one of the values that must pass every check.
printable_hostile = hostile.filter(lambda s: s and "\x00" not in s and not re.search("[\ud800-\udfff]", s)
                                   and not s.startswith("-"))


@pytest.mark.faults
def test_hostile_values_reach_the_stand_ins_literally(tmp_path):
    runs = {"runs": 0}
    standins = make_standin_bin(tmp_path / "bin")

    @settings(max_examples=max(2, budget(300) // 100), deadline=None, database=None, derandomize=not EXAMPLES,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(values=st.lists(printable_hostile, min_size=len(RUN_SLOTS) + 1, max_size=len(RUN_SLOTS) + 1))
    def check(values):
        runs["runs"] += 1
        work = Path(tempfile.mkdtemp(dir=tmp_path))
        recipe = json.loads(json.dumps(BASE))
        for (section, kind, key), value in zip(RUN_SLOTS, values):
            recipe.setdefault(section, {}).setdefault(kind, {})[key] = value
        recipe["client"]["command"] += ["--metadata", values[-1]]
        path = work / "r.yaml"
        path.write_text(yaml.safe_dump(recipe, allow_unicode=False, width=10 ** 9))
        sets, _ = port_overrides()
        bundle = work / "bundle"
        code, _, err = recipec("build", str(path), "--target", "local", "-o", str(bundle),
                               *[a for s in sets for a in ("--set", s)])
        assert code == 0, err
        record = work / "record"
        record.mkdir()
        run = run_bundle(bundle, standins, env={"STANDIN_RECORD": str(record)})
        assert run.returncode == 0, run.stderr
        assert run.leftovers == []
        no_marker()
        calls = [json.loads(p.read_text()) for p in record.glob("*.json")]
        engines = [c for c in calls if c["prog"] == "vllm" and c["argv"][:2] != ["bench", "serve"]]
        client = next(c for c in calls if c["argv"][:2] == ["bench", "serve"])
        by_prog = {c["prog"]: c for c in calls if c["prog"] != "vllm"}
        wanted = {"engine": engines, "lmcache": [by_prog["lmcache"]], "router": [by_prog["vllm-router"]],
                  "client": [client], "decode": [e for e in engines if "--response-role" in e["argv"]]}
        for (section, kind, key), value in zip(RUN_SLOTS, values):
            assert wanted[section], section
            for call in wanted[section]:
                got = call["env"][key] if kind == "env" else call["argv"][call["argv"].index(f"--{key}") + 1]
                assert got == value, (section, key)
        assert client["argv"][client["argv"].index("--metadata") + 1] == values[-1]

    check()
    print(f"\nstand-in runs: {runs}")
