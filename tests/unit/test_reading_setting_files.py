"""Files named by settings are read without waiting on them and within a bound."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from gate._files import FileTooLarge, NotRegularFile, read_regular
from gate._keys import KEY_BYTES, load_or_create_key
from gate.errors import ConfigError


def test_a_regular_file_within_the_limit_is_read_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "data" / "key"
    target.parent.mkdir()
    target.write_bytes(b"k" * 10)
    link = tmp_path / "key"
    link.symlink_to(target)  # a mounted Secret's file is a symlink
    assert read_regular(link, 10) == b"k" * 10


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (os.mkfifo, "a FIFO"),
        (Path.mkdir, "a directory"),
        (lambda path: path.symlink_to("/dev/zero"), "a character device"),
    ],
)
def test_a_fifo_a_device_or_a_directory_is_refused_without_being_read(
    tmp_path: Path, make: Callable[[Path], object], kind: str
) -> None:
    path = tmp_path / "setting"
    make(path)
    with pytest.raises(NotRegularFile, match=f"got {kind}, expected a regular file"):
        read_regular(path, 1024)


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 1025)
    with pytest.raises(FileTooLarge, match="file is larger than 1024 bytes"):
        read_regular(path, 1024)


def test_the_scanning_secret_key_file_is_created_once_and_then_read(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secret.key"
    key = load_or_create_key(path, "scanning.secret_key_file")
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path, "scanning.secret_key_file") == key


def test_a_secret_key_file_that_is_a_fifo_or_huge_is_a_configuration_error(tmp_path: Path) -> None:
    # It was read with read_bytes: a FIFO waited for a writer for ever, /dev/zero filled the memory.
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="got a FIFO, expected a regular file"):
        load_or_create_key(fifo, "scanning.secret_key_file")
    huge = tmp_path / "huge.key"
    huge.write_bytes(b"k" * (1 << 20))
    with pytest.raises(ConfigError, match="file is larger than"):
        load_or_create_key(huge, "scanning.secret_key_file")
