"""The Trivy runner against the real Trivy 0.76 binary, offline, with a DB built from Trivy's fixtures."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gate.errors import InvalidArgument
from gate.model import ScanTarget, TargetKind
from scanners import (
    Progress,
    ReportTooLarge,
    RunResult,
    ScanCancelled,
    ScannerFailed,
    ScannerProvider,
    ScannerUnavailable,
    ScanRequest,
    ScanTimeout,
    load_providers,
)
from tests.integration.scanners.runner_support import (
    FIXTURES,
    INPUTS,
    build_docker_archive,
    build_oci_layout,
    settings,
    trivy_binary,
)


def trivy(cache: Path, **options: str) -> ScannerProvider:
    config = {"cache_dir": str(cache), "offline": "true", **options}
    return load_providers({"trivy": settings(binary=str(trivy_binary()), options=config)})["trivy"]


def run(
    provider: ScannerProvider, kind: TargetKind, location: str, workdir: Path, **kwargs: Any
) -> RunResult:
    events: list[Progress] = []
    result = provider.run(
        ScanRequest(ScanTarget(kind, location), workdir, **kwargs), events.append, threading.Event()
    )
    assert events[0].stage == "starting"
    assert events[-1].stage == "finished"
    return result


def vulnerabilities(report: bytes) -> list[tuple[str, str, str]]:
    document = json.loads(report)
    return sorted(
        (vuln["VulnerabilityID"], vuln["PkgName"], vuln["Severity"])
        for result in document.get("Results", [])
        for vuln in result.get("Vulnerabilities", [])
    )


def test_vulnerability_scan_finds_the_advisories_of_the_built_db(trivy_cache: Path, workdir: Path) -> None:
    result = run(
        trivy(trivy_cache),
        TargetKind.FILESYSTEM,
        str(INPUTS / "trivy-fs" / "pip"),
        workdir,
        options={"scanners": "vuln"},
    )
    assert vulnerabilities(result.report) == [
        ("CVE-2019-14806", "Werkzeug", "HIGH"),
        ("CVE-2020-28724", "Werkzeug", "MEDIUM"),
    ]
    assert result.report_format == "trivy"
    assert result.tool_version == "0.76.0"
    assert result.exit_code == 0
    assert not result.contains_secrets
    # The report file is read and removed; nothing of the run is left behind.
    assert list(workdir.iterdir()) == []


def test_vulnerability_scan_of_an_sbom_target(trivy_cache: Path, workdir: Path) -> None:
    sbom = FIXTURES / "trivy_local" / "pip-vuln.cdx.json"
    result = run(trivy(trivy_cache), TargetKind.SBOM, str(sbom), workdir)
    assert [v[0] for v in vulnerabilities(result.report)] == ["CVE-2019-14806", "CVE-2020-28724"]


def test_secret_scan_finds_the_planted_secrets_and_flags_the_report(trivy_cache: Path, workdir: Path) -> None:
    result = run(
        trivy(trivy_cache),
        TargetKind.FILESYSTEM,
        str(INPUTS / "secrets2"),
        workdir,
        options={"scanners": "secret"},
    )
    found = Counter(
        secret["RuleID"]
        for entry in json.loads(result.report)["Results"]
        for secret in entry.get("Secrets", [])
    )
    recorded = json.loads((FIXTURES / "trivy_local" / "secrets2.json").read_text())
    expected = Counter(
        secret["RuleID"] for entry in recorded["Results"] for secret in entry.get("Secrets", [])
    )
    assert found == expected
    assert sum(found.values()) == 6
    assert result.contains_secrets


def test_ignore_file_and_vex_are_passed_through_and_suppressed_findings_kept(
    trivy_cache: Path, workdir: Path
) -> None:
    root = INPUTS / "trivy-fs"
    result = run(
        trivy(trivy_cache),
        TargetKind.FILESYSTEM,
        "pip",
        workdir,
        root=root,
        options={"scanners": "vuln", "ignore_file": ".trivyignore.yaml", "vex": "openvex.json"},
    )
    document = json.loads(result.report)
    assert vulnerabilities(result.report) == []
    modified = sorted(
        (item["Finding"]["VulnerabilityID"], item["Status"])
        for entry in document["Results"]
        for item in entry.get("ExperimentalModifiedFindings", [])
    )
    assert modified == [("CVE-2019-14806", "ignored"), ("CVE-2020-28724", "not_affected")]


def test_misconfiguration_scan_uses_the_embedded_checks(trivy_cache: Path, workdir: Path) -> None:
    result = run(
        trivy(trivy_cache),
        TargetKind.FILESYSTEM,
        str(INPUTS / "trivy-fs" / "dockerfile"),
        workdir,
        options={"scanners": "misconfig"},
    )
    failures = [
        item["ID"]
        for entry in json.loads(result.report)["Results"]
        for item in entry.get("Misconfigurations", [])
        if item["Status"] == "FAIL"
    ]
    recorded = json.loads((FIXTURES / "trivy_local" / "dockerfile-misconfig.json").read_text())
    assert failures == [
        item["ID"] for entry in recorded["Results"] for item in entry.get("Misconfigurations", [])
    ]


def test_a_trivyignore_inside_the_scanned_tree_is_not_applied(
    trivy_cache: Path, workdir: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "app"
    tree.mkdir()
    (tree / "requirements.txt").write_bytes((INPUTS / "trivy-fs" / "pip" / "requirements.txt").read_bytes())
    (tree / ".trivyignore").write_text("CVE-2019-14806\nCVE-2020-28724\n")
    (workdir / ".trivyignore").write_text("CVE-2019-14806\n")
    result = run(trivy(trivy_cache), TargetKind.FILESYSTEM, str(tree), workdir, options={"scanners": "vuln"})
    assert len(vulnerabilities(result.report)) == 2


def test_a_failing_scan_names_trivy_and_its_error(tmp_path: Path, workdir: Path) -> None:
    empty_cache = tmp_path / "empty-cache"
    empty_cache.mkdir()
    with pytest.raises(ScannerFailed) as caught:
        run(trivy(empty_cache), TargetKind.FILESYSTEM, str(INPUTS / "trivy-fs" / "pip"), workdir)
    assert caught.value.exit_code == 1
    assert "trivy" in caught.value.message
    assert "--skip-db-update cannot be specified on the first run" in caught.value.message


def test_missing_target_is_an_invalid_argument(trivy_cache: Path, workdir: Path) -> None:
    with pytest.raises(InvalidArgument) as caught:
        run(trivy(trivy_cache), TargetKind.FILESYSTEM, "/nonexistent/tree", workdir)
    assert caught.value.field == "target.location"
    assert "no such file or directory" in caught.value.problem


@pytest.mark.parametrize("escape", ["../secrets2", "link-out"])
def test_target_escaping_its_root_is_refused(
    trivy_cache: Path, workdir: Path, tmp_path: Path, escape: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link-out").symlink_to(INPUTS / "secrets2")
    (tmp_path / "secrets2").mkdir()
    with pytest.raises(InvalidArgument) as caught:
        run(trivy(trivy_cache), TargetKind.FILESYSTEM, escape, workdir, root=root)
    assert caught.value.field == "target.location"
    assert "outside the scan root" in caught.value.problem


def test_a_request_option_file_outside_the_root_is_refused(trivy_cache: Path, workdir: Path) -> None:
    with pytest.raises(InvalidArgument) as caught:
        run(
            trivy(trivy_cache),
            TargetKind.FILESYSTEM,
            "pip",
            workdir,
            root=INPUTS / "trivy-fs",
            options={"ignore_file": "/etc/passwd"},
        )
    assert caught.value.field == "options.ignore_file"


def test_unknown_and_config_only_options_are_refused_per_request(trivy_cache: Path, workdir: Path) -> None:
    provider = trivy(trivy_cache)
    with pytest.raises(InvalidArgument, match=r"options\.scaners: unknown option"):
        run(
            provider,
            TargetKind.FILESYSTEM,
            str(INPUTS / "trivy-fs" / "pip"),
            workdir,
            options={"scaners": "vuln"},
        )
    with pytest.raises(InvalidArgument, match=r"options\.cache_dir: may only be set in the configuration"):
        run(
            provider,
            TargetKind.FILESYSTEM,
            str(INPUTS / "trivy-fs" / "pip"),
            workdir,
            options={"cache_dir": "/"},
        )
    with pytest.raises(InvalidArgument, match=r"options\.scanners: Trivy cannot look for 'secret' in a sbom"):
        run(provider, TargetKind.SBOM, str(FIXTURES / "trivy_local" / "pip-vuln.cdx.json"), workdir,
            options={"scanners": "secret"})  # fmt: skip


def test_image_reference_that_looks_like_a_flag_is_refused(trivy_cache: Path, workdir: Path) -> None:
    with pytest.raises(InvalidArgument) as caught:
        run(trivy(trivy_cache), TargetKind.IMAGE, "--config=/etc/passwd", workdir)
    assert caught.value.field == "target.location"


def test_missing_binary_names_it_and_the_configuration_key(workdir: Path) -> None:
    provider = load_providers({"trivy": settings(binary="/opt/nowhere/trivy")})["trivy"]
    with pytest.raises(ScannerUnavailable) as caught:
        run(provider, TargetKind.FILESYSTEM, str(INPUTS / "trivy-fs" / "pip"), workdir)
    assert "/opt/nowhere/trivy" in caught.value.message
    assert "scanners.trivy.binary" in caught.value.message


def test_a_report_over_the_limit_is_refused(trivy_cache: Path, workdir: Path) -> None:
    with pytest.raises(ReportTooLarge):
        run(
            trivy(trivy_cache),
            TargetKind.FILESYSTEM,
            str(INPUTS / "trivy-fs" / "pip"),
            workdir,
            options={"scanners": "vuln"},
            max_report_bytes=200,
        )
    assert list(workdir.iterdir()) == []


def test_cancel_before_start_stops_the_run(trivy_cache: Path, workdir: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    request = ScanRequest(ScanTarget(TargetKind.FILESYSTEM, str(INPUTS / "secrets2")), workdir)
    with pytest.raises(ScanCancelled):
        trivy(trivy_cache).run(request, lambda _: None, cancel)


def test_timeout_kills_the_whole_process_group(tmp_path: Path, workdir: Path, asset_tool: Any) -> None:
    provider = load_providers({"trivy": settings(binary=str(asset_tool("hang")), timeout=1)})["trivy"]
    request = ScanRequest(ScanTarget(TargetKind.FILESYSTEM, str(INPUTS / "secrets2")), workdir)
    with pytest.raises(ScanTimeout, match=r"trivy: did not finish within 1 s .*scanners\.trivy\.timeout"):
        provider.run(request, lambda _: None, threading.Event())
    child = int((workdir / "trivy-report.json.child").read_text())
    # SIGKILL is delivered asynchronously; the grandchild is gone within moments.
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_truncated_report_is_an_invalid_report_naming_line_and_column(workdir: Path, asset_tool: Any) -> None:
    provider = load_providers({"trivy": settings(binary=str(asset_tool("truncate")))})["trivy"]
    request = ScanRequest(ScanTarget(TargetKind.FILESYSTEM, str(INPUTS / "secrets2")), workdir)
    with pytest.raises(
        Exception, match=r"trivy: report trivy-report\.json: is not complete JSON \(line 1, column"
    ):
        provider.run(request, lambda _: None, threading.Event())


def test_crash_message_masks_secrets_from_stderr(workdir: Path, asset_tool: Any) -> None:
    provider = load_providers({"trivy": settings(binary=str(asset_tool("crash")))})["trivy"]
    request = ScanRequest(ScanTarget(TargetKind.FILESYSTEM, str(INPUTS / "secrets2")), workdir)
    with pytest.raises(ScannerFailed) as caught:
        provider.run(request, lambda _: None, threading.Event())
    assert "ghp_Zx81mQ0aLw2Ke9Rt5Yu7Io3Pa4Sd6Fg8Hj1K" not in caught.value.message
    assert "[REDACTED]" in caught.value.message


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose: it holds no resources but its pid.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("form", ["oci", "docker-archive"])
def test_image_from_an_oci_layout_or_docker_archive(
    trivy_cache: Path, workdir: Path, tmp_path: Path, form: str
) -> None:
    if form == "oci":
        location = f"oci:{build_oci_layout(tmp_path / 'layout')}"
    else:
        location = f"docker-archive:{build_docker_archive(tmp_path / 'image.tar')}"
    result = run(trivy(trivy_cache), TargetKind.IMAGE, location, workdir, options={"scanners": "vuln"})
    document = json.loads(result.report)
    assert document["ArtifactType"] == "container_image"
    assert document["Metadata"]["OS"]["Family"] == "alpine"
    assert document["Metadata"]["OS"]["Name"] == "3.10.2"
    # musl 1.1.20-r4 is below the fixed 1.1.20-r5 of the fixture DB; its advisory is rated CRITICAL there.
    assert vulnerabilities(result.report) == [("CVE-2019-14697", "musl", "CRITICAL")]
