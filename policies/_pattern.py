"""Overlay patterns (``validate.pattern``/``anyPattern``) with every anchor, as Kyverno checks them."""

from __future__ import annotations

import operator as operator_module
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any, Literal

from policies import _wildcard
from policies._quantity import exact_number, go_non_finite, parse_duration, parse_quantity

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


# A compiled pattern: checks a resource value at a path and raises _Fail/_Skip/_Structure.
Check = Callable[[Any, str], None]
# A compiled scalar pattern: whether a resource value satisfies it.
Predicate = Callable[[Any], bool]


def validate(resource: Any, pattern: Any) -> PatternResult:
    """Check ``resource`` against ``pattern`` (compiled for this call only)."""
    try:
        check = compile_pattern(pattern)
    except RecursionError:
        return PatternResult("error", "", "pattern or resource nested too deeply")
    return run(check, resource)


# Results are immutable: every pass shares one (most rules pass, on every request).
_PASS = PatternResult("pass")


def run(check: Check, resource: Any) -> PatternResult:
    """Apply a pattern compiled by :func:`compile_pattern` (or :func:`compiled`) to ``resource``."""
    try:
        check(resource, "/")
    except _Skip as skipped:
        return PatternResult("skip", skipped.path, skipped.message)
    except _Fail as failed:
        return PatternResult("fail", failed.path, failed.message)
    except _Structure as malformed:
        return PatternResult("error", "", str(malformed))
    except RecursionError:
        return PatternResult("error", "", "pattern or resource nested too deeply")
    return _PASS


# Patterns without variables come from loaded policies and are reused for every request: their
# compiled check is cached by identity (the entry keeps the pattern alive, so the id stays unique).
_COMPILED: dict[int, tuple[Any, Check]] = {}
_CACHE_LIMIT = 65536
_VARIANT_LIMIT = 256


def compiled(pattern: Any) -> Check:
    """The check of a policy's (immutable) pattern, compiled on first use and then reused.

    Raises:
        RecursionError: the pattern is nested too deeply to compile.
    """
    cached = _COMPILED.get(id(pattern))
    if cached is not None and cached[0] is pattern:
        return cached[1]
    check = compile_pattern(pattern)
    if len(_COMPILED) >= _CACHE_LIMIT:
        _COMPILED.clear()
    _COMPILED[id(pattern)] = (pattern, check)
    return check


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "nil"
    return type(value).__name__


def compile_pattern(pattern: Any) -> Check:
    """Turn a pattern into a tree of closures, so a request walks only the resource.

    Anchors, operators and quantities are parsed here once; the checks raise the same
    failures, skips and errors (with the same paths and messages) as Kyverno's walk.
    """
    if isinstance(pattern, dict):
        return _compile_map(pattern)
    if isinstance(pattern, list):
        return _compile_array(pattern)
    return _compile_scalar(pattern)


def _compile_scalar(pattern: Any) -> Check:
    predicate = scalar_predicate(pattern)

    def scalar(resource: Any, path: str) -> None:
        if isinstance(resource, list):
            for index, item in enumerate(resource):
                if not predicate(item):
                    raise _Fail(
                        f"{path}{index}/", f"value '{item}' does not match '{pattern}' at path {path}{index}/"
                    )
        elif not predicate(resource):
            raise _Fail(path, f"value '{_show(resource)}' does not match '{pattern}' at path {path}")

    return scalar


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


def _may_expand(pattern: dict[str, Any]) -> bool:
    """Whether :func:`_expand_metadata` can rewrite ``pattern`` for some resource."""
    meta_key = next((k for k in pattern if parse_anchor(k)[1] == "metadata"), None)
    if meta_key is None or not isinstance(pattern[meta_key], dict):
        return False
    return any(
        parse_anchor(section_key)[1] in ("labels", "annotations")
        and isinstance(section, dict)
        and any(_wildcard.has_wildcard(parse_anchor(key)[1]) for key in section)
        for section_key, section in pattern[meta_key].items()
    )


