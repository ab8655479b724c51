"""Debian and Ubuntu packages from the dpkg database (``var/lib/dpkg/status`` and ``status.d/``)."""

from __future__ import annotations

import os
import re
from functools import lru_cache

from packageurl import PackageURL

from gate.sbom import _licenses
from gate.sbom._control import deb822_paragraphs
from gate.sbom._fs import Limits, Root, TooLarge, UnsafePath
from gate.sbom._os_release import OperatingSystem
from gate.sbom._types import Found, SbomWarning, component, make_ref

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d"
# Some copyright files run to megabytes (Boost's is 2 MB); only License: lines are kept.
_COPYRIGHT_CAP = 16 * 1024 * 1024
_NAME = re.compile(r"[a-z0-9][a-z0-9+.\-]*")
_COMMON_LICENSES = re.compile(r"/usr/share/common-licenses/([A-Za-z0-9.+\-]+)")
_UNVERSIONED = frozenset({"GPL", "LGPL", "GFDL", "BSD"})
_LICENSE_OPS = re.compile(r"\s*,?\s+\b(or|and)\b\s+", re.IGNORECASE)


def present(root: Root) -> bool:
    """True if ``root`` has a dpkg database."""
    if root.exists(STATUS):
        return True
    try:
        return root.real(STATUS_D).is_dir()
    except UnsafePath:
        return True  # catalogue() reports the escaping link


def catalogue(root: Root, os_info: OperatingSystem | None, limits: Limits) -> Found:  # noqa: PLR0912 -- one branch per field rule
    """List the installed packages of the dpkg database under ``root``.

    Only paragraphs whose ``Status`` says ``installed`` count (removed packages
    leave ``config-files`` paragraphs behind). Licences come from the package's
    machine-readable copyright file when it has one (DEP-5 ``License:`` fields);
    other copyright files are free text and give no licence.
    """
    found = Found()
    sources: list[tuple[str, str]] = []
    for rel in _status_files(root, found):
        try:
            sources.append((rel, root.read(rel, limits.max_file_bytes).decode("utf-8", "replace")))
        except FileNotFoundError:
            continue
        except (UnsafePath, TooLarge) as exc:
            found.warnings.append(SbomWarning(rel, exc.problem))
        except OSError as exc:
            found.warnings.append(SbomWarning(rel, f"cannot read: {exc.strerror}"))
    vendor = os_info.purl_namespace if os_info else "debian"
    distro = os_info.distro if os_info else ""
    packages: list[tuple[str, dict[str, str]]] = []
    for rel, text in sources:
        for line, fields in deb822_paragraphs(text):
            name = fields.get("package", "")
            version = fields.get("version", "")
            status = fields.get("status", "install ok installed")
            if not status.endswith(" installed"):
                continue
            if not _NAME.fullmatch(name) or not version:
                found.warnings.append(
                    SbomWarning(f"{rel}:{line}", f"paragraph without a valid Package/Version (got {name!r})")
                )
                continue
            packages.append((rel, fields))
    refs: dict[str, str] = {}
    provides: dict[str, str] = {}
    purls: list[tuple[str, PackageURL, dict[str, str]]] = []
    for rel, fields in packages:
        name, version = fields["package"], fields["version"]
        qualifiers = {"arch": fields["architecture"]} if fields.get("architecture") else {}
        if distro:
            qualifiers["distro"] = distro
        purl = PackageURL("deb", vendor, name, version, qualifiers)
        ref = make_ref(purl, name, version, rel)
        refs.setdefault(name, ref)
        for provided in _split_relations(fields.get("provides", "")):
            provides.setdefault(provided[0], ref)
        purls.append((rel, purl, fields))
    for rel, purl, fields in purls:
        name = fields["package"]
        depends: list[str] = []
        for field in ("pre-depends", "depends"):
            for alternatives in _split_relations(fields.get(field, "")):
                target = next(
                    (refs.get(a) or provides.get(a) for a in alternatives if a in refs or a in provides), None
                )
                if target and target not in depends and target != refs[name]:
                    depends.append(target)
        props: list[tuple[str, str]] = []
        source = fields.get("source", "")
        if source:
            source_name, _, source_version = source.partition(" ")
            props.append(("gate:deb:source", source_name))
            if source_version.strip("() "):
                props.append(("gate:deb:source-version", source_version.strip("() ")))
        found.components.append(
            component(
                purl,
                path=rel,
                found_by="dpkg",
                licenses=_copyright_licenses(root, name, found, min(limits.max_file_bytes, _COPYRIGHT_CAP)),
                properties=tuple(props),
                depends_on=tuple(depends),
            )
        )
    return found


