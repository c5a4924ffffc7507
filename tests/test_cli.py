"""The command line: exit codes, one-line errors with positions, --set, nothing half-written."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT, run_recipec

RECIPE = (ROOT / "tests" / "data" / "kimik2.5-flat.yaml").read_text()  # kimik2.5, flat


def write(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_version_and_help():
    assert run_recipec("--version").stdout.startswith("recipec, version ")
    for cmd in ([], ["build"], ["lint"], ["schema"], ["rules"]):
        proc = run_recipec(*cmd, "--help")
        assert proc.returncode == 0 and "Usage:" in proc.stdout


@pytest.mark.parametrize("old,new,where,message", [
    ("  port: 8100\n", "  port: 8100\n  port: 8101\n", r"r\.yaml:\d+:3", "duplicate key 'port'"),
    ("  tensor-parallel-size: 8\n  port: 8100", "  tensor-parallel-size: eight\n  port: 8100",
     r"r\.yaml:\d+:25", "prefill.tensor-parallel-size: input should be a valid integer"),
    ("  workers-per-node: 1\n  tensor-parallel-size: 8\n  port: 8100",
     "  worker-per-node: 1\n  tensor-parallel-size: 8\n  port: 8100", r"r\.yaml:\d+:3",
     "unknown key 'worker-per-node' (did you mean 'workers-per-node'?)"),
    ("decode:\n  nodes: 1", "decode:\n\tnodes: 1", r"r\.yaml:\d+:1", "tabs for indentation"),
])
def test_bad_recipe_names_file_line_col_and_exits_1(tmp_path, old, new, where, message):
    assert old in RECIPE
    path = write(tmp_path, RECIPE.replace(old, new, 1))
    out = tmp_path / "bundle"
    proc = run_recipec("build", str(path), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(where, proc.stderr), proc.stderr
    assert message in proc.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_not_utf8_names_the_byte_position(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_bytes(RECIPE.encode().replace(b"Kimi-K2.5 MXFP4, 1P1D", b"Kimi-K2.5 MXFP4\xff 1P1D", 1))
    proc = run_recipec("build", str(path), "-o", str(tmp_path / "b"))
    assert proc.returncode == 1
    assert re.search(r"r\.yaml:\d+:\d+: not UTF-8 text \(byte 0xff\)", proc.stderr), proc.stderr


def test_usage_errors_exit_2(tmp_path):
    assert run_recipec("build", "no-such-recipe").returncode == 2
    assert run_recipec("build", "kimik2.5", "--target", "k8s").returncode == 2
    proc = run_recipec("build", "kimik2.5", "--set", "prefill.port", "-o", str(tmp_path / "b"))
    assert proc.returncode == 2 and "expected dotted.path=value" in proc.stderr
    assert run_recipec("frobnicate").returncode == 2


def test_set_overrides_before_validation(tmp_path):
    out = tmp_path / "b"
    run_recipec("build", "kimik2.5-tp4", "--target", "local", "-o", str(out),
                "--set", "prefill.port=9100", "--set", "health.probe-interval-s=2", check=True)
    manifest = json.loads((out / "bundle.json").read_text())
    prefill = next(s for s in manifest["services"] if s["name"] == "prefill-0")
    assert prefill["argv"][prefill["argv"].index("--port") + 1] == "9100"
    assert manifest["tunables"]["PROBE_INTERVAL_S"] == "2"
    assert manifest["overrides"] == ["prefill.port=9100", "health.probe-interval-s=2"]
    router = next(s for s in manifest["services"] if s["name"] == "router")
    assert "http://127.0.0.1:9100" in router["argv"]
    # an overridden value is validated like any other, and the error names the --set
    proc = run_recipec("build", "kimik2.5", "-o", str(tmp_path / "c"), "--set", "prefill.port=0")
    assert proc.returncode == 1
    assert "--set prefill.port=0: RC100 prefill.port: input should be greater than or equal to 1" in proc.stderr


def test_check_failure_exits_1_with_code(tmp_path):
    proc = run_recipec("build", "kimik2.5", "-o", str(tmp_path / "b"), "--set", "decode.port=8100",
                       "--target", "local")
    assert proc.returncode == 1
    assert "RC201 port 8100 is wanted by prefill-0 (prefill HTTP) and by decode-0 (decode HTTP)" in proc.stderr
    assert not (tmp_path / "b").exists()


def test_refuses_to_replace_a_directory_that_is_not_a_bundle(tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    proc = run_recipec("build", "kimik2.5", "-o", str(precious))
    assert proc.returncode == 1 and "is not a recipec bundle" in proc.stderr
    assert (precious / "thesis.tex").read_text() == "do not delete"


def test_refuses_a_symlinked_output(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    proc = run_recipec("build", "kimik2.5", "-o", str(tmp_path / "link"))
    assert proc.returncode == 1 and "symbolic link" in proc.stderr
    assert list(real.iterdir()) == []


def test_rebuild_replaces_a_previous_bundle(tmp_path):
    out = tmp_path / "b"
    run_recipec("build", "kimik2.5", "-o", str(out), check=True)
    (out / "stale.txt").write_text("from an older build")
    run_recipec("build", "kimik2.5", "-o", str(out), check=True)
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_lint_passes_on_the_repository():
    proc = run_recipec("lint")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lint_reports_a_placeholder_pr_link(tmp_path):
    log = write(tmp_path, "- config-keys:\n    - kimik2.5-fp4-mi355x-vllm-disagg-agentic\n"
                "  description:\n    - x\n  pr-link: XXX\n", "log.yaml")
    proc = run_recipec("lint", "--changelog", str(log))
    assert proc.returncode == 1
    assert re.search(r"log\.yaml:5:12: RC510 pr-link 'XXX' is a placeholder", proc.stdout), proc.stdout


def test_schema_in_repo_is_current():
    proc = run_recipec("schema", "--check", "-o", str(ROOT / "schema"))
    assert proc.returncode == 0, proc.stderr


def test_rules_lists_every_code_the_compiler_can_report():
    """Every RCnnn that appears in compiler/ is listed by `recipec rules`, with a summary and a hint."""
    import re as _re

    used = set()
    for path in (ROOT / "compiler").rglob("*.py"):
        used |= set(_re.findall(r'"(RC\d{3})"', path.read_text()))
    proc = run_recipec("rules")
    assert proc.returncode == 0
    listed = set(_re.findall(r"^(RC\d{3}) ", proc.stdout, flags=_re.M))
    assert used and used <= listed, sorted(used - listed)
    assert proc.stdout.count("fix: ") == len(listed)


def test_output_is_complete_before_the_command_exits_without_teardown():
    """`recipec` leaves through os._exit (compiler/cli.py run()): what it printed must be flushed
    first, and the exit status kept."""
    proc = run_recipec("schema")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["title"] == "Recipe"  # ~27 KB, whole
    proc = run_recipec("rules")
    assert proc.returncode == 0 and proc.stdout.rstrip().splitlines()[-1].strip().startswith("fix:")
    assert run_recipec("build", "no-such-recipe").returncode == 2