def _anchor_prefix(kind: AnchorKind) -> str:
    for prefix, name in _ANCHOR_KINDS.items():
        if name == kind:
            return prefix
    return ""


def _structure_mismatch(path: str, expected: str, resource: Any) -> _Fail:
    return _Fail(
        path,
        f"pattern and resource have different structures. Path: {path}. "
        f"Expected {expected}, found {_type_name(resource)}",
    )


def _compile_map(pattern: dict[str, Any]) -> Check:
    # Anchored keys are applied first, in key order, then plain keys in pattern order.
    order = [key for key in sorted(pattern) if parse_anchor(key)[0]]
    order += [key for key in pattern if not parse_anchor(key)[0]]
    steps = [_compile_step(key, pattern[key]) for key in order]

    def check_map(resource: Any, path: str) -> None:
        if not isinstance(resource, dict):
            raise _structure_mismatch(path, "map", resource)
        for step in steps:
            step(resource, path)

    if not _may_expand(pattern):
        return check_map
    meta_key = next(k for k in pattern if parse_anchor(k)[1] == "metadata")
    meta_position = order.index(meta_key)
    # The expansion only renames keys (values stay the pattern's), so the renamed keys identify it.
    variants: dict[tuple[tuple[str, tuple[str, ...] | None], ...], list[_Step]] = {}

    def check_expanding(resource: Any, path: str) -> None:
        if isinstance(resource, dict) and "metadata" in resource:
            expanded = _expand_metadata(pattern, resource)
            if expanded is not pattern:
                meta = expanded[meta_key]
                signature = tuple((k, tuple(v) if isinstance(v, dict) else None) for k, v in meta.items())
                local = variants.get(signature)
                if local is None:
                    # The wildcard keys stand for this resource's label keys: compile that part.
                    local = list(steps)
                    local[meta_position] = _compile_step(meta_key, meta)
                    if len(variants) >= _VARIANT_LIMIT:
                        variants.clear()
                    variants[signature] = local
                for step in local:
                    step(resource, path)
                return
        check_map(resource, path)

    return check_expanding


# One key of a pattern map, applied to the resource map at a path.
_Step = Callable[[dict[str, Any], str], None]


def _compile_step(key: str, value: Any) -> _Step:
    kind, name = parse_anchor(key)
    suffix = f"{name}/"
    if not kind:
        return _plain_step(key, suffix, value)
    if kind == "negation":

        def negation(resource: dict[str, Any], path: str) -> None:
            if name in resource:
                raise _Fail(f"{path}{suffix}", f"{path}{suffix} is not allowed")

        return negation
    if kind not in ("condition", "equality", "existence", "global"):

        def mutate_only(resource: dict[str, Any], path: str) -> None:
            raise _Structure(f"anchor {key} is only allowed in mutate rules")

        return mutate_only
    check = _compile_existence(value) if kind == "existence" else compile_pattern(value)
    if kind == "condition":

        def condition(resource: dict[str, Any], path: str) -> None:
            if name not in resource:
                raise _Skip(f"{path}{suffix}", "conditional anchor key doesn't exist in the resource")
            try:
                check(resource[name], f"{path}{suffix}")
            except _GlobalSkip:
                raise
            except (_Fail, _Skip) as exc:
                raise _Skip(exc.path, f"conditional anchor mismatch: {exc.message}") from None

        return condition
    if kind == "global":

        def global_(resource: dict[str, Any], path: str) -> None:
            if name in resource:
                try:
                    check(resource[name], f"{path}{suffix}")
                except (_Fail, _Skip) as exc:
                    raise _GlobalSkip(exc.path, f"global anchor mismatch: {exc.message}") from None

        return global_

    return _when_present(name, suffix, check, value if kind == "equality" else None)


def _when_present(name: str, suffix: str, check: Check, leaf: Any) -> _Step:
    """The step of an equality or existence anchor: check the value if the key is there."""
    if leaf is not None and not isinstance(leaf, (dict, list)):
        # A scalar leaf: test the value directly and build the path only for the failure.
        predicate = scalar_predicate(leaf)

        def when_present_scalar(resource: dict[str, Any], path: str) -> None:
            if name in resource:
                found = resource[name]
                if isinstance(found, list) or not predicate(found):
                    check(found, f"{path}{suffix}")

        return when_present_scalar

    def when_present(resource: dict[str, Any], path: str) -> None:
        if name in resource:
            check(resource[name], f"{path}{suffix}")

    return when_present


