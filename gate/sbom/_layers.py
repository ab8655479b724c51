"""Applying image layers (tar diffs) to a private directory, safely and only as far as cataloguing needs.

Layers are applied in order with the OCI whiteout rules: ``.wh.<name>``
deletes ``<name>`` from the layers below, ``.wh..wh..opq`` empties its
directory of what the layers below put there. A directory in an upper layer
hides a file or link of the same name below it, as overlayfs does; nothing is
ever written through a link.

Refused with :class:`UnsafeArchive` (an ``InvalidArgument`` naming the layer
and the member): absolute names and names with ``..``; symbolic links whose
target climbs above the root (absolute targets are fine: they are resolved
inside the root, as in a container); hard links to a name outside the root or
to anything but a regular file; more decompressed bytes or members than
:class:`gate.sbom.Limits` allows; a layer whose content digest differs from
the image configuration's ``diff_id``. Device files and FIFOs are skipped with
a warning: no cataloguer reads them, creating them needs privileges, and a
FIFO would block a reader.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from gate.errors import InvalidArgument
from gate.sbom._fs import Limits
from gate.sbom._types import SbomWarning

Select = Callable[[str, int, int], bool]
"""Whether to extract the regular file at a root-relative path, given its mode and size."""

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_CHUNK = 1024 * 1024


class UnsafeArchive(InvalidArgument):
    """An archive is malformed, hostile or past its caps; names the layer and the member."""

    def __init__(self, layer: str, member: str, problem: str, field: str = "target.location") -> None:
        where = f"{layer}: member {member!r}" if member else layer
        super().__init__(field, f"{where}: {problem}")
        self.layer = layer
        self.member = member
        self.reason = problem


class _Budget:
    """Decompressed bytes and members left for the whole image."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.bytes_left = limits.max_unpacked_bytes
        self.entries_left = limits.max_unpacked_entries

    def spend_bytes(self, count: int, layer: str) -> None:
        self.bytes_left -= count
        if self.bytes_left < 0:
            raise UnsafeArchive(
                layer,
                "",
                f"more than {self.limits.max_unpacked_bytes} bytes decompressed across the image's layers "
                "(a decompression bomb?); raise Limits.max_unpacked_bytes to read it",
            )

    def spend_entry(self, layer: str, member: str) -> None:
        self.entries_left -= 1
        if self.entries_left < 0:
            raise UnsafeArchive(
                layer,
                member,
                f"more than {self.limits.max_unpacked_entries} archive members across the image's layers; "
                "raise Limits.max_unpacked_entries to read it",
            )


class _Prefixed(io.RawIOBase):
    """A stream with a few already-read bytes put back in front (for sniffing the compression)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Counted(io.RawIOBase):
    """The decompressed layer: hashed (for the diff_id) and charged to the image's budget as it is read."""

    def __init__(self, inner: BinaryIO, budget: _Budget, layer: str) -> None:
        self._inner = inner
        self._budget = budget
        self._layer = layer
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except UnsafeArchive:
            raise
        except Exception as exc:
            # gzip, zlib and zstandard each report corrupt input with their own
            # exception types; all of them mean the layer cannot be read.
            raise UnsafeArchive(self._layer, "", f"cannot decompress: {type(exc).__name__}: {exc}") from None
        self._budget.spend_bytes(len(data), self._layer)
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def _decompressed(stream: BinaryIO, layer: str) -> BinaryIO:
    head = stream.read(4)
    raw = io.BufferedReader(_Prefixed(head, stream), _CHUNK)
    if head.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head.startswith(_ZSTD_MAGIC):
        import zstandard

        # The window cap bounds the decompressor's memory whatever the frame header claims.
        return zstandard.ZstdDecompressor(max_window_size=1 << 27).stream_reader(
            raw, read_across_frames=True, closefd=False
        )
    return raw


def normalise_member(layer: str, name: str) -> str:
    """The root-relative path of an archive member name; "" for the root itself.

    Raises:
        UnsafeArchive: an absolute name, a ``..`` component or a NUL byte.
    """
    if "\x00" in name:
        raise UnsafeArchive(layer, name, "the name contains a NUL byte")
    if name.startswith("/"):
        raise UnsafeArchive(layer, name, "absolute path; archive members must be relative to the root")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(layer, name, "'..' in the path would climb out of the root")
    return "/".join(parts)


def _check_symlink(layer: str, rel: str, target: str) -> None:
    if not target or "\x00" in target:
        raise UnsafeArchive(layer, rel, f"symbolic link with an invalid target {target!r}")
    # Relative targets start at the link's directory, absolute ones at the root.
    resolved = [] if target.startswith("/") else rel.split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise UnsafeArchive(layer, rel, f"symbolic link to {target!r} leads outside the root")
            resolved.pop()
        else:
            resolved.append(part)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _remove(path: Path) -> None:
    info = _lstat(path)
    if info is None:
        return
    if stat.S_ISDIR(info.st_mode):
        # rmtree never follows links (it unlinks them), so a link inside cannot lead it out.
        shutil.rmtree(path)
    else:
        path.unlink()


