"""Recipe values are never code, anywhere recipec writes them; bad input is a finding, never a traceback.

Each test here stands for one hole an adversarial run found (issue 12): #SBATCH injection, forged
GitHub workflow commands, findings over several lines, Unicode line breaks reaching a process altered,
and tracebacks from --set values, explicit YAML tags and non-JSON values where JSON is passed on.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from recipec.cli import main
from recipec.escape import bash_word, finding_text, github_data, github_property, sbatch_value
from harness import ROOT, make_standin_bin, port_overrides, run_bundle

KIMI = ROOT / "tests" / "data" / "kimik2.5-tp4-flat.yaml"  # kimik2.5-tp4 written out flat (builds for both targets; test_profiles holds it equal)
# Every character at which str.splitlines (so Jinja's indent, and many readers) ends a line.
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"


def recipec(*args: str, cwd: Path | None = None):
    """recipec in this process: (exit code, stdout, stderr); a traceback fails the test."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback
        raise AssertionError("recipec raised:\n" + "".join(traceback.format_exception(result.exception)))
    return result.exit_code, result.stdout, result.stderr


def kimi(**changes) -> dict:
    """kimik2.5 with a client step in place of its benchmark (the values below reach the client's
    argv and env; tests/faults/test_bench.py holds the benchmark's), changed as given."""
    recipe = yaml.safe_load(KIMI.read_text())
    del recipe["benchmark"]
    recipe["client"] = {"command": ["vllm", "bench", "serve", "--base-url", "${ROUTER_URL}"]}
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = recipe
        for key in parents:
            node = node.setdefault(key.replace("_", "-"), {})
        node[last.replace("_", "-")] = value
    return recipe


def write_recipe(folder: Path, recipe: dict | str, name: str = "r.yaml") -> Path:
    path = folder / name
    path.write_text(recipe if isinstance(recipe, str) else yaml.safe_dump(recipe, allow_unicode=False, width=10**6))
    return path


# 1. SLURM directives: a line break in a value would end the #SBATCH comment and run the next line.

@pytest.mark.parametrize("field", ["slurm__partition", "slurm__account", "slurm__extra_directives", "image"])
@pytest.mark.parametrize("brk", ["\n", "\r", "\u2028", "\x85"])
def test_a_line_break_in_a_directive_value_is_refused_with_its_position(tmp_path, field, brk):
    marker = tmp_path / "pwned"
    value = f"gpux{brk}touch {marker}"
    recipe = kimi(**{field: {"mem": value} if field.endswith("directives") else value})
    code, out, err = recipec("build", str(write_recipe(tmp_path, recipe)), "-o", str(tmp_path / "b"))
    assert code == 1, err
    assert re.search(r"r\.yaml:\d+:\d+: RC100 .*must be one line", err), err
    assert len(err.strip().splitlines()) == 2, err  # the finding and the count, one line each
    assert not (tmp_path / "b").exists()


def sbatch_argument(line: str) -> str:
    """The argument sbatch reads from an `#SBATCH ARG` line (slurm's src/sbatch/opt.c _get_argument:
    backslash escapes the next byte, quotes group, an unquoted '#' or blank ends the argument)."""
    rest, out, quote, escape = line[len("#SBATCH "):].lstrip(), [], "", False
    for ch in rest:
        if escape:
            out.append(ch)
            escape = False
        elif ch == "\\":
            escape = True
        elif quote:
            if ch == quote:
                quote = ""
            else:
                out.append(ch)
        elif ch in "\"'":
            quote = ch
        elif ch == "#" or ch.isspace():
            break
        else:
            out.append(ch)
    return "".join(out)


def test_directive_values_reach_sbatch_as_written(tmp_path):
    odd = "gpu x#y\"z'w\\v %j"
    recipe = kimi(slurm__partition=odd, slurm__account="acct#1", slurm__extra_directives={"comment": "a b"})
    code, _, err = recipec("build", str(write_recipe(tmp_path, recipe)), "-o", str(tmp_path / "b"))
    assert code == 0, err
    lines = (tmp_path / "b" / "launch.sh").read_text().splitlines()
    got = {sbatch_argument(line).split("=", 1)[0]: sbatch_argument(line).split("=", 1)[1]
           for line in lines if line.startswith("#SBATCH ") and "=" in line}
    assert got["--partition"] == odd and got["--account"] == "acct#1" and got["--comment"] == "a b"


