"""Installed Python distributions: ``*.dist-info/METADATA``, ``*.egg-info`` (PKG-INFO) in site-packages."""

from __future__ import annotations

from email.parser import HeaderParser
from pathlib import PurePosixPath

from packageurl import PackageURL
from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from gate.sbom import _licenses
from gate.sbom._fs import Limits, Root, TooLarge, UnsafePath
from gate.sbom._types import Found, SbomWarning, component, make_ref

_META_CAP = 4 * 1024 * 1024


def metadata_file(entry: str, is_dir: bool) -> str:
    """The metadata file of a ``.dist-info``/``.egg-info`` entry (an egg-info may be a file itself)."""
    if entry.endswith(".dist-info"):
        return f"{entry}/METADATA"
    return f"{entry}/PKG-INFO" if is_dir else entry


def catalogue(root: Root, entries: list[tuple[str, bool]], limits: Limits) -> Found:
    """List the distributions whose metadata directories are ``entries`` (all in one site-packages).

    Args:
        root: The root the paths are relative to.
        entries: ``(path of the .dist-info/.egg-info entry, whether it is a directory)``.
        limits: Size caps.

    Dependencies come from ``Requires-Dist`` (or an egg's ``requires.txt``) and
    are kept when the requirement applies without extras on this interpreter and
    the distribution it names is installed in the same directory.
    """
    found = Found()
    parsed: list[tuple[str, str, str, list[str], tuple[str, ...]]] = []
    refs: dict[str, str] = {}
    cap = min(limits.max_file_bytes, _META_CAP)
    parser = HeaderParser()
    for entry, is_dir in entries:
        meta_rel = metadata_file(entry, is_dir)
        try:
            text = root.read(meta_rel, cap).decode("utf-8", "replace")
        except FileNotFoundError:
            found.warnings.append(SbomWarning(entry, "no METADATA/PKG-INFO file; distribution skipped"))
            continue
        except (UnsafePath, TooLarge) as exc:
            found.warnings.append(SbomWarning(meta_rel, exc.problem))
            continue
        except OSError as exc:
            found.warnings.append(SbomWarning(meta_rel, f"cannot read: {exc.strerror}"))
            continue
        message = parser.parsestr(text)
        name = str(message.get("Name", "") or "").strip()
        version = str(message.get("Version", "") or "").strip()
        if not name or not version:
            found.warnings.append(SbomWarning(meta_rel, "no Name or Version header; distribution skipped"))
            continue
        requires = [str(r) for r in message.get_all("Requires-Dist", [])]
        if not requires and entry.endswith(".egg-info") and is_dir:
            requires = _egg_requires(root, entry, cap)
        licences = _licences(
            str(message.get("License-Expression", "") or ""),
            [str(c) for c in message.get_all("Classifier", [])],
            str(message.get("License", "") or ""),
        )
        canonical = canonicalize_name(name)
        purl = PackageURL("pypi", None, canonical, version)
        refs.setdefault(canonical, make_ref(purl, name, version, entry))
        parsed.append((entry, name, version, requires, licences))
    for entry, name, version, requires, licences in parsed:
        own = refs[canonicalize_name(name)]
        depends = [d for d in _resolve(requires, refs) if d != own]
        found.components.append(
            component(
                PackageURL("pypi", None, canonicalize_name(name), version),
                path=entry,
                found_by="python-installed",
                name=name,
                licenses=licences,
                depends_on=tuple(dict.fromkeys(depends)),
            )
        )
    return found


def _licences(expression: str, classifiers: list[str], free_text: str) -> tuple[str, ...]:
    # PEP 639's License-Expression is authoritative; classifiers come next because
    # the free-text License field often holds a whole licence text.
    if expression.strip():
        return (_licenses.normalise(expression),)
    from_classifiers = tuple(
        dict.fromkeys(x for x in (_licenses.from_classifier(c) for c in classifiers) if x)
    )
    if from_classifiers:
        return from_classifiers
    text = free_text.strip()
    if text and "\n" not in text and len(text) <= 200 and text.upper() not in ("UNKNOWN", "NONE"):
        return (_licenses.normalise(text),)
    return ()


def _resolve(requires: list[str], refs: dict[str, str]) -> list[str]:
    depends: list[str] = []
    for line in requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None:
            try:
                if not requirement.marker.evaluate({"extra": ""}):
                    continue
            except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
                continue
        target = refs.get(canonicalize_name(requirement.name))
        if target:
            depends.append(target)
    return depends


def _egg_requires(root: Root, entry: str, cap: int) -> list[str]:
    try:
        text = root.read(str(PurePosixPath(entry) / "requires.txt"), cap).decode("utf-8", "replace")
    except (OSError, UnsafePath, TooLarge):
        return []
    requires: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            break  # the rest are extras or marker sections
        if line and not line.startswith("#"):
            requires.append(line)
    return requires
