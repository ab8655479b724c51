"""Hostile SonarQube answers and report-task.txt files: the run fails with a GateError that says
what was wrong, never a raw exception, never a hang. The server is an httpx.MockTransport."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest

import scanners._sonarqube as sonarqube_module
from gate.config import ScannerProvider as ProviderSettings
from gate.errors import ConfigError, InvalidArgument
from gate.model import ScanTarget, TargetKind
from scanners import (
    RunResult,
    ScannerFailed,
    ScannerProvider,
    ScannerUnavailable,
    ScanRequest,
    load_providers,
)
from scanners._errors import InvalidReport

TOKEN = "squ_4b9f0e6c1d2a7e8f3b5c9d0a1e2f3a4b5c6d7e8f"
URL = "http://sonar.test"
ISSUE = {
    "key": "AX1",
    "rule": "java:S1",
    "component": "p:src/A.java",
    "creationDate": "2024-05-07T10:00:00+0000",
}

Answer = tuple[int, Any]
Override = Callable[[str, dict[str, str]], Answer | None]


def healthy(path: str, query: dict[str, str]) -> Answer:
    """A well-behaved 10.x server with one issue and no hotspots."""
    if path == "/api/server/version":
        return 200, b"10.6.0.92116"
    if path == "/api/ce/task":
        return 200, {"task": {"id": query.get("id"), "status": "SUCCESS", "analysisId": "AN1"}}
    if path == "/api/project_analyses/search":
        return 200, {"paging": {"total": 1}, "analyses": [{"key": "AN1", "revision": "abc"}]}
    if path == "/api/qualitygates/project_status":
        return 200, {"projectStatus": {"status": "OK"}}
    if path == "/api/issues/search":
        items = [ISSUE] if query.get("p", "1") == "1" else []
        return 200, {
            "paging": {"total": 1},
            "issues": items,
            "components": [{"key": ISSUE["component"]}],
            "rules": [{"key": ISSUE["rule"]}],
        }
    if path == "/api/hotspots/search":
        return 200, {"paging": {"total": 0}, "hotspots": []}
    return 404, {"errors": [{"msg": "Unknown url"}]}


class Server:
    """Records requests; answers with ``override`` first, else like a healthy server."""

    def __init__(self, override: Override | None = None) -> None:
        self.override = override
        self.requests: list[tuple[str, dict[str, str], str]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        path, query = request.url.path, dict(request.url.params)
        self.requests.append((path, query, request.headers.get("authorization", "")))
        answer = self.override(path, query) if self.override else None
        status, body = answer if answer is not None else healthy(path, query)
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    """Route the provider's own client (built by ``_client``) to a mock transport."""
    mock = Server()
    real_client = httpx.Client

    def client(**kwargs: Any) -> httpx.Client:
        return real_client(transport=httpx.MockTransport(mock.handle), **kwargs)

    monkeypatch.setattr(sonarqube_module.httpx, "Client", client)
    return mock


def provider(**options: str) -> ScannerProvider:
    config = {"server_url": URL, "token": TOKEN, "poll_interval": "0.01", **options}
    return load_providers({"sonarqube": ProviderSettings.model_validate({"options": config})})["sonarqube"]


def tree(tmp_path: Path, text: str = "") -> Path:
    root = tmp_path / "app"
    (root / ".scannerwork").mkdir(parents=True, exist_ok=True)
    text = text or f"projectKey=p\nserverUrl={URL}\nceTaskId=T1\nceTaskUrl={URL}/api/ce/task?id=T1\n"
    (root / ".scannerwork" / "report-task.txt").write_text(text)
    return root


def run(scanner: ScannerProvider, root: Path, **kwargs: Any) -> RunResult:
    request = ScanRequest(ScanTarget(TargetKind.FILESYSTEM, str(root)), root.parent / "work", **kwargs)
    return scanner.run(request, lambda _: None, threading.Event())


def on(endpoint: str, status: int, body: Any) -> Override:
    def answer(path: str, query: dict[str, str]) -> Answer | None:
        return (status, body) if path == endpoint else None

    return answer


def test_healthy_server_gives_a_bundle(server: Server, tmp_path: Path) -> None:
    bundle = json.loads(run(provider(), tree(tmp_path)).report)
    assert bundle["issues"] == [ISSUE]
    assert bundle["revision"] == "abc"