def test_sbatch_value_refuses_what_it_cannot_keep_on_one_line():
    for brk in LINE_BREAKS:
        with pytest.raises(ValueError):
            sbatch_value(f"a{brk}b")


# 2, 3. Findings: one line each in text and GitHub output; nothing a value holds becomes a command.

FORGED = "x\n::error file=forged.yaml,line=1::forged\r::add-mask::secret\u2028::stop-commands::t %0A 100%"


def hostile_changelog(tmp_path: Path) -> Path:
    entries = [{"config-keys": [f"kimik2.5-fp4-mi355x-vllm-disagg-agentic{brk}::error::k"],
                "description": [f"d{brk}::warning::d"], "pr-link": FORGED.replace("\n", brk)}
               for brk in LINE_BREAKS]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(entries, allow_unicode=False, width=10**6))
    return path


def test_github_format_cannot_be_forged_by_a_value(tmp_path):
    changelog = hostile_changelog(tmp_path)
    code, as_json, _ = recipec("lint", "kimik2.5", "--changelog", str(changelog), "--format", "json")
    findings = json.loads(as_json)
    assert code == 1 and len(findings) >= len(LINE_BREAKS)
    code, out, _ = recipec("lint", "kimik2.5", "--changelog", str(changelog), "--format", "github")
    assert code == 1
    lines = out.splitlines()
    assert lines == out.split("\n")[:-1]  # no line break of any kind inside a line
    assert len(lines) == len(findings)
    command = re.compile(r"^::(error|warning) file=([^,:]*),line=\d+,col=\d+,title=(RC\d{3})::(.*)$")
    for line, finding in zip(lines, findings):
        m = command.match(line)
        assert m, line
        # What GitHub's runner decodes is the message itself (other line breaks shown as escapes).
        expected = finding["message"] + (f" ({finding['hint']})" if finding["hint"] else "")
        assert m.group(4) == github_data(expected)
        assert m.group(2) == github_property(finding["path"])
    forged = [line for line in lines if "forged" in line]
    assert forged and all(line.startswith("::error file=") and "RC510" in line for line in forged)


def test_text_format_is_one_line_per_finding(tmp_path):
    changelog = hostile_changelog(tmp_path)
    _, as_json, _ = recipec("lint", "kimik2.5", "--changelog", str(changelog), "--format", "json")
    code, out, _ = recipec("lint", "kimik2.5", "--changelog", str(changelog))
    assert code == 1
    assert out.splitlines() == out.split("\n")[:-1]
    assert len(out.splitlines()) == len(json.loads(as_json))
    assert all(re.match(r"^\S*c\.yaml:\d+:\d+: RC\d{3} ", line) for line in out.splitlines()), out


def test_a_file_named_like_a_workflow_command_is_not_one_in_text_output(tmp_path, monkeypatch):
    """A runner reads any log line starting with '::' as a command: such a path is written ./::..."""
    name = "::stop-commands::x.yaml"
    (tmp_path / name).write_text("name: [\n")
    monkeypatch.chdir(tmp_path)  # no project here: the path is shown as given
    code, out, err = recipec("lint", name)
    assert code == 1
    assert not [line for line in (out + err).splitlines() if line.startswith("::")], out + err
    assert out.startswith("./::stop-commands::x.yaml:2:1: RC001 "), out + err


def test_a_build_error_is_one_line_too(tmp_path):
    code, _, err = recipec("build", "kimik2.5", "-o", str(tmp_path / "b"),
                           "--set", "slurm.partition=\"a\\u2028b\\nc\"")
    assert code == 1
    assert err.splitlines() == err.split("\n")[:-1] and len(err.splitlines()) == 2, err


def test_escape_functions_per_format():
    assert github_data("50% a\r\nb") == "50%25 a%0D%0Ab"
    assert github_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    for brk in LINE_BREAKS:
        for escaped in (finding_text(f"a{brk}b"), github_data(f"a{brk}b"), github_property(f"a{brk}b")):
            assert len(f"x{escaped}y".splitlines()) == 1, (brk, escaped)
    assert finding_text("lone \udcff and \x1b[2J") == "lone \\udcff and \\x1b[2J"


# 4. Unicode line breaks reach a process as the very characters the recipe holds.

