"""requirements/ci.lock is one constraints file for every Python pyproject allows: the README's
`pip install -c requirements/ci.lock -e '.[test]'` must resolve on 3.10 (the floor) as on 3.11+.
CI installs it for real on 3.10 and 3.11 (.ci/run); this checks the file's shape for each version:
exactly one pin of each package applies, and the compiler's and the tests' dependencies are pinned.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
NEEDED = ("click", "jinja2", "jsonschema", "pydantic", "pydantic-core", "pyyaml", "pytest", "hypothesis",
          "matplotlib", "numpy", "pip", "setuptools")


def pins_for(version: str) -> dict[str, list[str]]:
    env = {"python_version": ".".join(version.split(".")[:2]), "python_full_version": version,
           "sys_platform": "linux", "os_name": "posix", "platform_system": "Linux"}
    pins: dict[str, list[str]] = {}
    for line in (ROOT / "requirements" / "ci.lock").read_text().splitlines():
        text = re.sub(r"\s+#.*$", "", line).strip()
        if not text or text.startswith("#"):
            continue
        req = Requirement(text)
        assert len(req.specifier) == 1 and next(iter(req.specifier)).operator == "==", line
        if req.marker is None or req.marker.evaluate(env):
            pins.setdefault(req.name.lower(), []).append(str(req.specifier))
    return pins


@pytest.mark.parametrize("version", ["3.10.0", "3.10.13", "3.11.7", "3.12.1", "3.13.0"])
def test_one_pin_of_each_package_applies_on_every_supported_python(version):
    pins = pins_for(version)
    assert {name: specs for name, specs in pins.items() if len(specs) > 1} == {}
    assert [name for name in NEEDED if name not in pins] == []
    assert ("tomli" in pins) == version.startswith("3.10.")  # tomllib from 3.11


def test_the_floor_and_ci_get_the_releases_each_was_resolved_for():
    # numpy 2.3 dropped Python 3.10: one lock must give 3.10 an older numpy, not fail to install.
    assert pins_for("3.10.13")["numpy"] != pins_for("3.11.7")["numpy"]