def test_version_with_non_ascii_digits_is_treated_as_pre_10(server: Server, tmp_path: Path) -> None:
    server.override = on("/api/server/version", 200, "².1".encode())
    bundle = json.loads(run(provider(), tree(tmp_path)).report)
    assert bundle["server_version"] == "².1"
    issue_queries = [q for path, q, _ in server.requests if path == "/api/issues/search"]
    assert all("componentKeys" in q for q in issue_queries)
    assert all(auth.startswith("Basic ") for _, _, auth in server.requests)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[" * 100_000, "nested"),
        (b"[" + b"9" * 5000 + b"]", "not JSON"),
        (b'{"a": NaN}', "not JSON"),
        (b'{"a": 1e999}', "not JSON"),
    ],
    ids=["deep-nesting", "5000-digit-integer", "nan", "infinite-float"],
)
def test_unreadable_json_answer_is_an_invalid_report(
    server: Server, tmp_path: Path, body: bytes, problem: str
) -> None:
    server.override = on("/api/qualitygates/project_status", 200, body)
    with pytest.raises(InvalidReport, match=problem) as caught:
        run(provider(), tree(tmp_path))
    assert caught.value.where == "api/qualitygates/project_status response"


@pytest.mark.parametrize(
    "body", [b"[" * 100_000, b"[" + b"9" * 5000 + b"]"], ids=["deep-nesting", "5000-digit-integer"]
)
def test_unreadable_error_body_still_reports_the_http_status(
    server: Server, tmp_path: Path, body: bytes
) -> None:
    server.override = on("/api/ce/task", 500, body)
    with pytest.raises(ScannerFailed, match=r"api/ce/task answered HTTP 500"):
        run(provider(), tree(tmp_path))


def test_answer_nested_deeper_than_any_sonarqube_object_is_refused(server: Server, tmp_path: Path) -> None:
    # Shallow enough for json.loads, deep enough to break whatever serialises the bundle next.
    server.override = on("/api/qualitygates/project_status", 200, b"[" * 500 + b"]" * 500)
    with pytest.raises(InvalidReport, match="nested"):
        run(provider(), tree(tmp_path))


def test_lone_surrogate_in_an_answer_is_refused(server: Server, tmp_path: Path) -> None:
    server.override = on("/api/qualitygates/project_status", 200, b'{"projectStatus": {"status": "\\ud800"}}')
    with pytest.raises(InvalidReport, match="surrogate") as caught:
        run(provider(), tree(tmp_path))
    assert caught.value.where == "api/qualitygates/project_status response"


def test_lone_surrogate_in_an_object_key_is_refused(server: Server, tmp_path: Path) -> None:
    server.override = on("/api/qualitygates/project_status", 200, b'{"\\udfff": 1}')
    with pytest.raises(InvalidReport, match="surrogate"):
        run(provider(), tree(tmp_path))


@pytest.mark.parametrize("status", [[], {}, 5, None], ids=["list", "object", "number", "null"])
def test_task_status_that_is_not_a_string_is_an_invalid_report(
    server: Server, tmp_path: Path, status: Any
) -> None:
    server.override = on("/api/ce/task", 200, {"task": {"status": status}})
    with pytest.raises(InvalidReport, match=r"task\.status.*expected") as caught:
        run(provider(), tree(tmp_path))
    assert caught.value.where == "api/ce/task response"


def test_task_analysis_id_that_is_not_a_string_is_an_invalid_report(server: Server, tmp_path: Path) -> None:
    server.override = on("/api/ce/task", 200, {"task": {"status": "SUCCESS", "analysisId": {"x": 1}}})
    with pytest.raises(InvalidReport, match=r"analysisId"):
        run(provider(), tree(tmp_path))


@pytest.mark.parametrize(
    ("field", "value"),
    [("components", 5), ("components", True), ("components", 1.5), ("rules", 5), ("rules", True)],
)
def test_components_or_rules_that_are_not_arrays_are_an_invalid_report(
    server: Server, tmp_path: Path, field: str, value: Any
) -> None:
    body = {"paging": {"total": 1}, "issues": [ISSUE], field: value}
    server.override = on("/api/issues/search", 200, body)
    with pytest.raises(InvalidReport, match=rf"{field}.*array"):
        run(provider(), tree(tmp_path))


