"""Configuration: defaults, overrides, and one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate._cpus import usable_cpus
from gate.config import ENV_OVERRIDES, load_config, parse_listen
from gate.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    return path


def test_defaults_use_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    config = load_config(None, {"GATE_DATA_DIR": str(tmp_path)})
    assert config.effective_database_url == f"sqlite:///{tmp_path / 'gate.db'}"
    assert config.grpc.listen == "0.0.0.0:50051"
    assert config.webhook.listen == "0.0.0.0:8443"
    assert config.metrics.listen == "0.0.0.0:9090"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "grpc:\n  listen: 127.0.0.1:6000\ndatabase_url: sqlite:///x.db\n")
    config = load_config(
        path,
        {
            "GATE_GRPC_LISTEN": "127.0.0.1:7000",
            "GATE_DATABASE_URL": "postgresql://u@h/db",
            "GATE_METRICS_ENABLED": "off",
        },
    )
    assert config.grpc.listen == "127.0.0.1:7000"
    assert config.database_url == "postgresql://u@h/db"
    assert config.metrics.enabled is False


def test_gate_config_variable_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "log:\n  level: debug\n")
    assert load_config(None, {"GATE_CONFIG": str(path)}).log.level == "debug"


def test_every_documented_variable_is_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [name for name in ENV_OVERRIDES if f"`{name}`" not in readme]
    assert missing == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "grpc:\n  listen: nowhere\n",
            "gate.yaml: grpc.listen: expected host:port (e.g. 0.0.0.0:50051), got 'nowhere'",
        ),
        ("grpc:\n  listen: 1.2.3.4:70000\n", "gate.yaml: grpc.listen: port must be 0-65535, got 70000"),
        ("grcp:\n  listen: 1.2.3.4:1\n", "gate.yaml: grcp: unknown key"),
        (
            "grpc:\n  workers: 0\n",
            "gate.yaml: grpc.workers: Input should be greater than or equal to 1, got 0",
        ),
        ("webhook:\n  tls:\n    cert_file: a.pem\n", "gate.yaml: webhook.tls.key_file: Field required"),
        (
            "scanners:\n  trivy:\n    timeout: -1\n",
            "gate.yaml: scanners.trivy.timeout: Input should be greater than 0",
        ),
        (
            "database_url: mysql://x\n",
            "gate.yaml: database_url: expected sqlite:///PATH or postgresql://..., got scheme",
        ),
        ("- a\n- b\n", "gate.yaml: expected a mapping at the top level, got list"),
        (
            "webhook:\n  processes: all\n",
            "gate.yaml: webhook.processes: expected a number of processes (1-64) or auto, got 'all'",
        ),
        (
            "grpc:\n  processes: true\n",
            "gate.yaml: grpc.processes: expected a number of processes (1-64) or auto, got True",
        ),
        ("grpc: [1\n", "gate.yaml: invalid YAML at line 2, column 1"),
    ],
)
def test_bad_file_gives_one_line_with_file_key_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), {})
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith(str(tmp_path)), message
    assert expected in message


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (
            "log:\n  level: info\ngrpc:\n  workers: !!int abc\n",
            "grpc.workers",
            "invalid YAML at line 4, column 12: expected a valid !!int, got 'abc'",
        ),
        (
            "webhook:\n  tls:\n    key_file: k.pem\n    cert_file: !!timestamp 2001-13-45\n",
            "webhook.tls.cert_file",
            "invalid YAML at line 4, column 16: expected a valid !!timestamp, got '2001-13-45'",
        ),
        ("grpc:\n  listen: 2001-13-45\n", "grpc.listen", "(quote it to keep it as text)"),
        ("grpc:\n  workers: " + "9" * 5000 + "\n", "grpc.workers", "expected a valid !!int, got '999"),
        ("policies:\n  sources: [a, !!int b]\n", "policies.sources[1]", "expected a valid !!int, got 'b'"),
        (
            "notifications:\n  webhooks:\n    - url: https://a.example\n    - url: https://b.example\n"
            "      timeout: !!float soon\n",
            "notifications.webhooks[1].timeout",
            "expected a valid !!float, got 'soon'",
        ),
        # The text is at the anchor, so the anchor's setting is named, not the alias's.
        (
            "policies:\n  evidence_ttl: &ttl !!float x\n  waiver_ttl: *ttl\n",
            "policies.evidence_ttl",
            "line 2, column 17",
        ),
        # A wrong key is in the mapping that holds it.
        ("grpc:\n  !!int abc: 1\n", "grpc", "expected a valid !!int, got 'abc'"),
    ],
)
def test_value_yaml_cannot_build_names_the_setting_it_is_in(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.key == key
    assert caught.value.message.startswith(f"{path}: {key}: invalid YAML at line "), caught.value.message
    assert problem in caught.value.message


def test_unknown_tag_names_the_setting_and_the_tag_with_got_and_expected(tmp_path: Path) -> None:
    path = write(tmp_path, "grpc:\n  workers: !!python/object:os.system x\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.message == (
        f"{path}: grpc.workers: invalid YAML at line 2, column 12: expected a value without a tag or "
        "with a standard one (!!str, !!int, ...), got the tag '!!python/object:os.system'"
    )


def test_wrong_key_of_a_role_mapping_names_its_path_without_a_key_marker(tmp_path: Path) -> None:
    path = write(tmp_path, "auth:\n  rate_limits:\n    boss: {rate: 1, burst: 1}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert caught.value.key == "auth.rate_limits.boss"
    assert caught.value.problem.startswith("unknown key: Input should be 'pipeline'"), caught.value.problem
    assert caught.value.problem.endswith("got 'boss'")


def test_number_used_as_a_key_is_named_as_a_key_not_a_list_index(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "grpc:\n  1: 2\n"), {})
    assert caught.value.key == "grpc.1"


def test_key_holding_a_newline_is_named_escaped_on_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, 'grpc:\n  "work\\ners": 2\n'), {})
    assert caught.value.key == "grpc.'work\\ners'"
    assert "\n" not in caught.value.message


def test_config_path_holding_a_newline_is_named_escaped_on_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "gate\n.yaml", {})
    assert caught.value.source == repr(str(tmp_path / "gate\n.yaml"))
    assert "\n" not in caught.value.message


def test_bad_item_of_a_list_variable_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"GATE_REGISTRY_PULL_SECRETS": "ns/ok:bad"})
    assert caught.value.message == (
        "environment variable GATE_REGISTRY_PULL_SECRETS: registry.pull_secrets[1]: "
        "expected NAMESPACE/NAME of a Secret, got 'bad'"
    )


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"GATE_WEBHOOK_LISTEN": "8443"})
    assert caught.value.message == (
        "environment variable GATE_WEBHOOK_LISTEN: webhook.listen: "
        "expected host:port (e.g. 0.0.0.0:50051), got '8443'"
    )


def test_processes_auto_is_the_cpus_gate_may_use_from_the_file_or_the_environment(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "webhook:\n  processes: auto\n"), {"GATE_GRPC_PROCESSES": "Auto"})
    assert config.webhook.processes == config.grpc.processes == min(usable_cpus(), 64)
    assert load_config(None, {"GATE_GRPC_PROCESSES": "3"}).grpc.processes == 3


def test_bad_boolean_variable_is_rejected() -> None:
    with pytest.raises(ConfigError, match="GATE_METRICS_ENABLED: expected true or false, got 'maybe'"):
        load_config(None, {"GATE_METRICS_ENABLED": "maybe"})


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_config(tmp_path / "nope.yaml", {})


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [("0.0.0.0:50051", "0.0.0.0", 50051), ("[::1]:8443", "::1", 8443), ("localhost:0", "localhost", 0)],
)
def test_listen_addresses_parse(text: str, host: str, port: int) -> None:
    address = parse_listen(text)
    assert (address.host, address.port) == (host, port)
    assert parse_listen(str(address)) == address


@pytest.mark.parametrize("text", ["::1:80", ":80", "host:", "host:port", "[zz]:80"])
def test_malformed_listen_addresses_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="got"):
        parse_listen(text)


def test_a_notification_url_without_its_scheme_is_refused_without_showing_its_path(tmp_path: Path) -> None:
    # The path of a Slack incoming webhook is its token.
    config = tmp_path / "gate.yaml"
    url = "hooks.slack.example/services/T0/B0/s3cr3tT0ken"
    config.write_text(f"notifications:\n  webhooks:\n    - url: {url}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config, environ={})
    assert "notifications.webhooks[0].url" in str(caught.value)
    assert "expected an http:// or https:// URL, got 'hooks.slack.example/...'" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
