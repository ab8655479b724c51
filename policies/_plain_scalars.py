"""Plain (unquoted, untagged) YAML scalars typed as Kubernetes and Kyverno type them.

kubectl, the API server and Kyverno read YAML through sigs.k8s.io/yaml, whose resolver is
go-yaml v2's into untyped values. It keeps YAML 1.1's booleans (``yes``, ``no``, ``on``,
``off``, and also ``y`` and ``n``) but differs from YAML 1.1, which PyYAML implements, on
numbers people write:

* ``1:30`` is a string, not the sexagesimal number 90;
* ``1e3`` and ``-.5`` are numbers (YAML 1.1 wants a dot and a signed exponent);
* ``0o17`` is an octal integer, ``08`` the float 8;
* a number too large for a float (``1e400``) is a string;
* a timestamp stays a string (Go reads it into a string when the target is untyped).

So that one policy file means the same in the cluster and in gate, plain scalars are typed
here by those rules: underscores dropped, then a 64-bit integer in Go's base-prefix syntax
(``0x``, ``0o``, ``0b``, a leading ``0`` for octal), then an unsigned one, then a float of
Go's ``yamlStyleFloat`` form; anything else is the text.
"""

from __future__ import annotations

import math
import re
from typing import Any

# Spellings resolved by exact match (go-yaml v2's resolve map). ``<<`` is the merge key,
# handled by the loader before values are typed.
_BY_SPELLING: dict[str, Any] = {
    "": None,
    "~": None,
    "null": None,
    "Null": None,
    "NULL": None,
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), False),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
}

# Go's strconv.ParseInt/ParseUint with base 0: an optional sign, then a base prefix or a
# leading zero for octal, then digits of that base (underscores are removed before).
_GO_INT = re.compile(
    r"(?P<sign>[-+]?)(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
    r"|0(?P<zoct>[0-7]+)|(?P<dec>0|[1-9][0-9]*))"
)
# go-yaml v2's yamlStyleFloat: what may be read as a float.
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
# After a leading dot, Go's ParseFloat alone decides (".5", ".5e3").
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?")

# The integers JSON decoders keep as integers (Go's int64 and uint64, orjson's); others are floats.
SMALLEST_INT = -(2**63)
LARGEST_INT = 2**64 - 1


def plain_value(text: str) -> Any:
    """The value sigs.k8s.io/yaml gives the plain scalar ``text`` (NaN and infinities included)."""
    if text in _BY_SPELLING:
        return _BY_SPELLING[text]
    first = text[0]
    if first == ".":
        return _float(text) if _DOT_FLOAT.fullmatch(text) else text
    if first not in "+-0123456789":
        return text
    plain = text.replace("_", "")
    number = _GO_INT.fullmatch(plain)
    if number is not None:
        value = _integer(number)
        if SMALLEST_INT <= value <= LARGEST_INT and not (number["sign"] and value > 2**63 - 1):
            return value
    if _GO_FLOAT.fullmatch(plain):
        return _float(plain)
    return text


# The most significant digits a 64-bit magnitude has in each base.
_MOST_DIGITS = {16: 16, 8: 22, 2: 64, 10: 20}


def _integer(match: re.Match[str]) -> int:
    for group, base in (("hex", 16), ("oct", 8), ("bin", 2), ("zoct", 8), ("dec", 10)):
        digits = match[group]
        if digits is not None:
            significant = digits.lstrip("0")
            if len(significant) > _MOST_DIGITS[base]:
                # Out of range whatever the digits; int() refuses decimals past 4,300 digits
                # (ValueError) and is quadratic below that.
                magnitude = LARGEST_INT + 1
            else:
                magnitude = int(significant or "0", base)
            return -magnitude if match["sign"] == "-" else magnitude
    raise AssertionError(match.group(0))  # the pattern has no other branch


def _float(text: str) -> float | str:
    # Go's ParseFloat fails on overflow (the scalar is then a string); underflow gives 0.
    value = float(text)
    return value if math.isfinite(value) else text
