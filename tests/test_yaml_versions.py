"""recipec's own load limits hold whatever the YAML library does.

PyYAML 6.0.4 started refusing deep flow nesting in its scanner (at 1,000 levels, with its own words
and position) before it hands over a single event; 6.0.3 does not. The same input must give
recipec's own message at the same position under both. Each input is loaded in a fresh interpreter
once with the installed PyYAML and once with the one in $RECIPEC_PYYAML_ALT (a `pip install --target`
folder; CI makes it with PyYAML 6.0.3 from requirements/pyyaml-alt.txt), and the answers must match
the expected text exactly. Without that folder the alternative run is skipped (CI requires it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

INPUTS = {
    # name: (text, the one line recipec must answer with)
    "flow-100k": ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "flow-100k:1:36: nested deeper than 32 levels"),
    "flow-1500-small": ("a: " + "[" * 1500 + "]" * 1500 + "\n", "flow-1500-small:1:36: nested deeper than 32 levels"),
    "flow-unclosed": ("a: " + "[" * 1500 + "\n", "flow-unclosed:1:36: nested deeper than 32 levels"),
    "mapping-20k": ("a: " + "{b: " * 20_000 + "1" + "}" * 20_000 + "\n",
                    "mapping-20k:1:132: nested deeper than 32 levels"),
    "block-200k": ("- " * 200_000 + "x\n", "block-200k:1:67: nested deeper than 32 levels"),
    "under-quotes": ("a: '" + "[" * 40 + "'\nb: " + "[" * 1500 + "\n",
                     "under-quotes:2:36: nested deeper than 32 levels"),
    "under-comment": ("# " + "[" * 40 + "\nb: " + "[" * 1500 + "\n",
                      "under-comment:2:36: nested deeper than 32 levels"),
    "in-block": ("x:\n  y:\n    - " + "[" * 1200 + "]" * 1200 + "\n", "in-block:3:37: nested deeper than 32 levels"),
    "limit-exactly": ("a: " + "[" * 32 + "]" * 32 + "\n", "loaded"),
    "limit-exactly-large": ("a: " + "[" * 32 + "]" * 32 + "\n#" + "x" * 20_000 + "\n", "loaded"),
    "syntax-first": ("a: [b\nc: ]]]\n" + "[" * 1500 + "\n", None),  # a YAML error before the depth
}

_DRIVER = """
import json, sys
import yaml
from recipec.errors import LoadError
from recipec.load import load_text
out = {"version": yaml.__version__}
for name, text in json.load(sys.stdin).items():
    try:
        load_text(text, name)
        out[name] = "loaded"
    except LoadError as exc:
        out[name] = str(exc)
json.dump(out, sys.stdout)
"""


def _answers(pythonpath: str | None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps({k: v[0] for k, v in INPUTS.items()}),
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _alt() -> str | None:
    folder = os.environ.get("RECIPEC_PYYAML_ALT")
    if not folder:
        if os.environ.get("CI"):
            pytest.fail("RECIPEC_PYYAML_ALT is not set: CI must test the other PyYAML too (.ci/run)")
        pytest.skip("RECIPEC_PYYAML_ALT not set (a `pip install --target` folder with another PyYAML)")
    return folder


@pytest.fixture(scope="module", params=["installed", "alternative"])
def answers(request) -> dict:
    return _answers(None if request.param == "installed" else _alt())


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_same_answer_under_every_pyyaml(answers, name):
    expected = INPUTS[name][1]
    if expected is None:
        assert answers[name].startswith("syntax-first:2:") and "invalid YAML" in answers[name], answers[name]
    else:
        assert answers[name] == expected, (answers["version"], answers[name])


def test_the_alternative_is_another_version():
    assert _answers(_alt())["version"] != _answers(None)["version"]
