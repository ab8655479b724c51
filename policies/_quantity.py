"""Kubernetes quantities and Go durations, compared exactly (as ``Fraction``)."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": Fraction(1, 10**9),
    "us": Fraction(1, 10**6),
    "µs": Fraction(1, 10**6),
    "μs": Fraction(1, 10**6),
    "ms": Fraction(1, 1000),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}


@lru_cache(maxsize=4096)
def parse_quantity(text: str) -> Fraction | None:
    """The value of a Kubernetes quantity (``1Gi``, ``500m``, ``1e3``), or None if it is not one."""
    found = _QUANTITY.match(text.strip()) if len(text) < 64 else None
    if found is None:
        return None
    number = Fraction(found.group(1))
    suffix = found.group(2) or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Fraction(10) ** int(suffix[1:])


@lru_cache(maxsize=4096)
def parse_duration(text: str) -> Fraction | None:
    """Seconds of a Go duration (``1h30m``, ``-5s``, ``0``), or None if it is not one."""
    if len(text) > 64 or not text:
        return None
    sign = Fraction(1)
    body = text
    if body[0] in "+-":
        sign = Fraction(-1) if body[0] == "-" else sign
        body = body[1:]
    if body == "0":
        return Fraction(0)
    if not body:
        return None
    total = Fraction(0)
    position = 0
    while position < len(body):
        found = _DURATION_PART.match(body, position)
        if found is None:
            return None
        total += Fraction(found.group(1)) * _DURATION_UNITS[found.group(2)]
        position = found.end()
    return sign * total


def exact_number(value: Any) -> Fraction | None:
    """A JSON number's exact value; None for NaN and the infinities (YAML's .nan and .inf)."""
    if type(value) is int:
        return Fraction(value)
    return Fraction(value) if math.isfinite(value) else None


def go_non_finite(value: float) -> str | None:
    """Go's text for NaN and the infinities (``NaN``, ``+Inf``, ``-Inf``); None for a finite number."""
    if math.isfinite(value):
        return None
    return "NaN" if value != value else ("+Inf" if value > 0 else "-Inf")  # noqa: PLR0124  # NaN test
