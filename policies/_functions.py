"""Kyverno's custom JMESPath functions, with Kyverno's semantics and error messages.

Kyverno evaluates JMESPath with its fork of go-jmespath plus the functions of
``pkg/engine/jmespath`` (``functions.go``, ``arithmetic.go``, ``time.go``).
:class:`KyvernoFunctions` adds those functions to python-jmespath; the Go
behaviours a policy can observe are reproduced: Kubernetes quantities and Go
durations in arithmetic, Go time layouts, RE2 regular expressions (Google's
RE2, linear time) with Go's ``$1`` replacement templates, Go's JSON number
formatting in ``to_string`` and blang/semver ranges. Messages of the errors Kyverno's handlers raise are kept
verbatim (``JMESPath function 'divide': Zero divisor passed``); type errors of a
declared signature come from python-jmespath's argument checking.

Differences from standard JMESPath that matter to policies:

* ``sum`` accepts quantities and durations (``sum(['1Gi', '512Mi'])``) and
  refuses an empty array, unlike the standard ``sum(array[number])``.
* ``to_string`` encodes like Go's ``encoding/json`` (sorted keys, ``1`` not ``1.0``).
* ``items`` takes the key and value field names (``items(obj, 'k', 'v')``),
  unlike the community edition's ``items(obj)``.
* ``to_upper``/``to_lower``/``equal_fold`` map case rune by rune as Go does
  (``to_upper('straße')`` is ``STRAßE``, not Python's ``STRASSE``).
* ``to_number`` parses like Go's ``strconv.ParseFloat`` (no ``1_000``, no spaces).

Functions that read the clock (``time_now``, ``time_now_utc``, ``time_since``)
or randomness (``random``), and ``is_external_url`` (which needs name
resolution), take those from the constructor, so evaluation stays pure and
tests are deterministic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import ipaddress
import json
import math
import random as _random
import re
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal, InvalidOperation, localcontext
from functools import lru_cache
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import jmespath
import jmespath.exceptions
import jmespath.functions
import jmespath.parser
import yaml
from jmespath.functions import signature

from gate.errors import EvidenceError
from policies import _budget, _wildcard
from policies._quantity import go_non_finite
from policies._yaml import KubernetesLoader

__all__ = [
    "CompiledExpression",
    "FunctionError",
    "JmesPathError",
    "KyvernoFunctions",
    "compile_expression",
    "search",
]

# re._parser has no type stubs; the random() generator walks its parse tree.
_sre_parse: Any = importlib.import_module("re._parser")

CompiledExpression: TypeAlias = jmespath.parser.ParsedResult
Clock = Callable[[], datetime]
Resolver = Callable[[str], Sequence[str]]


class JmesPathError(EvidenceError):
    """A JMESPath expression failed to parse or to evaluate."""

    def __init__(self, expression: str, reason: str) -> None:
        super().__init__(f"JMESPath expression {expression!r}: {reason}")
        self.expression = expression
        self.reason = reason


class FunctionError(jmespath.exceptions.JMESPathError):
    """A Kyverno function refused its arguments; the message is Kyverno's."""


# --------------------------------------------------------------------------- #
# Error messages (pkg/engine/jmespath/error.go)

_PREFIX = "JMESPath function '{}': "


def _invalid_argument(function: str, position: int, expected: str) -> FunctionError:
    return FunctionError(_PREFIX.format(function) + f"argument #{position} is not of type {expected}")


def _generic(function: str, detail: object) -> FunctionError:
    return FunctionError(_PREFIX.format(function) + str(detail))


def _zero_division(function: str) -> FunctionError:
    return FunctionError(_PREFIX.format(function) + "Zero divisor passed")


def _non_int_modulo(function: str) -> FunctionError:
    return FunctionError(_PREFIX.format(function) + "Non-integer argument(s) passed for modulo")


def _type_mismatch(function: str) -> FunctionError:
    return FunctionError(_PREFIX.format(function) + "Types mismatch")


# --------------------------------------------------------------------------- #
# Go number and JSON formatting


def _number_out(value: float) -> int | float:
    """A float64 result as Python sees JSON: integral values become ints (Go prints ``6``, not ``6.0``)."""
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fixed(text: str) -> str:
    """Shortest digits in ``text`` written without an exponent (Go's 'f' format, precision -1)."""
    digits = format(Decimal(text), "f")
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    return "0" if digits in ("-0", "") else digits


def _float32_text(value: float) -> str:
    """``strconv.FormatFloat(v, 'f', -1, 32)``: shortest digits that round-trip as float32."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    single = struct.unpack("f", struct.pack("f", value))[0]
    for precision in range(1, 18):
        text = f"{single:.{precision}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            return _fixed(text)
    return _fixed(repr(single))


def _go_string_of(value: object) -> str:
    """Kyverno's ``ifaceToString``: numbers in float32 'f' format, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return _float32_text(float(value))
    raise TypeError("error, undefined type cast")


def _shortest_e(value: float) -> str:
    """``strconv.FormatFloat(v, 'e', -1, 64)``: shortest digits, exponent with at least two digits."""
    sign, digits, _ = Decimal(repr(value)).as_tuple()
    body = "".join(map(str, digits)).rstrip("0") or "0"
    exponent = Decimal(repr(value)).adjusted()
    head = body[0] + ("." + body[1:] if len(body) > 1 else "")
    return f"{'-' if sign else ''}{head}e{'+' if exponent >= 0 else '-'}{abs(exponent):02d}"


def _json_float(value: float) -> str:
    """A float64 as Go's encoding/json writes it."""
    if not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {_go_v_float(value)}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        # encoding/json shortens a two-digit negative exponent: e-07 becomes e-7.
        return re.sub(r"e-0(\d)$", r"e-\1", _shortest_e(value))
    return _fixed(repr(value))


_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _json_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for raw, escaped in _JSON_ESCAPES.items():
        encoded = encoded.replace(raw, escaped)
    return encoded


def go_json(value: Any) -> str:  # noqa: PLR0911 -- one return per JSON kind
    """``json.Marshal`` as Go writes it: sorted keys, no spaces, HTML-safe strings, ``1`` for 1.0."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_json_string(k)}:{go_json(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    raise ValueError(f"json: unsupported type: {type(value).__name__}")


# --------------------------------------------------------------------------- #
# Wildcards (IGLOU-EU/go-wildcard as Kyverno uses it: '*' any run, '?' one character)


def wildcard_match(pattern: str, text: str) -> bool:
    """Whether ``text`` matches the Kyverno wildcard ``pattern`` ('*' any run, '?' one character)."""
    return _wildcard.match(pattern, text)


# --------------------------------------------------------------------------- #
# Go durations (time.ParseDuration, Duration.String)

_NS = 1
_US = 1000
_MS = 1000 * _US
_SECOND = 1000 * _MS
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DURATION_UNITS = {
    "ns": _NS,
    "us": _US,
    "\u00b5s": _US,
    "\u03bcs": _US,
    "ms": _MS,
    "s": _SECOND,
    "m": _MINUTE,
    "h": _HOUR,
}
_MAX_INT64 = 2**63 - 1


class _GoError(Exception):
    """An error as Go's standard library words it."""


def parse_duration(text: str) -> int:
    """``time.ParseDuration``: nanoseconds, or :class:`_GoError` with Go's message."""
    original = text
    quoted = json.dumps(original)
    negative = False
    if text and text[0] in "+-":
        negative = text[0] == "-"
        text = text[1:]
    if text == "0":
        return 0
    if text == "":
        raise _GoError(f"time: invalid duration {quoted}")
    total = 0
    while text:
        match = re.match(r"(\d*)(\.(\d*))?", text)
        assert match is not None
        whole, dot, fraction = match.group(1), match.group(2), match.group(3) or ""
        if not whole and not fraction:
            raise _GoError(f"time: invalid duration {quoted}")
        if dot is not None and not whole and not fraction:
            raise _GoError(f"time: invalid duration {quoted}")
        text = text[match.end() :]
        unit_match = re.match(r"[^\d.]*", text)
        assert unit_match is not None
        unit_text = unit_match.group(0)
        if not unit_text:
            raise _GoError(f"time: missing unit in duration {quoted}")
        unit = _DURATION_UNITS.get(unit_text)
        if unit is None:
            raise _GoError(f"time: unknown unit {json.dumps(unit_text)} in duration {quoted}")
        text = text[len(unit_text) :]
        value = int(whole or "0")
        if value > _MAX_INT64 // unit:
            raise _GoError(f"time: invalid duration {quoted}")
        value *= unit
        if fraction:
            # Go scales the fraction through float64 and truncates.
            value += int(float(int(fraction)) * (float(unit) / float(10 ** len(fraction))))
        total += value
        if total > _MAX_INT64 + (1 if negative else 0):
            raise _GoError(f"time: invalid duration {quoted}")
    return -total if negative else total


