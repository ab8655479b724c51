"""The one reader of untrusted JSON: every refusal is a StrictJsonError with a bounded reason."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate._kube import answer_object
from gate._strict_json import StrictJsonError, loads
from scanners._errors import InvalidReport
from scanners._process import check_json

LENIENT: dict[str, bool] = {
    "any_encoding": True,
    "allow_duplicate_keys": True,
    "allow_non_finite": True,
    "allow_lone_surrogates": True,
}
LIMIT = sys.get_int_max_str_digits()


def _refusal(raw: str | bytes, **options: bool) -> StrictJsonError:
    with pytest.raises(StrictJsonError) as caught:
        loads(raw, **options)
    assert isinstance(caught.value, ValueError)
    assert len(caught.value.reason) < 300
    assert str(caught.value) == caught.value.reason
    return caught.value


def test_text_that_is_not_json_is_refused_with_its_line_and_column() -> None:
    error = _refusal(b'{"a": 1,\n  "b": }')
    assert (error.kind, error.line, error.column, error.detail) == ("syntax", 2, 8, "Expecting value")
    assert error.reason == (
        "text that is not JSON at line 2, column 8 (Expecting value), expected one JSON document"
    )


def test_nesting_past_the_recursion_limit_is_a_refusal_not_a_recursion_error() -> None:
    error = _refusal(b"[" * 100_000, **LENIENT)
    assert error.kind == "depth"
    assert "nested too deeply" in error.reason


@pytest.mark.parametrize(("number", "digits"), [(b"9" * 5000, 5000), (b"-" + b"1" * 4400, 4400)])
def test_an_integer_past_the_digit_limit_is_refused_with_its_length(number: bytes, digits: int) -> None:
    error = _refusal(b'{"ok": [1, 2], "n": ' + number + b"}", **LENIENT)
    assert error.kind == "integer"
    assert error.reason == f"an integer of {digits} digits, expected at most {LIMIT}"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [(b"[NaN]", "NaN"), (b'{"a": -Infinity}', "-Infinity"), (b"[1e400]", "1e400"), (b"[-1e999]", "-1e999")],
)
def test_nan_infinity_and_numbers_beyond_a_double_are_refused_unless_allowed(raw: bytes, shown: str) -> None:
    error = _refusal(raw)
    assert error.kind == "non_finite"
    assert shown in error.reason
    assert repr(loads(raw, allow_non_finite=True)) == repr(json.loads(raw))


def test_a_repeated_key_is_refused_with_a_bounded_name_unless_allowed() -> None:
    key = "k" * 10_000
    raw = json.dumps({"outer": 1}).replace("}", f', "{key}": 1, "{key}": 2}}')
    error = _refusal(raw)
    assert error.kind == "duplicate_key"
    assert error.reason.startswith("duplicate key 'kkkk")
    assert loads(raw, allow_duplicate_keys=True)[key] == 2


@pytest.mark.parametrize(
    "raw",
    [
        b'["\\ud800"]',
        b'{"\\uDFFF": 1}',
        b'{"a": ["x", {"b": "\\udc00\\ud800"}]}',
        # Encoded as bytes rather than escaped: json decodes bytes with "surrogatepass".
        '["\ud800"]'.encode("utf-8", "surrogatepass"),
    ],
)
def test_a_lone_surrogate_escaped_or_encoded_is_refused_unless_allowed(raw: bytes) -> None:
    error = _refusal(raw, any_encoding=True)
    assert error.kind == "lone_surrogate"
    assert "lone UTF-16 surrogate" in error.reason
    assert loads(raw, any_encoding=True, allow_lone_surrogates=True) == json.loads(raw)


def test_a_surrogate_pair_and_an_escaped_backslash_before_u_are_read() -> None:
    assert loads(b'["\\ud83d\\udca5", "\\\\ud800"]') == ["\U0001f4a5", "\\ud800"]


@pytest.mark.parametrize(
    "raw",
    [b"\xef\xbb\xbf{}", '{"a": 1}'.encode("utf-16"), '{"a": 1}'.encode("utf-32-le")],
    ids=["utf-8-bom", "utf-16", "utf-32"],
)
def test_bytes_must_be_plain_utf8_unless_any_encoding_is_asked_for(raw: bytes) -> None:
    assert _refusal(raw).kind in ("encoding", "syntax")
    assert loads(raw, any_encoding=True) == json.loads(raw)


def test_bytes_that_are_not_utf8_are_refused_at_their_offset() -> None:
    error = _refusal(b'{"a": "\xff"}')
    assert (error.kind, error.offset) == ("encoding", 7)
    assert error.reason == "bytes that are not UTF-8 (byte 7), expected UTF-8 text"


def _same(raw: bytes) -> tuple[str, Any]:
    try:
        return "value", repr(json.loads(raw))
    except (ValueError, RecursionError):
        return "refused", None


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=64),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
            ),
            max_leaves=12,
        ).map(lambda value: json.dumps(value).encode()),
    )
)
def test_with_every_tolerance_loads_reads_exactly_what_json_loads_reads(raw: bytes) -> None:
    expected = _same(raw)
    try:
        got: tuple[str, Any] = ("value", repr(loads(raw, **LENIENT)))
    except StrictJsonError:
        got = ("refused", None)
    assert got == expected


# -- readers that wrap the refusal ---------------------------------------------------------------


def test_an_api_server_answer_with_a_huge_integer_says_so() -> None:
    with pytest.raises(ValueError, match=r"^not JSON gate can read \(got an integer of 5000 digits"):
        answer_object(b'{"a":' + b"9" * 5000 + b"}", 1 << 20)


def test_a_scanner_report_with_a_huge_integer_names_its_length_and_the_limit() -> None:
    with pytest.raises(InvalidReport, match=f"got an integer of 5000 digits, expected at most {LIMIT}$"):
        check_json("trivy", b'{"a": [' + b"9" * 5000 + b"]}", "report trivy.json")
