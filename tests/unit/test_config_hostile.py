"""Hostile configuration input: every mistake is a one-line ConfigError, never a crash or a hang."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gate.config import MAX_FILE_BYTES, load_config
from gate.errors import ConfigError

# Long enough for any bounded load on a slow CI machine, short against a hang.
_PROMPT = 20.0


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    return path


def load_error_promptly(path: Path | None, environ: dict[str, str]) -> ConfigError:
    """The ConfigError ``load_config`` raises, run in a thread so a hang fails the test, not the run."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            load_config(path, environ)
        except BaseException as exc:  # handed back to the test to judge
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(_PROMPT)
    assert outcome, f"load_config still running after {_PROMPT} s"
    error = outcome[0]
    assert isinstance(error, ConfigError), repr(error)
    assert "\n" not in error.message
    return error


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """YAML whose anchor ``l{levels-1}`` expands to ``width ** levels`` values."""
    lines = ["l0: &l0 [" + ", ".join(["x"] * width) + "]"]
    for level in range(1, levels):
        items = ", ".join(f"*l{level - 1}" for _ in range(width))
        lines.append(f"l{level}: &l{level} [{items}]")
    return "\n".join(lines)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("grpc:\n  workers: !!int abc\n", id="explicit-int-not-a-number"),
        pytest.param("grpc:\n  listen: 2001-13-45\n", id="timestamp-month-13"),
        pytest.param("data_dir: 2001-01-01 25:61:00\n", id="timestamp-hour-25"),
        pytest.param("data_dir: !!timestamp abc\n", id="explicit-timestamp-not-a-date"),
        pytest.param("metrics:\n  enabled: !!bool maybe\n", id="explicit-bool-maybe"),
        pytest.param("grpc:\n  workers: " + "9" * 5000 + "\n", id="int-past-the-digit-limit"),
        pytest.param("grpc:\n  workers: !!float abc\n", id="explicit-float-not-a-number"),
    ],
)
def test_value_yaml_cannot_construct_is_a_config_error_naming_file_and_line(
    tmp_path: Path, text: str
) -> None:
    path = write(tmp_path, text)
    error = load_error_promptly(path, {})
    assert error.source == str(path)
    assert "line " in error.message, error.message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("grpc: " + "[" * 5000 + "]" * 5000 + "\n", id="flow-sequences"),
        pytest.param("grpc: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", id="flow-mappings"),
        pytest.param("".join("  " * depth + f"k{depth}:\n" for depth in range(5000)), id="block-mappings"),
    ],
)
def test_deeply_nested_yaml_is_a_config_error_about_nesting(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    error = load_error_promptly(path, {})
    assert error.source == str(path)
    assert "nest" in error.message, error.message


def test_integer_too_long_to_print_is_reported_without_printing_it(tmp_path: Path) -> None:
    error = load_error_promptly(write(tmp_path, "grpc:\n  workers: 0x" + "f" * 5000 + "\n"), {})
    assert error.key == "grpc.workers"
    assert "less than or equal to 256" in error.message
    assert len(error.message) < 400, error.message


def test_alias_bomb_as_a_wrong_value_is_refused_promptly(tmp_path: Path) -> None:
    text = alias_bomb() + "\ndata_dir: *l8\n"
    error = load_error_promptly(write(tmp_path, text), {})
    assert str(tmp_path) in error.source
    assert len(error.message) < 400, error.message


def test_alias_bomb_in_a_list_setting_is_refused_promptly(tmp_path: Path) -> None:
    text = alias_bomb() + "\npolicies:\n  sources: *l8\n"
    error = load_error_promptly(write(tmp_path, text), {})
    assert str(tmp_path) in error.source
    assert "values" in error.message, error.message


def test_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    error = load_error_promptly(write(tmp_path, "policies:\n  sources: &s [*s]\n"), {})
    assert str(tmp_path) in error.source


def test_wide_wrong_value_is_shown_in_a_short_message(tmp_path: Path) -> None:
    items = ", ".join(f"{{k{index}: [{index}, {index}]}}" for index in range(2000))
    error = load_error_promptly(write(tmp_path, f"grpc:\n  workers: [{items}]\n"), {})
    assert error.key == "grpc.workers"
    assert len(error.message) < 400, error.message


def test_ordinary_aliases_still_load(tmp_path: Path) -> None:
    text = (
        "policies:\n  evidence_ttl: &ttl 30\n  waiver_ttl: *ttl\n  sources: &s [a, b]\n"
        "auth:\n  kubernetes:\n    audiences: *s\n"
    )
    config = load_config(write(tmp_path, text), {})
    assert config.policies.evidence_ttl == config.policies.waiver_ttl == 30
    assert config.auth.kubernetes.audiences == ("a", "b")


def test_gate_config_with_a_nul_byte_names_the_variable() -> None:
    error = load_error_promptly(None, {"GATE_CONFIG": "a\x00b"})
    assert error.source == "environment variable GATE_CONFIG"
    assert "NUL" in error.message
    assert "\x00" not in error.message


def test_config_path_with_a_nul_byte_is_a_config_error() -> None:
    error = load_error_promptly(Path("a\x00b"), {})
    assert "NUL" in error.message
    assert "\x00" not in error.message


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_device_as_config_file_is_refused_as_not_a_regular_file(device: str) -> None:
    error = load_error_promptly(Path(device), {})
    assert error.source == device
    assert error.message == f"{device}: got a character device, expected a regular file"


def test_config_file_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    # Kept from the /dev/zero test this replaces: the cap must still hold for a regular file.
    path = write(tmp_path, "#" * MAX_FILE_BYTES + "\n")
    error = load_error_promptly(path, {})
    assert error.message == f"{path}: file is larger than {MAX_FILE_BYTES} bytes"


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO no one writes to; a reader left waiting on it is let go when the test ends."""
    path = tmp_path / "gate.yaml"
    os.mkfifo(path)
    yield path
    # Opening the write end wakes a reader stuck in open(); closing it gives that reader EOF.
    # With no reader there, ENXIO: nothing was waiting.
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_fifo_given_as_the_config_file_is_refused_without_waiting_for_a_writer(fifo: Path) -> None:
    error = load_error_promptly(fifo, {})
    assert error.source == str(fifo)
    assert error.message == f"{fifo}: got a FIFO, expected a regular file"


def test_fifo_named_by_gate_config_is_refused_without_waiting_for_a_writer(fifo: Path) -> None:
    error = load_error_promptly(None, {"GATE_CONFIG": str(fifo)})
    assert error.message == f"{fifo}: got a FIFO, expected a regular file"


def test_symlink_to_a_fifo_is_refused_without_waiting_for_a_writer(fifo: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.yaml"
    link.symlink_to(fifo)
    error = load_error_promptly(link, {})
    assert error.message == f"{link}: got a FIFO, expected a regular file"


def test_fifo_swapped_in_after_the_path_was_checked_is_refused_on_the_open_file(
    fifo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first look at the path sees a regular file; by the time it is opened a FIFO is there.
    regular = tmp_path / "regular.yaml"
    regular.write_text("")
    real_stat = os.stat

    def stat_before_the_swap(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        return real_stat(regular if path == fifo else path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat_before_the_swap)
    error = load_error_promptly(fifo, {})
    assert error.message == f"{fifo}: got a FIFO, expected a regular file"


def test_directory_given_as_the_config_file_is_refused_as_not_a_regular_file(tmp_path: Path) -> None:
    error = load_error_promptly(tmp_path, {})
    assert error.message == f"{tmp_path}: got a directory, expected a regular file"


def test_config_file_reached_through_configmap_symlinks_still_loads(tmp_path: Path) -> None:
    # Guards the choice not to refuse symlinks: a mounted ConfigMap is gate.yaml -> ..data/gate.yaml.
    (tmp_path / "..2026_01_01").mkdir()
    write(tmp_path / "..2026_01_01", "log:\n  level: debug\n")
    (tmp_path / "..data").symlink_to("..2026_01_01")
    (tmp_path / "mounted.yaml").symlink_to("..data/gate.yaml")
    assert load_config(tmp_path / "mounted.yaml", {}).log.level == "debug"


def test_gate_serve_with_a_fifo_config_exits_with_one_line_instead_of_hanging(fifo: Path) -> None:
    run = [sys.executable, "-c", "import sys; from gate.cli import main; sys.exit(main())"]
    try:
        done = subprocess.run(
            [*run, "--config", str(fifo), "serve"],
            check=False,
            capture_output=True,
            text=True,
            timeout=_PROMPT,
            env={**os.environ, "GATE_DATA_DIR": str(fifo.parent / "data")},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"gate serve --config FIFO still running after {_PROMPT} s")
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"gate: configuration error: {fifo}: got a FIFO, expected a regular file\n"


def test_self_referencing_alias_names_the_setting_it_is_in(tmp_path: Path) -> None:
    error = load_error_promptly(write(tmp_path, "log:\n  level: info\npolicies:\n  sources: &s [*s]\n"), {})
    assert error.key == "policies.sources"
    assert "line 4, column 12" in error.message, error.message


def test_alias_bomb_names_the_setting_that_defines_the_anchor(tmp_path: Path) -> None:
    text = "policies:\n" + "".join(f"  {line}\n" for line in alias_bomb().splitlines())
    error = load_error_promptly(write(tmp_path, text), {})
    assert error.key.startswith("policies.l"), error.message
    assert "values" in error.message, error.message


def test_wrong_value_is_pictured_without_walking_all_of_it() -> None:
    # The load bounds stop alias bombs first; the picture must stay bounded on its own too.
    from gate.config import _shown

    value: list[object] = ["x"] * 9
    for _ in range(9):
        value = [value] * 9
    started = time.monotonic()
    assert len(_shown(value)) <= 80
    assert len(_shown({"k": 1 << 20_000})) <= 80
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("raw", ["9" * 5000, "²", "1²"])
def test_non_ascii_or_endless_digits_in_a_variable_get_the_expected_form(raw: str) -> None:
    error = load_error_promptly(None, {"GATE_GRPC_PROCESSES": raw, "GATE_GRPC_LISTEN": f"0.0.0.0:{raw}"})
    assert error.source.startswith("environment variable GATE_GRPC_")
    assert "expected" in error.message
    assert len(error.message) < 400, error.message


def test_a_setting_written_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "grpc:\n  workers: 2\n  listen: 127.0.0.1:0\n  workers: 8\n")
    error = load_error_promptly(path, {})
    assert error.key == "grpc"
    assert error.message.endswith(
        "invalid YAML at line 4, column 3: the key 'workers' appears twice in one mapping "
        "(first at line 2), expected each key once"
    )


def test_a_key_brought_in_by_a_merge_may_still_be_overridden(tmp_path: Path) -> None:
    merged = write(tmp_path, "grpc:\n  <<: {workers: 2, listen: '127.0.0.1:0'}\n  workers: 8\n")
    assert load_config(merged, {}).grpc.workers == 8