@pytest.mark.parametrize("brk", list(LINE_BREAKS) + ["\t", "\x1b", "\x7f", "\u202e"])
def test_bash_word_carries_every_line_break_literally(brk):
    value = f"a{brk}b 'q' \\ $(x)"
    word = bash_word(value)
    assert word.splitlines() == [word]
    got = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True).stdout
    assert got == value.encode("utf-8")


@pytest.mark.parametrize("target", ["local", "slurm"])
def test_no_rendered_line_holds_a_unicode_line_break(tmp_path, target):
    value = "x" + "y".join(LINE_BREAKS) + "z"
    recipe = kimi(client__env={"ODD": value}, engine__args={"chat-template": value})
    recipe["client"]["command"] += ["--metadata", value]
    code, _, err = recipec("build", str(write_recipe(tmp_path, recipe)), "--target", target,
                           "-o", str(tmp_path / "b"))
    assert code == 0, err
    carried = 0
    for script in (tmp_path / "b").glob("*.sh"):
        text = script.read_text()
        assert text.splitlines() == text.split("\n")[:-1], script.name
        check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        # Each engine's --chat-template word, as bash reads it, is the recipe's value.
        for line in text.splitlines():
            if line.strip().startswith("--chat-template "):
                word = line.strip()[len("--chat-template "):].removesuffix(" \\")
                got = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True).stdout
                assert got == value.encode(), (script.name, line)
                carried += 1
    assert carried >= 2


@pytest.mark.faults
def test_unicode_line_breaks_reach_the_client_and_services_literally(tmp_path):
    value = "x" + "y".join(LINE_BREAKS) + "z"
    recipe = kimi(client__env={"ODD": value}, lmcache__args={"instance-id": value})
    recipe["client"]["command"] += ["--metadata", value]
    sets, _ = port_overrides()
    args = ["build", str(write_recipe(tmp_path, recipe)), "--target", "local", "-o", str(tmp_path / "b")]
    for s in sets:
        args += ["--set", s]
    code, _, err = recipec(*args)
    assert code == 0, err
    record = tmp_path / "record"
    record.mkdir()
    run = run_bundle(tmp_path / "b", make_standin_bin(tmp_path / "bin"), env={"STANDIN_RECORD": str(record)})
    assert run.returncode == 0, run.stderr
    calls = [json.loads(p.read_text()) for p in record.glob("*.json")]
    client = next(c for c in calls if c["argv"][:2] == ["bench", "serve"])
    assert client["argv"][client["argv"].index("--metadata") + 1] == value
    assert client["env"]["ODD"] == value
    lmcache = next(c for c in calls if c["prog"] == "lmcache")
    assert lmcache["argv"][lmcache["argv"].index("--instance-id") + 1] == value


# 6. Bad values are findings with a position, never tracebacks.

@pytest.mark.parametrize("override, expect", [
    ("name=2001-13-45", r"^--set name=2001-13-45:1:1: invalid value: month must be in 1\.\.12$"),
    ("name=" + "1" * 4400, r"^--set name=\.\.\.:1:1: invalid value: an integer of 4400 digits \(Python converts at most 4300\)$"),
    ("benchmark.concurrency.²=x", r"^--set 'benchmark\.concurrency\.²=x': no list item ²$"),
    ('engine.env.X="\\uD800"', r"^--set engine\.env\.X=\"\\uD800\":1:4: invalid YAML"),
    ("engine.env.X=\udcff", r"^--set engine\.env\.X=\\udcff:1:1: not UTF-8 text \(byte 0xff\)$"),
    ("engine.env.X=!!bool maybe", r"^--set engine\.env\.X=!!bool maybe:1:1: invalid value: 'maybe' is not a !!bool$"),
    ("engine.env.X=!!timestamp soon", r"invalid value: 'soon' is not a !!timestamp$"),
    ("engine.env.X=!!seq x", r"YAML tag 'tag:yaml\.org,2002:seq' is not allowed on a scalar$"),
    ('engine.env.X="a\\0b"', r"^--set engine\.env\.X=\"a\\0b\":1:1: a NUL character"),
])
def test_bad_set_values_are_usage_errors_with_a_position(tmp_path, override, expect):
    code, out, err = recipec("build", "kimik2.5", "-o", str(tmp_path / "b"), "--set", override)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and re.search(expect, err.strip()), err
    assert not (tmp_path / "b").exists()


