"""Condition operators (preconditions and deny) with Kyverno's type rules."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from policies import _wildcard
from policies._errors import EvaluationError
from policies._quantity import exact_number, go_non_finite, parse_duration, parse_quantity

_RANGE = re.compile(r"^([-+]?\d+(?:\.\d+)?[A-Za-z]*)(!?-)([-+]?\d+(?:\.\d+)?[A-Za-z]*)$")
_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")


def go_text(value: Any) -> str:  # noqa: PLR0911  # one exit per Go type
    """``value`` formatted as Go's ``fmt.Sprint`` would."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        special = go_non_finite(value)
        if special is not None:
            return special
        if value == math.trunc(value) and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(go_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_text(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_duration(value: Any) -> Fraction | None:
    if isinstance(value, str):
        return parse_duration(value)
    # NaN and the infinities (YAML's .nan and .inf) are no duration.
    exact = exact_number(value) if _is_number(value) else None
    return exact if exact is not None and exact.denominator == 1 else None


def _as_quantity(value: Any) -> Fraction | None:
    if isinstance(value, str):
        return parse_quantity(value)
    # NaN and the infinities have no exact value: no quantity either.
    return exact_number(value) if _is_number(value) else None


def _equals(key: Any, value: Any) -> bool:  # noqa: PLR0911  # Kyverno's per-type table
    if isinstance(key, bool):
        return isinstance(value, bool) and key == value
    if _is_number(key):
        if _is_number(value):
            return bool(key == value)
        if isinstance(value, str):
            try:
                return bool(float(value) == key)
            except ValueError:
                return False
        return False
    if isinstance(key, str):
        if isinstance(value, str) or _is_number(value):
            key_duration = parse_duration(key)
            value_duration = _as_duration(value)
            if key_duration is not None and value_duration is not None:
                return key_duration == value_duration
        key_quantity = parse_quantity(key)
        if key_quantity is not None and isinstance(value, str):
            value_quantity = parse_quantity(value)
            return value_quantity is not None and key_quantity == value_quantity
        if isinstance(value, str):
            return _wildcard.match(value, key)
        return False
    if isinstance(key, (dict, list)):
        return bool(key == value)
    return False


def _string_list(value: Any) -> list[str] | None:
    """The value list of a set operator: a list, or a string holding a JSON list."""
    if isinstance(value, list):
        return [go_text(v) for v in value]
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        if isinstance(parsed, list):
            return [go_text(v) for v in parsed]
    return None


def _in_range(key: str, text: str) -> bool | None:
    found = _RANGE.match(text)
    if found is None:
        return None
    low, op, high = found.groups()
    key_q, low_q, high_q = parse_quantity(key), parse_quantity(low), parse_quantity(high)
    if key_q is None or low_q is None or high_q is None:
        return False
    inside = low_q <= key_q <= high_q
    return inside if op == "-" else not inside


def _key_in(key: str, value: Any) -> bool | None:
    """Whether ``key`` is in ``value`` (None when ``value`` has an unusable type)."""
    if isinstance(value, list):
        for item in value:
            text = go_text(item)
            if _wildcard.match(text, key) or _wildcard.match(key, text):
                return True
        return False
    if isinstance(value, str):
        if _wildcard.match(value, key):
            return True
        ranged = _in_range(key, value)
        if ranged is not None:
            return ranged
        items = _string_list(value)
        # A string that is neither a wildcard match nor a JSON list simply does not contain the key.
        return items is not None and key in items
    return None


def _keys(key: Any) -> list[str] | None:
    if isinstance(key, list):
        return [go_text(k) for k in key]
    if isinstance(key, str) or _is_number(key) or isinstance(key, bool):
        return [go_text(key)]
    return None


def _set_op(key: Any, value: Any, *, want_in: bool, need_all: bool) -> bool:
    keys = _keys(key)
    if keys is None:
        return False
    flags = []
    for item in keys:
        found = _key_in(item, value)
        if found is None:
            return False
        flags.append(found if want_in else not found)
    return all(flags) if need_all else any(flags)


def _legacy_in(key: Any, value: Any) -> bool:
    if isinstance(key, list):
        items = _string_list(value)
        if items is None:
            return False
        return all(go_text(k) in items for k in key)
    keys = _keys(key)
    if keys is None:
        return False
    return bool(_key_in(keys[0], value))


def _legacy_not_in(key: Any, value: Any) -> bool:
    if isinstance(key, list):
        items = _string_list(value)
        if items is None:
            return False
        return any(go_text(k) not in items for k in key)
    keys = _keys(key)
    if keys is None:
        return False
    found = _key_in(keys[0], value)
    return found is False


_PLAIN_NUMBERS = (int, float)


def _number_order(key: Any, value: Any) -> int | None:
    # Any, not float: compiled, a float parameter would turn a large int into an inexact double.
    if key != key or value != value:  # noqa: PLR0124  # NaN is the one value unequal to itself
        return None
    return int(key > value) - int(key < value)


def _semver(text: str) -> tuple[int, int, int] | None:
    found = _SEMVER.match(text)
    return (int(found.group(1)), int(found.group(2)), int(found.group(3))) if found else None


def _compare(key: Any, value: Any) -> int | None:
    """-1/0/1 comparing key with value as duration, quantity or semver; None if incomparable."""
    if isinstance(key, (dict, list, bool)) or isinstance(value, (dict, list, bool)) or key is None:
        return None
    if value is None:
        value = 0
    # Two numbers compare as numbers, as Kyverno's float64 comparison does: exactly (as the
    # quantity path's Fractions would, at ~20 times the cost; evidence rules compare counts this
    # way once per container), infinities in order, and NaN (YAML's .nan) with nothing.
    if type(key) in _PLAIN_NUMBERS and type(value) in _PLAIN_NUMBERS:
        return _number_order(key, value)
    if isinstance(key, str) or isinstance(value, str):
        key_d, value_d = _as_duration(key), _as_duration(value)
        if key_d is not None and value_d is not None:
            return (key_d > value_d) - (key_d < value_d)
    key_q, value_q = _as_quantity(key), _as_quantity(value)
    if key_q is not None and value_q is not None:
        return (key_q > value_q) - (key_q < value_q)
    if isinstance(key, str) and isinstance(value, str):
        key_v, value_v = _semver(key), _semver(value)
        if key_v is not None and value_v is not None:
            return (key_v > value_v) - (key_v < value_v)
    return None


def _numeric(test: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    def operator(key: Any, value: Any) -> bool:
        result = _compare(key, value)
        return result is not None and test(result)

    return operator


def _duration_op(test: Callable[[int], bool]) -> Callable[[Any, Any], bool]:
    def operator(key: Any, value: Any) -> bool:
        key_d, value_d = _as_duration(key), _as_duration(value)
        if key_d is None or value_d is None:
            return False
        return test((key_d > value_d) - (key_d < value_d))

    return operator


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": _equals,
    "equal": _equals,
    "notequals": lambda k, v: not _equals(k, v),
    "notequal": lambda k, v: not _equals(k, v),
    "anyin": lambda k, v: _set_op(k, v, want_in=True, need_all=False),
    "allin": lambda k, v: _set_op(k, v, want_in=True, need_all=True),
    "anynotin": lambda k, v: _set_op(k, v, want_in=False, need_all=False),
    "allnotin": lambda k, v: _set_op(k, v, want_in=False, need_all=True),
    "in": _legacy_in,
    "notin": _legacy_not_in,
    "greaterthan": _numeric(lambda c: c > 0),
    "greaterthanorequals": _numeric(lambda c: c >= 0),
    "lessthan": _numeric(lambda c: c < 0),
    "lessthanorequals": _numeric(lambda c: c <= 0),
    "durationgreaterthan": _duration_op(lambda c: c > 0),
    "durationgreaterthanorequals": _duration_op(lambda c: c >= 0),
    "durationlessthan": _duration_op(lambda c: c < 0),
    "durationlessthanorequals": _duration_op(lambda c: c <= 0),
}


def is_known(operator: str) -> bool:
    """Whether ``operator`` names a condition operator (case-insensitive)."""
    return operator.lower() in OPERATORS


def evaluate(operator: str, key: Any, value: Any) -> bool:
    """Apply a condition operator."""
    function = OPERATORS.get(operator.lower())
    if function is None:
        raise EvaluationError(f"unknown condition operator {operator!r}")
    return function(key, value)
