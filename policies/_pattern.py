"""Overlay patterns (``validate.pattern``/``anyPattern``) with every anchor, as Kyverno checks them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any, Literal

from policies import _wildcard
from policies._quantity import parse_duration, parse_quantity

AnchorKind = Literal["condition", "equality", "existence", "negation", "global", "add", ""]
_ANCHOR = re.compile(r"^(\+|<|=|X|\^)?\((.+)\)$")
_ANCHOR_KINDS: dict[str, AnchorKind] = {
    "": "condition",
    "=": "equality",
    "^": "existence",
    "X": "negation",
    "<": "global",
    "+": "add",
}
_RANGE = re.compile(r"^([-+]?\d+(?:\.\d+)?[A-Za-z]*)(!?-)([-+]?\d+(?:\.\d+)?[A-Za-z]*)$")
_NUMBER_PREFIX = re.compile(r"^(\d*(?:\.\d+)?)(.*)$", re.DOTALL)
_OPERATORS = (">=", "<=", ">", "<", "!")


@lru_cache(maxsize=8192)
def parse_anchor(key: str) -> tuple[AnchorKind, str]:
    """``"=(name)"`` -> ``("equality", "name")``; a plain key gives ``("", key)``."""
    found = _ANCHOR.match(key)
    if found is None:
        return "", key
    return _ANCHOR_KINDS[found.group(1) or ""], found.group(2)


class _Fail(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class _Skip(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class _GlobalSkip(_Skip):
    pass


class _Structure(Exception):
    """A pattern that cannot be applied (no path: becomes an ``error`` result)."""


@dataclass(frozen=True, slots=True)
class PatternResult:
    """Outcome of one pattern on one resource."""

    status: Literal["pass", "fail", "skip", "error"]
    path: str = ""
    message: str = ""


def validate(resource: Any, pattern: Any) -> PatternResult:
    """Check ``resource`` against ``pattern``."""
    try:
        _element(resource, pattern, "/")
    except _Skip as exc:
        return PatternResult("skip", exc.path, exc.message)
    except _Fail as exc:
        return PatternResult("fail", exc.path, exc.message)
    except _Structure as exc:
        return PatternResult("error", "", str(exc))
    except RecursionError:
        return PatternResult("error", "", "pattern or resource nested too deeply")
    return PatternResult("pass")


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "nil"
    return type(value).__name__


def _element(resource: Any, pattern: Any, path: str) -> None:
    if isinstance(pattern, dict):
        if not isinstance(resource, dict):
            raise _Fail(
                path,
                f"pattern and resource have different structures. Path: {path}. "
                f"Expected map, found {_type_name(resource)}",
            )
        _map(resource, pattern, path)
    elif isinstance(pattern, list):
        if not isinstance(resource, list):
            raise _Fail(
                path,
                f"pattern and resource have different structures. Path: {path}. "
                f"Expected array, found {_type_name(resource)}",
            )
        _array(resource, pattern, path)
    elif isinstance(resource, list):
        for index, item in enumerate(resource):
            if not matches_scalar(item, pattern):
                raise _Fail(
                    f"{path}{index}/", f"value '{item}' does not match '{pattern}' at path {path}{index}/"
                )
    elif not matches_scalar(resource, pattern):
        raise _Fail(path, f"value '{_show(resource)}' does not match '{pattern}' at path {path}")


def _show(value: Any) -> str:
    return "<nil>" if value is None else str(value)


def _expand_metadata(pattern: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    """Replace wildcard label/annotation keys with the first resource key they match."""
    meta_key = next((k for k in pattern if parse_anchor(k)[1] == "metadata"), None)
    if meta_key is None:
        return pattern
    meta_pattern = pattern[meta_key]
    meta_resource = resource.get("metadata")
    if not isinstance(meta_pattern, dict) or not isinstance(meta_resource, dict):
        return pattern
    changed = dict(meta_pattern)
    rewritten = False
    for section_key, section in meta_pattern.items():
        _, section_name = parse_anchor(section_key)
        target = meta_resource.get(section_name)
        if section_name not in ("labels", "annotations") or not isinstance(section, dict):
            continue
        if not isinstance(target, dict):
            continue
        expanded: dict[str, Any] = {}
        for key, value in section.items():
            kind, name = parse_anchor(key)
            if _wildcard.has_wildcard(name):
                rewritten = True
                name = next((c for c in target if _wildcard.match(name, c)), name)
                expanded[f"{_anchor_prefix(kind)}({name})" if kind else name] = value
            else:
                expanded[key] = value
        changed[section_key] = expanded
    if not rewritten:
        return pattern
    result = dict(pattern)
    result[meta_key] = changed
    return result


def _anchor_prefix(kind: AnchorKind) -> str:
    for prefix, name in _ANCHOR_KINDS.items():
        if name == kind:
            return prefix
    return ""


# Pattern maps come from loaded policies and are reused for every request: their anchor split is
# cached by identity (the entry keeps the map alive, so the id stays unique while cached).
Anchor = tuple[str, AnchorKind, str]  # key, kind, name
_SPLITS: dict[int, tuple[dict[str, Any], tuple[Anchor, ...], tuple[str, ...], bool]] = {}
_CACHE_LIMIT = 65536


def _split(
    pattern: dict[str, Any], *, cache: bool = True
) -> tuple[tuple[Anchor, ...], tuple[str, ...], bool]:
    """The anchored keys of a pattern map (sorted), its plain keys, and whether it has ``metadata``."""
    cached = _SPLITS.get(id(pattern))
    if cached is not None and cached[0] is pattern:
        return cached[1], cached[2], cached[3]
    anchored = tuple((key, *parse_anchor(key)) for key in sorted(pattern) if parse_anchor(key)[0])
    plain = tuple(key for key in pattern if not parse_anchor(key)[0])
    has_metadata = any(parse_anchor(key)[1] == "metadata" for key in pattern)
    if not cache:
        return anchored, plain, has_metadata
    if len(_SPLITS) >= _CACHE_LIMIT:
        _SPLITS.clear()
    _SPLITS[id(pattern)] = (pattern, anchored, plain, has_metadata)
    return anchored, plain, has_metadata


def _map(resource: dict[str, Any], pattern: dict[str, Any], path: str) -> None:  # noqa: PLR0912  # one branch per anchor
    anchored, plain, has_metadata = _split(pattern)
    if has_metadata and "metadata" in resource:
        expanded = _expand_metadata(pattern, resource)
        if expanded is not pattern:
            pattern = expanded
            anchored, plain, _ = _split(pattern, cache=False)
    for key, kind, name in anchored:
        value = pattern[key]
        current = f"{path}{name}/"
        if kind == "condition":
            if name not in resource:
                raise _Skip(current, "conditional anchor key doesn't exist in the resource")
            try:
                _element(resource[name], value, current)
            except _GlobalSkip:
                raise
            except (_Fail, _Skip) as exc:
                raise _Skip(exc.path, f"conditional anchor mismatch: {exc.message}") from None
        elif kind == "equality":
            if name in resource:
                _element(resource[name], value, current)
        elif kind == "existence":
            if name in resource:
                _existence(resource[name], value, current)
        elif kind == "negation":
            if name in resource:
                raise _Fail(current, f"{current} is not allowed")
        elif kind == "global":
            if name in resource:
                try:
                    _element(resource[name], value, current)
                except (_Fail, _Skip) as exc:
                    raise _GlobalSkip(exc.path, f"global anchor mismatch: {exc.message}") from None
        else:
            raise _Structure(f"anchor {key} is only allowed in mutate rules")
    for key in plain:
        value = pattern[key]
        if value == "*":
            if resource.get(key) is None:
                raise _Fail(path, f"{path}{key}/ not found")
            continue
        _element(resource.get(key), value, f"{path}{key}/")


def _existence(resource: Any, pattern: Any, path: str) -> None:
    if not isinstance(pattern, list):
        raise _Structure(f"existence anchor at {path} needs a list pattern")
    if not isinstance(resource, list):
        raise _Fail(path, f"existence anchor at {path}: resource is not a list")
    for item_pattern in pattern:
        for item in resource:
            try:
                _element(item, item_pattern, path)
            except (_Fail, _Skip):
                continue
            break
        else:
            raise _Fail(path, f"existence anchor at {path}: no element matches {item_pattern}")


def _array(resource: list[Any], pattern: list[Any], path: str) -> None:
    if not pattern:
        raise _Structure(f"empty pattern list at {path}")
    first = pattern[0]
    if isinstance(first, dict):
        applied = 0
        skipped: list[_Skip] = []
        for index, item in enumerate(resource):
            try:
                _element(item, first, f"{path}{index}/")
            except _GlobalSkip:
                raise
            except _Skip as exc:
                skipped.append(exc)
                continue
            applied += 1
        if applied == 0 and skipped:
            raise _Skip(path, "; ".join(exc.message for exc in skipped))
        return
    if len(resource) < len(pattern):
        raise _Structure(
            f"validate Array failed, array length mismatch, resource Array len is {len(resource)} "
            f"and pattern Array len is {len(pattern)}"
        )
    for index, item_pattern in enumerate(pattern):
        _element(resource[index], item_pattern, f"{path}{index}/")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def matches_scalar(value: Any, pattern: Any) -> bool:  # noqa: PLR0911  # one exit per pattern type
    """Whether a resource value satisfies a scalar pattern."""
    if isinstance(pattern, bool):
        return isinstance(value, bool) and value == pattern
    if _is_number(pattern):
        if _is_number(value):
            return bool(value == pattern)
        if isinstance(value, str):
            try:
                parsed: float = int(value) if isinstance(pattern, int) else float(value)
            except ValueError:
                return False
            return bool(parsed == pattern)
        return False
    if pattern is None:
        if isinstance(value, (dict, list)):
            return False
        return value in (None, "", 0, False) and value is not True
    if isinstance(pattern, str):
        return _string_pattern(value, pattern)
    return False


@lru_cache(maxsize=8192)
def _split_pattern(pattern: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(part.strip(" ") for part in alt.strip(" ").split("&")) for alt in pattern.split("|"))


def _string_pattern(value: Any, pattern: str) -> bool:
    if isinstance(value, str) and value == pattern:
        return True
    return any(all(_condition(value, part) for part in alt) for alt in _split_pattern(pattern))


def _condition(value: Any, pattern: str) -> bool:
    ranged = _RANGE.match(pattern)
    if ranged is not None:
        low, op, high = ranged.groups()
        number = _value_quantity(value)
        low_q, high_q = parse_quantity(low), parse_quantity(high)
        if number is None or low_q is None or high_q is None:
            return False
        inside = low_q <= number <= high_q
        return inside if op == "-" else not inside
    operator = "="
    for candidate in _OPERATORS:
        if pattern.startswith(candidate):
            operator = candidate
            pattern = pattern[len(candidate) :].strip()
            break
    number_part = _NUMBER_PREFIX.match(pattern)
    if number_part is None or number_part.group(1) == "":
        return _string_compare(value, pattern, operator)
    return _number_compare(value, pattern, operator)


def _go_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'E', -1, 64)``: shortest digits, scientific form."""
    if value == 0:
        return "0E+00"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(str(d) for d in digits)
    power = exponent + len(text) - 1
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}E{'-' if power < 0 else '+'}{abs(power):02d}"


