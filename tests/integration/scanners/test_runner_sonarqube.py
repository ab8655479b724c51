"""The SonarQube client against a local HTTP server replaying recorded Web API objects (9.9 and 10.x)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gate.errors import ConfigError, InvalidArgument
from gate.model import ScanTarget, TargetKind
from scanners import (
    Progress,
    RunResult,
    ScanCancelled,
    ScannerFailed,
    ScannerProvider,
    ScannerUnavailable,
    ScanRequest,
    ScanTimeout,
    load_providers,
)
from tests.integration.scanners.runner_support import ASSETS, FIXTURES, SonarReplay, load_json, settings

TOKEN = "squ_4b9f0e6c1d2a7e8f3b5c9d0a1e2f3a4b5c6d7e8f"
SONAR = ASSETS / "runners" / "sonarqube"
V9_ISSUES = load_json(FIXTURES / "sonarqube" / "findings_over_api.json")["issues"]
V9_HOTSPOTS = load_json(FIXTURES / "sonarqube" / "findings_over_api_hotspots.json")["hotspots"]
V10_ISSUES = [*load_json(FIXTURES / "api_sonarqube" / "issues.json"), load_json(SONAR / "issue-10x.json")]
V10_HOTSPOTS = load_json(FIXTURES / "api_sonarqube" / "hotspots" / "many_vulns.json")
PENDING = {"type": "REPORT", "status": "PENDING", "submittedAt": "2024-05-07T10:00:00+0000"}
IN_PROGRESS = {**PENDING, "status": "IN_PROGRESS"}
SUCCESS = {**PENDING, "status": "SUCCESS", "analysisId": "AYx2e3f4a5b6", "executionTimeMs": 12000}

Start = Callable[..., SonarReplay]


def replay(
    start: Start, version: str, project: str, issues: list[Any], hotspots: list[Any], **kw: Any
) -> SonarReplay:
    kw.setdefault("task_states", [PENDING, IN_PROGRESS, SUCCESS])
    return start(
        version=version,
        token=TOKEN,
        project=project,
        issues=issues,
        hotspots=hotspots,
        quality_gate=load_json(SONAR / "project_status.json"),
        **kw,
    )


def analysed_tree(tmp_path: Path, server: SonarReplay, server_url: str = "") -> Path:
    tree = tmp_path / "app"
    (tree / ".scannerwork").mkdir(parents=True)
    text = (SONAR / "report-task.txt").read_text()
    text = text.replace("PROJECT", server.project).replace("SERVER", server_url or server.url)
    (tree / ".scannerwork" / "report-task.txt").write_text(text.replace("VERSION", server.version))
    return tree


def sonarqube(server: SonarReplay, **options: str) -> ScannerProvider:
    config = {"server_url": server.url, "token": TOKEN, "poll_interval": "0.01", **options}
    return load_providers({"sonarqube": settings(options=config)})["sonarqube"]


def run(provider: ScannerProvider, location: Path | str, workdir: Path, **kwargs: Any) -> RunResult:
    request = ScanRequest(ScanTarget(TargetKind.FILESYSTEM, str(location)), workdir, **kwargs)
    return provider.run(request, lambda _: None, threading.Event())


def ordered(items: list[Any]) -> list[str]:
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def test_sonarqube_99_bundle_follows_the_task_and_pages_with_basic_auth(
    sonar_server: Start, tmp_path: Path, workdir: Path
) -> None:
    analyses = [
        {"key": "AYx2e3f4a5b6", "revision": "3cf91cc097c1689a8d9dd7e968012d87cc1d3a36"},
        {"key": "AYw0older000", "revision": "0b5e3f7a9c2d4e6f8a1b3c5d7e9f0a2b4c6d8e0f"},
    ]
    server = replay(sonar_server, "9.9.4.87374", "testapplication", V9_ISSUES, V9_HOTSPOTS, analyses=analyses)
    events: list[Progress] = []
    request = ScanRequest(ScanTarget(TargetKind.FILESYSTEM, str(analysed_tree(tmp_path, server))), workdir)
    result = sonarqube(server, page_size="2").run(request, events.append, threading.Event())
    bundle = json.loads(result.report)
    assert bundle["tool"] == "sonarqube"
    assert bundle["server_version"] == "9.9.4.87374"
    assert bundle["project"] == "testapplication"
    assert bundle["analysis_id"] == "AYx2e3f4a5b6"
    assert bundle["revision"] == "3cf91cc097c1689a8d9dd7e968012d87cc1d3a36"
    assert bundle["task"]["status"] == "SUCCESS"
    assert bundle["quality_gate"] == load_json(SONAR / "project_status.json")
    assert bundle["issues"] == V9_ISSUES
    assert bundle["hotspots"] == V9_HOTSPOTS
    assert set(bundle["rules"]) == {issue["rule"] for issue in V9_ISSUES}
    assert result.report_format == "sonarqube"
    paths = [path for path, _, _ in server.requests]
    assert paths.count("/api/ce/task") == 3
    assert [stage for stage in (e.stage for e in events) if stage == "polling"] == ["polling", "polling"]
    searches = [
        query for path, query, _ in server.requests if path == "/api/issues/search" and query["ps"] == "2"
    ]
    assert [query["p"] for query in searches] == ["1", "2", "3"]
    assert all(query["componentKeys"] == "testapplication" for query in searches)
    assert {auth.split()[0] for path, _, auth in server.requests if path != "/api/server/version"} == {
        "Basic"
    }


def test_sonarqube_10_shapes_pass_through_with_bearer_auth(
    sonar_server: Start, tmp_path: Path, workdir: Path
) -> None:
    server = replay(sonar_server, "10.6.0.92116", "internal.dummy.project", V10_ISSUES, V10_HOTSPOTS)
    bundle = json.loads(run(sonarqube(server), analysed_tree(tmp_path, server), workdir).report)
    assert bundle["issues"] == V10_ISSUES
    assert bundle["issues"][-1]["impacts"] == [{"softwareQuality": "MAINTAINABILITY", "severity": "MEDIUM"}]
    assert bundle["hotspots"] == V10_HOTSPOTS
    queries = [query for path, query, _ in server.requests if path == "/api/issues/search"]
    assert all(query["components"] == "internal.dummy.project" for query in queries)
    assert {auth for path, _, auth in server.requests if path != "/api/server/version"} == {f"Bearer {TOKEN}"}


def test_results_beyond_the_search_window_are_fetched_by_splitting_creation_dates(
    sonar_server: Start, tmp_path: Path, workdir: Path
) -> None:
    issues = [*V9_ISSUES, *load_json(FIXTURES / "api_sonarqube" / "issues.json")]
    server = replay(sonar_server, "9.9.4.87374", "testapplication", issues, [], window=4)
    provider = sonarqube(server, result_window="4", page_size="2", hotspots="false")
    bundle = json.loads(run(provider, analysed_tree(tmp_path, server), workdir).report)
    assert ordered(bundle["issues"]) == ordered(issues)
    windows = [q for path, q, _ in server.requests if path == "/api/issues/search" and "createdAfter" in q]
    assert windows, "the client never split the query"
    assert all(
        int(q["p"]) * int(q["ps"]) <= 4 for path, q, _ in server.requests if path == "/api/issues/search"
    )


def test_more_results_in_one_second_than_the_window_fails_instead_of_truncating(
    sonar_server: Start, tmp_path: Path, workdir: Path
) -> None:
    same_second = [issue for issue in V9_ISSUES if issue["creationDate"] == "2023-10-16T15:05:35+0000"]
    assert len(same_second) == 3
    server = replay(sonar_server, "9.9.4.87374", "testapplication", same_second, [], window=2)
    provider = sonarqube(server, result_window="2", page_size="1", hotspots="false")
    with pytest.raises(ScannerFailed, match="more than 2 issues were created within one second"):
        run(provider, analysed_tree(tmp_path, server), workdir)


def test_a_failed_analysis_task_fails_the_run(sonar_server: Start, tmp_path: Path, workdir: Path) -> None:
    failed = {**PENDING, "status": "FAILED", "errorMessage": "Fail to extract report AYx1 from database"}
    server = replay(sonar_server, "9.9.4.87374", "testapplication", V9_ISSUES, [], task_states=[failed])
    with pytest.raises(
        ScannerFailed, match="analysis task AYx1d2c3b4a5 ended FAILED: Fail to extract report"
    ):
        run(sonarqube(server), analysed_tree(tmp_path, server), workdir)


def test_report_task_pointing_at_another_server_is_refused_before_any_request(
    sonar_server: Start, tmp_path: Path, workdir: Path
) -> None:
    server = replay(sonar_server, "10.6.0.92116", "internal.dummy.project", V10_ISSUES, [])
    tree = analysed_tree(tmp_path, server, server_url="https://attacker.example")
    provider = sonarqube(server)
    with pytest.raises(InvalidArgument) as caught:
        run(provider, tree, workdir)
    assert caught.value.field.endswith("report-task.txt: serverUrl")
    assert "https://attacker.example" in caught.value.problem
    assert all(TOKEN not in auth for _, _, auth in server.requests)


def test_a_rejected_token_names_the_configuration_key(
    sonar_server: Start, tmp_path: Path, workdir: Path
) -> None:
    server = replay(sonar_server, "10.6.0.92116", "internal.dummy.project", V10_ISSUES, [])
    provider = load_providers(
        {
            "sonarqube": settings(
                options={"server_url": server.url, "token": "squ_wrong", "poll_interval": "0.01"}
            )
        }
    )["sonarqube"]
    with pytest.raises(ScannerUnavailable, match=r"HTTP 401.*scanners\.sonarqube\.options\.token") as caught:
        run(provider, analysed_tree(tmp_path, server), workdir)
    assert "squ_wrong" not in caught.value.message


def test_reindexing_503_is_retried(sonar_server: Start, tmp_path: Path, workdir: Path) -> None:
    server = replay(
        sonar_server, "10.6.0.92116", "internal.dummy.project", V10_ISSUES, [], task_states=[SUCCESS]
    )
    provider = sonarqube(server)
    provider.version()
    server.fail_next = [503]
    bundle = json.loads(run(provider, analysed_tree(tmp_path, server), workdir).report)
    assert bundle["issues"] == V10_ISSUES


def test_a_task_that_never_finishes_times_out(sonar_server: Start, tmp_path: Path, workdir: Path) -> None:
    server = replay(sonar_server, "9.9.4.87374", "testapplication", [], [], task_states=[PENDING])
    with pytest.raises(ScanTimeout, match=r"scanners\.sonarqube\.timeout"):
        run(sonarqube(server), analysed_tree(tmp_path, server), workdir, timeout=0.5)


def test_cancel_while_polling_stops_the_run(sonar_server: Start, tmp_path: Path, workdir: Path) -> None:
    server = replay(sonar_server, "9.9.4.87374", "testapplication", [], [], task_states=[PENDING])
    cancel = threading.Event()

    def progress(event: Progress) -> None:
        if event.stage == "polling":
            cancel.set()

    request = ScanRequest(ScanTarget(TargetKind.FILESYSTEM, str(analysed_tree(tmp_path, server))), workdir)
    with pytest.raises(ScanCancelled):
        sonarqube(server).run(request, progress, cancel)


def test_project_key_reads_current_results_without_a_report_task(
    sonar_server: Start, tmp_path: Path, workdir: Path
) -> None:
    server = replay(sonar_server, "10.6.0.92116", "internal.dummy.project", V10_ISSUES, V10_HOTSPOTS)
    empty = tmp_path / "empty"
    empty.mkdir()
    bundle = json.loads(
        run(sonarqube(server), empty, workdir, options={"project_key": server.project}).report
    )
    assert bundle["task"] is None
    assert bundle["issues"] == V10_ISSUES
    gate = [q for path, q, _ in server.requests if path == "/api/qualitygates/project_status"]
    assert gate == [{"projectKey": "internal.dummy.project"}]


def test_missing_report_task_says_where_it_looked(tmp_path: Path, workdir: Path, sonar_server: Start) -> None:
    server = replay(sonar_server, "10.6.0.92116", "internal.dummy.project", [], [])
    with pytest.raises(InvalidArgument, match=r"no report-task\.txt in .*\.scannerwork/report-task\.txt"):
        run(sonarqube(server), tmp_path, workdir)


def test_malformed_report_task_names_the_line(sonar_server: Start, tmp_path: Path, workdir: Path) -> None:
    server = replay(sonar_server, "10.6.0.92116", "internal.dummy.project", [], [])
    broken = tmp_path / "report-task.txt"
    broken.write_text("projectKey=x\nthis line has no equals sign\n")
    with pytest.raises(InvalidArgument) as caught:
        run(sonarqube(server), broken, workdir)
    assert caught.value.field == f"{broken}: line 2"


def test_unreachable_server_names_the_url_key(tmp_path: Path, workdir: Path) -> None:
    provider = load_providers(
        {"sonarqube": settings(options={"server_url": "http://127.0.0.1:9", "token": TOKEN})}
    )["sonarqube"]
    with pytest.raises(ScannerUnavailable, match=r"cannot reach http://127\.0\.0\.1:9.*options\.server_url"):
        provider.version()


def test_server_url_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        load_providers({"sonarqube": settings(options={"server_url": "file:///etc", "token": TOKEN})})
    assert caught.value.key == "scanners.sonarqube.options.server_url"