def _fraction_text(value: int, precision: int) -> tuple[str, int]:
    fraction = value % 10**precision
    if fraction == 0:
        return "", value // 10**precision
    digits = f"{fraction:0{precision}d}".rstrip("0")
    return "." + digits, value // 10**precision


def format_duration(nanoseconds: int) -> str:
    """``time.Duration.String``: ``1h2m3.5s``, ``1.5ms``, ``0s``."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    value = abs(nanoseconds)
    if value < _SECOND:
        if value < _US:
            return f"{sign}{value}ns"
        if value < _MS:
            fraction, whole = _fraction_text(value, 3)
            return f"{sign}{whole}{fraction}\u00b5s"
        fraction, whole = _fraction_text(value, 6)
        return f"{sign}{whole}{fraction}ms"
    fraction, seconds = _fraction_text(value, 9)
    text = f"{seconds % 60}{fraction}s"
    minutes = seconds // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        hours = minutes // 60
        if hours:
            text = f"{hours}h{text}"
    return sign + text


# --------------------------------------------------------------------------- #
# Kubernetes quantities (k8s.io/apimachinery resource.Quantity)

_BINARY_SI = "BinarySI"
_DECIMAL_SI = "DecimalSI"
_DECIMAL_EXPONENT = "DecimalExponent"
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(.*)", re.DOTALL)
_NANO = Decimal("1e-9")
_QUANTITY_SYNTAX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


@dataclass(frozen=True)
class Quantity:
    """A parsed quantity: its exact value, its format, and the scale ``inf.Dec`` would give it."""

    value: Decimal
    format: str
    scale: int

    def text(self) -> str:
        """The canonical string ``Quantity.String()`` prints."""
        return _canonical_quantity(self.value, self.format)


def parse_quantity(text: str) -> Quantity | None:
    """``resource.ParseQuantity``; None when ``text`` is not a quantity."""
    if not text or len(text) > 128:
        return None
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return None
    sign, whole, fraction, suffix = match.group(1), match.group(2), match.group(3), match.group(4)
    if not whole and not fraction:
        return None
    fraction = fraction or ""
    if suffix in _BINARY_SUFFIXES:
        base_format, multiplier, suffix_scale = _BINARY_SI, Decimal(2) ** _BINARY_SUFFIXES[suffix], 0
    elif suffix in _DECIMAL_SUFFIXES:
        exponent = _DECIMAL_SUFFIXES[suffix]
        base_format, multiplier, suffix_scale = _DECIMAL_SI, Decimal(10) ** exponent, exponent
    elif re.fullmatch(r"[eE][+-]?\d+", suffix):
        exponent = int(suffix[1:])
        if abs(exponent) > 400:
            return None
        base_format, multiplier, suffix_scale = _DECIMAL_EXPONENT, Decimal(10) ** exponent, exponent
    else:
        return None
    with localcontext() as context:
        context.prec = 200
        number = Decimal(f"{sign}{whole or '0'}.{fraction or '0'}")
        value = number * multiplier
        # ParseQuantity keeps nano precision at most, rounding away from zero.
        if value != value.quantize(_NANO, rounding=ROUND_UP):
            value = value.quantize(_NANO, rounding=ROUND_UP)
    scale = len(fraction) - suffix_scale if base_format != _BINARY_SI else len(fraction)
    return Quantity(value=value, format=base_format, scale=scale)


def _mantissa_exponent(value: Decimal) -> tuple[int, int]:
    sign, digits, exponent = value.normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)) or "0")
    return (-mantissa if sign else mantissa), exponent


def _go_remainder(a: int, b: int) -> int:
    return a - b * int(a / b)


def _canonical_quantity(value: Decimal, fmt: str) -> str:
    if value == 0:
        return "0"
    if fmt == _BINARY_SI:
        if -1024 < value < 1024 or value != value.to_integral_value():
            fmt = _DECIMAL_SI
        else:
            amount = int(value)
            exponent = 0
            while amount % 1024 == 0 and exponent < 6:
                amount //= 1024
                exponent += 1
            suffix = {0: "", 1: "Ki", 2: "Mi", 3: "Gi", 4: "Ti", 5: "Pi", 6: "Ei"}[exponent]
            return f"{amount}{suffix}"
    mantissa, exponent = _mantissa_exponent(value)
    remainder = _go_remainder(exponent, 3)
    if remainder in (1, -2):
        mantissa, exponent = mantissa * 10, exponent - 1
    elif remainder in (2, -1):
        mantissa, exponent = mantissa * 100, exponent - 2
    if fmt == _DECIMAL_EXPONENT:
        return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
    for suffix, power in _DECIMAL_SUFFIXES.items():
        if power == exponent:
            return f"{mantissa}{suffix}"
    return f"{mantissa}e{exponent}"


def _quantity_float(value: Decimal) -> float:
    return float(value)


# --------------------------------------------------------------------------- #
# Arithmetic (pkg/engine/jmespath/arithmetic.go)


@dataclass(frozen=True)
class _Scalar:
    value: float


@dataclass(frozen=True)
class _Duration:
    nanoseconds: int


_Operand = _Scalar | Quantity | _Duration


def _operand(value: Any) -> _Operand | None:
    if _is_number(value):
        return _Scalar(float(value))
    if isinstance(value, str):
        quantity = parse_quantity(value)
        if quantity is not None:
            return quantity
        try:
            return _Duration(parse_duration(value))
        except _GoError:
            return None
    return None


def _operands(arguments: Sequence[Any], function: str) -> tuple[_Operand, _Operand]:
    first, second = _operand(arguments[0]), _operand(arguments[1])
    if first is None or second is None:
        raise _generic(function, "invalid operands")
    return first, second


def _check_duration(nanoseconds: int) -> int:
    # Go's int64 arithmetic wraps; policies never rely on that, so refuse instead.
    if not -(2**63) <= nanoseconds <= _MAX_INT64:
        raise FunctionError("duration out of range")
    return nanoseconds


def _add(first: _Operand, second: _Operand, function: str) -> Any:
    if isinstance(first, Quantity) and isinstance(second, Quantity):
        fmt = second.format if first.value == 0 else first.format
        return _canonical_quantity(first.value + second.value, fmt)
    if isinstance(first, _Duration) and isinstance(second, _Duration):
        return format_duration(_check_duration(first.nanoseconds + second.nanoseconds))
    if isinstance(first, _Scalar) and isinstance(second, _Scalar):
        return _number_out(first.value + second.value)
    raise _type_mismatch(function)


def _subtract(first: _Operand, second: _Operand) -> Any:
    if isinstance(first, Quantity) and isinstance(second, Quantity):
        fmt = second.format if first.value == 0 else first.format
        return _canonical_quantity(first.value - second.value, fmt)
    if isinstance(first, _Duration) and isinstance(second, _Duration):
        return format_duration(_check_duration(first.nanoseconds - second.nanoseconds))
    if isinstance(first, _Scalar) and isinstance(second, _Scalar):
        return _number_out(first.value - second.value)
    raise _type_mismatch("subtract")


def _scalar_quantity(value: float) -> Quantity:
    # Go formats the float with %v before parsing it as a quantity.
    parsed = parse_quantity(_go_v_float(value))
    if parsed is None:
        raise FunctionError("quantities must match the regular expression '" + _QUANTITY_SYNTAX + "'")
    return parsed


def _go_v_float(value: float) -> str:
    """``fmt.Sprintf("%v", f)`` for a float64: shortest digits, exponent form outside [1e-4, 1e21)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    exponent = Decimal(repr(value)).adjusted()
    if exponent < -4 or exponent >= 21:
        return _shortest_e(value)
    return _fixed(repr(value))


