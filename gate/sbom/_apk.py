"""Alpine packages from apk's installed database (``lib/apk/db/installed``)."""

from __future__ import annotations

from packageurl import PackageURL

from gate.sbom import _licenses
from gate.sbom._control import apk_records
from gate.sbom._fs import Limits, Root, TooLarge, UnsafePath
from gate.sbom._os_release import OperatingSystem
from gate.sbom._types import Found, SbomWarning, component, make_ref

INSTALLED = "lib/apk/db/installed"


def present(root: Root) -> bool:
    """True if ``root`` has an apk database."""
    return root.exists(INSTALLED)


def catalogue(root: Root, os_info: OperatingSystem | None, limits: Limits) -> Found:
    """List the packages of the apk database under ``root``.

    Dependencies (``D:``) name packages, ``so:``/``cmd:``/``pc:`` capabilities or
    paths; they are matched against the names and provides (``p:``) of the
    installed packages, and unmatched ones (virtual or absent) are left out.
    """
    found = Found()
    try:
        text = root.read(INSTALLED, limits.max_file_bytes).decode("utf-8", "replace")
    except FileNotFoundError:
        return found
    except (UnsafePath, TooLarge) as exc:
        found.warnings.append(SbomWarning(INSTALLED, exc.problem))
        return found
    vendor = os_info.purl_namespace if os_info else "alpine"
    distro = os_info.version_id if os_info else ""
    records: list[tuple[PackageURL, dict[str, list[str]], str]] = []
    owners: dict[str, str] = {}
    for line, fields in apk_records(text):
        name = _first(fields, "P")
        version = _first(fields, "V")
        if not name or not version:
            found.warnings.append(
                SbomWarning(f"{INSTALLED}:{line}", "record without P: (name) or V: (version)")
            )
            continue
        qualifiers = {"arch": _first(fields, "A")} if _first(fields, "A") else {}
        if distro:
            # Trivy and syft both write the bare VERSION_ID for Alpine.
            qualifiers["distro"] = distro
        purl = PackageURL("apk", vendor, name, version, qualifiers)
        ref = make_ref(purl, name, version, INSTALLED)
        owners.setdefault(name, ref)
        for provided in " ".join(fields.get("p", [])).split():
            owners.setdefault(provided.split("=")[0], ref)
        records.append((purl, fields, ref))
    for purl, fields, ref in records:
        depends: list[str] = []
        for dep in " ".join(fields.get("D", [])).split():
            if dep.startswith("!"):
                continue  # a conflict, not a dependency
            key = dep
            for op in ("<", ">", "=", "~"):
                key = key.split(op)[0]
            target = owners.get(key)
            if target and target != ref and target not in depends:
                depends.append(target)
        licence = _first(fields, "L")
        props = [("gate:apk:origin", _first(fields, "o"))] if _first(fields, "o") else []
        if _first(fields, "c"):
            props.append(("gate:apk:commit", _first(fields, "c")))
        found.components.append(
            component(
                purl,
                path=INSTALLED,
                found_by="apk",
                licenses=(_licenses.normalise(licence),) if licence else (),
                properties=tuple(props),
                depends_on=tuple(depends),
            )
        )
    return found


def _first(fields: dict[str, list[str]], key: str) -> str:
    values = fields.get(key)
    return values[0].strip() if values else ""