def _plain_step(key: str, suffix: str, value: Any) -> _Step:
    if isinstance(value, str) and value == "*":

        def present(resource: dict[str, Any], path: str) -> None:
            if resource.get(key) is None:
                raise _Fail(path, f"{path}{suffix} not found")

        return present
    check = compile_pattern(value)
    if not isinstance(value, (dict, list)):
        # A scalar leaf: test the value directly and build the path only for the failure.
        predicate = scalar_predicate(value)

        def plain_scalar(resource: dict[str, Any], path: str) -> None:
            found = resource.get(key)
            if isinstance(found, list) or not predicate(found):
                check(found, f"{path}{suffix}")

        return plain_scalar

    def plain(resource: dict[str, Any], path: str) -> None:
        check(resource.get(key), f"{path}{suffix}")

    return plain


def _compile_existence(pattern: Any) -> Check:
    if not isinstance(pattern, list):

        def not_a_list(resource: Any, path: str) -> None:
            raise _Structure(f"existence anchor at {path} needs a list pattern")

        return not_a_list
    items = [(item_pattern, compile_pattern(item_pattern)) for item_pattern in pattern]

    def existence(resource: Any, path: str) -> None:
        if not isinstance(resource, list):
            raise _Fail(path, f"existence anchor at {path}: resource is not a list")
        for item_pattern, check in items:
            for item in resource:
                try:
                    check(item, path)
                except (_Fail, _Skip):
                    continue
                break
            else:
                raise _Fail(path, f"existence anchor at {path}: no element matches {item_pattern}")

    return existence


def _compile_array(pattern: list[Any]) -> Check:
    if not pattern:

        def empty(resource: Any, path: str) -> None:
            if not isinstance(resource, list):
                raise _structure_mismatch(path, "array", resource)
            raise _Structure(f"empty pattern list at {path}")

        return empty
    if isinstance(pattern[0], dict):
        first = compile_pattern(pattern[0])

        def each(resource: Any, path: str) -> None:
            if not isinstance(resource, list):
                raise _structure_mismatch(path, "array", resource)
            applied = 0
            skipped: list[_Skip] = []
            for index, item in enumerate(resource):
                try:
                    first(item, f"{path}{index}/")
                except _GlobalSkip:
                    raise
                except _Skip as exc:
                    skipped.append(exc)
                    continue
                applied += 1
            if applied == 0 and skipped:
                raise _Skip(path, "; ".join(exc.message for exc in skipped))

        return each
    checks = [compile_pattern(item_pattern) for item_pattern in pattern]
    wanted = len(checks)

    def positional(resource: Any, path: str) -> None:
        if not isinstance(resource, list):
            raise _structure_mismatch(path, "array", resource)
        if len(resource) < wanted:
            raise _Structure(
                f"validate Array failed, array length mismatch, resource Array len is {len(resource)} "
                f"and pattern Array len is {wanted}"
            )
        for index, check in enumerate(checks):
            check(resource[index], f"{path}{index}/")

    return positional


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def matches_scalar(value: Any, pattern: Any) -> bool:
    """Whether a resource value satisfies a scalar pattern."""
    return scalar_predicate(pattern)(value)


def _false(value: Any) -> bool:
    return False


def scalar_predicate(pattern: Any) -> Predicate:
    """A scalar pattern compiled into a test of one resource value."""
    if isinstance(pattern, bool):
        return lambda value: isinstance(value, bool) and value == pattern
    if _is_number(pattern):
        convert: Callable[[str], float] = int if isinstance(pattern, int) else float

        def number(value: Any) -> bool:
            if _is_number(value):
                return bool(value == pattern)
            if isinstance(value, str):
                try:
                    parsed = convert(value)
                except ValueError:
                    return False
                return bool(parsed == pattern)
            return False

        return number
    if pattern is None:
        return lambda value: (
            not isinstance(value, (dict, list)) and value in (None, "", 0, False) and value is not True
        )
    if isinstance(pattern, str):
        return _string_predicate(pattern)
    return _false


