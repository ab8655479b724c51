"""Applying image layers: whiteouts, overlay rules, selective extraction, and hostile archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from gate.errors import InvalidArgument
from gate.sbom import Limits
from gate.sbom._layers import LayerWriter, UnsafeArchive, private_directory
from gate.sbom._walk import read_by_cataloguers
from tests.unit.sbom.layers import Entry, directory, file, hardlink, symlink, tar, tgz


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A root to unpack into and a sibling directory that must stay exactly as it was."""
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("untouched")
    before = snapshot(tmp_path, root)
    yield root, outside
    assert snapshot(tmp_path, root) == before, "something was written outside the root"


def snapshot(base: Path, skip: Path) -> dict[str, tuple[int, bytes]]:
    """Every path under ``base`` except ``skip``, with its mode and (for files) its content."""
    found: dict[str, tuple[int, bytes]] = {}
    for directory_path, dirs, files in os.walk(base):
        here = Path(directory_path)
        dirs[:] = [d for d in dirs if here / d != skip]
        for name in dirs + files:
            path = here / name
            info = path.lstat()
            data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
            found[str(path.relative_to(base))] = (info.st_mode, data)
    return found


def apply(root: Path, *layers: bytes, limits: Limits | None = None, select: bool = False) -> LayerWriter:
    writer = LayerWriter(root, limits or Limits(), read_by_cataloguers if select else None)
    for index, blob in enumerate(layers):
        writer.apply(io.BytesIO(blob), f"layer {index + 1}")
    return writer


def tree(root: Path) -> dict[str, str]:
    """Paths under ``root``: file contents, ``-> target`` for links, ``/`` for directories."""
    found: dict[str, str] = {}
    for directory_path, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory_path) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[rel] = "/"
            else:
                found[rel] = path.read_text()
    return found


# --- whiteouts and overlay rules --------------------------------------------------------------


