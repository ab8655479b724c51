"""Root-confined, size-capped file access for the cataloguers.

Every path the cataloguers see is relative to a root directory (an unpacked
image, a checkout, a virtual environment). Symbolic links are resolved the way
they would be inside a container whose root is that directory: absolute
targets start at the root, and a target that climbs above the root is refused.
Only regular files are opened (a FIFO or device would block or never end).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from gate.errors import EvidenceError

_MAX_LINK_HOPS = 40


class UnsafePath(EvidenceError):
    """A path leads outside the root, loops, or is not a regular file."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class TooLarge(EvidenceError):
    """A file is bigger than the cap for what it is read as."""

    def __init__(self, path: str, size: int, cap: int) -> None:
        self.problem = f"{size} bytes, over the {cap}-byte cap; not read"
        super().__init__(f"{path}: {self.problem}")
        self.path = path


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps that keep generation bounded on hostile or enormous inputs.

    Attributes:
        max_file_bytes: Largest metadata, lock or database file read whole.
        max_files: Most directory entries visited in one walk.
        max_binary_bytes: Largest executable inspected for Go build information.
        max_jar_bytes: Largest archive (outer or nested) opened as a jar.
        max_jar_entries: Most entries read from one jar.
        max_jar_depth: How deep jars nested in jars are followed.
        max_jar_total_bytes: Bytes decompressed across all entries of one outer jar.
        max_unpacked_bytes: Bytes decompressed across all layers of one image
            (a decompression bomb stops here).
        max_unpacked_entries: Archive members read across all layers of one image.
        max_layers: Most layers one image may have.
    """

    max_file_bytes: int = 64 * 1024 * 1024
    max_files: int = 2_000_000
    max_binary_bytes: int = 1024 * 1024 * 1024
    max_jar_bytes: int = 256 * 1024 * 1024
    max_jar_entries: int = 100_000
    max_jar_depth: int = 2
    max_jar_total_bytes: int = 512 * 1024 * 1024
    max_unpacked_bytes: int = 32 * 1024 * 1024 * 1024
    max_unpacked_entries: int = 2_000_000
    max_layers: int = 512


class Root:
    """A directory the cataloguers read from and never leave.

    Args:
        path: The directory; it is made absolute and its own symlinks resolved
            once, here, because the caller chose it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()

    def real(self, rel: str) -> Path:
        """The host path of ``rel`` after resolving every link inside the root.

        Args:
            rel: A slash-separated path relative to the root (a leading slash is
                allowed and means the root).

        Raises:
            UnsafePath: A link leads above the root, or links loop.
        """
        parts = [p for p in PurePosixPath(rel).parts if p not in ("/", "", ".")]
        resolved: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if not resolved:
                    raise UnsafePath(rel, "climbs above the root")
                resolved.pop()
                continue
            candidate = self.path.joinpath(*resolved, part)
            try:
                mode = os.lstat(candidate).st_mode
            except OSError:
                # A missing component ends resolution; the caller's open reports it.
                resolved.append(part)
                resolved.extend(parts)
                break
            if stat.S_ISLNK(mode):
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    raise UnsafePath(rel, f"more than {_MAX_LINK_HOPS} symbolic links (a loop?)")
                target = os.readlink(candidate)
                target_parts = [p for p in PurePosixPath(target).parts if p not in ("", ".")]
                if target.startswith("/"):
                    resolved = []
                    target_parts = target_parts[1:]
                parts = target_parts + parts
                continue
            resolved.append(part)
        return self.path.joinpath(*resolved)

    def read(self, rel: str, cap: int) -> bytes:
        """Read the regular file at ``rel`` (links resolved inside the root), at most ``cap`` bytes.

        Raises:
            UnsafePath: The path escapes the root or is not a regular file.
            TooLarge: The file is bigger than ``cap``.
            FileNotFoundError: Nothing is there.
        """
        return read_regular(self.real(rel), rel, cap)

    def exists(self, rel: str) -> bool:
        """True if ``rel`` names a regular file inside the root (links resolved inside it)."""
        try:
            return self.real(rel).is_file()
        except (UnsafePath, OSError):
            return False


def open_regular(path: Path, shown: str, cap: int) -> BinaryIO:
    """Open a regular file for reading without following a final symlink or blocking on a FIFO.

    Raises:
        UnsafePath: Not a regular file.
        TooLarge: Bigger than ``cap``.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePath(shown, "not a regular file")
        if info.st_size > cap:
            raise TooLarge(shown, info.st_size, cap)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_regular(path: Path, shown: str, cap: int) -> bytes:
    """Read a regular file without following a final symlink and without blocking on FIFOs.

    Args:
        path: The host path.
        shown: The path to name in errors (relative to the root).
        cap: Most bytes accepted.

    Raises:
        UnsafePath: Not a regular file.
        TooLarge: Bigger than ``cap``.
    """
    with open_regular(path, shown, cap) as handle:
        # One byte past the cap: a file that grew after the size check is still refused.
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise TooLarge(shown, len(data), cap)
    return data