@lru_cache(maxsize=8192)
def _string_predicate(pattern: str) -> Predicate:
    alternatives = tuple(
        tuple(_condition_predicate(part.strip(" ")) for part in alt.strip(" ").split("&"))
        for alt in pattern.split("|")
    )
    if len(alternatives) == 1 and len(alternatives[0]) == 1:
        only = alternatives[0][0]
        return lambda value: (isinstance(value, str) and value == pattern) or only(value)

    def string(value: Any) -> bool:
        if isinstance(value, str) and value == pattern:
            return True
        return any(all(part(value) for part in alt) for alt in alternatives)

    return string


def _condition_predicate(pattern: str) -> Predicate:
    """One ``&``-part of a string pattern: a range, an operator and operand, or a wildcard."""
    ranged = _RANGE.match(pattern)
    if ranged is not None:
        low, op, high = ranged.groups()
        low_q, high_q = parse_quantity(low), parse_quantity(high)
        if low_q is None or high_q is None:
            return _false
        inside_wanted = op == "-"

        def in_range(value: Any) -> bool:
            number = _value_quantity(value)
            if number is None:
                return False
            return (low_q <= number <= high_q) == inside_wanted

        return in_range
    operator = "="
    for candidate in _OPERATORS:
        if pattern.startswith(candidate):
            operator = candidate
            pattern = pattern[len(candidate) :].strip()
            break
    number_part = _NUMBER_PREFIX.match(pattern)
    if number_part is None or number_part.group(1) == "":
        return _string_compare_predicate(pattern, operator)
    return _number_compare_predicate(pattern, operator)


def _go_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'E', -1, 64)``: shortest digits, scientific form."""
    if value == 0:
        return "0E+00"
    special = go_non_finite(value)
    if special is not None:
        return special
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(str(d) for d in digits)
    power = exponent + len(text) - 1
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}E{'-' if power < 0 else '+'}{abs(power):02d}"


def _value_text(value: Any) -> str | None:
    """A resource value as the text a string pattern sees (None: not comparable)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    return None


def _string_compare_predicate(pattern: str, operator: str) -> Predicate:
    if operator not in ("=", "!"):
        return _false
    negate = operator == "!"
    if not _wildcard.has_wildcard(pattern):

        def equal(value: Any) -> bool:
            text = value if isinstance(value, str) else _value_text(value)
            if text is None:
                return False
            return (text == pattern) != negate

        return equal

    def wildcard(value: Any) -> bool:
        text = _value_text(value)
        if text is None:
            return False
        return _wildcard.match(pattern, text) != negate

    return wildcard


def _value_quantity(value: Any) -> Fraction | None:
    if value is None:
        return Fraction(0)
    if _is_number(value):
        return exact_number(value)  # None for NaN and the infinities: not comparable
    if isinstance(value, str):
        return parse_quantity(value)
    return None


_ORDER: dict[str, Callable[[Fraction, Fraction], bool]] = {
    "=": operator_module.eq,
    "!": operator_module.ne,
    ">": operator_module.gt,
    ">=": operator_module.ge,
    "<": operator_module.lt,
    "<=": operator_module.le,
}


def _number_compare_predicate(pattern: str, operator: str) -> Predicate:
    pattern_duration = parse_duration(pattern)
    pattern_quantity = parse_quantity(pattern)
    order = _ORDER[operator]
    as_text = _string_compare_predicate(pattern, operator)

    def number(value: Any) -> bool:
        if pattern_duration is not None and isinstance(value, str):
            value_duration = parse_duration(value)
            if value_duration is not None:
                return order(value_duration, pattern_duration)
        if pattern_quantity is not None:
            quantity = _value_quantity(value)
            if quantity is None:
                return as_text(value)
            return order(quantity, pattern_quantity)
        return as_text(value)

    return number
