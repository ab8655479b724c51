"""Reading the files named on the command line, bounded.

Every file option goes through here. A pipe is read like a file, since ``--manifest <(helm
template ...)`` hands gate ``/dev/fd/63``; a size checked with ``stat`` first says nothing about
one (it reports 0), nor about ``/dev/zero``, which ``read_bytes`` read until memory ran out. So
the limit is enforced while reading.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import click

KEY_BYTES = 64 * 1024
"""A PEM key or certificate: a few KiB; a chain of several stays far below."""

DOCUMENT_BYTES = 64 * 1024 * 1024
"""A trusted root, a bundle, a blob to verify."""

_CHUNK = 1024 * 1024


class TooLarge(ValueError):
    """The file holds more than the limit allows (the message gives both)."""


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them.

    Raises:
        OSError: the file cannot be opened or read.
        TooLarge: it holds more than ``limit`` bytes.
    """
    with path.open("rb") as handle:
        info = os.fstat(handle.fileno())
        if stat.S_ISREG(info.st_mode):
            if info.st_size > limit:
                raise TooLarge(f"got {info.st_size} bytes, expected at most {limit}")
            # A regular file may grow between fstat and read: still read no more than the limit.
            data = handle.read(limit + 1)
        else:
            # In chunks: read(limit + 1) would ask for the whole limit's buffer at once.
            parts: list[bytes] = []
            total = 0
            while total <= limit:
                part = handle.read(min(_CHUNK, limit + 1 - total))
                if not part:
                    break
                parts.append(part)
                total += len(part)
            data = b"".join(parts)
    if len(data) > limit:
        raise TooLarge(f"got more than {limit} bytes, expected at most {limit}")
    return data


def read_input(path: Path | None, option: str, limit: int) -> bytes:
    """:func:`read_bounded` for a command-line option; a usage error naming ``option`` if it fails.

    ``None`` (the option not given) reads as no bytes.
    """
    if path is None:
        return b""
    try:
        return read_bounded(path, limit)
    except OSError as error:
        raise click.BadParameter(f"cannot read {path}: {error.strerror}", param_hint=option) from None
    except TooLarge as error:
        raise click.BadParameter(f"{path}: {error}", param_hint=option) from None


def read_text_input(path: Path, option: str, limit: int) -> str:
    """:func:`read_input` of a text file (a PEM key), which must be UTF-8."""
    data = read_input(path, option, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise click.BadParameter(
            f"{path}: got a byte that is not UTF-8 at offset {error.start}, expected a text (PEM) file",
            param_hint=option,
        ) from None
