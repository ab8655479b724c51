"""Reading untrusted JSON the one way every reader reads it.

RFC 8259 leaves a repeated key to the reader and has no NaN or infinity; Python's json keeps the
last of repeated keys and reads ``NaN``, ``Infinity`` and ``1e400`` as floats, and keeps an escaped
UTF-16 surrogate that has no partner. A document gate stores must mean to every later reader what
it meant to gate when it was checked, so such documents are refused (scanner reports, SBOMs,
registry answers, SonarQube answers).

:func:`loads` is the one way to parse such a document: every way json.loads can fail (syntax,
encoding, nesting past the recursion limit, integers past CPython's digit limit) and every
refusal above comes out as one :class:`StrictJsonError` with a bounded reason, which each
reader wraps in its own error.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any, Literal

SURROGATE = re.compile("[\ud800-\udfff]")
"""A UTF-16 surrogate: no Unicode character, and UTF-8 cannot encode it."""

# Only an escape can put a surrogate into decoded JSON (strict UTF-8 decoding refuses one
# written as bytes), so a document without one needs no walk.
_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


class DuplicateKey(ValueError):
    """A JSON object repeats a key (the message names it, ``key`` holds it)."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class NonFiniteNumber(ValueError):
    """A JSON number beyond a double's range (the message names it)."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for json.loads: the object, or DuplicateKey when a key repeats.

    A report whose secret hid in the first of two ``"Secret"`` keys was stored in clear: the
    parser saw only the second value, a placeholder, and kept the bytes as they were.
    """
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = key[:60].encode("utf-8", "backslashreplace").decode()
                raise DuplicateKey(
                    f"the key {shown!r} appears twice in one object; expected unique keys", key
                )
            seen.add(key)
    return obj


def finite_float(text: str) -> float:
    """``parse_float`` for json.loads: NonFiniteNumber for a number beyond a double's range (``1e400``)."""
    value = float(text)
    if math.isinf(value):
        raise NonFiniteNumber(f"the number {_bounded(text)} is beyond a double's range")
    return value


