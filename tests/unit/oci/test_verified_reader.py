"""The verified reader hands out a blob's last bytes only after its size and digest matched."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import pytest

from gate.oci import DigestMismatch, SizeLimitExceeded, SizeMismatch, VerifiedReader, digest_of


def _reader(chunks: list[bytes], data: bytes, *, size: int | None = None, cap: int = 1000) -> VerifiedReader:
    return VerifiedReader(
        iter(chunks),
        where="blob",
        digest=digest_of(data),
        size=len(data) if size is None else size,
        max_bytes=cap,
    )


def test_chunks_are_reassembled_and_verified() -> None:
    reader = _reader([b"ab", b"", b"cd", b"e"], b"abcde")
    assert reader.read(3) == b"abc"
    assert not reader.verified
    assert reader.read(10) == b"de"
    assert reader.verified
    assert reader.read(1) == b""


def test_final_chunk_is_withheld_when_the_digest_fails() -> None:
    reader = _reader([b"ab", b"cX"], b"abcd")
    assert reader.read(2) == b"ab"
    with pytest.raises(DigestMismatch, match="blob: digest mismatch: expected sha256:"):
        reader.read(2)


def test_extra_bytes_after_the_declared_size_are_refused() -> None:
    reader = _reader([b"abcd", b"more"], b"abcd")
    with pytest.raises(SizeMismatch, match="descriptor says 4 bytes, got at least 8"):
        reader.read()


def test_short_content_is_refused() -> None:
    reader = _reader([b"ab"], b"abcd")
    with pytest.raises(SizeMismatch, match="descriptor says 4 bytes, got 2"):
        reader.read()


def test_cap_stops_a_stream_that_never_ends() -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"x" * 100

    reader = VerifiedReader(endless(), where="blob", digest=digest_of(b""), size=1000, max_bytes=1000)
    with pytest.raises(SizeMismatch, match="got at least 1100"):
        reader.read()
    with pytest.raises(SizeLimitExceeded):
        VerifiedReader(endless(), where="blob", digest=digest_of(b""), size=5000, max_bytes=300)


def test_cap_below_the_declared_size_fails_before_reading() -> None:
    with pytest.raises(SizeLimitExceeded, match="limit of 3 bytes \\(got 4\\)"):
        _reader([b"abcd"], b"abcd", cap=3)


def test_empty_blob_verifies_and_refuses_stray_bytes() -> None:
    assert _reader([], b"").read() == b""
    with pytest.raises(SizeMismatch):
        _reader([b"x"], b"").read()


def test_works_as_a_file_for_tarfile() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"hello"))
    data = buffer.getvalue()
    chunks = [data[i : i + 300] for i in range(0, len(data), 300)]
    with _reader(chunks, data, cap=len(data)) as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
        member = next(iter(archive))
        extracted = archive.extractfile(member)
        assert extracted is not None
        assert extracted.read() == b"hello"


def test_close_releases_the_source() -> None:
    closed: list[bool] = []
    reader = VerifiedReader(
        iter([b"a"]),
        where="b",
        digest=digest_of(b"a"),
        size=1,
        max_bytes=1,
        on_close=lambda: closed.append(True),
    )
    with reader:
        pass
    assert closed == [True]
    assert reader.closed


def test_refused_construction_releases_the_source_once(recwarn: pytest.WarningsRecorder) -> None:
    import gc

    closed: list[bool] = []
    with pytest.raises(SizeLimitExceeded):
        VerifiedReader(
            iter([b"abcd"]),
            where="b",
            digest=digest_of(b"abcd"),
            size=4,
            max_bytes=3,
            on_close=lambda: closed.append(True),
        )
    gc.collect()
    assert closed == [True]
    assert not [w for w in recwarn if "unraisable" in str(w.message).lower()]
