"""The operating system of a root filesystem, from ``etc/os-release`` (or ``usr/lib/os-release``)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from gate.sbom._fs import Root, TooLarge, UnsafePath
from gate.sbom._types import ComponentType, Found, FoundComponent, SbomWarning, component

_PATHS = ("etc/os-release", "usr/lib/os-release")
_CAP = 64 * 1024


@dataclass(frozen=True, slots=True)
class OperatingSystem:
    """What os-release says (fields as os-release(5) names them, lowercased)."""

    id: str
    version_id: str = ""
    name: str = ""
    pretty_name: str = ""
    version_codename: str = ""
    id_like: tuple[str, ...] = ()
    path: str = ""

    @property
    def purl_namespace(self) -> str:
        """The vendor for package purls (``debian``, ``ubuntu``, ``alpine``)."""
        return self.id

    @property
    def distro(self) -> str:
        """The ``distro`` qualifier of package purls: ``<id>-<version_id>`` (as syft writes it)."""
        return f"{self.id}-{self.version_id}" if self.version_id else self.id

    def to_component(self) -> FoundComponent:
        """The operating system as a CycloneDX ``operating-system`` component (no purl type exists for it)."""
        props: tuple[tuple[str, str], ...] = (
            (("gate:os:pretty-name", self.pretty_name),) if self.pretty_name else ()
        )
        if self.version_codename:
            props += (("gate:os:codename", self.version_codename),)
        return component(
            None,
            path=self.path,
            found_by="os-release",
            name=self.id,
            version=self.version_id,
            type=ComponentType.OPERATING_SYSTEM,
            properties=props,
        )


def parse(text: str, path: str) -> OperatingSystem | None:
    """Parse os-release text; None when it names no ``ID``.

    Lines that are not ``KEY=value`` are ignored, as os-release(5) asks readers to do.
    """
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip("\"'")]
        fields[key.strip().upper()] = " ".join(words)
    os_id = fields.get("ID", "").strip().lower()
    if not os_id:
        return None
    return OperatingSystem(
        id=os_id,
        version_id=fields.get("VERSION_ID", ""),
        name=fields.get("NAME", ""),
        pretty_name=fields.get("PRETTY_NAME", ""),
        version_codename=fields.get("VERSION_CODENAME", ""),
        id_like=tuple(fields.get("ID_LIKE", "").lower().split()),
        path=path,
    )


def find(root: Root, found: Found) -> OperatingSystem | None:
    """The operating system of ``root``, or None when neither os-release file is there."""
    for rel in _PATHS:
        try:
            data = root.read(rel, _CAP)
        except FileNotFoundError:
            continue
        except (UnsafePath, TooLarge) as exc:
            found.warnings.append(SbomWarning(rel, exc.problem))
            continue
        except OSError as exc:
            found.warnings.append(SbomWarning(rel, f"cannot read: {exc.strerror}"))
            continue
        return parse(data.decode("utf-8", "replace"), rel)
    return None
