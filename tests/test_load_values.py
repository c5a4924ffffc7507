"""load.py's builder takes common scalars without PyYAML's constructor calls (plain decimal ints,
string keys): what it makes must be exactly what PyYAML's safe loader makes, and what it refuses
must still be refused."""

from __future__ import annotations

import pytest
import yaml

from recipec.errors import LoadError
from recipec.load import load_text

VALUES = ["0", "7", "007", "010", "0o17", "0x1F", "0b101", "1_000", "+5", "-5", "190:20:30", "9" * 18, "9" * 19,
          "12345678901234567890123", "1.5", "1e3", ".inf", "true", "no", "~", "null", "'12'", '"12"',
          "'0'", "2001-01-01", "١٢", "x12", "!!int 12", "!!str 12", "!!int 0x10"]


@pytest.mark.parametrize("value", VALUES)
def test_a_value_loads_as_pyyaml_loads_it(value):
    text = f"a: {value}\nb: [{value}]\n"
    expected = yaml.safe_load(text)
    got = load_text(text, "t.yaml").data
    assert got == expected and [type(v) for v in got.values()] == [type(v) for v in expected.values()]
    assert type(got["b"][0]) is type(expected["b"][0])


@pytest.mark.parametrize("key", ["a", "'a b'", '"a b"', "a-b.c", "'12'", "12", "007", "true", "1.5", "|-\n  a"])
def test_a_key_loads_as_pyyaml_loads_it_made_a_string(key):
    text = f"{key}: 1\n" if "\n" not in key else f"? {key}\n: 1\n"
    (expected,) = yaml.safe_load(text)
    assert load_text(text, "t.yaml").data == {str(expected): 1}


@pytest.mark.parametrize("text, message", [
    ('"a\\0b": 1\n', "t.yaml:1:1: a NUL character"),
    ("<<: {a: 1}\n", "t.yaml:1:1: YAML merge keys (<<) are not allowed in recipes"),
    ("[a]: 1\n", "t.yaml:1:1: mapping keys must be plain scalars"),
    ("~: 1\n", "t.yaml:1:1: mapping keys must be plain scalars"),
    ("a: 1\na: 2\n", "t.yaml:2:1: duplicate key 'a' (first defined at line 1)"),
    ("a: !!int 12x\n", "t.yaml:1:4: invalid value"),
    ("a: &x 1\nb: *x\n", "t.yaml:2:1: YAML aliases (*name) are not allowed in recipes"),
    ("a: " + "9" * 5000 + "\n", "t.yaml:1:4: invalid value: an integer of 5000 digits"),
])
def test_what_the_builder_refuses(text, message):
    with pytest.raises(LoadError) as caught:
        load_text(text, "t.yaml")
    assert str(caught.value).startswith(message), str(caught.value)