@pytest.mark.parametrize(
    "date", ["9999-12-31T23:59:59+0000", "9999-12-31T23:30:00-0100", "0001-01-01T00:00:00+0100"]
)
def test_creation_date_at_the_edge_of_the_calendar_is_an_invalid_report(
    server: Server, tmp_path: Path, date: str
) -> None:
    # A total above result_window makes the runner date the windows by the oldest and newest issue.
    body = {"paging": {"total": 5}, "issues": [{**ISSUE, "creationDate": date}]}
    server.override = on("/api/issues/search", 200, body)
    with pytest.raises(InvalidReport, match=r"creationDate.*out of range"):
        run(provider(result_window="2"), tree(tmp_path))


def test_windows_are_dated_with_four_digit_years(server: Server, tmp_path: Path) -> None:
    body = {"paging": {"total": 0}, "issues": [{**ISSUE, "creationDate": "0099-01-01T00:00:00+0000"}]}

    def answer(path: str, query: dict[str, str]) -> Answer | None:
        if path != "/api/issues/search":
            return None
        return 200, {**body, "paging": {"total": 5 if "createdAfter" not in query else 0}}

    server.override = answer
    run(provider(result_window="2"), tree(tmp_path))
    windows = [q for path, q, _ in server.requests if "createdAfter" in q]
    assert windows
    assert windows[0]["createdAfter"] == "0099-01-01T00:00:00+0000"


@pytest.mark.parametrize(
    ("key", "value"),
    [("serverUrl", "http://[::1"), ("ceTaskUrl", "http://[zz/x")],
    ids=["serverUrl", "ceTaskUrl"],
)
def test_report_task_with_a_malformed_url_is_an_invalid_argument(
    server: Server, tmp_path: Path, key: str, value: str
) -> None:
    root = tree(tmp_path, f"projectKey=p\nceTaskId=T1\n{key}={value}\n")
    with pytest.raises(InvalidArgument) as caught:
        run(provider(), root)
    assert caught.value.field.endswith(f"report-task.txt: {key}")
    assert value in caught.value.problem
    assert server.requests == []


def test_version_endpoint_busy_until_its_clock_runs_out_is_unavailable(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each 503 jumps the runner's clock past the version request's own deadline.
    skew = [0.0]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return time.monotonic() + skew[0]

    def busy(path: str, query: dict[str, str]) -> Answer | None:
        skew[0] += 40.0
        return 503, b"reindexing"

    monkeypatch.setattr(sonarqube_module, "time", Clock)
    server.override = busy
    with pytest.raises(ScannerUnavailable, match=r"api/server/version.*503.*options\.server_url"):
        provider().version()


def _ca_files(tmp_path: Path) -> dict[str, Path]:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    return {"missing": tmp_path / "missing.pem", "directory": folder, "not-a-certificate": junk}


@pytest.mark.parametrize("case", ["missing", "directory", "not-a-certificate"])
def test_unusable_ca_file_is_a_config_error_naming_the_option(tmp_path: Path, case: str) -> None:
    path = _ca_files(tmp_path)[case]
    with pytest.raises(ConfigError) as caught:
        provider(ca_file=str(path))
    assert caught.value.key == "scanners.sonarqube.options.ca_file"
    assert str(path) in caught.value.message


def test_ca_file_gone_after_configuration_makes_the_server_unavailable(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    shutil.copy(certifi.where(), ca_file)
    scanner = provider(ca_file=str(ca_file))
    ca_file.unlink()
    with pytest.raises(ScannerUnavailable, match=r"options\.ca_file"):
        scanner.version()


@pytest.mark.parametrize("value", ["0", "nan", "inf", "0.0"])
def test_configured_poll_interval_must_be_finite_and_positive(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        provider(poll_interval=value)
    assert caught.value.key == "scanners.sonarqube.options.poll_interval"
    assert value in caught.value.message


@pytest.mark.parametrize("value", ["0", "nan", "inf"])
def test_requested_poll_interval_must_be_finite_and_positive(
    server: Server, tmp_path: Path, value: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        run(provider(), tree(tmp_path), options={"poll_interval": value})
    assert caught.value.field == "options.poll_interval"
    assert value in caught.value.problem