def _status_files(root: Root, found: Found) -> list[str]:
    files = [STATUS] if root.exists(STATUS) else []
    try:
        status_d = root.real(STATUS_D)
    except UnsafePath as exc:
        found.warnings.append(SbomWarning(STATUS_D, exc.problem))
        return files
    if status_d.is_dir() and not status_d.is_symlink():
        # Distroless images keep one paragraph per file here; *.md5sums are file lists.
        files.extend(
            f"{STATUS_D}/{entry}" for entry in sorted(os.listdir(status_d)) if not entry.endswith(".md5sums")
        )
    return files


def _common_licence_references(text: str) -> tuple[str, ...]:
    # Free-text copyright files point at the licence texts Debian ships; a
    # versioned name there (GPL-2, Apache-2.0) is one licence, while the bare
    # "GPL" or "LGPL" links do not say which version and are left out.
    found: dict[str, None] = {}
    for match in _COMMON_LICENSES.finditer(text):
        name = match.group(1).rstrip(".")
        if name.upper() in _UNVERSIONED:
            continue
        mapped = _licenses.from_dep5(name)
        if mapped and _licenses.is_spdx_id(mapped):
            found[mapped] = None
    return tuple(found)


@lru_cache(maxsize=8192)
def _license_field(value: str) -> str:
    """One DEP-5 ``License:`` value as an SPDX id or expression, else as written ("" for none)."""
    if not value:
        return ""
    parts = _LICENSE_OPS.split(value)
    # parts alternate: name, operator, name, ...
    mapped = [part.upper() if index % 2 else _licenses.from_dep5(part) for index, part in enumerate(parts)]
    names = mapped[0::2]
    if any(not n for n in names):
        return ""
    if len(names) == 1:
        return names[0]
    expression = " ".join(f"({m})" if index % 2 == 0 and " " in m else m for index, m in enumerate(mapped))
    normalised = _licenses.normalise(expression)
    return normalised if _licenses.is_compound(normalised) else value


def _split_relations(value: str) -> list[list[str]]:
    # "libc6 (>= 2.34), libfoo | libbar:any" -> [["libc6"], ["libfoo", "libbar"]]
    relations: list[list[str]] = []
    for group in value.replace("\n", " ").split(","):
        names = [alt.strip().split(" ")[0].split("(")[0].split(":")[0] for alt in group.split("|")]
        names = [n for n in names if n]
        if names:
            relations.append(names)
    return relations


def _copyright_licenses(root: Root, package: str, found: Found, cap: int) -> tuple[str, ...]:
    rel = f"usr/share/doc/{package}/copyright"
    try:
        text = root.read(rel, cap).decode("utf-8", "replace")
    except FileNotFoundError:
        return ()
    except (UnsafePath, TooLarge) as exc:
        found.warnings.append(SbomWarning(rel, exc.problem))
        return ()
    except OSError:
        return ()
    if not text.startswith("Format:"):
        return _common_licence_references(text)
    licences: dict[str, None] = {}
    for raw in text.splitlines():
        if raw.startswith("License:"):
            licence = _license_field(raw[len("License:") :].strip())
            if licence:
                licences[licence] = None
    return tuple(licences)
