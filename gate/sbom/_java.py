"""Java archives: ``pom.properties`` and ``MANIFEST.MF``, with jars nested in jars followed to a bound.

Archives are read as zip files with caps on entries, on the bytes of each
member read and on the bytes decompressed per outer archive, so a zip bomb
stops with a warning instead of filling memory.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from typing import IO

from packageurl import PackageURL

from gate.sbom._fs import Limits
from gate.sbom._licenses import normalise
from gate.sbom._types import ComponentType, Found, FoundComponent, Hash, SbomWarning, component

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear", ".jpi", ".hpi")
_SMALL = 1024 * 1024
_FILE_VERSION = re.compile(r"^(?P<name>.+?)-(?P<version>\d[\w.\-+]*)$")


class _Budget:
    """Bytes left to decompress for one outer archive."""

    def __init__(self, total: int) -> None:
        self.left = total


class _Exhausted(Exception):
    """A cap on entries or decompressed bytes was reached."""


@dataclass(frozen=True, slots=True)
class _Coordinates:
    group: str
    artifact: str
    version: str


def catalogue(data: IO[bytes], rel: str, limits: Limits) -> Found:
    """Components of the Java archive open in ``data``, found at ``rel`` inside the root.

    The archive itself is one component (from its own ``pom.properties``, else its
    manifest, else its file name); other ``pom.properties`` (shaded libraries)
    and nested archives become components it depends on.
    """
    found = Found()
    budget = _Budget(limits.max_jar_total_bytes)
    digest = hashlib.sha1(usedforsecurity=False)
    for chunk in iter(lambda: data.read(1024 * 1024), b""):
        digest.update(chunk)
    data.seek(0)
    try:
        _archive(data, rel, rel, 0, limits, budget, found, Hash("SHA-1", digest.hexdigest()))
    except _Exhausted as exc:
        found.warnings.append(SbomWarning(rel, f"{exc}; the rest of the archive was not read"))
    return found


def _archive(  # noqa: PLR0912 -- entry kinds and caps of a zip walk
    data: IO[bytes],
    rel: str,
    shown: str,
    depth: int,
    limits: Limits,
    budget: _Budget,
    found: Found,
    sha1: Hash,
) -> FoundComponent | None:
    try:
        archive = zipfile.ZipFile(data)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        found.warnings.append(SbomWarning(shown, f"not a readable zip archive: {exc}"))
        return None
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_jar_entries:
            raise _Exhausted(f"{shown}: {len(infos)} entries, over the {limits.max_jar_entries}-entry cap")
        poms: list[_Coordinates] = []
        manifest: dict[str, str] = {}
        nested: list[zipfile.ZipInfo] = []
        for info in infos:
            name = info.filename
            if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
                fields = _properties(_member(archive, info, _SMALL, budget, shown).decode("utf-8", "replace"))
                coords = _Coordinates(
                    fields.get("groupId", ""), fields.get("artifactId", ""), fields.get("version", "")
                )
                if coords.artifact and coords.version:
                    poms.append(coords)
            elif name.upper() == "META-INF/MANIFEST.MF":
                manifest = _manifest(_member(archive, info, _SMALL, budget, shown).decode("utf-8", "replace"))
            elif name.lower().endswith(ARCHIVE_SUFFIXES) and not info.is_dir():
                nested.append(info)
        stem = shown.rsplit("/", 1)[-1].rsplit("!", 1)[-1].rsplit(".", 1)[0]
        main_coords = next(
            (p for p in poms if stem.startswith(p.artifact)), poms[0] if len(poms) == 1 else None
        )
        children: list[str] = []
        for pom in poms:
            if pom is main_coords:
                continue
            child = component(
                _purl(pom),
                path=rel,
                found_by="java-archive",
                group=pom.group,
                properties=(("gate:java:shaded-in", shown),),
            )
            found.components.append(child)
            children.append(child.ref)
        if depth < limits.max_jar_depth:
            for info in nested:
                if info.file_size > limits.max_jar_bytes:
                    found.warnings.append(
                        SbomWarning(
                            f"{shown}!{info.filename}", f"{info.file_size} bytes, over the jar cap; not read"
                        )
                    )
                    continue
                inner = _member(archive, info, limits.max_jar_bytes, budget, shown)
                inner_shown = f"{shown}!{info.filename}"
                made = _archive(
                    io.BytesIO(inner),
                    rel,
                    inner_shown,
                    depth + 1,
                    limits,
                    budget,
                    found,
                    Hash("SHA-1", hashlib.sha1(inner, usedforsecurity=False).hexdigest()),
                )
                if made is not None:
                    children.append(made.ref)
        elif nested:
            found.warnings.append(
                SbomWarning(shown, f"archives nested deeper than {limits.max_jar_depth} not read")
            )
    licence = manifest.get("Bundle-License", "")
    licences = (normalise(licence),) if licence and "://" not in licence and "," not in licence else ()
    props: tuple[tuple[str, str], ...] = (("gate:java:archive", shown),) if shown != rel else ()
    if main_coords is not None:
        main = component(
            _purl(main_coords),
            path=rel if shown == rel else shown,
            found_by="java-archive",
            group=main_coords.group,
            licenses=licences,
            hashes=(sha1,),
            properties=props,
            depends_on=tuple(dict.fromkeys(children)),
        )
    else:
        name, version, group = _from_manifest(manifest, stem)
        main = component(
            PackageURL("maven", group or None, name, version or None),
            path=rel if shown == rel else shown,
            found_by="java-archive",
            name=name,
            version=version,
            group=group,
            type=ComponentType.LIBRARY,
            licenses=licences,
            hashes=(sha1,),
            properties=props,
            depends_on=tuple(dict.fromkeys(children)),
        )
    found.components.append(main)
    return main


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, budget: _Budget, shown: str) -> bytes:
    # Read at most cap+1 bytes whatever the header claims: declared sizes can lie.
    try:
        with archive.open(info) as member:
            data = member.read(min(cap, budget.left) + 1)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
        raise _Exhausted(f"{shown}!{info.filename}: cannot be read ({exc})") from None
    if len(data) > budget.left:
        raise _Exhausted(f"{shown}: more than {budget.left} bytes to decompress (the archive total cap)")
    if len(data) > cap:
        raise _Exhausted(f"{shown}!{info.filename}: over the {cap}-byte member cap")
    budget.left -= len(data)
    return data


def _purl(coords: _Coordinates) -> PackageURL:
    return PackageURL("maven", coords.group or None, coords.artifact, coords.version)


def _properties(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def _manifest(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if line.startswith(" ") and last:
            values[last] += line[1:]
            continue
        if not line.strip():
            break  # the main section ends at the first blank line
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            values.setdefault(last, value.strip())
    return values


def _from_manifest(manifest: dict[str, str], stem: str) -> tuple[str, str, str]:
    name = manifest.get("Implementation-Title") or manifest.get("Bundle-SymbolicName", "").split(";")[0]
    version = manifest.get("Implementation-Version") or manifest.get("Bundle-Version", "")
    group = manifest.get("Implementation-Vendor-Id", "")
    by_file = _FILE_VERSION.match(stem)
    if by_file:
        name = by_file.group("name")
        version = version or by_file.group("version")
    elif not name or " " in name:
        name = stem
    return name, version, group
