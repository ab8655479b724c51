"""Reading the checked-out commit of a work tree from its files."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gate._git import git_head

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_a_real_repository_names_its_head_commit(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True)

    run("init", "-q")
    (tmp_path / "f").write_text("x")
    run("add", "f")
    run("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "one")
    assert git_head(tmp_path) == "git:" + run("rev-parse", "HEAD").stdout.strip()
    run("pack-refs", "--all")
    assert git_head(tmp_path) == "git:" + run("rev-parse", "HEAD").stdout.strip()


def test_a_detached_head_is_read_directly(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text(COMMIT + "\n")
    assert git_head(tmp_path) == f"git:{COMMIT}"


def test_no_repository_or_a_malformed_head_gives_none(tmp_path: Path) -> None:
    assert git_head(tmp_path) is None
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/../../../etc/passwd\n")
    assert git_head(tmp_path) is None
    (tmp_path / ".git" / "HEAD").write_text("garbage\n")
    assert git_head(tmp_path) is None
