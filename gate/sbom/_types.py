"""What cataloguers find: components with where they were found, and the edges between them."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from enum import StrEnum

from packageurl import PackageURL

from gate.errors import EvidenceError
from gate.model import Component


class Scope(StrEnum):
    """Whether a component ships at run time (CycloneDX ``scope``)."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    EXCLUDED = "excluded"  # development and test dependencies


class ComponentType(StrEnum):
    """The CycloneDX component types gate's cataloguers emit."""

    LIBRARY = "library"
    APPLICATION = "application"
    OPERATING_SYSTEM = "operating-system"


@dataclass(frozen=True, slots=True)
class Hash:
    """A digest of the component as its metadata states it (CycloneDX algorithm name, lowercase hex)."""

    alg: str
    content: str


@dataclass(frozen=True, slots=True)
class FoundComponent:
    """One component a cataloguer found.

    Attributes:
        ref: The deterministic bom-ref: purl (or name) plus ``#`` plus the path it was found at
            (as :func:`ref_location` writes it).
        component: The gate model view (type, name, version, group, purl, licences).
        found_by: The cataloguer (``dpkg``, ``python-installed``, ``npm-lock`` ...).
        path: Where it was found, relative to the root (``/``-separated).
        hashes: Digests from the metadata (lock-file integrity fields, jar SHA-1).
        scope: ``excluded`` for development dependencies, ``optional`` for optional ones.
        properties: Extra name/value pairs recorded in the BOM (``gate:`` namespace).
        depends_on: bom-refs of the components this one depends on, in the same BOM.
    """

    ref: str
    component: Component
    found_by: str
    path: str
    hashes: tuple[Hash, ...] = ()
    scope: Scope = Scope.REQUIRED
    properties: tuple[tuple[str, str], ...] = ()
    depends_on: tuple[str, ...] = ()


def display_path(path: str) -> str:
    """``path`` with bytes that are not UTF-8 (kept by the OS as surrogates) shown as U+FFFD."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def shown(value: object, limit: int = 80) -> str:
    """An untrusted value for a warning or an error: escaped by repr (no control character or
    surrogate gets through) and cut after ``limit`` characters, saying how long it was."""
    text = value if isinstance(value, str) else repr(value)
    cut = repr(text[:limit]) if isinstance(value, str) else text[:limit]
    return cut + (f"... ({len(text)} characters)" if len(text) > limit else "")


@dataclass(frozen=True, slots=True)
class SbomWarning:
    """Something skipped or partly read, with the path and the reason."""

    path: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", display_path(self.path))
        object.__setattr__(self, "message", display_path(self.message))


class MalformedInput(EvidenceError):
    """A metadata or lock file cannot be read as what its name says it is."""

    def __init__(self, path: str, problem: str, line: int = 0) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


@dataclass(slots=True)
class Found:
    """What one cataloguer returned for one file or directory."""

    components: list[FoundComponent] = field(default_factory=list)
    warnings: list[SbomWarning] = field(default_factory=list)


# What the location part of a bom-ref cannot hold as it is: a C0 control character (the upload
# parser, which GetSbom's conversions re-read stored documents with, refuses one in any
# identifier; Linux file and zip member names may hold one), and a "%" that would read as the
# escape of one or of "%" itself, so that no two paths share a ref.
_REF_ESCAPED = re.compile(r"[\x00-\x1f]|%(?=[01][0-9A-Fa-f]|25)")


def _escape(match: re.Match[str]) -> str:
    return f"%{ord(match.group()):02X}"


def ref_location(path: str) -> str:
    """``path`` as the location part of a bom-ref.

    As :func:`display_path` shows it, with each C0 control character percent-encoded (a line
    feed as ``%0A``), and ``%`` as ``%25`` where it starts what would read as such an escape or
    as ``%25`` itself. The mapping is one to one, and leaves every other path, ``%`` included,
    as it is: refs of ordinary paths are those gate always wrote.
    """
    return _REF_ESCAPED.sub(_escape, display_path(path))


def make_ref(purl: PackageURL | None, name: str, version: str, path: str) -> str:
    """The bom-ref of a component: its purl (or name@version) and where it was found."""
    head = purl.to_string() if purl is not None else f"{name}@{version}" if version else name
    return f"{head}#{ref_location(path)}"


def component(
    purl: PackageURL | None,
    *,
    path: str,
    found_by: str,
    name: str = "",
    version: str = "",
    group: str = "",
    type: ComponentType = ComponentType.LIBRARY,
    licenses: tuple[str, ...] = (),
    hashes: tuple[Hash, ...] = (),
    scope: Scope = Scope.REQUIRED,
    properties: tuple[tuple[str, str], ...] = (),
    depends_on: tuple[str, ...] = (),
) -> FoundComponent:
    """Build a :class:`FoundComponent`, taking name and version from the purl unless given."""
    path = display_path(path)
    purl_text = ""
    if purl is not None:
        name = name or purl.name
        version = version or (purl.version or "")
        purl_text = purl.to_string()
    return FoundComponent(
        ref=f"{purl_text}#{ref_location(path)}" if purl_text else make_ref(None, name, version, path),
        component=Component(
            type=type.value,
            name=name,
            version=version,
            group=group,
            purl=purl_text,
            licenses=tuple(dict.fromkeys(x for x in licenses if x)),
        ),
        found_by=found_by,
        path=path,
        hashes=hashes,
        scope=scope,
        properties=properties,
        depends_on=depends_on,
    )


_SRI_ALGS = {
    "sha512": ("SHA-512", 64),
    "sha384": ("SHA-384", 48),
    "sha256": ("SHA-256", 32),
    "sha1": ("SHA-1", 20),
}


def sri_hashes(integrity: str) -> tuple[Hash, ...]:
    """Digests from a Subresource Integrity string (``sha512-<base64>``, several separated by spaces).

    Unknown algorithms and undecodable values are dropped: the hash is evidence, not identity.
    """
    hashes: list[Hash] = []
    for token in integrity.split():
        alg, _, value = token.partition("-")
        known = _SRI_ALGS.get(alg.lower())
        if known is None:
            continue
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == known[1]:
            hashes.append(Hash(known[0], raw.hex()))
    return tuple(hashes)


_HEX_ALGS = {"sha256": ("SHA-256", 64), "sha512": ("SHA-512", 128), "sha1": ("SHA-1", 40), "md5": ("MD5", 32)}


def hex_hash(text: str) -> Hash | None:
    """A ``<alg>:<hex>`` digest (as in uv.lock and Pipfile.lock) as a :class:`Hash`, or None."""
    alg, _, value = text.partition(":")
    known = _HEX_ALGS.get(alg.lower())
    value = value.lower()
    if known is None or len(value) != known[1] or any(c not in "0123456789abcdef" for c in value):
        return None
    return Hash(known[0], value)