def test_whiteout_deletes_a_lower_file_and_a_lower_directory_tree(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    lower = tgz(directory("a"), file("a/one", "1"), file("a/two", "2"), directory("b"), file("b/dir/x", "x"))
    upper = tgz(file("a/.wh.one"), file(".wh.b"))
    apply(root, lower, upper)
    assert tree(root) == {"a": "/", "a/two": "2"}


def test_opaque_directory_hides_lower_content_but_keeps_its_own_layer(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    lower = tgz(file("c/old", "o"), file("c/sub/deep", "d"), file("d/other", "k"))
    # The new file comes before the opaque marker in the same layer: it must survive.
    upper = tgz(file("c/new", "n"), file("c/.wh..wh..opq"), file("c/sub2/fresh", "f"))
    apply(root, lower, upper)
    assert tree(root) == {
        "c": "/",
        "c/new": "n",
        "c/sub2": "/",
        "c/sub2/fresh": "f",
        "d": "/",
        "d/other": "k",
    }


def test_whiteout_of_a_name_the_same_layer_writes_keeps_the_new_entry(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    apply(root, tgz(file("f", "old")), tgz(file("f", "new"), file(".wh.f")))
    assert tree(root) == {"f": "new"}


def test_upper_layer_replaces_files_links_and_directories(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    lower = tgz(file("x", "file"), symlink("lib", "usr/lib"), file("usr/lib/a", "a"), file("d/inner", "i"))
    upper = tgz(symlink("x", "target"), file("lib/own", "own"), file("d", "now a file"))
    apply(root, lower, upper)
    assert tree(root) == {
        "x": "-> target",
        "lib": "/",
        "lib/own": "own",
        "usr": "/",
        "usr/lib": "/",
        "usr/lib/a": "a",
        "d": "now a file",
    }


def test_hard_link_inside_the_root_is_kept(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    apply(root, tgz(file("usr/bin/a", "same"), hardlink("usr/bin/b", "usr/bin/a")))
    assert (root / "usr/bin/b").read_text() == "same"
    assert (root / "usr/bin/a").stat().st_ino == (root / "usr/bin/b").stat().st_ino


def test_layers_may_be_uncompressed_gzip_or_zstd(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    zstd = zstandard.ZstdCompressor().compress(tar(file("z", "zstd")))
    apply(root, tar(file("plain", "tar")), tgz(file("g", "gzip")), zstd)
    assert tree(root) == {"plain": "tar", "g": "gzip", "z": "zstd"}


def test_selective_extraction_keeps_only_what_cataloguers_read(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    elf = b"\x7fELF" + b"\0" * 5000
    lower = tgz(
        file("etc/os-release", "ID=debian\n"),
        file("var/lib/dpkg/status", "Package: a\n"),
        file("usr/share/doc/a/copyright", "MIT"),
        file("usr/share/doc/a/README", "skip me"),
        file("app/requirements.txt", "x==1\n"),
        file("app/lib/python3.11/site-packages/x-1.dist-info/METADATA", "Name: x\n"),
        file("app/lib/python3.11/site-packages/x-1.dist-info/RECORD", "skip"),
        file("app/lib/python3.11/site-packages/x/__init__.py", "skip"),
        file("app/server.jar", "PK"),
        file("usr/bin/tool", elf, mode=0o755),
        file("usr/bin/script", "#!/bin/sh\n", mode=0o755),
        file("etc/passwd", "skip"),
    )
    writer = apply(root, lower, select=True)
    files = {rel for rel, value in tree(root).items() if value != "/" and not value.startswith("->")}
    assert files == {
        "etc/os-release",
        "var/lib/dpkg/status",
        "usr/share/doc/a/copyright",
        "app/requirements.txt",
        "app/lib/python3.11/site-packages/x-1.dist-info/METADATA",
        "app/server.jar",
        "usr/bin/tool",
    }
    assert os.access(root / "usr/bin/tool", os.X_OK)
    assert writer.warnings == []


def test_unselected_upper_file_still_hides_the_lower_one(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    # A lower lock file replaced by a directory, and a Go binary replaced by a small script.
    lower = tgz(file("srv/poetry.lock", "[[package]]"), file("bin/tool", b"\x7fELF" + b"\0" * 5000, 0o755))
    upper = tgz(directory("srv/poetry.lock"), file("bin/tool", "#!/bin/sh\n", 0o755))
    apply(root, lower, upper, select=True)
    assert tree(root) == {"srv": "/", "srv/poetry.lock": "/", "bin": "/"}


# --- hostile archives ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (file("../escaped", "x"), "'..' in the path would climb out of the root"),
        (file("a/../../escaped", "x"), "'..' in the path would climb out of the root"),
        (file("/tmp/gate-escape-" + uuid.uuid4().hex, "x"), "absolute path"),
        (symlink("evil", "../../outside/keep"), "leads outside the root"),
        (symlink("a/b/evil", "../../../outside"), "leads outside the root"),
        (symlink("evil", "/../../outside"), "leads outside the root"),
        (hardlink("evil", "../outside/keep"), "'..' in the path would climb out of the root"),
        (hardlink("evil", "/etc/passwd"), "absolute path"),
    ],
)
def test_escaping_member_is_rejected_naming_the_layer_and_member(
    sandbox: tuple[Path, Path], entry: Entry, problem: str
) -> None:
    root, _ = sandbox
    with pytest.raises(UnsafeArchive) as caught:
        apply(root, tgz(file("ok", "fine"), entry))
    assert isinstance(caught.value, InvalidArgument)
    assert caught.value.member == entry.name
    assert "layer 1" in caught.value.message
    assert problem in caught.value.message
    assert not Path(entry.name).is_absolute() or not Path(entry.name).exists()


def test_absolute_symlink_is_kept_as_a_link_and_never_written_through(sandbox: tuple[Path, Path]) -> None:
    root, outside = sandbox
    # Inside an image an absolute target starts at the image root; gate.sbom._fs.Root resolves it so.
    apply(root, tgz(symlink("etc", str(outside))), tgz(file("etc/keep", "overwritten?")))
    assert tree(root) == {"etc": "/", "etc/keep": "overwritten?"}
    assert (outside / "keep").read_text() == "untouched"


def test_symlink_parent_in_the_same_layer_is_replaced_not_followed(sandbox: tuple[Path, Path]) -> None:
    root, outside = sandbox
    apply(root, tgz(symlink("d", str(outside)), file("d/new", "inside")))
    assert tree(root) == {"d": "/", "d/new": "inside"}


def test_hard_link_to_a_symlink_is_rejected(sandbox: tuple[Path, Path]) -> None:
    root, outside = sandbox
    # Linking the symlink's host target would copy a host file into the tree.
    with pytest.raises(UnsafeArchive, match="not a regular file"):
        apply(root, tgz(symlink("s", str(outside / "keep")), hardlink("h", "s")))
    assert not (root / "h").exists()


def test_hard_link_through_a_symlinked_directory_is_not_followed(sandbox: tuple[Path, Path]) -> None:
    root, outside = sandbox
    writer = apply(root, tgz(symlink("p", str(outside)), hardlink("usr/bin/h", "p/keep")), select=False)
    assert not (root / "usr/bin/h").exists()
    assert [w.message for w in writer.warnings] == ["hard link to 'p/keep', which was not extracted; skipped"]


def test_device_files_and_fifos_are_skipped_with_a_warning(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    writer = apply(
        root,
        tgz(
            Entry("dev/null", kind=tarfile.CHRTYPE), Entry("run/pipe", kind=tarfile.FIFOTYPE), file("f", "1")
        ),
    )
    assert tree(root) == {"dev": "/", "run": "/", "f": "1"}
    assert [(w.path, w.message) for w in writer.warnings] == [
        ("layer 1:dev/null", "device file or FIFO skipped (never read by a cataloguer)"),
        ("layer 1:run/pipe", "device file or FIFO skipped (never read by a cataloguer)"),
    ]


def test_decompression_bomb_stops_at_the_byte_cap(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    bomb = tgz(file("zeros", b"\0" * (8 * 1024 * 1024)))
    assert len(bomb) < 64 * 1024
    with pytest.raises(UnsafeArchive, match=r"more than 1048576 bytes decompressed .*decompression bomb"):
        apply(root, bomb, limits=Limits(max_unpacked_bytes=1024 * 1024))
    assert not (root / "zeros").exists() or (root / "zeros").stat().st_size <= 1024 * 1024


def test_byte_cap_counts_every_layer_of_the_image(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    layer = tgz(file("zeros", b"\0" * (600 * 1024)))
    with pytest.raises(UnsafeArchive, match="layer 2: more than"):
        apply(root, layer, layer, limits=Limits(max_unpacked_bytes=1024 * 1024))


def test_member_count_cap(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    many = tgz(*(file(f"f{i}") for i in range(200)))
    with pytest.raises(UnsafeArchive, match=r"member 'f100': more than 100 archive members"):
        apply(root, many, limits=Limits(max_unpacked_entries=100))


def test_layer_count_cap(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    with pytest.raises(UnsafeArchive, match="more than 2 layers"):
        apply(root, tgz(file("a")), tgz(file("b")), tgz(file("c")), limits=Limits(max_layers=2))


def test_diff_id_mismatch_is_rejected(sandbox: tuple[Path, Path]) -> None:
    root, _ = sandbox
    blob = tar(file("a", "1"))
    writer = LayerWriter(root, Limits())
    writer.apply(io.BytesIO(blob), "layer 1", "sha256:" + hashlib.sha256(blob).hexdigest())
    with pytest.raises(UnsafeArchive, match="differs from the image configuration's diff_id sha256:00"):
        writer.apply(io.BytesIO(gzip.compress(blob)), "layer 2", "sha256:" + "0" * 64)


# Incompressible content, so that cutting the stream in half cuts the tar in half.
_NOISE = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(2000))
TRUNCATED_GZIP = gzip.compress(tar(file("a", _NOISE)))[: len(_NOISE) // 2]


@pytest.mark.parametrize(
    ("blob", "problem"),
    [
        (b"\x1f\x8b" + b"garbage" * 20, "cannot decompress"),
        (TRUNCATED_GZIP, "cannot decompress"),
        (b"\x28\xb5\x2f\xfd" + b"garbage" * 20, "cannot decompress"),
        (b"this is not a tar archive" * 40, "not a valid tar archive"),
    ],
)
def test_corrupt_layer_is_rejected(sandbox: tuple[Path, Path], blob: bytes, problem: str) -> None:
    root, _ = sandbox
    with pytest.raises(UnsafeArchive, match=problem):
        apply(root, blob)


def test_private_directory_is_removed_even_on_error() -> None:
    seen: list[Path] = []

    def unpack_hostile() -> None:
        with private_directory() as path:
            seen.append(path)
            assert oct(path.stat().st_mode & 0o777) == "0o700"
            apply(path, tgz(file("../x")))

    with pytest.raises(UnsafeArchive):
        unpack_hostile()
    assert seen
    assert not seen[0].exists()
