"""Running the cataloguers over a root and assembling one inventory."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from uuid import NAMESPACE_URL, uuid5

from gate.errors import EvidenceError, InvalidArgument
from gate.model import TargetKind
from gate.sbom import _apk, _dpkg, _gobinary, _gomod, _java, _npm, _os_release, _python, _python_locks
from gate.sbom._fs import Limits, Root, TooLarge, UnsafePath, open_regular
from gate.sbom._ingest import identifier, purl, text
from gate.sbom._result import GeneratedSbom, Subject
from gate.sbom._tool_output import _UNSTORABLE, _fixed, _Repaired
from gate.sbom._types import Found, FoundComponent, MalformedInput, SbomWarning
from gate.sbom._walk import Candidates, walk

Progress = Callable[[str, float], None]

log = logging.getLogger("gate.sbom")

_LOCK_READERS: dict[str, Callable[[str, str], Found]] = {
    "package-lock.json": _npm.package_lock,
    "npm-shrinkwrap.json": _npm.package_lock,
    "yarn.lock": _npm.yarn_lock,
    "poetry.lock": _python_locks.poetry,
    "uv.lock": _python_locks.uv,
    "Pipfile.lock": _python_locks.pipfile,
}


class _Run:
    """State of one generation: what was found, warnings, progress reporting."""

    def __init__(self, root: Root, limits: Limits, progress: Progress | None, strict: bool) -> None:
        self.root = root
        self.limits = limits
        self.progress = progress
        self.strict = strict
        self.components: dict[str, FoundComponent] = {}
        self.warnings: list[SbomWarning] = []
        self.skipped = 0

    def report(self, stage: str, fraction: float) -> None:
        if self.progress is not None:
            self.progress(stage, min(max(fraction, 0.0), 1.0))

    def add(self, found: Found) -> None:
        for item in found.components:
            problem = unstorable(item)
            if problem is not None:
                # One bad entry of a package database costs that entry, not the image's SBOM.
                self.skipped += 1
                self.warn(SbomWarning(item.path, f"{item.found_by} entry {_shown(item)} skipped: {problem}"))
                continue
            kept, repaired = storable_text(item)
            if repaired.texts:
                # Its free text is made storable instead: the entry is kept, as the tools' are.
                self.warn(
                    SbomWarning(
                        kept.path,
                        f"{kept.found_by} entry {_shown(kept)}: {repaired.what()} replaced with U+FFFD "
                        f"in {repaired.listed()}",
                    )
                )
            # The same ref twice (one file listed twice) is one component.
            self.components.setdefault(kept.ref, kept)
        for warning in found.warnings:
            self.warn(warning)

    def warn(self, warning: SbomWarning) -> None:
        if self.strict:
            raise MalformedInput(warning.path, warning.message)
        self.warnings.append(warning)

    def guarded(self, path: str, action: Callable[[], Found]) -> None:
        """Run one cataloguer; bad input becomes a warning (or, strict, an error) naming the path."""
        try:
            self.add(action())
        except FileNotFoundError:
            self.warn(SbomWarning(path, "vanished while being read"))
        except MalformedInput as exc:
            if self.strict:
                raise
            self.warnings.append(SbomWarning(f"{exc.path}:{exc.line}" if exc.line else exc.path, exc.problem))
        except (UnsafePath, TooLarge) as exc:
            self.warn(SbomWarning(exc.path, exc.problem))
        except EvidenceError as exc:
            self.warn(SbomWarning(path, exc.message))
        except OSError as exc:
            self.warn(SbomWarning(path, f"cannot read: {exc.strerror or exc}"))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
            # Parsers of hostile input can fail in ways their formats do not
            # name; the file is skipped with the reason rather than ending the run.
            self.warn(SbomWarning(path, f"cannot be parsed: {type(exc).__name__}: {exc}"))


def unstorable(item: FoundComponent) -> str | None:
    """``<field>: <problem>`` when a found component holds what the store cannot index alike on
    every backend, else None.

    Package databases, lock files and metadata are read from disk as they are, so a NUL or a
    control character can sit in a name or a version: PostgreSQL's text columns refuse NUL
    (SQLite's keep it), and uploads refuse both in these fields. Paths and property values are
    not indexed: a path goes into the bom-ref escaped (:func:`gate.sbom._types.ref_location`),
    and free text keeps its entry (:func:`storable_text`).
    """
    c = item.component
    identifiers = [c.type, c.name, c.version, c.group, c.purl]
    identifiers += [part for h in item.hashes for part in (h.alg, h.content)]
    # One C-level pass for the common case; isprintable() is also false for some harmless
    # characters (U+00A0) and "%" may start an encoded control, so a miss means looking closer.
    if "".join(identifiers).isprintable() and "%" not in c.purl and "".join(c.licenses).isprintable():
        return None
    checks: list[tuple[Callable[[object, str], str], object, str]] = [
        (identifier, c.type, "type"),
        (identifier, c.name, "name"),
        (identifier, c.version, "version"),
        (identifier, c.group, "group"),
        (purl, c.purl, "purl"),
        *((identifier, h.alg, "hash algorithm") for h in item.hashes),
        *((identifier, h.content, "hash") for h in item.hashes),
        *((text, licence, "licence") for licence in c.licenses),
    ]
    for check, value, field in checks:
        try:
            check(value, field)
        except InvalidArgument as refused:
            return str(refused)
    return None


def storable_text(item: FoundComponent) -> tuple[FoundComponent, _Repaired]:
    """``item`` with each NUL and lone UTF-16 surrogate in its free text replaced with U+FFFD, and
    what was replaced (each field named as the document shows it).

    For an item :func:`unstorable` kept, whose identifiers hold neither. Free text is read as it
    is too (a dpkg ``Source:`` field, a licence name escaped in a lock file's JSON), and the
    upload parser, which GetSbom re-reads a stored document with to convert it, refuses both
    anywhere: the text is made storable and the entry kept, as for tool output
    (:mod:`gate.sbom._tool_output`). Property names are gate's own.
    """
    repaired = _Repaired()

    def fixed(text: str, where: str) -> str:
        if _UNSTORABLE.search(text) is None:
            return text
        if (where,) not in repaired.texts:
            repaired.texts.append((where,))
        repaired.note(text)
        return _fixed(text)

    path = fixed(item.path, "property gate:location")
    properties = tuple((name, fixed(value, f"property {name}")) for name, value in item.properties)
    licences = tuple(fixed(licence, "licence") for licence in item.component.licenses)
    if not repaired.texts:
        return item, repaired
    component = replace(item.component, licenses=tuple(dict.fromkeys(licences)))
    return replace(item, path=path, properties=properties, component=component), repaired


def _shown(item: FoundComponent) -> str:
    # The name, escaped: the warning is logged and shown, and must not carry the control
    # characters it reports.
    name = item.component.name or item.component.purl
    return repr(name[:80])


def _read_text(run: _Run, rel: str) -> str:
    return run.root.read(rel, run.limits.max_file_bytes).decode("utf-8", "replace")


def _lock(run: _Run, rel: str) -> Found:
    name = rel.rsplit("/", 1)[-1]
    text = _read_text(run, rel)
    if name == "go.mod":
        go_sum_rel = rel[: -len("go.mod")] + "go.sum"
        go_sum = _read_text(run, go_sum_rel) if run.root.exists(go_sum_rel) else ""
        return _gomod.go_mod(rel, text, go_sum)
    reader = _LOCK_READERS.get(name)
    if reader is not None:
        return reader(rel, text)
    return _python_locks.requirements(rel, text)


def _archive(run: _Run, rel: str) -> Found:
    host = run.root.real(rel)
    # The archive is read from the file, not loaded whole: jars run to hundreds of megabytes.
    with open_regular(host, rel, run.limits.max_jar_bytes) as handle:
        return _java.catalogue(handle, rel, run.limits)


def _catalogue_candidates(run: _Run, candidates: Candidates, done: int, total: int) -> None:
    work: list[tuple[str, str, Callable[[], Found]]] = [
        ("python", directory or ".", partial(_python.catalogue, run.root, entries, run.limits))
        for directory, entries in sorted(candidates.python_meta.items())
    ]
    work.extend(("lock file", rel, partial(_lock, run, rel)) for rel in dict.fromkeys(candidates.locks))
    work.extend(
        ("java archive", rel, partial(_archive, run, rel)) for rel in dict.fromkeys(candidates.archives)
    )
    limit = run.limits.max_binary_bytes
    work.extend(
        ("executable", rel, partial(_gobinary.catalogue, str(run.root.path / rel), rel, limit))
        for rel in candidates.executables
    )
    for what, rel, action in work:
        # The walk took the first 5 %; the rest is spread over the work found.
        run.report(f"{what}: {rel}", 0.05 + 0.9 * done / total)
        run.guarded(rel, action)
        done += 1


def _check_root(root: Path) -> Root:
    if not root.exists():
        raise InvalidArgument("root", f"{root}: no such directory")
    if not root.is_dir():
        raise InvalidArgument("root", f"{root}: expected a directory, got a file")
    return Root(root)


def generate(
    root: Path,
    *,
    subject: Subject,
    progress: Progress | None = None,
    limits: Limits | None = None,
    timestamp: datetime | None = None,
    strict: bool = False,
) -> GeneratedSbom:
    """Inventory a directory or a container root filesystem.

    Args:
        root: The directory. When it holds ``etc/os-release`` it is treated as a
            root filesystem (target kind ``rootfs``): the OS and its package
            database (dpkg or apk) are read as well.
        subject: The artifact the SBOM describes (image digest or source commit).
        progress: Called with a stage description and the fraction done (0 to 1).
        limits: Caps on file sizes, entry counts and archive nesting.
        timestamp: The document timestamp; give one for byte-identical output.
        strict: Raise on the first unreadable or malformed input instead of
            recording a warning and going on.

    Returns:
        The inventory, ready to be written as CycloneDX.

    Raises:
        InvalidArgument: ``root`` is not a directory.
        MalformedInput: ``strict`` and an input could not be read.
    """
    limits = limits or Limits()
    checked = _check_root(root)
    run = _Run(checked, limits, progress, strict)
    run.report("reading the operating system", 0.0)
    found = Found()
    os_info = _os_release.find(checked, found)
    run.add(found)
    target_kind = TargetKind.ROOTFS if os_info is not None else TargetKind.FILESYSTEM
    if os_info is not None:
        run.add(Found(components=[os_info.to_component()]))
    if _dpkg.present(checked):
        run.report("dpkg database", 0.02)
        run.guarded(_dpkg.STATUS, lambda: _dpkg.catalogue(checked, os_info, limits))
    if _apk.present(checked):
        run.report("apk database", 0.02)
        run.guarded(_apk.INSTALLED, lambda: _apk.catalogue(checked, os_info, limits))
    run.report("walking the file tree", 0.05)
    candidates = walk(checked, limits)
    for warning in candidates.warnings:
        run.warn(warning)
    total = max(candidates.total, 1)
    _catalogue_candidates(run, candidates, 0, total)
    return _finish(run, subject, target_kind, os_info, timestamp)


def site_packages(prefix: Path) -> list[str]:
    """The site-packages (or dist-packages) directories of the environment at ``prefix``, relative to it."""
    found: list[str] = []
    for lib in ("lib", "lib64", "Lib"):
        base = prefix / lib
        if not base.is_dir() or base.is_symlink():
            continue
        if (base / "site-packages").is_dir():
            found.append(f"{lib}/site-packages")
        for entry in sorted(os.listdir(base)):
            if entry.startswith("python"):
                for leaf in ("site-packages", "dist-packages"):
                    if (base / entry / leaf).is_dir() and not (base / entry).is_symlink():
                        found.append(f"{lib}/{entry}/{leaf}")
    return found


def generate_python_environment(
    prefix: Path,
    *,
    subject: Subject,
    progress: Progress | None = None,
    limits: Limits | None = None,
    timestamp: datetime | None = None,
    strict: bool = False,
) -> GeneratedSbom:
    """Inventory the distributions installed in a Python environment (a venv or ``sys.prefix``).

    Only the environment's site-packages directories are read (their
    ``*.dist-info`` and ``*.egg-info`` entries); the rest of the prefix is not
    walked. Arguments are those of :func:`generate`.

    Raises:
        InvalidArgument: ``prefix`` is not a directory or has no site-packages.
    """
    limits = limits or Limits()
    checked = _check_root(prefix)
    directories = site_packages(checked.path)
    if not directories:
        raise InvalidArgument(
            "prefix", f"{prefix}: no lib/python*/site-packages directory; not a Python environment"
        )
    run = _Run(checked, limits, progress, strict)
    # Distributions vendored with their metadata (setuptools/_vendor/*.dist-info)
    # ship code too; each vendor directory is catalogued as a site of its own.
    directories = [*directories, *(v for d in directories for v in _vendor_directories(checked.path, d))]
    for index, directory in enumerate(directories):
        run.report(f"python: {directory}", index / len(directories))
        entries = _metadata_entries(checked.path, directory)
        if entries:
            run.guarded(directory, partial(_python.catalogue, checked, entries, limits))
    return _finish(run, subject, TargetKind.FILESYSTEM, None, timestamp)


def _metadata_entries(prefix: Path, directory: str) -> list[tuple[str, bool]]:
    entries: list[tuple[str, bool]] = []
    for entry in sorted(os.scandir(prefix / directory), key=lambda e: e.name):
        if entry.name.endswith((".dist-info", ".egg-info")) and not entry.is_symlink():
            entries.append((f"{directory}/{entry.name}", entry.is_dir(follow_symlinks=False)))
    return entries


def _vendor_directories(prefix: Path, site: str) -> list[str]:
    found: list[str] = []
    for entry in sorted(os.scandir(prefix / site), key=lambda e: e.name):
        vendor = prefix / site / entry.name / "_vendor"
        if entry.is_dir(follow_symlinks=False) and vendor.is_dir() and not vendor.is_symlink():
            found.append(f"{site}/{entry.name}/_vendor")
    return found


def _finish(
    run: _Run,
    subject: Subject,
    target_kind: TargetKind,
    os_info: _os_release.OperatingSystem | None,
    timestamp: datetime | None,
) -> GeneratedSbom:
    run.report("building the dependency graph", 0.98)
    components = tuple(sorted(run.components.values(), key=lambda c: c.ref))
    known = {c.ref for c in components}
    graph: dict[str, tuple[str, ...]] = {
        c.ref: tuple(sorted(d for d in dict.fromkeys(c.depends_on) if d in known and d != c.ref))
        for c in components
    }
    graph[subject.bom_ref] = _top_level(graph, [c.ref for c in components])
    content = hashlib.sha256()
    for ref in sorted(graph):
        content.update(ref.encode())
        content.update(b"\0")
        content.update("\n".join(graph[ref]).encode())
        content.update(b"\1")
    for c in components:
        content.update(repr((c.component, c.hashes, c.scope.value, c.properties)).encode())
    if run.skipped:
        first = next(w for w in run.warnings if " skipped: " in w.message)
        log.warning(
            "SBOM of %s: %d component(s) skipped for holding a NUL or a control character; the first: %s: %s",
            subject.bom_ref,
            run.skipped,
            first.path,
            first.message,
        )
    run.report("done", 1.0)
    return GeneratedSbom(
        subject=subject,
        target_kind=target_kind,
        components=components,
        dependencies=graph,
        operating_system=os_info,
        warnings=tuple(run.warnings),
        serial_number=uuid5(NAMESPACE_URL, f"urn:gate:sbom:{subject.bom_ref}:{content.hexdigest()}"),
        timestamp=(timestamp or datetime.now(UTC)).replace(microsecond=0),
    )


def _top_level(graph: dict[str, tuple[str, ...]], refs: list[str]) -> tuple[str, ...]:
    # The subject depends on what nothing else depends on, plus one member of
    # every cycle unreachable from those, so every component is reachable.
    depended = {d for deps in graph.values() for d in deps}
    top = [r for r in refs if r not in depended]
    seen: set[str] = set()
    stack = list(top)
    while stack:
        ref = stack.pop()
        if ref in seen:
            continue
        seen.add(ref)
        stack.extend(graph.get(ref, ()))
    for ref in refs:
        if ref not in seen:
            top.append(ref)
            stack = [ref]
            while stack:
                current = stack.pop()
                if current in seen:
                    continue
                seen.add(current)
                stack.extend(graph.get(current, ()))
    return tuple(sorted(top))
