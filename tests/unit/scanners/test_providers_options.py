"""Option checking, path confinement and masking of diagnostics."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.errors import ConfigError, InvalidArgument
from scanners import Option, Options, redact_text, resolve_local_path

SPECS = (
    Option("scanners", "list", frozenset({"vuln", "secret"})),
    Option("offline", "bool"),
    Option("depth", "int"),
    Option("wait", "seconds"),
    Option("mode", "choice", frozenset({"fast", "full"})),
    Option("path", "str"),
    Option("token", "str", config_only=True, secret=True),
)


def test_values_are_typed_and_requests_override_configuration() -> None:
    configured = Options.from_config(SPECS, {"scanners": "vuln", "offline": "yes", "depth": "3"}, "tool")
    merged = configured.merged(SPECS, {"scanners": "vuln, secret", "mode": "full"})
    assert merged.items("scanners") == ("vuln", "secret")
    assert merged.flag("offline") is True
    assert merged.number("depth", 0) == 3
    assert merged.text("mode") == "full"
    assert configured.items("scanners") == ("vuln",)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"ofline": "true"},
            "options.ofline: unknown option; this provider accepts depth, mode, offline, path",
        ),
        ({"offline": "maybe"}, "options.offline: expected true or false, got 'maybe'"),
        ({"depth": "-1"}, "options.depth: expected a number >= 0"),
        ({"depth": "\u0663"}, "options.depth: expected a number, got '\u0663'"),
        ({"wait": "nan"}, "options.wait: expected a finite number, got 'nan'"),
        ({"wait": "inf"}, "options.wait: expected a finite number, got 'inf'"),
        ({"wait": "1e400"}, "options.wait: expected a finite number, got '1e400'"),
        ({"mode": "slow"}, "options.mode: expected one of fast, full, got 'slow'"),
        ({"path": "--config=/etc/passwd"}, "options.path: must not start with '-'"),
        ({"path": "a\nb"}, "options.path: contains a control character"),
        ({"token": "abc"}, "options.token: may only be set in the configuration, not per scan"),
    ],
)
def test_a_bad_request_option_is_an_invalid_argument_naming_it(values: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Options({}).merged(SPECS, values)
    assert message in caught.value.message


def test_a_bad_configured_option_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        Options.from_config(SPECS, {"depth": "many"}, "trivy-fast")
    assert caught.value.key == "scanners.trivy-fast.options.depth"


def test_relative_location_is_resolved_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    assert resolve_local_path("src", tmp_path) == (tmp_path / "src").resolve()


@pytest.mark.parametrize("location", ["../outside", "inside/../../outside", "escape-link"])
def test_paths_escaping_the_root_are_refused(tmp_path: Path, location: str) -> None:
    root = tmp_path / "root"
    (root / "inside").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "escape-link").symlink_to(tmp_path / "outside")
    with pytest.raises(InvalidArgument) as caught:
        resolve_local_path(location, root)
    assert caught.value.field == "target.location"
    assert "outside the scan root" in caught.value.problem


def test_missing_path_and_nul_byte_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no such file or directory: 'nope'"):
        resolve_local_path("nope", tmp_path)
    with pytest.raises(InvalidArgument, match="NUL"):
        resolve_local_path("a\x00b", tmp_path)


def test_redaction_masks_known_values_pairs_tokens_and_pem_blocks() -> None:
    text = (
        "FATAL auth failed for sk_live_4eC39HqLyjWDarjtT1zdp7dc\n"
        "password=hunter2 token: 'abc def'\n"
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
        "configured token s3cr3t-value appears here\n"
    )
    masked = redact_text(text, known=("s3cr3t-value",))
    for secret in (
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "hunter2",
        "abc def",
        "MIIEpAIBAAKCAQEA",
        "s3cr3t-value",
    ):
        assert secret not in masked
    assert masked.startswith("FATAL auth failed for [REDACTED]")


def test_redaction_keeps_paths_versions_and_prose_readable() -> None:
    text = "ERROR open /var/lib/gate/work/0f8e1c2d/trivy-report.json: trivy 0.76.0 cannot-read-this-file-here"
    assert redact_text(text) == text