def _multiply(first: _Operand, second: _Operand) -> Any:
    if isinstance(first, _Scalar) and isinstance(second, Quantity | _Duration):
        first, second = second, first
    if isinstance(first, Quantity) and isinstance(second, _Scalar):
        factor = _scalar_quantity(second.value)
        with localcontext() as context:
            context.prec = 200
            return _canonical_quantity(first.value * factor.value, first.format)
    if isinstance(first, _Duration) and isinstance(second, _Scalar):
        seconds = (first.nanoseconds / _SECOND) * second.value
        return format_duration(_go_int64(seconds * _SECOND))
    if isinstance(first, _Scalar) and isinstance(second, _Scalar):
        return _number_out(first.value * second.value)
    raise _type_mismatch("multiply")


def _go_int64(value: float) -> int:
    if not math.isfinite(value) or abs(value) >= 2**63:
        raise FunctionError("duration out of range")
    return int(value)


def _divide(first: _Operand, second: _Operand) -> Any:
    if isinstance(first, Quantity) and isinstance(second, Quantity):
        denominator = _quantity_float(second.value)
        if denominator == 0:
            raise _zero_division("divide")
        return _number_out(_quantity_float(first.value) / denominator)
    if isinstance(first, Quantity) and isinstance(second, _Scalar):
        if second.value == 0:
            raise _zero_division("divide")
        divisor = _scalar_quantity(second.value)
        scale = max(first.scale, divisor.scale)
        with localcontext() as context:
            context.prec = 200
            quotient = (first.value / divisor.value).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_DOWN)
        return _canonical_quantity(quotient, first.format)
    if isinstance(first, _Duration) and isinstance(second, _Duration):
        if second.nanoseconds == 0:
            raise _zero_division("divide")
        return _number_out((first.nanoseconds / _SECOND) / (second.nanoseconds / _SECOND))
    if isinstance(first, _Duration) and isinstance(second, _Scalar):
        if second.value == 0:
            raise _zero_division("divide")
        seconds = (first.nanoseconds / _SECOND) / second.value
        return format_duration(_go_int64(seconds * _SECOND))
    if isinstance(first, _Scalar) and isinstance(second, _Scalar):
        if second.value == 0:
            raise _zero_division("divide")
        return _number_out(first.value / second.value)
    raise _type_mismatch("divide")


def _as_int64(value: float) -> int | None:
    if not math.isfinite(value) or not value.is_integer() or abs(value) >= 2**63:
        return None
    return int(value)


def _go_mod(a: int, b: int) -> int:
    # Go's % truncates toward zero (the result takes the dividend's sign).
    return int(math.copysign(abs(a) % abs(b), a)) if a else 0


def _modulo(first: _Operand, second: _Operand) -> Any:
    if isinstance(first, Quantity) and isinstance(second, Quantity):
        a, b = _as_int64(_quantity_float(first.value)), _as_int64(_quantity_float(second.value))
        if a is None or b is None:
            raise _non_int_modulo("modulo")
        if b == 0:
            raise _zero_division("modulo")
        return _canonical_quantity(Decimal(_go_mod(a, b)), first.format)
    if isinstance(first, _Duration) and isinstance(second, _Duration):
        if second.nanoseconds == 0:
            raise _zero_division("modulo")
        return format_duration(_go_mod(first.nanoseconds, second.nanoseconds))
    if isinstance(first, _Scalar) and isinstance(second, _Scalar):
        a, b = _as_int64(first.value), _as_int64(second.value)
        if a is None or b is None:
            raise _non_int_modulo("modulo")
        if b == 0:
            raise _zero_division("modulo")
        return _go_mod(a, b)
    raise _type_mismatch("modulo")


# --------------------------------------------------------------------------- #
# Go time (time.Parse with Go layouts, RFC 3339 formatting)

_RFC3339 = "2006-01-02T15:04:05Z07:00"
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def _days_from_civil(year: int, month: int, day: int) -> int:
    # Days since 1970-01-01 in the proleptic Gregorian calendar (any year, including 0).
    year -= month <= 2
    era = year // 400  # floor division: also right for years before 1
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    day_of_era = days - era * 146097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36524 - day_of_era // 146096) // 365
    year = year_of_era + era * 400
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    mp = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return year + (month <= 2), month, day


@dataclass(frozen=True)
class GoTime:
    """An instant (nanoseconds since the Unix epoch) shown at a fixed UTC offset, like Go's time.Time."""

    unix_nanos: int
    offset: int = 0

    @classmethod
    def from_datetime(cls, moment: datetime) -> GoTime:
        """The instant of an aware datetime (a naive one is taken as UTC)."""
        offset_delta = moment.utcoffset()
        offset = int(offset_delta.total_seconds()) if offset_delta is not None else 0
        local_seconds = (
            _days_from_civil(moment.year, moment.month, moment.day) * 86400
            + moment.hour * 3600
            + moment.minute * 60
            + moment.second
        )
        return cls((local_seconds - offset) * _SECOND + moment.microsecond * 1000, offset)

    def fields(self) -> tuple[int, int, int, int, int, int, int]:
        """Year, month, day, hour, minute, second, nanosecond at this time's offset."""
        local = self.unix_nanos + self.offset * _SECOND
        seconds, nanos = divmod(local, _SECOND)
        days, rest = divmod(seconds, 86400)
        year, month, day = _civil_from_days(days)
        return year, month, day, rest // 3600, rest % 3600 // 60, rest % 60, nanos

    def weekday(self) -> int:
        """Sunday = 0, as Go's Weekday."""
        local_days = (self.unix_nanos + self.offset * _SECOND) // (86400 * _SECOND)
        return (local_days + 4) % 7

    def rfc3339(self) -> str:
        """``t.Format(time.RFC3339)``."""
        year, month, day, hour, minute, second, _ = self.fields()
        year_text = f"{year:04d}" if year >= 0 else f"-{-year:04d}"
        if self.offset == 0:
            zone = "Z"
        else:
            sign = "+" if self.offset > 0 else "-"
            minutes = abs(self.offset) // 60
            zone = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
        return f"{year_text}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{zone}"

    def utc(self) -> GoTime:
        """The same instant shown in UTC."""
        return GoTime(self.unix_nanos, 0)

    def add(self, nanoseconds: int) -> GoTime:
        """The instant ``nanoseconds`` later, at the same offset."""
        return GoTime(self.unix_nanos + nanoseconds, self.offset)

    def truncate(self, nanoseconds: int) -> GoTime:
        """``t.Truncate(d)``: rounded down to a multiple of d since Go's zero time (UTC)."""
        if nanoseconds <= 0:
            return self
        since_zero = self.unix_nanos - _GO_ZERO_UNIX_NANOS
        return GoTime(self.unix_nanos - since_zero % nanoseconds, self.offset)


_GO_ZERO_UNIX_NANOS = _days_from_civil(1, 1, 1) * 86400 * _SECOND

_LAYOUT_TOKENS = [
    "January",
    "Jan",
    "Monday",
    "Mon",
    "MST",
    "2006",
    "002",
    "__2",
    "_2",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "15",
    "1",
    "2",
    "3",
    "4",
    "5",
    "PM",
    "pm",
    "-07:00:00",
    "-070000",
    "-07:00",
    "-0700",
    "-07",
    "Z07:00:00",
    "Z070000",
    "Z07:00",
    "Z0700",
    "Z07",
]


@lru_cache(maxsize=256)
def _layout_chunks(layout: str) -> tuple[tuple[str, str], ...]:
    """Split a Go layout into ('lit', text) and ('std', element) chunks, as nextStdChunk does."""
    chunks: list[tuple[str, str]] = []
    literal = ""
    i = 0
    while i < len(layout):
        element = None
        if layout[i] in ".," and i + 1 < len(layout) and layout[i + 1] in "09":
            run = layout[i + 1]
            j = i + 1
            while j < len(layout) and layout[j] == run:
                j += 1
            if j >= len(layout) or not layout[j].isdigit():
                element = layout[i:j]
        if element is None:
            for candidate in _LAYOUT_TOKENS:
                if layout.startswith(candidate, i):
                    if candidate == "Mon" and layout.startswith("Month", i):
                        continue
                    if candidate == "2" and layout.startswith("2006", i):
                        continue
                    element = candidate
                    break
        if element is None:
            literal += layout[i]
            i += 1
            continue
        if literal:
            chunks.append(("lit", literal))
            literal = ""
        chunks.append(("std", element))
        i += len(element)
    if literal:
        chunks.append(("lit", literal))
    return tuple(chunks)