def test_a_set_index_is_ascii_digits_and_keys_stay_text(tmp_path):
    out = tmp_path / "b"
    code, _, err = recipec("build", "kimik2.5-tp4", "--target", "local", "-o", str(out),
                           "--set", "benchmark.concurrency.0=4", "--set", "engine.env.1X=1")
    assert code == 1 and "engine.env.1X: '1X' does not match" in err, err  # a key, validated as one
    code, _, err = recipec("build", "kimik2.5-tp4", "--target", "local", "-o", str(out),
                           "--set", "benchmark.concurrency.0=4")
    assert code == 0, err
    assert json.loads((out / "bundle.json").read_text())["benchmark"]["points"][0]["concurrency"] == 4


@pytest.mark.parametrize("tagged, message", [
    ("!!bool maybe", "invalid value: 'maybe' is not a !!bool"),
    ("!!timestamp soon", "invalid value: 'soon' is not a !!timestamp"),
    ("!!omap x", "YAML tag 'tag:yaml.org,2002:omap' is not allowed on a scalar"),
])
def test_explicit_tags_their_constructor_rejects(tmp_path, tagged, message):
    text = KIMI.read_text().replace("description: >-", f"x-tagged: {tagged}\ndescription: >-", 1)
    code, _, err = recipec("build", str(write_recipe(tmp_path, text)), "-o", str(tmp_path / "b"))
    assert code == 1 and re.search(rf"r\.yaml:8:11: {re.escape(message)}$", err.strip()), err
    changelog = tmp_path / "c.yaml"
    changelog.write_text(f"- config-keys: [x]\n  description: [{tagged}]\n  pr-link: x\n")
    code, out, err = recipec("lint", "kimik2.5", "--changelog", str(changelog))
    assert code == 1 and re.search(rf"c\.yaml:2:17: RC001 {re.escape(message)}", out), out + err


@pytest.mark.parametrize("value, shown", [("2001-01-01", "date ('2001-01-01')"),
                                          ("2001-01-01 10:00:00", "timestamp ('2001-01-01 10:00:00')"),
                                          ("!!binary aGk=", "!!binary (b'hi')")])
def test_non_json_values_where_json_is_passed_on(tmp_path, value, shown):
    text = KIMI.read_text().replace("mooncake_protocol: tcp\n      # lmcache",
                                    f"mooncake_protocol: tcp\n          when: {value}\n      # lmcache", 1)
    text = text.replace("block-size: 1\n", f"block-size: 1\n    compilation-config: {{level: [{value}]}}\n", 1)
    code, _, err = recipec("build", str(write_recipe(tmp_path, text)), "-o", str(tmp_path / "b"))
    assert code == 1, err
    lines = err.strip().splitlines()
    assert re.search(rf"r\.yaml:31:34: RC100 engine\.args\.compilation-config\.level\.0: a YAML "
                     rf"{re.escape(shown)} where text", lines[0]), err
    assert re.search(rf"r\.yaml:61:17: RC100 prefill\.kv-transfer\.connectors\.0\.extra-config\.when: "
                     rf"a YAML {re.escape(shown)}", lines[1]), err
    assert lines[2:] == ["recipec: 2 error(s)"], err


@pytest.mark.parametrize("target", ["local", "slurm"])
def test_a_trailing_newline_does_not_let_a_word_out_bare(tmp_path, target):
    # Found by tests/test_adversarial.py: `^[safe]+$` also matches "x\n" ($ matches before a final
    # newline), so the word went out unquoted and its newline ended the command: the next words of
    # the same line then ran as a command of their own.
    marker = tmp_path / "pwned"
    recipe = kimi()
    recipe["client"]["command"] = ["vllm", "bench\n", "touch", str(marker), "--base-url", "x"]
    recipe["engine"]["args"]["tokenizer"] = "t\n"
    code, _, err = recipec("build", str(write_recipe(tmp_path, recipe)), "--target", target,
                           "-o", str(tmp_path / "b"))
    assert code == 0, err
    for script in (tmp_path / "b").glob("*.sh"):
        check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    launch = (tmp_path / "b" / ("launch.sh" if target == "local" else "node.sh")).read_text()
    assert "$'t\\012'" in launch
    if target == "local":
        assert "vllm $'bench\\012' touch" in launch