def _string_compare(value: Any, pattern: str, operator: str) -> bool:
    if operator not in ("=", "!"):
        return False
    if isinstance(value, str):
        text = value
    elif value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = _go_float(value)
    else:
        return False
    matched = _wildcard.match(pattern, text)
    return not matched if operator == "!" else matched


def _value_quantity(value: Any) -> Fraction | None:
    if value is None:
        return Fraction(0)
    if _is_number(value):
        return Fraction(value)
    if isinstance(value, str):
        return parse_quantity(value)
    return None


def _ordered(left: Fraction, right: Fraction, operator: str) -> bool:
    if operator == "=":
        return left == right
    if operator == "!":
        return left != right
    if operator == ">":
        return left > right
    if operator == ">=":
        return left >= right
    if operator == "<":
        return left < right
    return left <= right


def _number_compare(value: Any, pattern: str, operator: str) -> bool:
    pattern_duration = parse_duration(pattern)
    if pattern_duration is not None and isinstance(value, str):
        value_duration = parse_duration(value)
        if value_duration is not None:
            return _ordered(value_duration, pattern_duration, operator)
    pattern_quantity = parse_quantity(pattern)
    if pattern_quantity is not None:
        number = _value_quantity(value)
        if number is None:
            return _string_compare(value, pattern, operator)
        return _ordered(number, pattern_quantity, operator)
    return _string_compare(value, pattern, operator)