class _ParseFailure(Exception):
    def __init__(self, rest: str, element: str, extra: str = "") -> None:
        super().__init__(rest)
        self.rest = rest
        self.element = element
        self.extra = extra


def _digits(value: str, low: int, high: int) -> tuple[int, str] | None:
    count = 0
    while count < high and count < len(value) and value[count].isdigit():
        count += 1
    if count < low:
        return None
    return int(value[:count]), value[count:]


def _name(value: str, names: Sequence[str], length: int | None) -> tuple[int, str] | None:
    for index, full in enumerate(names):
        candidate = full[:length] if length else full
        if value[: len(candidate)].lower() == candidate.lower():
            return index, value[len(candidate) :]
    return None


def parse_go_time(layout: str, value: str) -> GoTime:  # noqa: PLR0912, PLR0915 -- one branch per layout element, as time.Parse
    """``time.Parse(layout, value)``; :class:`_GoError` carries Go's message on failure."""
    original = value
    year, month, day, hour, minute, second, nanos = 0, 1, 1, 0, 0, 0, 0
    pm_set, am_set, offset, have_year_day, year_day = False, False, 0, False, 0
    chunks = _layout_chunks(layout)
    try:
        for index, (kind, element) in enumerate(chunks):
            if kind == "lit":
                if not value.startswith(element):
                    raise _ParseFailure(value, element)
                value = value[len(element) :]
                continue
            start = value
            result: tuple[int, str] | None
            if element == "2006":
                result = _digits(value, 4, 4) if len(value) >= 4 and value[:4].isdigit() else None
                if result is None:
                    raise _ParseFailure(start, element)
                year, value = result
            elif element == "06":
                result = _digits(value, 2, 2)
                if result is None:
                    raise _ParseFailure(start, element)
                year, value = result
                year += 1900 if year >= 69 else 2000
            elif element in ("January", "Jan"):
                result = _name(value, _MONTHS, None if element == "January" else 3)
                if result is None:
                    raise _ParseFailure(start, element)
                month, value = result[0] + 1, result[1]
            elif element in ("Monday", "Mon"):
                result = _name(value, _DAYS, None if element == "Monday" else 3)
                if result is None:
                    raise _ParseFailure(start, element)
                value = result[1]
            elif element in ("01", "1"):
                result = _digits(value, 2 if element == "01" else 1, 2)
                if result is None or not 1 <= result[0] <= 12:
                    raise _ParseFailure(start, element, ": month out of range" if result else "")
                month, value = result
            elif element in ("02", "2", "_2"):
                if element == "_2" and value.startswith(" "):
                    value = value[1:]
                result = _digits(value, 2 if element == "02" else 1, 2)
                if result is None:
                    raise _ParseFailure(start, element)
                day, value = result
            elif element in ("002", "__2"):
                if element == "__2":
                    value = value.lstrip(" ")
                result = _digits(value, 3 if element == "002" else 1, 3)
                if result is None:
                    raise _ParseFailure(start, element)
                year_day, value = result
                have_year_day = True
            elif element in ("15", "03", "3"):
                result = _digits(value, 2 if element == "03" else 1, 2)
                if result is None:
                    raise _ParseFailure(start, element)
                hour, value = result
                if (element == "15" and hour > 23) or (element != "15" and hour > 12):
                    raise _ParseFailure(start, element, ": hour out of range")
            elif element in ("04", "4"):
                result = _digits(value, 2 if element == "04" else 1, 2)
                if result is None or result[0] > 59:
                    raise _ParseFailure(start, element, ": minute out of range" if result else "")
                minute, value = result
            elif element in ("05", "5"):
                result = _digits(value, 2 if element == "05" else 1, 2)
                if result is None or result[0] > 59:
                    raise _ParseFailure(start, element, ": second out of range" if result else "")
                second, value = result
                following = chunks[index + 1][1] if index + 1 < len(chunks) else ""
                # Go accepts a fractional second after the seconds even if the layout has none.
                if (
                    len(value) > 1
                    and value[0] in ".,"
                    and value[1].isdigit()
                    and not (following[:1] in ".," and following[1:2] in ("0", "9"))
                ):
                    frac = _digits(value[1:], 1, 64)
                    assert frac is not None
                    digits = value[1 : len(value) - len(frac[1])]
                    nanos = int((digits + "000000000")[:9])
                    value = frac[1]
            elif element in ("PM", "pm"):
                marker = value[:2]
                if marker.upper() == "PM":
                    pm_set = True
                elif marker.upper() == "AM":
                    am_set = True
                else:
                    raise _ParseFailure(start, element)
                value = value[2:]
            elif element.startswith(("-07", "Z07")):
                if element.startswith("Z") and value.startswith("Z"):
                    value = value[1:]
                    offset = 0
                    continue
                match = re.match(r"([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?", value)
                need_colon = ":" in element
                parts = element.lstrip("Z-").replace(":", "")
                if match is None or value[:1] not in "+-":
                    raise _ParseFailure(start, element)
                expected_length = {2: 3, 4: 5 + need_colon, 6: 7 + 2 * need_colon}[len(parts)]
                piece = value[:expected_length]
                pattern = {
                    (2, False): r"[+-]\d\d",
                    (4, False): r"[+-]\d\d\d\d",
                    (4, True): r"[+-]\d\d:\d\d",
                    (6, False): r"[+-]\d{6}",
                    (6, True): r"[+-]\d\d:\d\d:\d\d",
                }[(len(parts), need_colon)]
                if not re.fullmatch(pattern, piece):
                    raise _ParseFailure(start, element)
                numbers = re.findall(r"\d\d", piece[1:])
                hh, mm, ss = (int(n) for n in [*numbers, "0", "0"][:3])
                if hh > 24 or mm > 60 or ss > 60:
                    raise _ParseFailure(start, element, ": time zone offset out of range")
                offset = (hh * 3600 + mm * 60 + ss) * (-1 if piece[0] == "-" else 1)
                value = value[expected_length:]
            elif element == "MST":
                match = re.match(r"[A-Z]{3,5}(?:[+-]\d{1,2})?", value)
                if match is None:
                    raise _ParseFailure(start, element)
                # Unknown zone abbreviations get a zero offset, as in Go.
                value = value[match.end() :]
                offset = 0
            elif element[0] in ".," and element[1] in "09":
                width = len(element) - 1
                if element[1] == "0":
                    if len(value) < width + 1 or value[0] != element[0] or not value[1 : width + 1].isdigit():
                        raise _ParseFailure(start, element)
                    nanos = int((value[1 : width + 1] + "000000000")[:9])
                    value = value[width + 1 :]
                elif len(value) >= 2 and value[0] in ".," and value[1].isdigit():
                    frac = _digits(value[1:], 1, 64)
                    assert frac is not None
                    digits = value[1 : len(value) - len(frac[1])]
                    nanos = int((digits + "000000000")[:9])
                    value = frac[1]
        if value:
            raise _GoError(f"parsing time {json.dumps(original)}: extra text: {json.dumps(value)}")
    except _ParseFailure as failure:
        raise _GoError(
            f"parsing time {json.dumps(original)} as {json.dumps(layout)}: "
            f"cannot parse {json.dumps(failure.rest)} as {json.dumps(failure.element)}{failure.extra}"
        ) from None
    if pm_set and hour < 12:
        hour += 12
    elif am_set and hour == 12:
        hour = 0
    if have_year_day:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        if not 1 <= year_day <= 365 + leap:
            raise _GoError(f"parsing time {json.dumps(original)}: day-of-year out of range")
        ordinal = _days_from_civil(year, 1, 1) + year_day - 1
        _, month, day = _civil_from_days(ordinal)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    month_days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    if not 1 <= day <= month_days:
        raise _GoError(f"parsing time {json.dumps(original)}: day out of range")
    local = (_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second) * _SECOND
    return GoTime(local + nanos - offset * _SECOND, offset)


def _rfc3339(value: str) -> GoTime:
    return parse_go_time(_RFC3339, value)


# --------------------------------------------------------------------------- #
# Go regular expressions (RE2 syntax and replacement templates)

# Google's RE2 (the engine Go's regexp implements): same syntax as Kyverno, and linear time, so a
# hostile pattern cannot stall evaluation. The binding has no type stubs.
_re2: Any = importlib.import_module("re2")
_RE2_OPTIONS = _re2.Options()
_RE2_OPTIONS.log_errors = False


