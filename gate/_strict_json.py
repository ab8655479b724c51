"""Reading untrusted JSON the one way every reader reads it.

RFC 8259 leaves a repeated key to the reader and has no NaN or infinity; Python's json keeps the
last of repeated keys and reads ``NaN``, ``Infinity`` and ``1e400`` as floats, and keeps an escaped
UTF-16 surrogate that has no partner. A document gate stores must mean to every later reader what
it meant to gate when it was checked, so such documents are refused (scanner reports, SBOMs,
registry answers, SonarQube answers).
"""

from __future__ import annotations

import math
import re
from typing import Any

SURROGATE = re.compile("[\ud800-\udfff]")
"""A UTF-16 surrogate: no Unicode character, and UTF-8 cannot encode it."""

# Only an escape can put a surrogate into decoded JSON (strict UTF-8 decoding refuses one
# written as bytes), so a document without one needs no walk.
_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


class DuplicateKey(ValueError):
    """A JSON object repeats a key (the message names it)."""


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
                raise DuplicateKey(f"the key {shown!r} appears twice in one object; expected unique keys")
            seen.add(key)
    return obj


def finite_float(text: str) -> float:
    """``parse_float`` for json.loads: ValueError for a number beyond a double's range (``1e400``)."""
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ValueError(f"the number {shown} is beyond a double's range")
    return value


def lone_surrogate(raw: str | bytes, value: Any) -> str | None:
    """The first lone surrogate in the strings and keys of ``value``, decoded from the JSON ``raw``.

    json.loads joins an escaped high and low surrogate into one character but keeps a lone
    escape as it is; the store, hashes and re-serialisation then fail on it. The walk (a stack:
    ``value`` may be nested as deep as json allows) runs only when ``raw`` holds such an escape.
    """
    escaped = _ESCAPE_BYTES.search(raw) if isinstance(raw, bytes) else _ESCAPE.search(raw)
    if escaped is None:
        return None
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
