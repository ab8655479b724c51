"""Version ordering per ecosystem, and version ranges such as ``>=2.0,<2.31.0``.

Each ecosystem orders versions its own way, and a range only means something
in that order: ``1.0~rc1`` sorts before ``1.0`` in Debian but is not a version
at all in PEP 440. :func:`sort_key` maps a version to a key that compares in
the ecosystem's order (``None`` when the text is not a version there), and
:class:`VersionRange` tests versions against a parsed range.

Orders implemented:

* ``pep440`` (``pkg:pypi``): :mod:`packaging`'s ``Version``.
* ``semver`` (npm, golang, cargo, nuget, composer, gem, hex, pub, swift ...):
  SemVer 2.0 precedence; a leading ``v`` and missing minor/patch parts are
  accepted (Go modules and many npm packages use them), build metadata is ignored.
* ``debian`` (``pkg:deb``): dpkg's algorithm -- epoch, then upstream version
  and revision compared by alternating non-digit and digit runs, ``~`` before
  everything (even the end), letters before other characters.
* ``alpine`` (``pkg:apk``): apk's rules -- dot-separated numbers, an optional
  letter, suffixes (``_alpha`` < ``_beta`` < ``_pre`` < ``_rc`` < release <
  ``_cvs`` < ``_svn`` < ``_git`` < ``_hg`` < ``_p``), then ``-rN``.
* ``generic`` (everything else, rpm and maven included): runs of digits
  compare as numbers, runs of letters as text, digits after letters.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version

from gate.errors import InvalidArgument

MAX_RANGE_LENGTH = 1000
MAX_CONSTRAINTS = 64

_SEMVER_TYPES = frozenset(
    {"npm", "golang", "cargo", "nuget", "composer", "gem", "hex", "pub", "swift", "cocoapods", "conan"}
)


def ordering_of(ecosystem: str) -> str:
    """The name of the version order used for a purl type (``pypi`` -> ``pep440``)."""
    if ecosystem == "pypi":
        return "pep440"
    if ecosystem == "deb":
        return "debian"
    if ecosystem == "apk":
        return "alpine"
    if ecosystem in _SEMVER_TYPES:
        return "semver"
    return "generic"


# --- PEP 440 ---------------------------------------------------------------------------


def _pep440_key(version: str) -> Any:
    try:
        return Version(version)
    except InvalidVersion:
        return None


# --- SemVer ----------------------------------------------------------------------------

_SEMVER = re.compile(
    r"v?(?P<core>\d+(?:\.\d+){0,2})(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?",
)


def _semver_key(version: str) -> Any:
    match = _SEMVER.fullmatch(version.strip())
    if match is None:
        return None
    numbers = [int(part) for part in match["core"].split(".")]
    numbers += [0] * (3 - len(numbers))
    pre = match["pre"]
    if pre is None:
        # A release sorts after every pre-release of the same core version.
        return (tuple(numbers), 1, ())
    identifiers = tuple(
        # Numeric identifiers sort before alphanumeric ones, numerically among themselves.
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in pre.split(".")
    )
    return (tuple(numbers), 0, identifiers)


# --- Debian (dpkg) -----------------------------------------------------------------------


def _dpkg_char_order(char: str) -> int:
    if char == "~":
        return -1
    if char.isalpha() and char.isascii():
        return ord(char)
    return ord(char) + 256


def _dpkg_part_key(part: str) -> tuple[Any, ...]:
    """A key comparing like dpkg's verrevcmp for one upstream version or revision."""
    key: list[Any] = []
    index = 0
    while True:
        start = index
        while index < len(part) and not part[index].isdigit():
            index += 1
        # The end of a non-digit run sorts after "~" but before any other character:
        # encode the run then a 0 sentinel so that "1.0~rc1" < "1.0" < "1.0a".
        key.append((*(_dpkg_char_order(c) for c in part[start:index]), 0))
        start = index
        while index < len(part) and part[index].isdigit():
            index += 1
        key.append(int(part[start:index] or "0"))
        if index >= len(part):
            # The end itself, as an empty non-digit run: after "~", before anything else.
            key.append((0,))
            return tuple(key)


_DEB = re.compile(
    r"(?:(?P<epoch>\d+):)?(?P<upstream>[0-9][A-Za-z0-9.+~:-]*?)(?:-(?P<revision>[A-Za-z0-9.+~]+))?"
)


def _debian_key(version: str) -> Any:
    match = _DEB.fullmatch(version.strip())
    if match is None:
        return None
    epoch = int(match["epoch"] or 0)
    return (epoch, _dpkg_part_key(match["upstream"]), _dpkg_part_key(match["revision"] or "0"))


# --- Alpine (apk) ------------------------------------------------------------------------

_APK = re.compile(
    r"(?P<numbers>\d+(?:\.\d+)*)(?P<letter>[a-z])?(?P<suffixes>(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)"
    r"(?:~(?P<hash>[0-9a-f]+))?(?:-r(?P<revision>\d+))?"
)
_APK_SUFFIX = re.compile(r"_(alpha|beta|pre|rc|cvs|svn|git|hg|p)(\d*)")
_APK_SUFFIX_ORDER = {
    "alpha": -4,
    "beta": -3,
    "pre": -2,
    "rc": -1,
    "cvs": 1,
    "svn": 2,
    "git": 3,
    "hg": 4,
    "p": 5,
}