class RegexError(ValueError):
    """A pattern RE2 refuses, worded like Go's ``error parsing regexp``."""


@lru_cache(maxsize=1024)
def compile_go_regex(pattern: str) -> Any:
    """Compile an RE2 pattern (as Go's regexp.Compile would accept it)."""
    try:
        compiled = _re2.compile(pattern, options=_RE2_OPTIONS)
    except _re2.error as exc:
        detail = (
            exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        )
        code, _, argument = detail.partition(": ")
        raise RegexError(f"error parsing regexp: {code}: `{argument or pattern}`") from None
    overlong = _overlong_repeat(pattern) if "{" in pattern else None
    if overlong is not None:
        raise RegexError(f"error parsing regexp: invalid repeat count: `{overlong}`")
    return compiled


# A repeat as Go's parser reads one: numbers without leading zeros (``{01}`` is literal text).
_REPEAT = re.compile(r"\{(0|[1-9][0-9]*)(?:,(0|[1-9][0-9]*)?)?\}")


def _overlong_repeat(pattern: str) -> str | None:
    """A repeat whose count has ten digits or more, outside classes and escapes, if any.

    RE2 reads such a count as literal text; Go's parser stops counting at 10**8 and refuses the
    repeat, so Kyverno would refuse the pattern. (Counts up to nine digits RE2 refuses as well.)
    """
    i, end = 0, len(pattern)
    while i < end:
        char = pattern[i]
        if char == "\\":
            if not pattern.startswith("\\Q", i):
                i += 2
                continue
            closing = pattern.find("\\E", i + 2)  # literal text up to \E, or to the end
            if closing < 0:
                return None
            i = closing + 2
        elif char == "[":
            i = _class_end(pattern, i + 1)
        else:
            if char == "{":
                found = _REPEAT.match(pattern, i)
                if found and any(len(count or "") >= 10 for count in found.groups()):
                    return found.group()
            i += 1
    return None


def _class_end(pattern: str, i: int) -> int:
    """Where the character class whose first member is at ``i`` ends (past its ``]``)."""
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):  # a leading ] is a member
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        if pattern[i] == "\\":
            i += 2
        elif pattern.startswith("[:", i) and (closing := pattern.find(":]", i + 2)) >= 0:
            i = closing + 2  # [:alpha:]
        else:
            i += 1
    return i + 1


def _go_regex(function: str, pattern: str) -> Any:
    try:
        return compile_go_regex(pattern)
    except RegexError as exc:
        raise _generic(function, exc) from None


def _expand_template(template: str, match: Any, compiled: Any) -> str:
    """Go's Regexp.Expand: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``."""
    out: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        rest = template[i + 1 :]
        if rest.startswith("$"):
            out.append("$")
            i += 2
            continue
        braced = re.match(r"\{([A-Za-z0-9_]+)\}", rest)
        plain = re.match(r"[A-Za-z0-9_]+", rest)
        found = braced or plain
        if found is None:
            out.append("$")
            i += 1
            continue
        name = found.group(1) if braced else found.group(0)
        group: str | None = None
        if name.isdigit():
            number = int(name)
            if number <= compiled.groups:
                group = match.group(number)
        elif name in compiled.groupindex:
            group = match.group(name)
        out.append(group or "")
        i += 1 + found.end()
    return "".join(out)


# --------------------------------------------------------------------------- #
# Semantic versions (blang/semver v4: Parse and ParseRange)

_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
_Version = tuple[int, int, int, tuple[str, ...]]


def _parse_semver(text: str) -> _Version | None:
    match = _SEMVER.fullmatch(text)
    if match is None:
        return None
    pre = tuple(match.group(4).split(".")) if match.group(4) else ()
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), pre


