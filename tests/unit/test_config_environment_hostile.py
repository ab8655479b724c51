"""``GATE_*`` variables with values no setting can take: ``gate serve`` stops with one line naming them.

Before, an empty path became ``.`` (the working directory as the key file, the data directory...),
``/dev/null`` as the data directory crashed ``gate serve`` with a traceback, ``/dev/zero`` as the
signing key hung it while the memory filled, huge values were printed whole, a certificate set
without its key blamed the built-in defaults, and a misspelt variable was ignored without a word.
"""

from __future__ import annotations

import logging
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from gate.cli import main
from gate.config import ENV_OVERRIDES, load_config, misspelt_variables
from gate.errors import ConfigError

PATH_VARIABLES = sorted(
    name
    for name, (dotted, _) in ENV_OVERRIDES.items()
    if dotted.endswith(("_file", "_dir", ".trusted_root"))
    and name not in ("GATE_WEBHOOK_TLS_CERT_FILE", "GATE_WEBHOOK_TLS_KEY_FILE")
)


def _env(tmp_path: Path, **variables: str) -> dict[str, str]:
    return {"GATE_DATA_DIR": str(tmp_path / "data"), **variables}


def test_the_path_variables_are_the_ones_expected() -> None:
    assert PATH_VARIABLES == [
        "GATE_AUTH_TOKENS_FILE",
        "GATE_DATA_DIR",
        "GATE_SIGNING_KEY_FILE",
        "GATE_TRUSTED_ROOT",
        "GATE_WEBHOOK_CLIENT_CA_FILE",
    ]


@pytest.mark.parametrize("name", PATH_VARIABLES)
def test_an_empty_path_variable_is_refused_naming_it_not_taken_for_the_working_directory(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, _env(tmp_path, **{name: ""}))
    assert str(raised.value).startswith(f"environment variable {name}: ")
    assert str(raised.value).endswith(", got ''")
    assert "expected a file path" in str(raised.value) or "expected a directory path" in str(raised.value)


@pytest.mark.parametrize("name", [*PATH_VARIABLES, "GATE_POLICY_SOURCES"])
def test_a_path_variable_holding_a_nul_is_refused_naming_it(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^environment variable {name}: .*: it holds a NUL byte$"):
        load_config(None, _env(tmp_path, **{name: "a\x00b"}))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (" ", "expected a file path, got ' '"),
        # A Kubernetes env value written as a YAML block scalar (value: |) ends in a newline.
        ("/etc/gate/key.pem\n", "got '/etc/gate/key.pem\\n': it holds a control character '\\n'"),
        ("/etc/gate/\tkey.pem", "it holds a control character '\\t'"),
    ],
)
def test_a_blank_path_or_one_holding_a_control_character_is_refused_naming_the_variable(
    tmp_path: Path, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, _env(tmp_path, GATE_SIGNING_KEY_FILE=value))
    assert str(raised.value).startswith(
        "environment variable GATE_SIGNING_KEY_FILE: signatures.signing_key_file: "
    )
    assert problem in str(raised.value)


@pytest.mark.parametrize(
    "name",
    ["GATE_SIGNING_KEY_FILE", "GATE_TRUSTED_ROOT", "GATE_AUTH_TOKENS_FILE", "GATE_WEBHOOK_CLIENT_CA_FILE"],
)
def test_a_file_variable_naming_a_device_or_a_directory_is_refused_before_anything_reads_it(
    tmp_path: Path, name: str
) -> None:
    with pytest.raises(
        ConfigError,
        match=rf"^environment variable {name}: .*: got a character device at '/dev/zero', expected a regular",
    ):
        load_config(None, _env(tmp_path, **{name: "/dev/zero"}))
    with pytest.raises(ConfigError, match=r"got a directory at '/', expected a regular file$"):
        load_config(None, _env(tmp_path, **{name: "/"}))


def test_a_fifo_as_the_tokens_file_in_the_config_file_is_refused_naming_the_key(tmp_path: Path) -> None:
    fifo = tmp_path / "tokens"
    os.mkfifo(fifo)
    config = tmp_path / "gate.yaml"
    config.write_text(f"auth: {{tokens_file: {fifo}}}\n")
    with pytest.raises(
        ConfigError, match=rf"^{config}: auth.tokens_file: got a FIFO at .*, expected a regular file"
    ):
        load_config(config, _env(tmp_path))


