"""Noticing that a file changed, the way mounted Secrets and ConfigMaps change."""

from __future__ import annotations

import os
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
