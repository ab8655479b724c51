"""The gitleaks runner against the real gitleaks 8.30.1 binary: dir and git modes, exit codes, bad input."""

from __future__ import annotations

import json
import shutil
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gate.errors import InvalidArgument
from gate.model import ScanTarget, TargetKind
from scanners import (
    InvalidReport,
    RunResult,
    ScannerFailed,
    ScannerProvider,
    ScanRequest,
    UnsupportedTarget,
    load_providers,
)
from tests.integration.scanners.runner_support import FIXTURES, INPUTS, git, gitleaks_binary, settings


def gitleaks(**options: str) -> ScannerProvider:
    return load_providers({"gitleaks": settings(binary=str(gitleaks_binary()), options=options)})["gitleaks"]


def run(
    provider: ScannerProvider, kind: TargetKind, location: str, workdir: Path, **kwargs: Any
) -> RunResult:
    return provider.run(
        ScanRequest(ScanTarget(kind, location), workdir, **kwargs), lambda _: None, threading.Event()
    )


def leaks(result: RunResult) -> Counter[tuple[str, str]]:
    return Counter((leak["RuleID"], leak["File"]) for leak in json.loads(result.report))


def recorded(name: str, prefix: str = "") -> Counter[tuple[str, str]]:
    document = json.loads((FIXTURES / "gitleaks_local" / name).read_text())
    return Counter((leak["RuleID"], leak["File"].removeprefix(prefix)) for leak in document)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A repository whose history adds the planted secrets, then deletes one of the files."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("print('hello')\n")
    git(repo, "add", "app.py")
    git(repo, "commit", "-q", "-m", "initial app", date="2024-01-02T10:00:00Z")
    (repo / "config").mkdir()
    shutil.copy(INPUTS / "secrets2" / "deploy.sh", repo / "deploy.sh")
    shutil.copy(INPUTS / "secrets2" / "config" / "settings.py", repo / "config" / "settings.py")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "add deploy script and settings", date="2024-01-03T10:00:00Z")
    git(repo, "rm", "-q", "deploy.sh")
    git(repo, "commit", "-q", "-m", "remove deploy script", date="2024-01-04T10:00:00Z")
    return repo


def test_dir_mode_finds_the_planted_secrets_with_paths_relative_to_the_target(workdir: Path) -> None:
    result = run(gitleaks(), TargetKind.FILESYSTEM, str(INPUTS / "secrets2"), workdir)
    assert leaks(result) == recorded("dir-secrets-redacted.json", prefix="secrets2/")
    assert sum(leaks(result).values()) == 7
    assert result.exit_code == 2
    assert result.tool_version == "8.30.1"
    assert result.contains_secrets
    assert list(workdir.iterdir()) == []


def test_git_mode_finds_secrets_in_history_including_deleted_files(history: Path, workdir: Path) -> None:
    result = run(gitleaks(), TargetKind.REPOSITORY, str(history), workdir)
    assert leaks(result) == recorded("git-history-redacted.json")
    commits = {leak["Commit"] for leak in json.loads(result.report)}
    assert len(commits) == 1
    assert git(history, "rev-parse", "HEAD~1") in commits


def test_full_redaction_keeps_secret_values_out_of_the_report(workdir: Path) -> None:
    planted = (INPUTS / "secrets2" / "deploy.sh").read_text().split("GITHUB_TOKEN=")[1].split()[0]
    result = run(gitleaks(redact="100"), TargetKind.FILESYSTEM, str(INPUTS / "secrets2"), workdir)
    assert planted.encode() not in result.report
    assert {leak["Secret"] for leak in json.loads(result.report)} == {"REDACTED"}
    assert not result.contains_secrets


def test_a_clean_tree_exits_zero_with_an_empty_report(workdir: Path) -> None:
    result = run(gitleaks(), TargetKind.FILESYSTEM, str(INPUTS / "trivy-fs" / "dockerfile"), workdir)
    assert result.exit_code == 0
    assert json.loads(result.report) == []