def test_a_missing_file_is_still_accepted_as_it_may_be_created_or_mounted_later(tmp_path: Path) -> None:
    config = load_config(None, _env(tmp_path, GATE_SIGNING_KEY_FILE=str(tmp_path / "later.pem")))
    assert config.signatures.signing_key_file == tmp_path / "later.pem"


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """An environment without the caller's GATE_* variables."""
    for name in list(os.environ):
        if name.startswith("GATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_gate_serve_with_a_device_as_data_directory_exits_2_with_one_line_not_a_traceback(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("GATE_DATA_DIR", "/dev/null")
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == (
        "gate: configuration error: environment variable GATE_DATA_DIR: data_dir: "
        "got a character device at '/dev/null', expected a directory\n"
    )


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_gate_serve_with_dev_zero_as_signing_key_exits_2_instead_of_reading_it_for_ever(
    tmp_path: Path,
) -> None:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("GATE_")}
    environ.update(
        GATE_DATA_DIR=str(tmp_path / "data"),
        GATE_SIGNING_KEY_FILE="/dev/zero",
        GATE_GRPC_LISTEN="127.0.0.1:0",
        GATE_WEBHOOK_LISTEN="127.0.0.1:0",
        GATE_METRICS_LISTEN="127.0.0.1:0",
    )
    # The old code started, then read the key until the memory limit (and would have for ever).
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from gate.cli import main; sys.exit(main())", "serve"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_memory,
        check=False,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert run.stderr.startswith("gate: configuration error: environment variable GATE_SIGNING_KEY_FILE: ")
    assert run.stderr.count("\n") == 1


def test_a_certificate_variable_without_its_key_names_both_variables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, _env(tmp_path, GATE_WEBHOOK_TLS_CERT_FILE=str(tmp_path / "tls.crt")))
    assert str(raised.value) == (
        "environment variable GATE_WEBHOOK_TLS_CERT_FILE: webhook.tls.key_file: "
        "Field required: set GATE_WEBHOOK_TLS_KEY_FILE too"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("GATE_METRICS_ENABLED", "expected true or false, got 'xxxx"),
        ("GATE_DATABASE_URL", "expected sqlite:///PATH or postgresql://..., got scheme 'xxxx"),
        ("GATE_CONFIG", "cannot read: File name too long"),
    ],
)
def test_a_huge_value_is_shown_cut_short_in_the_one_line_message(
    tmp_path: Path, name: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, _env(tmp_path, **{name: "x" * 100_000}))
    assert expected in str(raised.value)
    assert len(str(raised.value)) < 400


def test_a_misspelt_variable_is_warned_about_with_the_one_meant(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gate.config"):
        config = load_config(None, _env(tmp_path, GATE_POLICY_SOURCE="/etc/gate/policies"))
    assert config.policies.sources == ()
    assert caplog.messages == [
        "environment variable GATE_POLICY_SOURCE is not one gate reads (did you mean GATE_POLICY_SOURCES?); "
        "it is ignored"
    ]


def test_other_gate_variables_of_a_pipeline_are_left_alone() -> None:
    environ = {
        "GATE_IMAGE": "registry.example/app",
        "GATE_DIGEST": "sha256:" + "a" * 64,
        "GATE_TEST_POSTGRES_URL": "postgresql://x",
        "GATE_SERVER": "gate:50051",
        "GATE_LOGLEVEL": "debug",
        "gate_log_format": "text",
    }
    assert misspelt_variables(environ) == [
        ("GATE_LOGLEVEL", "GATE_LOG_LEVEL"),
        ("gate_log_format", "GATE_LOG_FORMAT"),
    ]


def test_the_same_setting_in_the_file_and_the_environment_takes_the_environment_and_checks_it(
    tmp_path: Path,
) -> None:
    config_file = tmp_path / "gate.yaml"
    config_file.write_text(
        f"data_dir: {tmp_path / 'from-file'}\nsignatures: {{signing_key_file: /dev/zero}}\n"
    )
    with pytest.raises(
        ConfigError, match=f"^{config_file}: signatures.signing_key_file: got a character device"
    ):
        load_config(config_file, {})
    config = load_config(config_file, {"GATE_SIGNING_KEY_FILE": str(tmp_path / "key.pem")})
    assert config.signatures.signing_key_file == tmp_path / "key.pem"
    assert config.data_dir == tmp_path / "from-file"