def _compare_pre(a: tuple[str, ...], b: tuple[str, ...]) -> int:  # noqa: PLR0911 -- semver precedence rules
    if a == b:
        return 0
    if not a:
        return 1
    if not b:
        return -1
    for x, y in zip(a, b, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit():
            return -1
        if y.isdigit():
            return 1
        return -1 if x < y else 1
    return -1 if len(a) < len(b) else 1


def _compare_versions(a: _Version, b: _Version) -> int:
    if a[:3] != b[:3]:
        return -1 if a[:3] < b[:3] else 1
    return _compare_pre(a[3], b[3])


_RANGE_OPERATORS = {
    "": lambda c: c == 0,
    "=": lambda c: c == 0,
    "==": lambda c: c == 0,
    "!": lambda c: c != 0,
    "!=": lambda c: c != 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
}


def _expand_wildcard(operator: str, version: str) -> list[tuple[str, str]]:
    parts = version.split(".")
    wild = [p.lower() in ("x", "*") for p in parts]
    if not any(wild):
        return [(operator, version)]
    if len(parts) != 3 or wild.index(True) == 0 or not all(wild[wild.index(True) :]):
        raise ValueError(f"Could not get version from string: {json.dumps(version)}")
    fixed = [int(p) for p in parts[: wild.index(True)]]
    low = ".".join(str(n) for n in [*fixed, 0, 0][:3])
    bumped = [*fixed[:-1], fixed[-1] + 1]
    high = ".".join(str(n) for n in [*bumped, 0, 0][:3])
    if operator in ("", "=", "=="):
        return [(">=", low), ("<", high)]
    if operator in (">", "<="):
        return [(">=" if operator == ">" else "<", high)]
    if operator in (">=", "<"):
        return [(operator, low)]
    raise ValueError(f"Could not get version from string: {json.dumps(version)}")


def semver_range_matches(version_text: str, range_text: str) -> bool:
    """``semver.ParseRange(r)(semver.Parse(v))``; an unparsable version counts as 0.0.0, as in Kyverno."""
    version = _parse_semver(version_text) or (0, 0, 0, ())
    alternatives: list[list[tuple[str, _Version]]] = []
    for alternative in range_text.split("||"):
        tokens = alternative.split()
        merged: list[str] = []
        for token in tokens:
            if merged and merged[-1] in _RANGE_OPERATORS and merged[-1]:
                merged[-1] += token
            else:
                merged.append(token)
        if not merged:
            raise ValueError(f"Could not get version from string: {json.dumps(alternative)}")
        comparators: list[tuple[str, _Version]] = []
        for token in merged:
            match = re.fullmatch(r"(>=|<=|!=|==|>|<|=|!)?(.*)", token)
            assert match is not None
            operator, text = match.group(1) or "", match.group(2)
            for op, expanded in _expand_wildcard(operator, text):
                parsed = _parse_semver(expanded)
                if parsed is None:
                    detail = f"invalid version {expanded!r}"
                    raise ValueError(f"Could not parse Range {json.dumps(token)}: {detail}")
                comparators.append((op, parsed))
        alternatives.append(comparators)
    return any(
        all(_RANGE_OPERATORS[op](_compare_versions(version, bound)) for op, bound in comparators)
        for comparators in alternatives
    )


# --------------------------------------------------------------------------- #
# Random strings from a regular expression (what goregen does for random())

_UNBOUNDED_REPEAT = 10
_PRINTABLE = [chr(c) for c in range(32, 127)]


def _generate(items: Any, rng: _random.Random, out: list[str]) -> None:
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append(rng.choice([c for c in _PRINTABLE if ord(c) != arg]))
        elif name == "ANY":
            out.append(rng.choice(_PRINTABLE))
        elif name == "IN":
            out.append(_pick_in(arg, rng))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            top = low + _UNBOUNDED_REPEAT if high == _sre_parse.MAXREPEAT else high
            for _ in range(rng.randint(low, max(low, top))):
                _generate(sub, rng, out)
        elif name == "SUBPATTERN":
            _generate(arg[-1], rng, out)
        elif name == "ATOMIC_GROUP":
            _generate(arg, rng, out)
        elif name == "BRANCH":
            _generate(rng.choice(arg[1]), rng, out)
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        else:
            raise ValueError(f"unsupported regular expression construct {name}")


_CATEGORY_CHARS = {
    "CATEGORY_DIGIT": [chr(c) for c in range(48, 58)],
    "CATEGORY_NOT_DIGIT": [c for c in _PRINTABLE if not c.isdigit()],
    "CATEGORY_SPACE": [" ", "\t", "\n", "\r", "\f", "\v"],
    "CATEGORY_NOT_SPACE": [c for c in _PRINTABLE if not c.isspace()],
    "CATEGORY_WORD": [c for c in _PRINTABLE if c.isalnum() or c == "_"],
    "CATEGORY_NOT_WORD": [c for c in _PRINTABLE if not (c.isalnum() or c == "_")],
}


def _pick_in(items: Any, rng: _random.Random) -> str:
    negate = False
    allowed: list[str] = []
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            allowed.append(chr(arg))
        elif name == "RANGE":
            allowed.extend(chr(c) for c in range(arg[0], arg[1] + 1))
        elif name == "CATEGORY":
            allowed.extend(_CATEGORY_CHARS.get(str(arg), []))
    if negate:
        excluded = set(allowed)
        allowed = [c for c in _PRINTABLE if c not in excluded]
    if not allowed:
        raise ValueError("character class matches no printable character")
    return rng.choice(allowed)


def random_string(pattern: str, rng: _random.Random) -> str:
    """A random string matching ``pattern`` (unbounded repeats stop after 10 extra)."""
    parsed = _sre_parse.parse(pattern)
    out: list[str] = []
    _generate(list(parsed), rng, out)
    return "".join(out)


# --------------------------------------------------------------------------- #
# Paths (Go's path/filepath.Join on Linux)


def go_clean_path(path: str) -> str:
    """``filepath.Join(path)``: empty stays empty, else Go's Clean."""
    if path == "":
        return ""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


# --------------------------------------------------------------------------- #
# Image references (Kyverno's image info with docker.io as default registry)

_IMAGE = re.compile(
    r"(?P<name>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::\d+)?"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"|(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])"
    r"(?::\d+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)


def normalize_image(image: str) -> str:
    """Kyverno's ``image_normalize``: registry defaults to docker.io, tag to latest."""
    match = _IMAGE.fullmatch(image)
    if match is None or len(match.group("name")) > 255:
        raise ValueError(f"bad image: {image}: invalid reference format")
    name, tag, digest = match.group("name"), match.group("tag"), match.group("digest")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, path = first, rest
    else:
        registry, path = "docker.io", name
    if digest:
        return f"{registry}/{path}@{digest}"
    return f"{registry}/{path}:{tag or 'latest'}"


# --------------------------------------------------------------------------- #
# x509_decode


def decode_x509(pem_text: str) -> dict[str, Any]:
    """The fields of a PEM certificate or CSR, named as Go's x509 structs encode them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    block = re.search(r"-----BEGIN ([A-Z ]+)-----\s*(.*?)\s*-----END \1-----", pem_text, re.DOTALL)
    if block is None:
        raise ValueError("failed to decode PEM block")
    kind = block.group(1)
    try:
        der = base64.b64decode("".join(block.group(2).split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("failed to decode PEM block") from None
    if kind == "CERTIFICATE":
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise ValueError(f"x509: malformed certificate: {exc}") from None
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("certificate should use rsa algorithm")
        numbers = key.public_numbers()
        raw = cert.public_bytes(serialization.Encoding.DER)
        return {
            "Raw": base64.b64encode(raw).decode(),
            "Version": cert.version.value + 1,
            "SerialNumber": cert.serial_number,
            "Issuer": _x509_name(cert.issuer),
            "Subject": _x509_name(cert.subject),
            "NotBefore": GoTime.from_datetime(cert.not_valid_before_utc).rfc3339(),
            "NotAfter": GoTime.from_datetime(cert.not_valid_after_utc).rfc3339(),
            "PublicKey": {"N": str(numbers.n), "E": numbers.e},
            "PublicKeyAlgorithm": 1,
            "DNSNames": _san(cert, "dns"),
            "EmailAddresses": _san(cert, "email"),
            "IPAddresses": _san(cert, "ip"),
            "URIs": _san(cert, "uri"),
            "IsCA": _is_ca(cert),
        }
    if kind == "CERTIFICATE REQUEST":
        try:
            csr = x509.load_der_x509_csr(der)
        except ValueError as exc:
            raise ValueError(f"x509: malformed certificate request: {exc}") from None
        key = csr.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("certificate should use rsa algorithm")
        numbers = key.public_numbers()
        return {
            "Raw": base64.b64encode(der).decode(),
            "Version": 0,
            "Subject": _x509_name(csr.subject),
            "PublicKey": {"N": str(numbers.n), "E": numbers.e},
            "PublicKeyAlgorithm": 1,
        }
    raise ValueError("PEM block neither contains a CERTIFICATE or CERTIFICATE REQUEST")


_NAME_FIELDS = {
    "2.5.4.6": "Country",
    "2.5.4.10": "Organization",
    "2.5.4.11": "OrganizationalUnit",
    "2.5.4.7": "Locality",
    "2.5.4.8": "Province",
    "2.5.4.9": "StreetAddress",
    "2.5.4.17": "PostalCode",
}


def _x509_name(name: Any) -> dict[str, Any]:
    result: dict[str, Any] = dict.fromkeys(_NAME_FIELDS.values())
    result.update({"SerialNumber": "", "CommonName": "", "Names": [], "ExtraNames": None})
    for attribute in name:
        oid = attribute.oid.dotted_string
        value = attribute.value if isinstance(attribute.value, str) else attribute.value.hex()
        result["Names"].append({"Type": [int(p) for p in oid.split(".")], "Value": value})
        if oid == "2.5.4.3":
            result["CommonName"] = value
        elif oid == "2.5.4.5":
            result["SerialNumber"] = value
        elif oid in _NAME_FIELDS:
            field = _NAME_FIELDS[oid]
            result[field] = [*(result[field] or []), value]
    return result


def _san(cert: Any, kind: str) -> list[str] | None:
    from cryptography import x509

    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    general = {
        "dns": x509.DNSName,
        "email": x509.RFC822Name,
        "ip": x509.IPAddress,
        "uri": x509.UniformResourceIdentifier,
    }[kind]
    values = [str(v) for v in names.get_values_for_type(general)]
    return values or None


def _is_ca(cert: Any) -> bool:
    from cryptography import x509

    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


# --------------------------------------------------------------------------- #
# YAML as sigs.k8s.io/yaml reads it (policies._yaml.KubernetesLoader: go-yaml v2's typing)


def _json_compatible(value: Any) -> Any:
    if isinstance(value, dict):
        return {_yaml_key(k): _json_compatible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_compatible(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        # As Go's encoding/json words it.
        raise ValueError(f"json: unsupported value: {go_non_finite(value)}")
    return value


def _yaml_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, float):
        return _go_v_float(key)
    if isinstance(key, int):
        return str(key)
    raise ValueError(f"error converting YAML to JSON: unsupported map key {key!r}")


# --------------------------------------------------------------------------- #
# The function set


_MISSING_BOUNDS = "%!d(MISSING) argument is out of bounds (%!d(MISSING))"


def _system_clock() -> datetime:
    return datetime.now(UTC)


class KyvernoFunctions(jmespath.functions.Functions):
    """Kyverno's custom JMESPath functions on top of the standard set.

    Args:
        clock: returns "now" (an aware datetime) for ``time_now``, ``time_now_utc`` and ``time_since``.
        rng: the random source of ``random``.
        resolver: resolves a host name to IP addresses for ``is_external_url``; without one,
            a URL naming a host (not an IP) is an error, since evaluation does no network I/O.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rng: _random.Random | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self._clock = clock or _system_clock
        self._rng = rng or _random.Random()  # noqa: S311 -- random() builds test data, not secrets
        self._resolver = resolver

    def _now(self) -> GoTime:
        return GoTime.from_datetime(self._clock())

    @signature({"types": ["array", "string"]}, {"types": []})
    def _func_contains(self, subject: Any, search: Any) -> bool:
        # ``in`` compares lists and objects deeply: bound what shared parts expand to first.
        if isinstance(search, (dict, list)):
            _budget.check_expanded(subject, "contains")
            _budget.check_expanded(search, "contains")
        return search in subject

    # -- strings ---------------------------------------------------------------

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_compare(self, a: str, b: str) -> int:
        return (a > b) - (a < b)

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_equal_fold(self, a: str, b: str) -> bool:
        # Go folds rune by rune (simple case folding): "ß" does not equal "ss".
        return len(a) == len(b) and all(
            x == y or x.lower() == y.lower() or x.upper() == y.upper() for x, y in zip(a, b, strict=True)
        )

    @signature({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]}, {"types": ["number"]})
    def _func_replace(self, text: str, old: str, new: str, count: float) -> str:
        n = int(count)
        if n < 0:
            return text.replace(old, new)
        if old == "":
            # Go inserts ``new`` before each rune and at the end, at most n times.
            pieces = [*text]
            out: list[str] = []
            for index in range(len(pieces) + 1):
                if index < n:
                    out.append(new)
                if index < len(pieces):
                    out.append(pieces[index])
            return "".join(out)
        return text.replace(old, new, n)

    @signature({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_replace_all(self, text: str, old: str, new: str) -> str:
        return text.replace(old, new)

    @signature({"types": ["string"]})
    def _func_to_upper(self, text: str) -> str:
        return _simple_case(text, str.upper)

    @signature({"types": ["string"]})
    def _func_to_lower(self, text: str) -> str:
        return _simple_case(text, str.lower)

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_trim(self, text: str, cutset: str) -> str:
        return text.strip(cutset) if cutset else text

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_trim_prefix(self, text: str, prefix: str) -> str:
        return text.removeprefix(prefix)

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_trim_suffix(self, text: str, suffix: str) -> str:
        return text.removesuffix(suffix)

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_split(self, text: str, separator: str) -> list[str]:
        if separator == "":
            return [*text]
        return text.split(separator)

    @signature({"types": ["string"]}, {"types": ["string", "number"]}, {"types": ["string", "number"]})
    def _func_regex_replace_all(self, pattern: str, source: Any, replacement: Any) -> str:
        compiled = _go_regex("regex_replace_all", pattern)
        text, template = _go_string_of(source), _go_string_of(replacement)
        return str(compiled.sub(lambda m: _expand_template(template, m, compiled), text))

    @signature({"types": ["string"]}, {"types": ["string", "number"]}, {"types": ["string", "number"]})
    def _func_regex_replace_all_literal(self, pattern: str, source: Any, replacement: Any) -> str:
        compiled = _go_regex("regex_replace_all_literal", pattern)
        text, literal = _go_string_of(source), _go_string_of(replacement)
        return str(compiled.sub(lambda _m: literal, text))

    @signature({"types": ["string"]}, {"types": ["string", "number"]})
    def _func_regex_match(self, pattern: str, source: Any) -> bool:
        try:
            compiled = compile_go_regex(pattern)
        except RegexError as exc:
            # Kyverno returns the regexp error unwrapped here.
            raise FunctionError(str(exc)) from None
        return compiled.search(_go_string_of(source)) is not None

    @signature({"types": ["string"]}, {"types": ["string", "number"]})
    def _func_pattern_match(self, pattern: str, source: Any) -> bool:
        return wildcard_match(pattern, _go_string_of(source))

    @signature({"types": ["object"]}, {"types": ["object"]})
    def _func_label_match(self, selector: dict[str, Any], labels: dict[str, Any]) -> bool:
        for key, value in selector.items():
            if key not in labels or not _go_equal(labels[key], value):
                return False
        return True

    @signature({"types": ["string"]})
    def _func_to_boolean(self, text: str) -> bool:
        lowered = text.lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        raise _generic("to_boolean", f"lowercase argument must be 'true' or 'false' (provided: '{text}')")

    @signature({"types": ["string"]}, {"types": ["number"]})
    def _func_truncate(self, text: str, length: float) -> str:
        limit = max(0, int(length))
        return text[:limit]

    @signature({"types": ["string"]})
    def _func_base64_decode(self, text: str) -> str:
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise FunctionError(f"illegal base64 data at input byte {_base64_error_offset(text)}") from None
        return decoded.decode("utf-8", errors="replace")

    @signature({"types": ["string"]})
    def _func_base64_encode(self, text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    @signature({"types": ["string"]})
    def _func_path_canonicalize(self, path: str) -> str:
        return go_clean_path(path)

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_semver_compare(self, version: str, constraint: str) -> bool:
        try:
            return semver_range_matches(version, constraint)
        except ValueError as exc:
            raise FunctionError(str(exc)) from None

    @signature({"types": ["string"]})
    def _func_parse_json(self, text: str) -> Any:
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            raise FunctionError(f"invalid JSON: {exc}") from None
        except RecursionError:
            raise FunctionError("invalid JSON: too deeply nested") from None

    @signature({"types": ["string"]})
    def _func_parse_yaml(self, text: str) -> Any:
        try:
            loaded = yaml.load(text, Loader=KubernetesLoader)  # noqa: S506 -- a SafeLoader subclass
            return _json_compatible(loaded)
        except yaml.YAMLError as exc:
            raise FunctionError(f"error converting YAML to JSON: {exc}".replace("\n", " ")) from None
        except (ValueError, RecursionError) as exc:
            raise FunctionError(str(exc) or "error converting YAML to JSON") from None

    @signature({"types": ["object", "array"]}, {"types": ["string", "number"]})
    def _func_lookup(self, collection: Any, key: Any) -> Any:
        if isinstance(collection, dict):
            if not isinstance(key, str):
                raise _invalid_argument("lookup", 2, "String")
            return collection.get(key)
        if not _is_number(key):
            raise _invalid_argument("lookup", 2, "Number")
        if not float(key).is_integer():
            raise _generic("lookup", f"argument #2: expected an integer number but got: {_go_v_float(key)}")
        index = int(key)
        if index < 0 or index >= len(collection):
            return None
        return collection[index]

    @signature({"types": ["object", "array"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_items(self, collection: Any, key_name: str, value_name: str) -> list[dict[str, Any]]:
        if isinstance(collection, dict):
            return [{key_name: key, value_name: collection[key]} for key in sorted(collection)]
        return [{key_name: index, value_name: value} for index, value in enumerate(collection)]

    @signature({"types": ["array"]}, {"types": ["array"]})
    def _func_object_from_lists(self, keys: list[Any], values: list[Any]) -> dict[str, Any]:
        output: dict[str, Any] = {}
        for index, key in enumerate(keys):
            try:
                name = _go_string_of(key)
            except TypeError:
                raise _invalid_argument("object_from_lists", 1, "StringArray") from None
            output[name] = values[index] if index < len(values) else None
        return output

    @signature({"types": ["string"]})
    def _func_random(self, pattern: str) -> str:
        if pattern == "":
            raise FunctionError("no pattern provided")
        try:
            compile_go_regex(pattern)  # refuse what Go's parser refuses before generating
            return random_string(pattern, self._rng)
        except RegexError as exc:
            raise FunctionError(str(exc)) from None
        except (re.error, ValueError, RecursionError) as exc:
            raise FunctionError(f"error parsing regexp: {exc}") from None

    @signature({"types": ["string"]})
    def _func_x509_decode(self, text: str) -> dict[str, Any]:
        try:
            return decode_x509(text)
        except ValueError as exc:
            raise FunctionError(str(exc)) from None

    @signature({"types": ["string"]})
    def _func_image_normalize(self, image: str) -> str:
        try:
            return normalize_image(image)
        except ValueError as exc:
            raise _generic("image_normalize", exc) from None

    @signature({"types": ["string"]})
    def _func_is_external_url(self, url: str) -> bool:
        try:
            host = urlsplit(url).hostname or ""
        except ValueError as exc:
            raise FunctionError(f"parse {json.dumps(url)}: {exc}") from None
        try:
            return not _private_address(ipaddress.ip_address(host))
        except ValueError:
            pass
        if self._resolver is None:
            raise _generic("is_external_url", f"cannot resolve host {host!r}: no resolver configured")
        try:
            addresses = [ipaddress.ip_address(a) for a in self._resolver(host)]
        except (OSError, ValueError) as exc:
            raise FunctionError(f"lookup {host}: {exc}") from None
        return not any(_private_address(a) for a in addresses)

    @signature({"types": ["string"]})
    def _func_sha256(self, text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    @signature({"types": ["string"]})
    def _func_sha1(self, text: str) -> str:
        return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    @signature({"types": ["string"]})
    def _func_md5(self, text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    # -- standard functions whose Go behaviour differs ----------------------------

    @signature({"types": []})
    def _func_to_string(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        _budget.check_expanded(value, "to_string")
        try:
            return go_json(value)
        except ValueError as exc:
            raise FunctionError(str(exc)) from None

    @signature({"types": []})
    def _func_to_number(self, value: Any) -> Any:
        if _is_number(value):
            return value
        if isinstance(value, str):
            # strconv.ParseFloat: no surrounding space, no underscores without a base prefix.
            if not _GO_FLOAT.fullmatch(value):
                return None
            try:
                number = float(value)
            except ValueError:
                return None
            return _number_out(number)
        return None

    # -- arithmetic ----------------------------------------------------------------

    @signature({"types": []}, {"types": []})
    def _func_add(self, a: Any, b: Any) -> Any:
        return _add(*_operands([a, b], "add"), "add")

    @signature({"types": ["array"]})
    def _func_sum(self, values: list[Any]) -> Any:
        if not values:
            raise _generic("sum", "at least one element in the array is required")
        result = values[0]
        for item in values[1:]:
            result = _add(*_operands([result, item], "sum"), "sum")
        return result

    @signature({"types": []}, {"types": []})
    def _func_subtract(self, a: Any, b: Any) -> Any:
        return _subtract(*_operands([a, b], "subtract"))

    @signature({"types": []}, {"types": []})
    def _func_multiply(self, a: Any, b: Any) -> Any:
        return _multiply(*_operands([a, b], "multiply"))

    @signature({"types": []}, {"types": []})
    def _func_divide(self, a: Any, b: Any) -> Any:
        return _divide(*_operands([a, b], "divide"))

    @signature({"types": []}, {"types": []})
    def _func_modulo(self, a: Any, b: Any) -> Any:
        return _modulo(*_operands([a, b], "modulo"))

    @signature({"types": ["number"]}, {"types": ["number"]})
    def _func_round(self, value: float, digits: float) -> Any:
        if not float(digits).is_integer():
            raise FunctionError(_PREFIX.format("round") + "Non-integer argument(s) passed for round off")
        places = int(digits)
        if places < 0:
            # Kyverno formats this message with missing arguments; Go prints them as %!d(MISSING).
            raise FunctionError(_PREFIX.format("round") + _MISSING_BOUNDS)
        shift = 10.0**places
        scaled = float(value) * shift
        rounded = math.copysign(math.floor(abs(scaled) + 0.5), scaled) if math.isfinite(scaled) else scaled
        return _number_out(rounded / shift)

    # -- time ------------------------------------------------------------------------

    def _time_arg(self, function: str, text: str) -> GoTime:
        try:
            return _rfc3339(text)
        except _GoError as exc:
            raise FunctionError(str(exc)) from None

    def _duration_arg(self, text: str) -> int:
        try:
            return parse_duration(text)
        except _GoError as exc:
            raise FunctionError(str(exc)) from None

    @signature({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_time_since(self, layout: str, start: str, end: str) -> str:
        try:
            first = parse_go_time(layout or _RFC3339, start)
            second = parse_go_time(layout or _RFC3339, end) if end else self._now()
        except _GoError as exc:
            raise FunctionError(str(exc)) from None
        return format_duration(_clamp_duration(second.unix_nanos - first.unix_nanos))

    @signature()
    def _func_time_now(self) -> str:
        return self._now().rfc3339()

    @signature()
    def _func_time_now_utc(self) -> str:
        return self._now().utc().rfc3339()

    @signature({"types": ["string"]})
    def _func_time_to_cron(self, text: str) -> str:
        moment = self._time_arg("time_to_cron", text)
        _, month, day, hour, minute, _, _ = moment.fields()
        return f"{minute} {hour} {day} {month} {moment.weekday()}"

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_time_add(self, text: str, duration: str) -> str:
        return self._time_arg("time_add", text).add(self._duration_arg(duration)).rfc3339()

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_time_parse(self, layout: str, text: str) -> str:
        if re.fullmatch(r"[+-]?\d+", layout):
            # An integer layout means "epoch seconds".
            if not re.fullmatch(r"[+-]?\d+", text) or abs(int(text)) > _MAX_INT64:
                raise FunctionError(f"strconv.ParseInt: parsing {json.dumps(text)}: invalid syntax")
            return GoTime(int(text) * _SECOND).rfc3339()
        try:
            return parse_go_time(layout, text).rfc3339()
        except _GoError as exc:
            raise FunctionError(str(exc)) from None

    @signature({"types": ["string"]})
    def _func_time_utc(self, text: str) -> str:
        return self._time_arg("time_utc", text).utc().rfc3339()

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_time_diff(self, start: str, end: str) -> str:
        first, second = self._time_arg("time_diff", start), self._time_arg("time_diff", end)
        return format_duration(_clamp_duration(second.unix_nanos - first.unix_nanos))

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_time_before(self, a: str, b: str) -> bool:
        return self._time_arg("time_before", a).unix_nanos < self._time_arg("time_before", b).unix_nanos

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_time_after(self, a: str, b: str) -> bool:
        return self._time_arg("time_after", a).unix_nanos > self._time_arg("time_after", b).unix_nanos

    @signature({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_time_between(self, text: str, start: str, end: str) -> bool:
        moment = self._time_arg("time_between", text).unix_nanos
        low = self._time_arg("time_between", start).unix_nanos
        high = self._time_arg("time_between", end).unix_nanos
        return low < moment < high

    @signature({"types": ["string"]}, {"types": ["string"]})
    def _func_time_truncate(self, text: str, duration: str) -> str:
        return self._time_arg("time_truncate", text).truncate(self._duration_arg(duration)).rfc3339()


_GO_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?i:inf|infinity|nan)")


def _simple_case(text: str, convert: Callable[[str], str]) -> str:
    # Go maps case rune by rune; Python's full mapping may turn one character into two ("ß" -> "SS").
    converted = convert(text)
    if len(converted) == len(text):
        return converted
    return "".join(c if len(convert(c)) != 1 else convert(c) for c in text)


def _clamp_duration(nanoseconds: int) -> int:
    # time.Time.Sub saturates at the int64 bounds.
    return max(-(2**63), min(_MAX_INT64, nanoseconds))


def _go_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def _private_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # Go's IsLoopback/IsPrivate: loopback, RFC 1918, RFC 4193 (fc00::/7).
    if address.is_loopback:
        return True
    if isinstance(address, ipaddress.IPv4Address):
        return any(
            address in ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
        )
    mapped = address.ipv4_mapped
    if mapped is not None:
        return _private_address(mapped)
    return address in ipaddress.ip_network("fc00::/7")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _base64_error_offset(text: str) -> int:
    # Where Go's decoder gives up: the first byte outside the alphabet, else the short final quantum.
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    for index, char in enumerate(text):
        if char not in alphabet:
            return index
    return len(text) - len(text) % 4


# --------------------------------------------------------------------------- #
# Public entry points

_DEFAULT_OPTIONS = jmespath.Options(custom_functions=KyvernoFunctions())


@lru_cache(maxsize=4096)
def _compile(text: str) -> CompiledExpression:
    return jmespath.compile(text)


def compile_expression(text: str) -> CompiledExpression:
    """Parse a JMESPath expression once (cached).

    Raises:
        JmesPathError: the expression does not parse.
    """
    try:
        return _compile(text)
    except jmespath.exceptions.JMESPathError as exc:
        raise JmesPathError(text, _first_line(exc)) from None
    except RecursionError:
        raise JmesPathError(text, "expression too deeply nested") from None


def search(
    expression: str | CompiledExpression,
    data: Any,
    *,
    functions: KyvernoFunctions | None = None,
) -> Any:
    """Evaluate ``expression`` against ``data`` with Kyverno's functions.

    Args:
        expression: the expression text, or one from :func:`compile_expression`.
        data: the JSON-like document.
        functions: a function set with its own clock/random source (default: system clock).

    Raises:
        JmesPathError: the expression does not parse, or evaluation failed (type error,
            unknown function, a Kyverno function refusing its arguments).
    """
    compiled = compile_expression(expression) if isinstance(expression, str) else expression
    text = expression if isinstance(expression, str) else compiled.expression
    options = _DEFAULT_OPTIONS if functions is None else jmespath.Options(custom_functions=functions)
    try:
        return compiled.search(data, options=options)
    except jmespath.exceptions.JMESPathError as exc:
        raise JmesPathError(text, _first_line(exc)) from None
    except (TypeError, ValueError, ArithmeticError, InvalidOperation, OverflowError) as exc:
        raise JmesPathError(text, str(exc) or type(exc).__name__) from None
    except RecursionError:
        raise JmesPathError(text, "evaluation too deeply nested") from None


def _first_line(exc: Exception) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip() if lines else type(exc).__name__
