"""Plain YAML scalars are typed as kubectl, the API server and Kyverno type them (go-yaml v2)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policies._errors import PolicyLoadError
from policies._plain_scalars import plain_value
from policies._yaml import KubernetesDumper, parse_documents


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # YAML 1.1's booleans, y and n included (go-yaml v2 keeps them).
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("yes", True),
        ("No", False),
        ("on", True),
        ("OFF", False),
        ("y", True),
        ("n", False),
        ("yEs", "yEs"),
        ("t", "t"),
        ("~", None),
        ("null", None),
        ("", None),
        # No sexagesimal numbers.
        ("1:30", "1:30"),
        ("190:20:30", "190:20:30"),
        # Go's integer syntax with base prefixes (underscores dropped first).
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("1_000", 1000),
        ("0x1F", 31),
        ("0o17", 15),
        ("0b101", 5),
        ("-0b101", -5),
        ("0777", 511),
        ("0", 0),
        ("-0", 0),
        ("9223372036854775807", 9223372036854775807),
        ("18446744073709551615", 18446744073709551615),  # uint64 still
        # Past 64 bits, or signed past int64: a float.
        ("+18446744073709551615", 1.8446744073709552e19),
        ("99999999999999999999999", 1e23),
        ("-9223372036854775809", -9.223372036854775809e18),
        # Floats of Go's yamlStyleFloat form: no dot needed, unsigned exponent allowed.
        ("1e3", 1000.0),
        ("1E+3", 1000.0),
        ("2.5", 2.5),
        ("1.", 1.0),
        (".5", 0.5),
        ("-.5", -0.5),
        ("+.5e1", 5.0),
        ("08", 8.0),
        ("1e-400", 0.0),
        # Not numbers to Go.
        ("1e400", "1e400"),
        ("0x", "0x"),
        ("0xFFFFFFFFFFFFFFFFFF", "0xFFFFFFFFFFFFFFFFFF"),
        ("0x1p-2", "0x1p-2"),
        ("1e", "1e"),
        ("2024-01-01", "2024-01-01"),
        ("2024-01-01T10:00:00Z", "2024-01-01T10:00:00Z"),
        ("_1", "_1"),
        (".5_0", ".5_0"),
        ("-", "-"),
        ("1.2.3", "1.2.3"),
        ("v1", "v1"),
    ],
)
def test_plain_scalars_are_typed_as_kubernetes_types_them(text: str, expected: Any) -> None:
    value = plain_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_yaml_spellings_of_nan_and_infinity_are_numbers_to_go() -> None:
    assert math.isnan(plain_value(".NaN"))
    assert plain_value("+.inf") == math.inf
    assert plain_value("-.INF") == -math.inf


def _load(text: str) -> Any:
    return next(parse_documents(text, "file.yaml")).data


def test_a_document_gets_kubernetes_types_and_quoted_or_tagged_scalars_keep_theirs() -> None:
    data = _load('enabled: yes\nwindow: 1:30\nlimit: 1e3\nquoted: "1e3"\ntagged: !!int "7"\nstr: !!str 5\n')
    assert data == {
        "enabled": True,
        "window": "1:30",
        "limit": 1000.0,
        "quoted": "1e3",
        "tagged": 7,
        "str": "5",
    }


def test_keys_are_typed_then_written_as_text() -> None:
    assert _load("1: a\ntrue: b\nn: c\nnull: d\n") == {"1": "a", "true": "b", "false": "c", "null": "d"}


def test_merge_keys_still_merge_and_a_lone_merge_spelling_is_text() -> None:
    data = _load("base: &b {x: 1}\nuse:\n  <<: *b\n  q: 2\nodd: <<\n")
    assert data["use"] == {"x": 1, "q": 2}
    assert data["odd"] == "<<"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("value: .nan", r"file.yaml:2: spec.value: expected a JSON number, got '.nan'"),
        ("value: -.inf", r"file.yaml:2: spec.value: expected a JSON number, got '-.inf'"),
        ("value: !!float 1e400", r"file.yaml:2: spec.value: expected a JSON number, got '1e400'"),
    ],
)
def test_values_json_cannot_hold_are_load_errors_naming_line_and_field(line: str, message: str) -> None:
    with pytest.raises(PolicyLoadError, match=message):
        _load(f"spec:\n  {line}\n")


def test_explicit_timestamps_keep_their_text_and_binary_data_becomes_its_text() -> None:
    # go-yaml v2 reads both into strings when the target is untyped; JSON mends bad UTF-8.
    data = _load("a: !!timestamp 2024-01-01\nb: !!binary aGVsbG8=\nc: !!binary /w==\n")
    assert data == {"a": "2024-01-01", "b": "hello", "c": "\ufffd"}


def test_explicit_integers_past_64_bits_become_floats() -> None:
    assert _load("a: !!int 99999999999999999999999\n") == {"a": 1e23}


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="0123456789+-._xXoObBeE:yYnN~aF", max_size=14) | st.text(max_size=10))
def test_any_plain_text_types_without_failing(text: str) -> None:
    value = plain_value(text)
    assert value is None or isinstance(value, (bool, int, float, str))
    if isinstance(value, int) and not isinstance(value, bool):
        assert -(2**63) <= value <= 2**64 - 1


_WORDS = st.sampled_from(["1e3", "y", "n", "yes", "Off", "0o17", "08", "1:30", "-.5", ".nan", "~", "null"])
_TEXT = _WORDS | st.text(max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_TEXT, _TEXT | st.integers(-(2**63), 2**63 - 1), max_size=6))
def test_what_the_kubernetes_dumper_writes_reads_back_the_same(data: dict[str, Any]) -> None:
    # What `gate audit reports` prints is read by kubectl: a string must stay a string.
    text = yaml.dump(data, Dumper=KubernetesDumper)
    assert _load(text) == data


def test_strings_kubernetes_would_type_are_quoted_and_plain_text_is_not() -> None:
    assert yaml.dump({"a": "1e3", "b": "y", "c": "plain text"}, Dumper=KubernetesDumper) == (
        "a: '1e3'\nb: 'y'\nc: plain text\n"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Past 64 bits whatever the digits; int() raised ValueError on these (4,300 digits or more).
        ("9" * 5000, "9" * 5000),
        ("-" + "9" * 4400, "-" + "9" * 4400),
    ],
)
def test_plain_scalars_of_thousands_of_digits_are_typed_without_converting_them_whole(
    text: str, expected: Any
) -> None:
    assert plain_value(text) == expected
    [document] = parse_documents(f"a: {text}\n", "long.yaml")
    assert document.data == {"a": expected}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("!!bool maybe", "cannot read 'maybe' as a boolean"),
        ("!!float abc", "cannot read 'abc' as a number"),
        ("!!int abc", "cannot read 'abc' as an integer"),
        ("!!int ''", "cannot read '' as an integer"),
        ("!!int " + "9" * 5000, "(5000 characters) as an integer"),
    ],
)
def test_a_tagged_scalar_its_tag_cannot_read_is_a_load_error_naming_the_line(
    value: str, problem: str
) -> None:
    # PyYAML's constructors raised KeyError, ValueError and IndexError out of the loader.
    with pytest.raises(PolicyLoadError) as caught:
        list(parse_documents(f"x: 1\na: {value}\n", "tagged.yaml"))
    assert caught.value.line == 2
    assert problem in caught.value.problem
