"""The Snyk runner against a stand-in CLI replaying recorded real Snyk outputs (tests/assets/scanners/bin)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from gate.errors import ConfigError, InvalidArgument
from gate.model import ScanTarget, TargetKind
from scanners import (
    NoSupportedProject,
    RunResult,
    ScannerFailed,
    ScannerProvider,
    ScanRequest,
    load_providers,
)
from tests.integration.scanners.runner_support import FIXTURES, SNYK_STAND_IN, require, settings

TOKEN = "5f0c8e2a-1b7d-4c3e-9a6f-2d8b4e1c7a90"


def snyk(token: str = TOKEN, **options: str) -> ScannerProvider:
    binary = require(SNYK_STAND_IN, "Snyk stand-in")
    return load_providers({"snyk": settings(binary=str(binary), options={"token": token, **options})})["snyk"]


def project(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def run(
    provider: ScannerProvider, kind: TargetKind, location: str, workdir: Path, **kwargs: Any
) -> RunResult:
    return provider.run(
        ScanRequest(ScanTarget(kind, location), workdir, **kwargs), lambda _: None, threading.Event()
    )


def test_open_source_test_returns_the_report_with_issues_found_exit_code(
    tmp_path: Path, workdir: Path
) -> None:
    result = run(snyk(), TargetKind.FILESYSTEM, str(project(tmp_path, "maven-app")), workdir)
    assert result.report == (FIXTURES / "snyk" / "single_project_many_vulns.json").read_bytes()
    assert result.exit_code == 1
    assert result.report_format == "snyk"
    assert result.tool_version == "1.1307.4"
    assert result.command[1:3] == ("test", "--json")
    assert list(workdir.iterdir()) == []


def test_all_projects_without_issues_exits_zero(tmp_path: Path, workdir: Path) -> None:
    target = str(project(tmp_path, "clean-monorepo"))
    result = run(snyk(), TargetKind.REPOSITORY, target, workdir, options={"all_projects": "true"})
    assert result.exit_code == 0
    assert isinstance(json.loads(result.report), list)
    assert "--all-projects" in result.command


def test_container_test_for_an_image_reference(workdir: Path) -> None:
    result = run(snyk(), TargetKind.IMAGE, "registry.example/debian-app:1.0", workdir)
    assert result.command[1:4] == ("container", "test", "--json")
    assert json.loads(result.report)["packageManager"] == "deb"
    assert result.exit_code == 1


def test_code_test_returns_sarif(tmp_path: Path, workdir: Path) -> None:
    result = run(
        snyk(), TargetKind.FILESYSTEM, str(project(tmp_path, "js-app")), workdir, options={"product": "code"}
    )
    assert result.report_format == "sarif"
    assert json.loads(result.report)["runs"][0]["tool"]["driver"]["name"] == "SnykCode"
    assert result.contains_secrets


def test_no_supported_project_is_evidence_not_a_tool_failure(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(NoSupportedProject, match=r"found no supported project in .*\(exit code 3\)"):
        run(
            snyk(),
            TargetKind.FILESYSTEM,
            str(project(tmp_path, "terraform")),
            workdir,
            options={"product": "iac"},
        )


def test_token_reaches_the_cli_only_through_its_environment(tmp_path: Path, workdir: Path) -> None:
    # The stand-in exits 2 when the token is missing from its environment or present in argv.
    result = run(snyk(), TargetKind.FILESYSTEM, str(project(tmp_path, "maven-app")), workdir)
    assert all(TOKEN not in arg for arg in result.command)


def test_token_from_the_environment_when_not_configured(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNYK_TOKEN", TOKEN)
    binary = str(require(SNYK_STAND_IN, "Snyk stand-in"))
    provider = load_providers({"snyk": settings(binary=binary)})["snyk"]
    assert run(provider, TargetKind.FILESYSTEM, str(project(tmp_path, "maven-app")), workdir).exit_code == 1


def test_missing_token_is_a_configuration_error_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SNYK_TOKEN", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_providers({"snyk": settings(binary=str(SNYK_STAND_IN))})
    assert caught.value.key == "scanners.snyk.options.token"


def test_failure_exit_carries_snyk_error_without_the_token(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(ScannerFailed) as caught:
        run(snyk(token="expired-token"), TargetKind.FILESYSTEM, str(project(tmp_path, "maven-app")), workdir)
    assert caught.value.exit_code == 2
    assert "Authentication failed" in caught.value.message
    assert "expired-token" not in caught.value.message


def test_token_cannot_be_set_per_request(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"options\.token: may only be set in the configuration"):
        run(
            snyk(),
            TargetKind.FILESYSTEM,
            str(project(tmp_path, "maven-app")),
            workdir,
            options={"token": "x"},
        )


def test_image_options_are_refused_for_directories(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(
        InvalidArgument, match=r"options\.exclude_base_image_vulns: applies to image targets only"
    ):
        run(snyk(), TargetKind.FILESYSTEM, str(project(tmp_path, "maven-app")), workdir,
            options={"exclude_base_image_vulns": "true"})  # fmt: skip


def test_remote_repository_url_is_refused(workdir: Path) -> None:
    with pytest.raises(InvalidArgument) as caught:
        run(snyk(), TargetKind.REPOSITORY, "https://github.com/example/app.git", workdir)
    assert caught.value.field == "target.location"
