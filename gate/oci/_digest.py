"""Content digests and a reader that verifies a blob while it streams.

Every byte gate reads from a registry or a layout passes through
:class:`VerifiedReader`: the size is checked against the descriptor and the
caller's cap as chunks arrive, and the chunk that completes the content is
handed out only after the digest matched and the source proved to be at its
end, so a consumer that reads to EOF never sees unverified bytes as final.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from gate.oci._errors import (
    DigestMismatch,
    InvalidReference,
    SizeLimitExceeded,
    SizeMismatch,
    UnsupportedContent,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# The algorithms of the OCI image spec, with the length of their lowercase hex encoding.
_ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")


def parse_digest(text: str, *, field: str = "digest") -> tuple[str, str]:
    """Split ``alg:hex`` into its parts after checking it is a digest gate can verify.

    Raises:
        InvalidReference: not of the form ``algorithm:encoded`` or a bad encoding.
        UnsupportedContent: a well-formed digest with an algorithm other than sha256/sha512.
    """
    match = _DIGEST.fullmatch(text)
    if match is None:
        raise InvalidReference(field, f"not a digest (algorithm:hex): {text[:100]!r}")
    algorithm, encoded = match.groups()
    known = _ALGORITHMS.get(algorithm)
    if known is None:
        raise UnsupportedContent(f"{field}: digest algorithm {algorithm!r} is not supported (sha256, sha512)")
    if len(encoded) != known or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise InvalidReference(
            field, f"{algorithm} digest must be {known} lowercase hex characters, got {encoded[:140]!r}"
        )
    return algorithm, encoded


def check_digest(text: str, *, field: str = "digest") -> str:
    """Return ``text`` if it is a digest gate can verify (see :func:`parse_digest`)."""
    parse_digest(text, field=field)
    return text


def hasher_for(digest: str) -> hashlib._Hash:
    """A fresh hash object of the algorithm ``digest`` names."""
    algorithm, _ = parse_digest(digest)
    return hashlib.new(algorithm)


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """The ``algorithm:hex`` digest of ``data``."""
    if algorithm not in _ALGORITHMS:
        raise UnsupportedContent(f"digest algorithm {algorithm!r} is not supported (sha256, sha512)")
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def verify_bytes(data: bytes, *, where: str, digest: str, size: int | None = None) -> None:
    """Check bytes read in one piece against a digest and, if given, a size."""
    if size is not None and len(data) != size:
        raise SizeMismatch(where, size, len(data))
    hasher = hasher_for(digest)
    hasher.update(data)
    got = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
    if got != digest:
        raise DigestMismatch(where, digest, got)


class VerifiedReader(io.RawIOBase):
    """A binary stream over chunks that enforces a descriptor's size and digest and a byte cap.

    Raises (from ``read``):
        SizeLimitExceeded: more than ``max_bytes`` arrive.
        SizeMismatch: more or fewer bytes than ``size`` arrive.
        DigestMismatch: the bytes do not hash to ``digest``.
    Errors of the chunk source (timeouts, connection failures) pass through.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        *,
        where: str,
        digest: str,
        size: int,
        max_bytes: int,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        # Set first: IOBase's finaliser calls close() even when __init__ raised below.
        self._on_close = on_close
        self._hasher = hasher_for(digest)
        if size > max_bytes:
            raise SizeLimitExceeded(where, max_bytes, size, at_least=False)
        self._chunks = chunks
        self._where = where
        self._digest = digest
        self._size = size
        self._max = max_bytes
        self._buffer = bytearray()
        self._received = 0
        self._finished = False

    @property
    def verified(self) -> bool:
        """True once every byte arrived and matched the digest."""
        return self._finished

    def readable(self) -> bool:
        """Always true: this is a read-only stream."""
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill ``buffer`` with verified-so-far bytes; 0 only after the whole blob verified."""
        view = memoryview(buffer).cast("B")
        while not self._buffer and not self._finished:
            self._pull()
        count = min(len(view), len(self._buffer))
        view[:count] = self._buffer[:count]
        del self._buffer[:count]
        return count

    def read(self, size: int | None = -1) -> bytes:
        """Read up to ``size`` bytes (all remaining bytes when negative or None)."""
        if size is None or size < 0:
            while not self._finished:
                self._pull()
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        while len(self._buffer) < size and not self._finished:
            self._pull()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readall(self) -> bytes:
        """Read to the end, verifying the whole blob."""
        return self.read(-1)

    def close(self) -> None:
        """Release the source (HTTP response or file)."""
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()
        super().close()

    def __enter__(self) -> VerifiedReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _pull(self) -> None:
        chunk = b""
        while not chunk:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                if self._received < self._size:
                    raise SizeMismatch(self._where, self._size, self._received) from None
                self._finished = self._finish()
                return
        self._take(chunk)
        if self._received == self._size:
            self._expect_end()
            self._finished = self._finish()

    def _take(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self._size:
            raise SizeMismatch(self._where, self._size, self._received, at_least=True)
        if self._received > self._max:
            raise SizeLimitExceeded(self._where, self._max, self._received)
        self._hasher.update(chunk)
        self._buffer += chunk

    def _expect_end(self) -> None:
        for extra in self._chunks:
            if extra:
                self._take(extra)

    def _finish(self) -> bool:
        got = f"{self._digest.split(':', 1)[0]}:{self._hasher.hexdigest()}"
        if got != self._digest:
            self._buffer.clear()
            raise DigestMismatch(self._where, self._digest, got)
        return True
