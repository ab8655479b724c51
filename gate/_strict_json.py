"""Reading untrusted JSON the one way every reader reads it.

RFC 8259 leaves a repeated key to the reader and has no NaN or infinity; Python's json keeps the
last of repeated keys and reads ``NaN``, ``Infinity`` and ``1e400`` as floats. A document gate
stores must mean to every later reader what it meant to gate when it was checked, so such
documents are refused (scanner reports, SBOMs).
"""

from __future__ import annotations

import math
from typing import Any


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
