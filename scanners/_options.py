"""Provider options: declared per provider, checked strictly, typed once.

Options arrive as strings (``scanners.<name>.options`` in the configuration,
and per run in :class:`~scanners.ScanRequest`). Each provider declares the
options it knows; anything else is an error naming the option, so a typo can
never silently turn a check off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from gate.errors import ConfigError, InvalidArgument
from gate.model import CONTROL_CHARACTER

OptionKind = Literal["bool", "str", "list", "choice", "int", "seconds"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Option:
    """One option a provider accepts.

    Attributes:
        name: The key, lower-case with underscores.
        kind: How the string is read: ``bool``, ``str``, ``list`` (comma
            separated), ``choice`` (one of ``choices``), ``int`` or ``seconds``.
        choices: Allowed values of a ``choice``, or of each item of a ``list``
            (empty: any).
        config_only: Credentials and server addresses: refused in a request so
            that a caller cannot redirect a token or swap one in.
        secret: Never echoed in an error message.
        dash_ok: The value may start with ``-`` (it is passed glued to its
            flag, ``--flag=value``, so the tool cannot read it as a flag).
    """

    name: str
    kind: OptionKind
    choices: frozenset[str] = frozenset()
    config_only: bool = False
    secret: bool = False
    dash_ok: bool = False


OptionValue = str | bool | int | float | tuple[str, ...]


class _Problem(Exception):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def _shown(spec: Option, raw: str) -> str:
    if spec.secret:
        return "<hidden>"
    return repr(raw if len(raw) <= 80 else raw[:77] + "...")


def _convert(spec: Option, raw: str) -> OptionValue:
    if CONTROL_CHARACTER.search(raw):
        raise _Problem(spec.name, f"contains a control character, got {_shown(spec, raw)}")
    if spec.kind == "bool":
        lowered = raw.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise _Problem(spec.name, f"expected true or false, got {_shown(spec, raw)}")
    if spec.kind in ("int", "seconds"):
        # ASCII only: int() and float() also read other scripts' digits ("٣" is 3), and float()
        # reads "nan" and "inf", which no count or wait can be (a wait of NaN polled in a loop).
        try:
            if not raw.isascii():
                raise ValueError(raw)
            number = float(raw) if spec.kind == "seconds" else int(raw)
        except ValueError:
            raise _Problem(spec.name, f"expected a number, got {_shown(spec, raw)}") from None
        if not math.isfinite(number):
            raise _Problem(spec.name, f"expected a finite number, got {_shown(spec, raw)}")
        if number < 0:
            raise _Problem(spec.name, f"expected a number >= 0, got {_shown(spec, raw)}")
        return number
    if spec.kind == "choice":
        if raw not in spec.choices:
            expected = ", ".join(sorted(spec.choices))
            raise _Problem(spec.name, f"expected one of {expected}, got {_shown(spec, raw)}")
        return raw
    if spec.kind == "list":
        return _list(spec, raw)
    if raw.startswith("-") and not spec.dash_ok:
        # Values are passed as separate arguments; refuse anything a tool could read as a flag.
        raise _Problem(spec.name, f"must not start with '-', got {_shown(spec, raw)}")
    return raw


def _list(spec: Option, raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if spec.choices and item not in spec.choices:
            expected = ", ".join(sorted(spec.choices))
            raise _Problem(spec.name, f"expected items from {expected}, got {item!r}")
        if item.startswith("-"):
            raise _Problem(spec.name, f"items must not start with '-', got {item!r}")
    return items


def _parse(
    specs: Mapping[str, Option], values: Mapping[str, str], *, request: bool
) -> dict[str, OptionValue]:
    parsed: dict[str, OptionValue] = {}
    for key, raw in values.items():
        spec = specs.get(key)
        if spec is None:
            known = ", ".join(sorted(specs)) or "none"
            raise _Problem(key, f"unknown option; this provider accepts {known}")
        if request and spec.config_only:
            raise _Problem(key, "may only be set in the configuration, not per scan")
        if not isinstance(raw, str):
            raise _Problem(key, f"expected a string value, got {type(raw).__name__}")
        parsed[key] = _convert(spec, raw)
    return parsed


class Options:
    """Typed, validated option values: the configured ones overridden by a request's."""

    def __init__(self, values: Mapping[str, OptionValue]) -> None:
        self._values = dict(values)

    @classmethod
    def from_config(cls, specs: Iterable[Option], values: Mapping[str, str], provider: str) -> Options:
        """Check configured options.

        Raises:
            ConfigError: naming ``scanners.<provider>.options.<key>``.
        """
        try:
            return cls(_parse({spec.name: spec for spec in specs}, values, request=False))
        except _Problem as problem:
            raise ConfigError(
                "configuration", f"scanners.{provider}.options.{problem.key}", problem.problem
            ) from None

    def merged(self, specs: Iterable[Option], values: Mapping[str, str]) -> Options:
        """Return these options overridden by a request's.

        Raises:
            InvalidArgument: naming ``options.<key>``.
        """
        try:
            extra = _parse({spec.name: spec for spec in specs}, values, request=True)
        except _Problem as problem:
            raise InvalidArgument(f"options.{problem.key}", problem.problem) from None
        return Options({**self._values, **extra})

    def has(self, name: str) -> bool:
        """True when the option was given."""
        return name in self._values

    def flag(self, name: str, default: bool = False) -> bool:
        """A ``bool`` option."""
        value = self._values.get(name, default)
        assert isinstance(value, bool)
        return value

    def text(self, name: str, default: str = "") -> str:
        """A ``str`` or ``choice`` option."""
        value = self._values.get(name, default)
        assert isinstance(value, str)
        return value

    def items(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """A ``list`` option."""
        value = self._values.get(name, default)
        assert isinstance(value, tuple)
        return value

    def number(self, name: str, default: float) -> float:
        """An ``int`` or ``seconds`` option."""
        value = self._values.get(name, default)
        assert isinstance(value, int | float)
        assert not isinstance(value, bool)
        return float(value)
