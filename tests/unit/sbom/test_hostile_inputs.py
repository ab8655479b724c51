"""Roots built to escape, hang or exhaust the cataloguers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gate.errors import InvalidArgument
from gate.sbom import Limits, Subject, UnsafePath, generate, generate_python_environment
from gate.sbom._fs import Root


def test_symlinked_lock_file_pointing_outside_the_root_is_not_read(tmp_path: Path, subject: Subject) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "requirements.txt").write_text("secret-package==1.0\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "requirements.txt").symlink_to("../outside/requirements.txt")
    sbom = generate(root, subject=subject)
    assert sbom.components == ()
    assert [(w.path, w.message) for w in sbom.warnings] == [
        ("requirements.txt", "symbolic link not followed: climbs above the root")
    ]


def test_absolute_symlink_resolves_inside_the_root_not_on_the_host(tmp_path: Path, subject: Subject) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app/requirements.txt").write_text("flask==3.0.3\n")
    (tmp_path / "srv").mkdir()
    # On the host /app/requirements.txt does not exist; inside the root it does.
    (tmp_path / "srv/requirements.txt").symlink_to("/app/requirements.txt")
    sbom = generate(tmp_path, subject=subject)
    assert [c.component.purl for c in sbom.components] == ["pkg:pypi/flask@3.0.3"]
    assert sbom.warnings == ()


def test_os_release_escaping_the_root_is_refused(tmp_path: Path, subject: Subject) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").symlink_to("../../../../../../etc/os-release")
    sbom = generate(tmp_path, subject=subject)
    assert sbom.operating_system is None
    assert [(w.path, w.message) for w in sbom.warnings] == [("etc/os-release", "climbs above the root")]


def test_package_database_directory_linked_out_of_the_root_is_refused(
    tmp_path: Path, subject: Subject
) -> None:
    (tmp_path / "var/lib").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg").symlink_to("../../../../../../../../var/lib/dpkg")
    sbom = generate(tmp_path, subject=subject)
    assert sbom.components == ()
    assert [(w.path, w.message) for w in sbom.warnings] == [
        ("var/lib/dpkg/status.d", "climbs above the root")
    ]


def test_symlink_loop_is_reported_not_followed_forever(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(UnsafePath, match="more than 40 symbolic links"):
        Root(tmp_path).read("a/poetry.lock", 1024)


def test_directory_symlinks_are_not_walked(tmp_path: Path, subject: Subject) -> None:
    (tmp_path / "loop").symlink_to(".")
    (tmp_path / "up").symlink_to("..")
    (tmp_path / "requirements.txt").write_text("click==8.1.7\n")
    sbom = generate(tmp_path, subject=subject)
    assert [c.path for c in sbom.components] == ["requirements.txt"]


def test_fifo_named_like_a_lock_file_does_not_hang(tmp_path: Path, subject: Subject) -> None:
    os.mkfifo(tmp_path / "poetry.lock")
    (tmp_path / "etc").mkdir()
    os.mkfifo(tmp_path / "etc/os-release")
    sbom = generate(tmp_path, subject=subject)
    assert sbom.components == ()
    assert [(w.path, w.message) for w in sbom.warnings] == [("etc/os-release", "not a regular file")]


def test_file_over_the_size_cap_is_skipped_with_a_warning(tmp_path: Path, subject: Subject) -> None:
    (tmp_path / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {}}' + " " * 4096)
    sbom = generate(tmp_path, subject=subject, limits=Limits(max_file_bytes=1024))
    assert sbom.components == ()
    (warning,) = sbom.warnings
    assert warning.path == "package-lock.json"
    assert "over the 1024-byte cap" in warning.message


def test_walk_stops_at_the_entry_cap(tmp_path: Path, subject: Subject) -> None:
    for index in range(20):
        (tmp_path / f"d{index:02}").mkdir()
    sbom = generate(tmp_path, subject=subject, limits=Limits(max_files=10))
    assert [w.message for w in sbom.warnings] == ["more than 10 entries; the walk stopped here"]


def test_unparseable_go_build_info_is_a_warning(tmp_path: Path, subject: Subject) -> None:
    # A minimal ELF header whose section table points past the end of the file.
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    header[0x28:0x30] = (10**6).to_bytes(8, "little")
    binary = tmp_path / "tool"
    binary.write_bytes(bytes(header) + b"\0" * 8192)
    binary.chmod(0o755)
    sbom = generate(tmp_path, subject=subject)
    assert sbom.components == ()
    assert sbom.warnings == ()


def test_root_that_is_not_a_directory_is_an_invalid_argument(tmp_path: Path, subject: Subject) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgument, match=r"^root: .*/file: expected a directory, got a file$"):
        generate(tmp_path / "file", subject=subject)
    with pytest.raises(InvalidArgument, match=r"^root: .*/missing: no such directory$"):
        generate(tmp_path / "missing", subject=subject)
    with pytest.raises(InvalidArgument, match=r"^prefix: .*: no lib/python\*/site-packages directory"):
        generate_python_environment(tmp_path, subject=subject)


def test_subject_digest_is_checked() -> None:
    with pytest.raises(InvalidArgument, match=r"^subject\.digest: expected 'sha256:<64 hex>'"):
        Subject("registry.example/app", "latest")
    with pytest.raises(InvalidArgument, match=r"^subject\.name: required"):
        Subject(" ", "sha256:" + "0" * 64)


def test_nothing_is_written_under_the_root(tmp_path: Path, subject: Subject) -> None:
    (tmp_path / "requirements.txt").write_text("click==8.1.7\n")
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    generate(tmp_path, subject=subject).to_cyclonedx_json()
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
