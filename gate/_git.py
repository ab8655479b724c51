"""What a git work tree has checked out, read from its files (no git binary needed)."""

from __future__ import annotations

import re
from pathlib import Path

COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
"""A git commit id, SHA-1 or SHA-256, lowercase (``fullmatch`` it)."""


def git_head(work_tree: Path) -> str | None:
    """``git:<commit>`` of the commit checked out in ``work_tree``, or None when it is no git work tree.

    Reads ``.git/HEAD`` and the ref it names (loose or packed) without running git.
    """
    git_dir = work_tree / ".git"
    try:
        head = (git_dir / "HEAD").read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    if head.startswith("ref: "):
        ref = head[5:].strip()
        if ".." in ref:
            return None
        try:
            head = (git_dir / ref).read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            head = ""
            try:
                packed = (git_dir / "packed-refs").read_text(encoding="ascii", errors="replace")
            except OSError:
                return None
            for line in packed.splitlines():
                commit, _, name = line.partition(" ")
                if name == ref:
                    head = commit
    return f"git:{head}" if COMMIT.fullmatch(head) else None
