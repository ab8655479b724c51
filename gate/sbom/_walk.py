"""One bounded walk of a root that collects what each cataloguer reads."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from gate.sbom import _java, _python_locks
from gate.sbom._fs import Limits, Root, UnsafePath
from gate.sbom._types import SbomWarning

LOCK_FILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "poetry.lock",
        "uv.lock",
        "Pipfile.lock",
        "go.mod",
    }
)
_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__"})
_MIN_BINARY = 4096
_PYTHON_META = (".dist-info", ".egg-info")


@dataclass(slots=True)
class Candidates:
    """Paths (relative to the root) worth reading, by what reads them."""

    python_meta: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    locks: list[str] = field(default_factory=list)
    archives: list[str] = field(default_factory=list)
    executables: list[str] = field(default_factory=list)
    warnings: list[SbomWarning] = field(default_factory=list)
    visited: int = 0

    @property
    def total(self) -> int:
        """Number of units of work found (one per site-packages directory, file or archive)."""
        return len(self.python_meta) + len(self.locks) + len(self.archives) + len(self.executables)


def _interesting_file(name: str) -> bool:
    return name in LOCK_FILES or _python_locks.is_requirements(name)


# Files read at fixed places of a root filesystem (OS, package databases), and
# the metadata files read inside a ``*.dist-info``/``*.egg-info`` directory.
_FIXED_FILES = frozenset(
    {
        "etc/os-release",
        "usr/lib/os-release",
        "var/lib/dpkg/status",
        "lib/apk/db/installed",
    }
)
_PYTHON_META_FILES = frozenset({"METADATA", "PKG-INFO", "requires.txt"})


def read_by_cataloguers(rel: str, mode: int, size: int) -> bool:
    """True if a cataloguer may read the regular file at ``rel`` (root-relative) with ``mode`` and ``size``.

    Unpacking an image extracts only these files (plus directories and
    links), so it must stay in step with :func:`walk` and the cataloguers.
    """
    if rel in _FIXED_FILES or rel.startswith("var/lib/dpkg/status.d/"):
        return True
    directory, _, name = rel.rpartition("/")
    if name == "copyright" and directory.startswith("usr/share/doc/") and directory.count("/") == 3:
        return True
    if _interesting_file(name) or name == "go.sum" or name.endswith((*_java.ARCHIVE_SUFFIXES, ".egg-info")):
        return True
    if directory.endswith(_PYTHON_META) and name in _PYTHON_META_FILES:
        return True
    return bool(mode & 0o111) and size >= _MIN_BINARY


def walk(root: Root, limits: Limits, start: str = "") -> Candidates:  # noqa: PLR0912 -- one branch per entry kind
    """Walk ``root`` (from ``start``) without following directory links, collecting candidates.

    A symlinked file is followed only when its name is one a cataloguer reads,
    and only inside the root; one that leads out is reported, not read.
    """
    found = Candidates()
    stack = [start]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = sorted(os.scandir(root.path / rel_dir if rel_dir else root.path), key=lambda e: e.name)
        except OSError as exc:
            found.warnings.append(SbomWarning(rel_dir or ".", f"cannot list: {exc.strerror}"))
            continue
        subdirs: list[str] = []
        for entry in entries:
            found.visited += 1
            if found.visited > limits.max_files:
                found.warnings.append(
                    SbomWarning(
                        rel_dir or ".", f"more than {limits.max_files} entries; the walk stopped here"
                    )
                )
                return found
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            mode = info.st_mode
            if stat.S_ISLNK(mode):
                if _interesting_file(entry.name) or entry.name.endswith(_java.ARCHIVE_SUFFIXES):
                    _symlinked(root, rel, entry.name, found)
                continue
            if stat.S_ISDIR(mode):
                if entry.name.endswith(_PYTHON_META):
                    found.python_meta.setdefault(rel_dir, []).append((rel, True))
                elif entry.name not in _SKIP_DIRS:
                    subdirs.append(rel)
                continue
            if not stat.S_ISREG(mode):
                continue
            if _interesting_file(entry.name):
                found.locks.append(rel)
            elif entry.name.endswith(".egg-info"):
                found.python_meta.setdefault(rel_dir, []).append((rel, False))
            elif entry.name.endswith(_java.ARCHIVE_SUFFIXES):
                found.archives.append(rel)
            elif mode & 0o111 and info.st_size >= _MIN_BINARY:
                found.executables.append(rel)
        stack.extend(reversed(subdirs))
    return found


def _symlinked(root: Root, rel: str, name: str, found: Candidates) -> None:
    try:
        real = root.real(rel)
    except UnsafePath as exc:
        found.warnings.append(SbomWarning(rel, f"symbolic link not followed: {exc.problem}"))
        return
    if not real.is_file():
        return
    target = real.relative_to(root.path).as_posix()
    if name.endswith(_java.ARCHIVE_SUFFIXES):
        if target not in found.archives:
            found.archives.append(target)
    elif target not in found.locks:
        found.locks.append(target)
