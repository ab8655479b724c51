"""Files gate is told to read: noticing that one changed, and reading one without waiting on it.

Mounted Secrets and ConfigMaps change by a symlink swap; a path given in a setting may lead to a
FIFO or a device.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# (device, inode, size, modification time in ns) of the file a path leads to.
FileIdentity = tuple[int, int, int, int]


def file_identity(path: Path | str) -> FileIdentity:
    """What identifies the file ``path`` leads to now; any rewrite of it changes the result.

    ``os.stat`` follows symlinks, so a kubelet swapping a volume's ``..data`` link to a new
    directory, a rename over the file and an edit in place are all seen, without inotify
    (which misses the symlink swap and does not work on every volume type).

    Raises:
        OSError: the file cannot be reached.
    """
    info = os.stat(path)
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


_KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(ValueError):
    """The path leads to a directory, a FIFO, a device or a socket (``str()``: got/expected)."""


class FileTooLarge(ValueError):
    """The file holds more than the limit (``str()`` names the limit)."""


def kind_of(mode: int) -> str:
    """What a ``stat`` mode says a path leads to, in words: "a regular file", "a FIFO"..."""
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _check_regular(mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise NotRegularFile(f"got {kind_of(mode)}, expected a regular file")


def read_regular(path: Path | str, limit: int) -> bytes:
    """The bytes of the regular file ``path`` leads to (symlinks followed), at most ``limit``.

    A FIFO, a device or a directory is refused before it is opened (a FIFO without a writer
    blocks for ever, ``/dev/zero`` fills the memory, opening some devices has effects; ``stat``
    says 0 bytes for both), and the descriptor is checked again after the open, in case the
    path was swapped in between. One byte past the limit is read, so a file that grew since
    its size was looked at is refused too. A final symlink is followed: a mounted ConfigMap or
    Secret is one.

    Raises:
        NotRegularFile: not a regular file.
        FileTooLarge: more than ``limit`` bytes.
        OSError: it cannot be reached, opened or read.
        ValueError: the path holds a NUL.
    """
    _check_regular(os.stat(path).st_mode)
    # Without O_NONBLOCK, opening a FIFO swapped in meanwhile waits for a writer.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        _check_regular(info.st_mode)
        if info.st_size > limit:
            raise FileTooLarge(f"file is larger than {limit} bytes")
        # A regular file ignores O_NONBLOCK on local disks; some network and FUSE ones do not.
        os.set_blocking(fd, True)
        with open(fd, "rb", closefd=False) as stream:
            data = stream.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileTooLarge(f"file is larger than {limit} bytes")
    return data