def test_baseline_drops_known_findings(workdir: Path, tmp_path: Path) -> None:
    first = run(gitleaks(), TargetKind.FILESYSTEM, str(INPUTS / "secrets2"), workdir)
    baseline = tmp_path / "baseline.json"
    baseline.write_bytes(first.report)
    again = run(gitleaks(baseline=str(baseline)), TargetKind.FILESYSTEM, str(INPUTS / "secrets2"), workdir)
    assert again.exit_code == 0
    assert json.loads(again.report) == []


def test_config_file_is_passed_through(workdir: Path, tmp_path: Path) -> None:
    config = tmp_path / "gitleaks.toml"
    config.write_text('[extend]\nuseDefault = true\ndisabledRules = ["generic-api-key"]\n', encoding="utf-8")
    result = run(gitleaks(config=str(config)), TargetKind.FILESYSTEM, str(INPUTS / "secrets2"), workdir)
    assert "generic-api-key" not in {rule for rule, _ in leaks(result)}
    assert sum(leaks(result).values()) == 5


def test_ignore_file_option_suppresses_the_listed_fingerprints(workdir: Path, tmp_path: Path) -> None:
    first = run(gitleaks(), TargetKind.FILESYSTEM, str(INPUTS / "secrets2"), workdir)
    github = [leak["Fingerprint"] for leak in json.loads(first.report) if leak["RuleID"] == "github-pat"]
    ignore = tmp_path / "gitleaksignore"
    ignore.write_text("\n".join(github) + "\n")
    again = run(gitleaks(ignore_file=str(ignore)), TargetKind.FILESYSTEM, str(INPUTS / "secrets2"), workdir)
    assert sum(leaks(again).values()) == 6
    assert "github-pat" not in {rule for rule, _ in leaks(again)}


def test_git_mode_on_a_plain_directory_is_refused_not_reported_clean(workdir: Path) -> None:
    with pytest.raises(InvalidArgument, match="is not a git repository"):
        run(gitleaks(), TargetKind.REPOSITORY, str(INPUTS / "secrets2"), workdir)


def test_unsupported_target_kind_names_the_supported_ones(workdir: Path) -> None:
    with pytest.raises(UnsupportedTarget) as caught:
        run(gitleaks(), TargetKind.IMAGE, "alpine:3.20", workdir)
    assert caught.value.field == "target.kind"
    assert "filesystem, repository" in caught.value.problem


def test_git_log_options_are_configuration_only(workdir: Path, history: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"options\.log_opts: may only be set in the configuration"):
        run(gitleaks(), TargetKind.REPOSITORY, str(history), workdir, options={"log_opts": "--output=/tmp/x"})


def test_an_error_exit_is_a_failure_even_with_leaks_code_one(workdir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[[rules]\nid = \n", encoding="utf-8")
    with pytest.raises(ScannerFailed) as caught:
        run(gitleaks(config=str(broken)), TargetKind.FILESYSTEM, str(INPUTS / "secrets2"), workdir)
    assert caught.value.exit_code == 1
    assert "gitleaks" in caught.value.message


def test_a_report_that_is_not_json_is_an_invalid_report(workdir: Path, asset_tool: Any) -> None:
    provider = load_providers({"gitleaks": settings(binary=str(asset_tool("not-json")))})["gitleaks"]
    with pytest.raises(InvalidReport, match=r"gitleaks: report gitleaks-report\.json: is not complete JSON"):
        run(provider, TargetKind.FILESYSTEM, str(INPUTS / "secrets2"), workdir)


def test_missing_binary_names_the_configuration_key(workdir: Path) -> None:
    provider = load_providers({"gitleaks": settings(binary="gitleaks-not-installed")})["gitleaks"]
    with pytest.raises(
        Exception, match=r"'gitleaks-not-installed' not found on PATH .*scanners\.gitleaks\.binary"
    ):
        run(provider, TargetKind.FILESYSTEM, str(INPUTS / "secrets2"), workdir)
