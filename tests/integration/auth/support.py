"""Shared by the auth tests: one token per role, and tokens files."""

from __future__ import annotations

from pathlib import Path

from gate.auth import ROLES, hash_token

TOKENS = {role: f"{role}-token-0123456789" for role in ROLES}


def write_tokens(path: Path, entries: dict[str, tuple[str, list[str], list[str]]]) -> Path:
    """A tokens file: clear token -> (identity, roles, projects), stored by hash."""
    lines = ["tokens:"]
    for token, (identity, roles, projects) in entries.items():
        lines.append(f"  {hash_token(token)}: {{identity: {identity}, roles: {roles}, projects: {projects}}}")
    path.write_text("\n".join(lines) + "\n")
    return path
