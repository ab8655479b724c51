"""Files named on the command line are read bounded: pipes work, endless devices stop at the limit."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import click
import pytest

from gate.cli import main
from gate.cli._input import TooLarge, read_bounded, read_input, read_text_input
from tests.deadline_support import within


def test_an_endless_device_stops_at_the_limit() -> None:
    with pytest.raises(TooLarge, match="got more than 4096 bytes, expected at most 4096"):
        within(10, lambda: read_bounded(Path("/dev/zero"), 4096))


def test_a_regular_file_over_the_limit_is_refused_by_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"x" * 5000)
    with pytest.raises(TooLarge, match="got 5000 bytes, expected at most 4999"):
        read_bounded(big, 4999)
    assert read_bounded(big, 5000) == b"x" * 5000


def test_a_pipe_is_read_like_a_file_as_process_substitution_hands_it_over() -> None:
    reader, writer = os.pipe()
    payload = b"apiVersion: v1\n" * 200_000  # more than one chunk and than a pipe's buffer

    def write() -> None:
        with os.fdopen(writer, "wb") as handle:
            handle.write(payload)

    feeder = threading.Thread(target=write, daemon=True)
    feeder.start()
    try:
        got = within(30, lambda: read_bounded(Path(f"/dev/fd/{reader}"), len(payload)))
    finally:
        feeder.join(30)
        os.close(reader)
    assert got == payload


def test_an_option_file_that_cannot_be_read_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(click.BadParameter) as raised:
        read_input(tmp_path / "missing.pem", "--key", 1024)
    assert raised.value.param_hint == "--key"
    assert "cannot read" in raised.value.message
    assert read_input(None, "--key", 1024) == b""


def test_a_key_file_that_is_not_utf8_says_where(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(b"-----BEGIN PUBLIC KEY-----\n\xff\xfe\n")
    with pytest.raises(click.BadParameter, match="not UTF-8 at offset 27, expected a text"):
        read_text_input(key, "--key", 1024)


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["audit", "verify", "0192a0b0-0000-7000-8000-000000000000", "--key", "/dev/zero"], "--key"),
        (["decide", "--stage", "deploy", "--manifest", "/dev/zero"], "--manifest"),
        (["scan", "import", "/dev/zero", "--tool", "trivy", "--artifact", "sha256:" + "a" * 64], "REPORT"),
    ],
)
def test_the_cli_refuses_an_endless_file_argument_instead_of_reading_for_ever(
    argv: list[str],
    option: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    code = within(60, lambda: main(argv))
    err = capsys.readouterr().err
    assert code == 2
    assert option in err
    assert "/dev/zero: got more than" in err
    assert "Traceback" not in err


def test_every_text_argument_of_every_command_must_be_utf8() -> None:
    from gate.cli import cli
    from gate.cli._text import Utf8Text

    def plain_text(command: click.Command, path: str) -> list[str]:
        found = [
            f"{path} {param.name}"
            for param in command.params
            if isinstance(param.type, click.types.StringParamType) and not isinstance(param.type, Utf8Text)
        ]
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                found += plain_text(sub, f"{path} {name}")
        return found

    assert plain_text(cli, "gate") == []


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        (["waiver", "revoke", "\udcff"], "'WAIVER_ID': got the byte 0xff at position 0"),
        (
            ["decide", "--stage", "deploy", "--image", "reg.example/a\udce9:1"],
            "'--image': got the byte 0xe9 at",
        ),
        (["scan", "get", "\udc80abc"], "'SCAN_ID': got the byte 0x80 at position 0"),
    ],
)
def test_a_text_argument_holding_bytes_that_are_not_utf8_is_a_usage_error(
    argv: list[str],
    where: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # How Python hands over argv bytes that are not UTF-8 (surrogateescape).
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GATE_SERVER", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert where in err
    assert "expected UTF-8 text" in err
    assert "Traceback" not in err


def test_a_file_name_that_is_not_utf8_is_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GATE_SERVER", raising=False)
    monkeypatch.delenv("GATE_CONFIG", raising=False)
    report = Path(os.fsdecode(bytes(tmp_path) + b"/trivy-\xff.json"))
    report.write_bytes(
        b'{"SchemaVersion": 2, "ArtifactName": "app", "ArtifactType": "container_image", "Results": []}'
    )
    code = main(["scan", "import", str(report), "--tool", "trivy", "--artifact", "sha256:" + "a" * 64])
    assert code == 0, capsys.readouterr().err