class LayerWriter:
    """Applies layers, in order, to one directory it owns.

    Args:
        root: An empty directory private to this writer.
        limits: The caps on decompressed bytes, members and layers.
        select: Which regular files to extract (None: all of them).
    """

    def __init__(self, root: Path, limits: Limits, select: Select | None = None) -> None:
        self.root = root
        self.limits = limits
        self.select = select
        self.warnings: list[SbomWarning] = []
        self._budget = _Budget(limits)
        self._layers = 0

    def _host(self, rel: str, *, create: bool) -> Path | None:
        """The host path of ``rel`` with its parents real directories (made so if ``create``, else None)."""
        parts = rel.split("/")
        current = self.root
        for part in parts[:-1]:
            current = current / part
            info = _lstat(current)
            if info is not None and stat.S_ISDIR(info.st_mode):
                continue
            if not create:
                return None
            if info is not None:
                # A directory in an upper layer hides a lower file or link of the same name.
                current.unlink()
            current.mkdir(0o755)
        return current / parts[-1]

    def apply(self, stream: BinaryIO, layer: str, diff_id: str = "") -> None:
        """Apply one layer (a tar, gzip- or zstd-compressed tar) read from ``stream``.

        Args:
            stream: The layer blob, read once from start to end.
            layer: How to name the layer in messages (index and digest).
            diff_id: The digest of the uncompressed tar from the image
                configuration; checked when given.

        Raises:
            UnsafeArchive: see the module docstring.
        """
        self._layers += 1
        if self._layers > self.limits.max_layers:
            raise UnsafeArchive(layer, "", f"more than {self.limits.max_layers} layers")
        counted = _Counted(_decompressed(stream, layer), self._budget, layer)
        written: set[str] = set()
        whiteouts: list[str] = []
        opaque: list[str] = []
        try:
            with tarfile.open(fileobj=counted, mode="r|") as archive:
                for member in archive:
                    self._member(archive, member, layer, written, whiteouts, opaque)
            counted.drain()
        except tarfile.TarError as exc:
            raise UnsafeArchive(layer, "", f"not a valid tar archive: {exc}") from None
        actual = "sha256:" + counted.digest.hexdigest()
        if diff_id and actual != diff_id:
            raise UnsafeArchive(
                layer, "", f"content digest {actual} differs from the image configuration's diff_id {diff_id}"
            )
        self._apply_whiteouts(whiteouts, opaque, written)

    def _member(
        self,
        archive: tarfile.TarFile,
        member: tarfile.TarInfo,
        layer: str,
        written: set[str],
        whiteouts: list[str],
        opaque: list[str],
    ) -> None:
        rel = normalise_member(layer, member.name)
        self._budget.spend_entry(layer, member.name)
        if not rel:
            return
        parent, _, base = rel.rpartition("/")
        if base.startswith(_WHITEOUT):
            if base == _OPAQUE:
                opaque.append(parent)
            else:
                hidden = base[len(_WHITEOUT) :]
                if hidden in ("", ".", ".."):
                    raise UnsafeArchive(layer, member.name, "whiteout of an invalid name")
                whiteouts.append(f"{parent}/{hidden}" if parent else hidden)
            return
        written.add(rel)
        host = self._host(rel, create=True)
        assert host is not None
        existing = _lstat(host)
        if member.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                _remove(host)
                host.mkdir(0o755)
            return
        _remove(host)
        if member.issym():
            _check_symlink(layer, rel, member.linkname)
            os.symlink(member.linkname, host)
        elif member.islnk():
            self._hard_link(layer, member, rel, host)
        elif member.isreg():
            if self.select is None or self.select(rel, member.mode, member.size):
                self._write(archive, member, host)
        else:
            self.warnings.append(
                SbomWarning(f"{layer}:{rel}", "device file or FIFO skipped (never read by a cataloguer)")
            )

    def _hard_link(self, layer: str, member: tarfile.TarInfo, rel: str, host: Path) -> None:
        try:
            target = normalise_member(layer, member.linkname) if member.linkname else ""
        except UnsafeArchive as exc:
            raise UnsafeArchive(
                layer, member.name, f"hard link to {member.linkname!r}: {exc.reason}"
            ) from None
        if not target:
            raise UnsafeArchive(layer, member.name, "hard link without a target")
        source = self._host(target, create=False)
        info = _lstat(source) if source is not None else None
        if source is None or info is None:
            if self.select is None or self.select(rel, member.mode, member.size):
                self.warnings.append(
                    SbomWarning(
                        f"{layer}:{rel}", f"hard link to {target!r}, which was not extracted; skipped"
                    )
                )
            return
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeArchive(layer, member.name, f"hard link to {target!r}, which is not a regular file")
        os.link(source, host, follow_symlinks=False)

    def _write(self, archive: tarfile.TarFile, member: tarfile.TarInfo, host: Path) -> None:
        source = archive.extractfile(member)
        assert source is not None
        # Only the executable bits matter to the walk (it looks for binaries by them).
        mode = 0o755 if member.mode & 0o111 else 0o644
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        with os.fdopen(os.open(host, flags, mode), "wb") as target:
            shutil.copyfileobj(source, target, _CHUNK)

    def _apply_whiteouts(self, whiteouts: list[str], opaque: list[str], written: set[str]) -> None:
        # Whiteouts hide what the layers below hold, never what this layer wrote.
        for rel in whiteouts:
            if rel in written:
                continue
            host = self._host(rel, create=False)
            if host is not None:
                _remove(host)
        for directory in opaque:
            host = self._host(f"{directory}/x", create=False) if directory else self.root / "x"
            if host is None or _lstat(host.parent) is None:
                continue
            self._empty_below(host.parent, directory, written)

    def _empty_below(self, host: Path, rel: str, written: set[str]) -> None:
        for entry in list(os.scandir(host)):
            child = f"{rel}/{entry.name}" if rel else entry.name
            path = host / entry.name
            if entry.is_dir(follow_symlinks=False):
                self._empty_below(path, child, written)
                if child not in written and not os.listdir(path):
                    path.rmdir()
            elif child not in written:
                path.unlink()


@contextlib.contextmanager
def private_directory(prefix: str = "gate-image-") -> Iterator[Path]:
    """A new directory only this process can read, removed with everything in it on exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