def _apk_key(version: str) -> Any:
    match = _APK.fullmatch(version.strip())
    if match is None:
        return None
    numbers = match["numbers"].split(".")
    # apk compares the first number as an integer and later ones like decimal
    # fractions when they start with 0 ("1.02" < "1.1"); the usual case is integers.
    parts: list[tuple[int, Any]] = [(0, int(numbers[0]))]
    for number in numbers[1:]:
        parts.append((0, (0, number.rstrip("0") or "0")) if number.startswith("0") else (0, (1, int(number))))
    letter = match["letter"]
    suffixes = tuple(
        (_APK_SUFFIX_ORDER[name], int(digits or 0)) for name, digits in _APK_SUFFIX.findall(match["suffixes"])
    )
    # No suffix sorts between the pre-release suffixes (negative) and the post ones.
    return (
        tuple(parts),
        ord(letter) if letter else 0,
        (*suffixes, (0, 0)),
        match["hash"] or "",
        int(match["revision"] or 0),
    )


# --- generic -----------------------------------------------------------------------------

_RUN = re.compile(r"\d+|[A-Za-z]+")


def _generic_key(version: str) -> Any:
    runs = _RUN.findall(version)
    if not runs:
        return None
    # Digits after letters (rpm's rule): a numeric run is "newer" than an alphabetic one.
    return tuple((1, int(run), "") if run.isdigit() else (0, 0, run) for run in runs)


_KEYS: dict[str, Callable[[str], Any]] = {
    "pep440": _pep440_key,
    "semver": _semver_key,
    "debian": _debian_key,
    "alpine": _apk_key,
    "generic": _generic_key,
}


@lru_cache(maxsize=65536)
def sort_key(ordering: str, version: str) -> Any:
    """A key that compares versions in ``ordering``; ``None`` when ``version`` is not one there.

    Raises:
        KeyError: ``ordering`` is not one of pep440, semver, debian, alpine, generic.
    """
    if not version:
        return None
    return _KEYS[ordering](version)


def compare(ordering: str, left: str, right: str) -> int:
    """-1, 0 or 1 as ``left`` sorts before, with or after ``right`` in ``ordering``.

    Raises:
        ValueError: either side is not a version in this ordering.
    """
    a, b = sort_key(ordering, left), sort_key(ordering, right)
    if a is None or b is None:
        bad = left if a is None else right
        raise ValueError(f"{bad!r} is not a {ordering} version")
    result: int = (a > b) - (a < b)
    return result


# --- ranges ------------------------------------------------------------------------------

_OPERATORS = ("==", "!=", ">=", "<=", ">", "<", "=")
_CONSTRAINT = re.compile(r"\s*(==|!=|>=|<=|>|<|=)?\s*([^\s,|<>=!]+)\s*")


@dataclass(frozen=True, slots=True)
class Constraint:
    """One comparison: ``operator`` (``==``, ``!=``, ``>=``, ``<=``, ``>``, ``<``) and a version."""

    operator: str
    version: str

    def holds(self, ordering: str, key: Any, version: str) -> bool:
        """Whether a version (with its key in ``ordering``) satisfies this constraint."""
        bound = sort_key(ordering, self.version)
        if bound is None or key is None:
            # Without an order only (in)equality of the text is meaningful.
            if self.operator in ("==", "!="):
                return _COMPARE[self.operator](version, self.version)
            return False
        return _COMPARE[self.operator](key, bound)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True, slots=True)
class VersionRange:
    """Alternatives (``|``) of constraint sets (``,`` = and): ``>=1.0,<1.5|>=2.0``.

    A ``vers:<type>/`` prefix is accepted and ignored (the ecosystem of each
    component decides the ordering).
    """

    text: str
    alternatives: tuple[tuple[Constraint, ...], ...]

    def matches(self, ordering: str, version: str) -> bool:
        """Whether ``version`` lies in this range, compared in ``ordering``."""
        key = sort_key(ordering, version)
        return any(all(c.holds(ordering, key, version) for c in group) for group in self.alternatives)


def parse_range(text: str, field: str = "version_range") -> VersionRange:
    """Parse ``>=2.0,<2.31.0``, ``==1.2``, ``!=1.3``, ``1.4`` (equality) or ``<1|>=2`` alternatives.

    Raises:
        InvalidArgument: the text is empty, too long, or a constraint is malformed
            (the message names the constraint and its position).
    """
    if not text.strip():
        raise InvalidArgument(field, "expected a version range such as '>=2.0,<2.31.0', got an empty string")
    if len(text) > MAX_RANGE_LENGTH:
        raise InvalidArgument(field, f"at most {MAX_RANGE_LENGTH} characters, got {len(text)}")
    body = text.strip()
    offset = len(text) - len(text.lstrip())
    if body.startswith("vers:"):
        scheme, slash, rest = body.partition("/")
        if not slash:
            raise InvalidArgument(field, f"expected 'vers:<type>/<constraints>', got {text!r}")
        offset += len(scheme) + 1
        body = rest
    alternatives: list[tuple[Constraint, ...]] = []
    count = 0
    position = offset
    for alternative in body.split("|"):
        group: list[Constraint] = []
        for part in alternative.split(","):
            count += 1
            if count > MAX_CONSTRAINTS:
                raise InvalidArgument(field, f"at most {MAX_CONSTRAINTS} constraints")
            match = _CONSTRAINT.fullmatch(part)
            if match is None or not part.strip():
                raise InvalidArgument(
                    field,
                    f"constraint {part.strip()!r} at character {position + 1} is not "
                    f"'<operator><version>' with an operator in {', '.join(_OPERATORS)}",
                )
            operator = match[1] or "=="
            group.append(Constraint("==" if operator == "=" else operator, match[2]))
            position += len(part) + 1
        alternatives.append(tuple(group))
    return VersionRange(text=text, alternatives=tuple(alternatives))
