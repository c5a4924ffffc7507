"""Every rule against its fixtures: tests/rules/CODE/fail*.yaml must report exactly what its
`# expect:` line says (code and line:col), tests/rules/CODE/pass*.yaml nothing at all."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT, run_recipec

FIXTURES = ROOT / "tests" / "rules"
FILES = sorted(FIXTURES.glob("*/*.yaml"))
_EXPECT = re.compile(r"^# expect: (.*)$", re.M)


def rel(path) -> str:
    return path.relative_to(ROOT).as_posix()


def expected(path) -> list[tuple[str, str]]:
    m = _EXPECT.search(path.read_text())
    assert m, f"{rel(path)} has no '# expect:' line"
    if m.group(1) == "nothing":
        return []
    return sorted(tuple(item.split(" at ")) for item in m.group(1).split("; "))


def elsewhere(path) -> bool:
    """A fixture whose finding stands in another file (a base it extends: `at bases/x.yaml:3:3`)."""
    return ".yaml:" in _EXPECT.search(path.read_text()).group(1)


@pytest.fixture(scope="module")
def linted() -> dict[str, list[dict]]:
    """One `recipec lint --format json` over every fixture (one process, not one per file); a fixture
    whose finding stands in a base file gets a process of its own, so the finding is its."""
    alone = [f for f in FILES if elsewhere(f)]
    proc = run_recipec("lint", "--format", "json", *(rel(f) for f in FILES if f not in alone))
    assert "Traceback" not in proc.stderr, proc.stderr
    by_file: dict[str, list[dict]] = {rel(f): [] for f in FILES}
    for d in json.loads(proc.stdout):
        by_file[d["path"]].append(d)
    for f in alone:
        proc = run_recipec("lint", "--format", "json", rel(f))
        assert "Traceback" not in proc.stderr, proc.stderr
        by_file[rel(f)] = json.loads(proc.stdout)
    return by_file


def _at(d: dict, fixture) -> str:
    where = f"{d['line']}:{d['col']}"
    if d["path"] == rel(fixture):
        return where
    return f"{(ROOT / d['path']).relative_to(fixture.parent).as_posix()}:{where}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixture_reports_exactly_its_expectation(path, linted):
    got = sorted((d["code"], _at(d, path)) for d in linted[rel(path)])
    assert got == expected(path), linted[rel(path)]
    if path.stem.startswith("fail"):
        assert got and all(code == path.parent.name for code, _ in got)


def test_every_rule_has_a_failing_and_a_passing_fixture():
    from recipec.rules import all_rules

    codes = [r.code for r in all_rules() if r.scope in ("recipe", "document", "plan", "compose")]
    assert len(codes) >= 20
    for code in codes:
        assert (FIXTURES / code / "pass.yaml").is_file(), code
        assert list((FIXTURES / code).glob("fail*.yaml")), code
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(codes)


def test_every_rule_code_has_a_check_and_every_check_a_code():
    """The code table and the registered checks agree: a recipe, plan or document code without a
    check would be listed by `recipec rules` and never reported."""
    from recipec.codes import CODES
    from recipec.rules import CHECKS, _load_rule_modules

    _load_rule_modules()
    checked = {code for check in CHECKS for code in check.codes}
    assert checked == {c for c, info in CODES.items() if info.scope in ("recipe", "plan", "document")}


def test_text_output_is_path_line_col_code_message_hint_sorted():
    files = [rel(FIXTURES / "RC702" / "fail.yaml"), rel(FIXTURES / "RC601" / "fail.yaml")]
    proc = run_recipec("lint", *files)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "tests/rules/RC601/fail.yaml:31:20: RC601 SharedStorageConnector is not a connector of vllm "
        "0.33.0 (renamed ExampleConnector) (use a connector the pinned vLLM registers, or set "
        "module-path for an out-of-tree class)",
        "tests/rules/RC702/fail.yaml:32:28: RC702 lmcache.mp.port 5556 is not the LMCache server's port "
        "5555 (drop the lmcache.mp.* key: recipec fills host and port from the lmcache section; set "
        "hash-algorithm/isolated-ipc on both sides alike)",
    ]
    assert "recipec: 2 error(s), 0 warning(s)" in proc.stderr


def test_warnings_pass_unless_strict():
    warn = rel(FIXTURES / "RC704" / "fail.yaml")
    proc = run_recipec("lint", warn)
    assert proc.returncode == 0, proc.stdout
    assert re.search(r"^tests/rules/RC704/fail\.yaml:43:20: RC704 warning: ", proc.stdout, re.M)
    assert run_recipec("lint", "--strict", warn).returncode == 1


def test_json_format_fields():
    proc = run_recipec("lint", "--format", "json", rel(FIXTURES / "RC706" / "fail-warning.yaml"),
                       rel(FIXTURES / "RC706" / "fail.yaml"))
    assert proc.returncode == 1
    got = json.loads(proc.stdout)
    assert [(d["path"].rsplit("/", 1)[1], d["severity"]) for d in got] == [
        ("fail-warning.yaml", "warning"), ("fail.yaml", "error")]
    assert set(got[0]) == {"path", "line", "col", "code", "severity", "message", "hint"}
    assert got[1]["message"] == "L1 of 4000 GB is more than the node's 3072 GB of DRAM"


def test_github_format_annotations():
    proc = run_recipec("lint", "--format", "github", rel(FIXTURES / "RC302" / "fail.yaml"),
                       rel(FIXTURES / "RC707" / "fail.yaml"))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("::error file=tests/rules/RC302/fail.yaml,line=7,col=8,title=RC302::"
                               "image 'yukiozzz/kimi-lmc-mc-rocm:dmabuf'")
    assert lines[1].startswith("::warning file=tests/rules/RC707/fail.yaml,line=41,col=20,title=RC707::")


def test_rules_command_lists_every_code_with_hint():
    from recipec.rules import all_rules

    out = run_recipec("rules", check=True).stdout
    for r in all_rules():
        assert re.search(rf"^{r.code}  {re.escape(r.name)} ", out, re.M), r.code
    assert out.count("fix: ") == len(all_rules())


def test_legacy_key_replaces_the_generic_unknown_key_message():
    proc = run_recipec("lint", rel(FIXTURES / "RC602" / "fail.yaml"))
    assert "RC602 'kv_rank' is a legacy KVTransferConfig key" in proc.stdout
    assert "RC100" not in proc.stdout  # not also "unknown key 'kv_rank'" at the same place


@pytest.mark.parametrize("override,message", [
    # the model already requires a role on each MultiConnector child: keep it so
    ("prefill.kv-transfer.connectors.1={connector: LMCacheMPConnector}",
     "prefill.kv-transfer.connectors.1.role: required key is missing"),
    ("decode.workers-per-node=0", "decode.workers-per-node: input should be greater than or equal to 1"),
    ("prefill.nodes=0", "prefill.nodes: input should be greater than or equal to 1"),
])
def test_model_level_checks(tmp_path, override, message):
    proc = run_recipec("build", "kimik2.5", "-o", str(tmp_path / "b"), "--set", override)
    assert proc.returncode == 1
    assert f"RC100 {message}" in proc.stderr, proc.stderr