def _bounded(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "..."


def lone_surrogate(raw: str | bytes, value: Any) -> str | None:
    """The first lone surrogate in the strings and keys of ``value``, decoded from the JSON ``raw``.

    json.loads joins an escaped high and low surrogate into one character but keeps a lone
    escape as it is; the store, hashes and re-serialisation then fail on it. The walk (a stack:
    ``value`` may be nested as deep as json allows) runs only when ``raw`` holds such an escape.
    """
    escaped = _ESCAPE_BYTES.search(raw) if isinstance(raw, bytes) else _ESCAPE.search(raw)
    if escaped is None:
        return None
    return _first_surrogate(value)


def _first_surrogate(value: Any) -> str | None:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            found = SURROGATE.search(item)
            if found is not None:
                return found.group()
    return None


Refusal = Literal["encoding", "syntax", "depth", "integer", "non_finite", "duplicate_key", "lone_surrogate"]


class StrictJsonError(ValueError):
    """A document :func:`loads` refused; ``str(error)`` is ``reason``.

    Attributes:
        kind: which check refused it.
        reason: what was found and what was expected, as ``"<found>, expected <wanted>"`` (so a
            caller can put it after "got" or a colon); bounded, quoting at most a key's head.
        line, column: where a syntax error is (1-based); 0 for the other kinds.
        offset: the byte that does not decode (``encoding``) or the character a syntax error
            is at; -1 for the other kinds.
        detail: the parser's own words for a syntax error ("Expecting value"); "" otherwise.
    """

    def __init__(
        self,
        kind: Refusal,
        reason: str,
        *,
        line: int = 0,
        column: int = 0,
        offset: int = -1,
        detail: str = "",
    ) -> None:
        super().__init__(reason)
        self.kind: Refusal = kind
        self.reason = reason
        self.line = line
        self.column = column
        self.offset = offset
        self.detail = detail


class _Constant(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _LongInteger(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


def _count_long_integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _LongInteger(len(text.lstrip("-"))) from None


# A surrogate the decoder let through as a character (json decodes bytes with "surrogatepass")
# or one written as an escape: a document with neither needs no walk.
_SURROGATE_OR_ESCAPE = re.compile(f"{SURROGATE.pattern}|{_ESCAPE.pattern}")


def loads(
    raw: str | bytes,
    *,
    any_encoding: bool = False,
    allow_duplicate_keys: bool = False,
    allow_non_finite: bool = False,
    allow_lone_surrogates: bool = False,
) -> Any:
    """The value of the JSON document ``raw``, or StrictJsonError saying why it is refused.

    Strict unless told otherwise; each ``allow_*`` keeps a tolerance a reader has always had.
    Hooks are passed only for the checks asked for: with a hook json's C scanner calls back
    into Python for every object or float, and reports of many megabytes are read this way.

    Args:
        raw: the document; bytes must be UTF-8 (a byte-order mark is refused).
        any_encoding: read bytes as json.loads does instead: UTF-8, UTF-16 or UTF-32 by their
            first bytes, a UTF-8 byte-order mark skipped, encoded surrogates decoded.
        allow_duplicate_keys: keep the last value of a repeated key.
        allow_non_finite: read ``NaN``, ``Infinity``, ``-Infinity`` and numbers beyond a double
            (``1e400``) as floats.
        allow_lone_surrogates: keep a surrogate without its partner in a string or key.

    Raises:
        StrictJsonError: ``kind`` says which check failed, ``reason`` what was wrong.
    """
    text = _decoded(raw, any_encoding)
    hooks: dict[str, Any] = {}
    if not allow_duplicate_keys:
        hooks["object_pairs_hook"] = unique_keys
    if not allow_non_finite:
        hooks["parse_constant"] = _refuse_constant
        hooks["parse_float"] = finite_float
    try:
        value = json.loads(text, **hooks)
    except json.JSONDecodeError as exc:
        raise StrictJsonError(
            "syntax",
            f"text that is not JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}), "
            "expected one JSON document",
            line=exc.lineno,
            column=exc.colno,
            offset=exc.pos,
            detail=exc.msg,
        ) from None
    except RecursionError:
        # json recurses once per level: "[" * 100000 exhausts the stack of whoever reads it.
        raise StrictJsonError(
            "depth", "JSON nested too deeply to parse, expected a document of ordinary depth"
        ) from None
    except DuplicateKey as exc:
        shown = exc.key[:60].encode("utf-8", "backslashreplace").decode()
        raise StrictJsonError(
            "duplicate_key", f"duplicate key {shown!r} in one object, expected unique keys"
        ) from None
    except _Constant as exc:
        raise StrictJsonError(
            "non_finite", f"the constant {exc.name}, expected a JSON number (JSON has no NaN or Infinity)"
        ) from None
    except NonFiniteNumber as exc:
        raise StrictJsonError("non_finite", f"{exc}, expected a finite number") from None
    except ValueError:
        # What is left is int()'s digit limit (sys.get_int_max_str_digits), which json lets
        # through without saying where; only such a document pays to be read again to count.
        raise _integer_too_long(text, hooks) from None
    if not allow_lone_surrogates and _SURROGATE_OR_ESCAPE.search(text) is not None:
        lone = _first_surrogate(value)
        if lone is not None:
            raise StrictJsonError(
                "lone_surrogate",
                f"a lone UTF-16 surrogate \\u{ord(lone):04x} in a string, "
                "expected a high and a low surrogate together",
            )
    return value


def loads_leniently(raw: str | bytes) -> Any:
    """:func:`loads` with every tolerance json.loads has: only what json.loads cannot read is refused.

    For readers that check the values themselves, or only that a document is complete (API server
    answers, scanner output before its parser): a syntax error, an encoding error, nesting past
    the recursion limit or an integer past the digit limit, as StrictJsonError.
    """
    return loads(
        raw, any_encoding=True, allow_duplicate_keys=True, allow_non_finite=True, allow_lone_surrogates=True
    )


def _decoded(raw: str | bytes, any_encoding: bool) -> str:
    if isinstance(raw, str):
        return raw
    # The same choice json.loads makes for bytes, made here so that the surrogate check sees
    # the text that was parsed.
    encoding, errors = (json.detect_encoding(raw), "surrogatepass") if any_encoding else ("utf-8", "strict")
    try:
        return raw.decode(encoding, errors)
    except UnicodeDecodeError as exc:
        name = exc.encoding.upper().removesuffix("-SIG")
        raise StrictJsonError(
            "encoding",
            f"bytes that are not {name} (byte {exc.start}), expected {name} text",
            offset=exc.start,
        ) from None


def _integer_too_long(text: str, hooks: dict[str, Any]) -> StrictJsonError:
    limit = sys.get_int_max_str_digits()
    try:
        json.loads(text, parse_int=_count_long_integer, **hooks)
    except _LongInteger as exc:
        return StrictJsonError("integer", f"an integer of {exc.digits} digits, expected at most {limit}")
    except (ValueError, RecursionError):
        pass
    return StrictJsonError("integer", f"an integer of more than {limit} digits, expected at most {limit}")
