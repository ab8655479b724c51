"""SonarQube (Web API) as a provider: one JSON bundle of an analysis' results.

The target is a directory holding ``report-task.txt`` (``.scannerwork/``,
``target/sonar/``, ``build/sonar/``, ``.sonarqube/out/.sonar/`` or the
directory itself) or that file; with the option ``project_key`` and no
report file, the project's current results are read instead. The provider:

1. reads ``projectKey`` and ``ceTaskId`` from ``report-task.txt``; the file's
   ``serverUrl``/``ceTaskUrl`` must point at the configured ``server_url``
   (the token is only ever sent there, never to a URL a scanned tree names);
2. polls ``api/ce/task`` until the task leaves PENDING/IN_PROGRESS (FAILED or
   CANCELED fails the run: no results is not a clean result);
3. reads the analysed commit from ``api/project_analyses/search`` and
   ``api/qualitygates/project_status`` for the analysis;
4. reads every unresolved issue from ``api/issues/search``: SonarQube returns
   at most 10,000 results per query (``p * ps``), so a larger set is split
   into creation-date windows (``createdAfter`` inclusive, ``createdBefore``
   exclusive) halved until each fits; a set that cannot be split fails;
5. reads ``api/hotspots/search`` the same way (split by status if needed).

The bundle (``report_format`` ``sonarqube``), agreed with ``scanners.reports``::

    {"tool": "sonarqube",
     "server_version": "10.6.0.92116",       # api/server/version
     "server_url": "https://sonar.example",   # the configured one
     "project": "my-app", "branch": "", "pull_request": "",
     "analysis_id": "AYx2...",                # "" when read by project key
     "revision": "<commit>",                  # api/project_analyses/search; "" when unknown
     "task": {...} | null,                    # api/ce/task "task" object
     "quality_gate": {...},                   # api/qualitygates/project_status response
     "issues": [<issue>...],                  # api/issues/search "issues", all pages
     "hotspots": [<hotspot>...],              # api/hotspots/search "hotspots", all pages
     "components": {"<key>": <component>},    # from both searches
     "rules": {"<key>": <rule>}}              # api/issues/search additionalFields=rules

Issues and hotspots are kept exactly as the server returned them, so 9.9
(``severity``/``type``) and 10.x (``impacts``, ``issueStatus``) shapes both
pass through. Authentication: ``auth`` ``bearer`` (10.0+ user tokens),
``basic`` (token as user name, what 9.9 documents, accepted by every version)
or ``auto`` (bearer from 10.0 on, else basic).
"""

from __future__ import annotations

import base64
import json
import math
import os
import ssl
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from gate._strict_json import StrictJsonError, loads
from gate.config import ScannerProvider as ProviderSettings
from gate.errors import ConfigError, InvalidArgument, NotFound
from gate.model import TargetKind
from scanners._base import BaseProvider
from scanners._errors import (
    InvalidReport,
    ReportTooLarge,
    ScanCancelled,
    ScannerFailed,
    ScannerUnavailable,
    ScanTimeout,
)
from scanners._options import Option, Options
from scanners._process import redact_text
from scanners._provider import Progress, ProgressCallback, RunResult, ScanRequest, resolve_local_path

RESULT_WINDOW = 10_000
_REPORT_TASK_PLACES = (
    ".scannerwork/report-task.txt",
    "target/sonar/report-task.txt",
    "build/sonar/report-task.txt",
    ".sonarqube/out/.sonar/report-task.txt",
    "report-task.txt",
)
_REPORT_TASK_MAX_BYTES = 64 * 1024
_RESPONSE_MAX_BYTES = 64 * 1024 * 1024
_PENDING = frozenset({"PENDING", "IN_PROGRESS"})
_RETRIES = 3
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# The newest creation date still followed by a whole second: the last window ends one second later.
_LATEST_DATE = datetime.max.replace(tzinfo=UTC) - timedelta(seconds=1)
# SonarQube's answers nest a handful of levels; anything far deeper is hostile and would break
# whatever serialises or parses the bundle next, long before Python's own recursion limit.
_MAX_DEPTH = 64

OPTIONS = (
    Option("server_url", "str", config_only=True),
    Option("token", "str", config_only=True, secret=True),
    Option("auth", "choice", frozenset({"auto", "bearer", "basic"}), config_only=True),
    Option("ca_file", "str", config_only=True),
    Option("result_window", "int", config_only=True),
    Option("project_key", "str"),
    Option("branch", "str"),
    Option("pull_request", "str"),
    Option("poll_interval", "seconds"),
    Option("page_size", "int"),
    Option("hotspots", "bool"),
)


class _Aborted(Exception):
    """Internal: the run must stop (cancelled or out of time)."""


class SonarQubeProvider(BaseProvider):
    """Reads an analysis' quality gate, issues and hotspots from a SonarQube server.

    Options (* configuration only): ``server_url``* (required), ``token``*
    (else ``SONAR_TOKEN``), ``auth``* (auto, bearer, basic), ``ca_file``*,
    ``result_window``* (the server's search limit, default 10000),
    ``project_key`` (when there is no ``report-task.txt``), ``branch``,
    ``pull_request``, ``poll_interval`` (seconds, default 2), ``page_size``
    (1-500, default 500), ``hotspots`` (default true).
    """

    tool = "sonarqube"
    supported_targets = frozenset({TargetKind.FILESYSTEM, TargetKind.REPOSITORY})
    report_format = "sonarqube"
    OPTIONS = OPTIONS

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        """Check the server URL and that a token is available.

        Raises:
            ConfigError: naming ``scanners.<name>.options.server_url`` or ``.token``.
        """
        super().__init__(name, settings)
        url = self.options.text("server_url").rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError(
                "configuration",
                f"scanners.{name}.options.server_url",
                f"expected the server's http(s) URL, e.g. https://sonar.example, got {url!r}",
            )
        self._server_url = url
        self._token = self.options.text("token") or os.environ.get("SONAR_TOKEN", "")
        if not self._token:
            raise ConfigError(
                "configuration",
                f"scanners.{name}.options.token",
                "no SonarQube token: set this option or the SONAR_TOKEN environment variable",
            )
        self._window = int(self.options.number("result_window", RESULT_WINDOW)) or RESULT_WINDOW
        problem = _poll_interval_problem(self.options)
        if problem:
            raise ConfigError("configuration", f"scanners.{name}.options.poll_interval", problem)
        ca_file = self.options.text("ca_file")
        if ca_file:
            # Checked now so a wrong path is a configuration error, not a failure of every scan.
            try:
                ssl.create_default_context(cafile=ca_file)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    "configuration",
                    f"scanners.{name}.options.ca_file",
                    f"expected a readable PEM file of CA certificates, got {ca_file!r} ({exc})",
                ) from None

    # -- HTTP ------------------------------------------------------------------

    def _client(self, timeout: float) -> httpx.Client:
        verify: Any = True
        ca_file = self.options.text("ca_file")
        if ca_file:
            try:
                verify = ssl.create_default_context(cafile=ca_file)
            except (OSError, ValueError) as exc:
                # Checked at configuration; it can still be moved or replaced since.
                raise ScannerUnavailable(
                    f"{self.tool}: cannot load the CA certificates {ca_file!r} ({exc})",
                    f"{self.config_key}.options.ca_file",
                ) from None
        return httpx.Client(
            base_url=self._server_url + "/",
            timeout=httpx.Timeout(min(60.0, max(1.0, timeout))),
            verify=verify,
            follow_redirects=False,
            trust_env=False,
        )

    def _auth_header(self, version: str) -> dict[str, str]:
        mode = self.options.text("auth", "auto")
        if mode == "auto":
            mode = "bearer" if _major(version) >= 10 else "basic"
        if mode == "bearer":
            return {"Authorization": f"Bearer {self._token}"}
        encoded = base64.b64encode(f"{self._token}:".encode()).decode()
        return {"Authorization": f"Basic {encoded}"}

    def _get(
        self, session: _Session, path: str, params: Mapping[str, str | int], *, text: bool = False
    ) -> Any:
        session.check()
        url = f"{self._server_url}/{path}"
        for attempt in range(_RETRIES + 1):
            try:
                with session.client.stream(
                    "GET", path, params=dict(params), headers=session.headers
                ) as response:
                    body = self._read_body(response, session)
                    status = response.status_code
            except httpx.TimeoutException:
                raise ScannerUnavailable(
                    f"{self.tool}: {url} did not answer in time", f"{self.config_key}.options.server_url"
                ) from None
            except httpx.HTTPError as exc:
                raise ScannerUnavailable(
                    f"{self.tool}: cannot reach {self._server_url}: {redact_text(str(exc), (self._token,))}",
                    f"{self.config_key}.options.server_url",
                ) from None
            # 503 is what SonarQube answers while it re-indexes: wait and retry a few times.
            if status == 503 and attempt < _RETRIES:
                session.sleep(min(2.0**attempt, 10.0))
                continue
            break
        if status in (401, 403):
            raise ScannerUnavailable(
                f"{self.tool}: {path} refused the token (HTTP {status})", f"{self.config_key}.options.token"
            )
        message = self._error_message(body)
        if status == 404:
            raise NotFound("SonarQube resource", f"{path}?{_query(params)}: {message or 'HTTP 404'}")
        if status >= 400:
            raise ScannerFailed(self.tool, f"{path} answered HTTP {status}", detail=message)
        if text:
            return body.decode("utf-8", "replace").strip()
        document, problem = _load_json(body)
        if problem:
            raise InvalidReport(self.tool, f"{path} response", problem)
        return document

    def _read_body(self, response: httpx.Response, session: _Session) -> bytes:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            session.received += len(chunk)
            if size > _RESPONSE_MAX_BYTES or session.received > session.max_bytes:
                raise ReportTooLarge(self.tool, min(_RESPONSE_MAX_BYTES, session.max_bytes))
            chunks.append(chunk)
        return b"".join(chunks)

    def _error_message(self, body: bytes) -> str:
        document, problem = _load_json(body)
        if problem:
            return ""
        errors = document.get("errors") if isinstance(document, dict) else None
        if isinstance(errors, list):
            texts = [str(e.get("msg", "")) for e in errors if isinstance(e, dict)]
            return redact_text("; ".join(t for t in texts if t), (self._token,))[:500]
        return ""

    # -- protocol ----------------------------------------------------------------

    def _ask_version(self) -> str:
        with self._client(30.0) as client:
            # Basic works on every version; a server that forces authentication wants it even here.
            session = _Session(
                client,
                self._auth_header("9"),
                threading.Event(),
                time.monotonic() + 30.0,
                _RESPONSE_MAX_BYTES,
                self.tool,
            )
            try:
                version = self._get(session, "api/server/version", {}, text=True)
            except _Aborted:
                # Only the 503 retries can run out this private clock: the server stayed busy.
                raise ScannerUnavailable(
                    f"{self.tool}: api/server/version kept answering HTTP 503 (busy) for 30 s",
                    f"{self.config_key}.options.server_url",
                ) from None
        assert isinstance(version, str)
        if not version or len(version) > 64:
            raise ScannerFailed(self.tool, "api/server/version returned no version", detail=version[:64])
        return version

    def run(self, request: ScanRequest, progress: ProgressCallback, cancel: threading.Event) -> RunResult:
        """Collect the analysis named by the target's ``report-task.txt`` (or the ``project_key`` option)."""
        self.check_target(request.target)
        options = self.request_options(request)
        problem = _poll_interval_problem(options)
        if problem:
            raise InvalidArgument("options.poll_interval", problem)
        started = time.monotonic()
        timeout = self.timeout_for(request)
        task_file = self._report_task(request, options)
        version = self.version()
        with self._client(timeout) as client:
            session = _Session(
                client,
                self._auth_header(version),
                cancel,
                started + timeout,
                request.max_report_bytes,
                self.tool,
            )
            try:
                bundle = self._collect(session, task_file, options, version, progress, started)
            except _Aborted:
                if cancel.is_set():
                    raise ScanCancelled(self.tool) from None
                raise ScanTimeout(self.tool, timeout, f"{self.config_key}.timeout") from None
        report = json.dumps(bundle, ensure_ascii=False, separators=(",", ":")).encode()
        if len(report) > request.max_report_bytes:
            raise ReportTooLarge(self.tool, request.max_report_bytes)
        duration = time.monotonic() - started
        progress(Progress("finished", f"{self.name}: bundle of {len(report)} bytes", duration, 1.0))
        return RunResult(
            report=report,
            report_format=self.report_format,
            tool_version=version,
            exit_code=0,
            duration=duration,
        )

    # -- steps -------------------------------------------------------------------

    def _report_task(self, request: ScanRequest, options: Options) -> dict[str, str] | None:
        location = request.target.location
        if "://" in location:
            raise InvalidArgument(
                "target.location", "expected a local directory or report-task.txt, got a URL"
            )
        path = resolve_local_path(location, request.root)
        candidates = [path] if path.is_file() else [path / place for place in _REPORT_TASK_PLACES]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            if options.text("project_key"):
                return None
            raise InvalidArgument(
                "target.location",
                f"no report-task.txt in {location!r} (looked in {', '.join(_REPORT_TASK_PLACES)}); "
                "run the analysis first or set the option project_key",
            )
        if request.root is not None:
            resolve_local_path(str(found), request.root)
        return self._read_report_task(found)

    def _read_report_task(self, path: Path) -> dict[str, str]:
        where = str(path)
        with path.open("rb") as handle:
            data = handle.read(_REPORT_TASK_MAX_BYTES + 1)
        if len(data) > _REPORT_TASK_MAX_BYTES:
            raise InvalidArgument(where, f"larger than {_REPORT_TASK_MAX_BYTES} bytes; not a report-task.txt")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidArgument(where, f"not UTF-8 (byte {exc.start})") from None
        values: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "!")):
                continue
            key, sep, value = stripped.partition("=")
            if not sep:
                raise InvalidArgument(f"{where}: line {number}", f"expected key=value, got {stripped[:80]!r}")
            values[key.strip()] = value.strip()
        for key in ("projectKey", "ceTaskId"):
            if not values.get(key):
                raise InvalidArgument(f"{where}: {key}", "missing")
        for key in ("serverUrl", "ceTaskUrl"):
            if not values.get(key):
                continue
            try:
                same = _same_origin(values[key], self._server_url)
            except ValueError as exc:
                raise InvalidArgument(
                    f"{where}: {key}", f"expected an http(s) URL, got {values[key][:200]!r} ({exc})"
                ) from None
            if not same:
                raise InvalidArgument(
                    f"{where}: {key}",
                    f"points at {_origin(values[key])!r}, not the configured server "
                    f"{_origin(self._server_url)!r}; the token is only sent to "
                    f"{self.config_key}.options.server_url",
                )
        return values

    def _collect(
        self,
        session: _Session,
        task_file: dict[str, str] | None,
        options: Options,
        version: str,
        progress: ProgressCallback,
        started: float,
    ) -> dict[str, Any]:
        task: dict[str, Any] | None = None
        analysis_id = ""
        if task_file is not None:
            project = task_file["projectKey"]
            branch = options.text("branch") or task_file.get("branch", "")
            pull_request = options.text("pull_request") or task_file.get("pullRequest", "")
            task = self._wait_for_task(session, task_file["ceTaskId"], options, progress, started)
            found = task.get("analysisId")
            if found is not None and not isinstance(found, str):
                raise InvalidReport(
                    self.tool,
                    "api/ce/task response",
                    f"task.analysisId: expected a string, got {_shown(found)}",
                )
            analysis_id = found or ""
        else:
            project = options.text("project_key")
            branch = options.text("branch")
            pull_request = options.text("pull_request")
        scope: dict[str, str] = {}
        if branch:
            scope["branch"] = branch
        if pull_request:
            scope["pullRequest"] = pull_request
        revision = self._revision(session, project, analysis_id, scope) if analysis_id else ""
        progress(Progress("fetching", f"{self.name}: quality gate of {project}", time.monotonic() - started))
        gate_params = {"analysisId": analysis_id} if analysis_id else {"projectKey": project, **scope}
        quality_gate = self._get(session, "api/qualitygates/project_status", gate_params)
        components: dict[str, Any] = {}
        rules: dict[str, Any] = {}
        issues = self._issues(session, project, scope, options, version, components, rules, progress, started)
        hotspots: list[Any] = []
        if options.flag("hotspots", True):
            hotspots = self._hotspots(session, project, scope, options, components, progress, started)
        return {
            "tool": "sonarqube",
            "server_version": version,
            "server_url": self._server_url,
            "project": project,
            "branch": branch,
            "pull_request": pull_request,
            "analysis_id": analysis_id,
            "revision": revision,
            "task": task,
            "quality_gate": quality_gate,
            "issues": issues,
            "hotspots": hotspots,
            "components": components,
            "rules": rules,
        }

    def _revision(self, session: _Session, project: str, analysis_id: str, scope: dict[str, str]) -> str:
        """The commit the analysis was made of (``sonar.scm.revision``), "" when the server has none."""
        params = {"project": project, "ps": "100", **scope}
        document = self._get(session, "api/project_analyses/search", params)
        analyses = document.get("analyses") if isinstance(document, dict) else None
        if not isinstance(analyses, list):
            raise InvalidReport(self.tool, "api/project_analyses/search response", "has no 'analyses' array")
        for analysis in analyses:
            if isinstance(analysis, dict) and analysis.get("key") == analysis_id:
                revision = analysis.get("revision")
                return revision if isinstance(revision, str) else ""
        return ""

    def _wait_for_task(
        self, session: _Session, task_id: str, options: Options, progress: ProgressCallback, started: float
    ) -> dict[str, Any]:
        interval = options.number("poll_interval", 2.0)
        while True:
            document = self._get(session, "api/ce/task", {"id": task_id})
            task = document.get("task") if isinstance(document, dict) else None
            if not isinstance(task, dict):
                raise InvalidReport(self.tool, "api/ce/task response", "has no 'task' object")
            status = task.get("status")
            if not isinstance(status, str):
                raise InvalidReport(
                    self.tool, "api/ce/task response", f"task.status: expected a string, got {_shown(status)}"
                )
            if status == "SUCCESS":
                return task
            if status not in _PENDING:
                reason = redact_text(str(task.get("errorMessage") or ""), (self._token,))[:500]
                raise ScannerFailed(
                    self.tool,
                    f"analysis task {task_id} ended {status[:80]}",
                    detail=reason or "no error message",
                )
            progress(
                Progress(
                    "polling", f"{self.name}: analysis task {status.lower()}", time.monotonic() - started
                )
            )
            session.sleep(interval)

    def _page_size(self, options: Options) -> int:
        size = int(options.number("page_size", 500))
        if not 1 <= size <= 500:
            raise InvalidArgument("options.page_size", f"expected 1-500, got {size}")
        return size

    def _issues(
        self,
        session: _Session,
        project: str,
        scope: dict[str, str],
        options: Options,
        version: str,
        components: dict[str, Any],
        rules: dict[str, Any],
        progress: ProgressCallback,
        started: float,
    ) -> list[Any]:
        project_param = "components" if _major(version) >= 10 else "componentKeys"
        base = {project_param: project, "resolved": "false", "additionalFields": "rules", **scope}
        page_size = self._page_size(options)
        issues: list[Any] = []

        def fetch(params: dict[str, str]) -> int:
            return self._pages(
                session, "api/issues/search", "issues", params, page_size, issues, components, rules
            )

        total = self._count(session, "api/issues/search", base)
        progress(Progress("fetching", f"{self.name}: {total} issues", time.monotonic() - started))
        if total <= self._window:
            fetch(base)
            return issues
        # Newest and oldest creation dates bound the windows to split.
        oldest = self._edge_date(session, base, ascending=True)
        newest = self._edge_date(session, base, ascending=False) + timedelta(seconds=1)
        self._split(session, base, oldest, newest, fetch)
        return issues

    def _edge_date(self, session: _Session, base: dict[str, str], *, ascending: bool) -> datetime:
        params = {**base, "ps": "1", "p": "1", "s": "CREATION_DATE", "asc": "true" if ascending else "false"}
        document = self._get(session, "api/issues/search", params)
        found = document.get("issues") if isinstance(document, dict) else None
        if not isinstance(found, list) or not found or not isinstance(found[0], dict):
            raise InvalidReport(
                self.tool, "api/issues/search response", "has no issues to date the windows by"
            )
        return _parse_date(self.tool, found[0].get("creationDate"))

    def _split(
        self,
        session: _Session,
        base: dict[str, str],
        start: datetime,
        end: datetime,
        fetch: Any,
    ) -> None:
        params = {**base, "createdAfter": _format_date(start), "createdBefore": _format_date(end)}
        count = self._count(session, "api/issues/search", params)
        if count == 0:
            return
        if count <= self._window:
            fetch(params)
            return
        span = (end - start).total_seconds()
        if span <= 1:
            raise ScannerFailed(
                self.tool,
                f"more than {self._window} issues were created within one second ({_format_date(start)}); "
                "SonarQube cannot return them all",
            )
        middle = start + timedelta(seconds=math.floor(span / 2))
        self._split(session, base, start, middle, fetch)
        self._split(session, base, middle, end, fetch)

    def _count(self, session: _Session, path: str, params: Mapping[str, str]) -> int:
        document = self._get(session, path, {**params, "ps": "1", "p": "1"})
        return _total(self.tool, path, document)

    def _pages(
        self,
        session: _Session,
        path: str,
        field: str,
        params: Mapping[str, str],
        page_size: int,
        into: list[Any],
        components: dict[str, Any],
        rules: dict[str, Any] | None,
    ) -> int:
        page = 1
        fetched = 0
        while True:
            document = self._get(session, path, {**params, "ps": str(page_size), "p": str(page)})
            items = document.get(field) if isinstance(document, dict) else None
            if not isinstance(items, list):
                raise InvalidReport(self.tool, f"{path} response", f"has no {field!r} array")
            into.extend(items)
            fetched += len(items)
            for component in self._array(document, path, "components"):
                if isinstance(component, dict) and isinstance(component.get("key"), str):
                    components[component["key"]] = component
            if rules is not None:
                for rule in self._array(document, path, "rules"):
                    if isinstance(rule, dict) and isinstance(rule.get("key"), str):
                        rules[rule["key"]] = rule
            total = _total(self.tool, path, document)
            if not items or page * page_size >= total:
                return fetched
            if (page + 1) * page_size > self._window:
                raise ScannerFailed(self.tool, f"{path}: more than {self._window} results in one query")
            page += 1

    def _array(self, document: dict[str, Any], path: str, field: str) -> list[Any]:
        """An optional array of a search answer: absent or null is empty, anything else is refused."""
        value = document.get(field)
        if value is None:
            return []
        if not isinstance(value, list):
            raise InvalidReport(
                self.tool, f"{path} response", f"{field!r}: expected an array, got {_shown(value)}"
            )
        return value

    def _hotspots(
        self,
        session: _Session,
        project: str,
        scope: dict[str, str],
        options: Options,
        components: dict[str, Any],
        progress: ProgressCallback,
        started: float,
    ) -> list[Any]:
        base = {"projectKey": project, **scope}
        page_size = self._page_size(options)
        hotspots: list[Any] = []
        total = self._count(session, "api/hotspots/search", base)
        progress(Progress("fetching", f"{self.name}: {total} security hotspots", time.monotonic() - started))
        if total <= self._window:
            self._pages(
                session, "api/hotspots/search", "hotspots", base, page_size, hotspots, components, None
            )
            return hotspots
        for status in ("TO_REVIEW", "REVIEWED"):
            params = {**base, "status": status}
            self._pages(
                session, "api/hotspots/search", "hotspots", params, page_size, hotspots, components, None
            )
        return hotspots


class _Session:
    """One run's HTTP client, credentials, deadline, cancellation and byte budget."""

    def __init__(
        self,
        client: httpx.Client,
        headers: dict[str, str],
        cancel: threading.Event,
        deadline: float,
        max_bytes: int,
        tool: str,
    ) -> None:
        self.client = client
        self.headers = headers
        self.cancel = cancel
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.received = 0
        self.tool = tool

    def check(self) -> None:
        if self.cancel.is_set() or time.monotonic() >= self.deadline:
            raise _Aborted

    def sleep(self, seconds: float) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or self.cancel.wait(min(seconds, remaining)):
            raise _Aborted
        self.check()


def _major(version: str) -> int:
    """The major version, -1 when it is not plain ASCII digits (str.isdigit also accepts '²')."""
    major = version.split(".", 1)[0]
    return int(major) if major.isascii() and major.isdigit() and len(major) <= 9 else -1


def _poll_interval_problem(options: Options) -> str:
    interval = options.number("poll_interval", 2.0)
    # Zero or NaN would poll the server in a tight loop until the deadline.
    if math.isfinite(interval) and interval > 0:
        return ""
    return f"expected a finite number of seconds > 0, got {interval!r}"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _load_json(body: bytes) -> tuple[Any, str]:
    """Parse a server answer; return (document, "") or (None, what is wrong with it)."""
    try:
        # NaN, 1e400 and lone surrogates would break the bundle when it is serialised; a
        # repeated key has always been read as json.loads reads it (the last one).
        document = loads(body, any_encoding=True, allow_duplicate_keys=True)
    except StrictJsonError as exc:
        if exc.kind == "depth":
            return None, "is not JSON: nested too deeply"
        if exc.kind == "lone_surrogate":
            return None, f"holds {exc.reason}"
        return None, f"is not JSON: got {exc.reason}"
    return document, _depth_problem(document)


def _depth_problem(document: Any) -> str:
    """Nesting deeper than any SonarQube answer, which json.loads reads but later writers may not."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        if depth > _MAX_DEPTH:
            return f"is nested more than {_MAX_DEPTH} levels deep"
        stack.extend((item, depth + 1) for item in (node.values() if isinstance(node, dict) else node))
    return ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _same_origin(url: str, server: str) -> bool:
    return _origin(url).lower() == _origin(server).lower() and urlsplit(url).path.startswith(
        urlsplit(server).path
    )


def _query(params: Mapping[str, str | int]) -> str:
    return "&".join(f"{key}={value}" for key, value in params.items())


def _total(tool: str, path: str, document: Any) -> int:
    paging = document.get("paging") if isinstance(document, dict) else None
    total = paging.get("total") if isinstance(paging, dict) else None
    if total is None and isinstance(document, dict):
        total = document.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise InvalidReport(tool, f"{path} response", "has no paging.total")
    return total


def _parse_date(tool: str, value: object) -> datetime:
    if not isinstance(value, str):
        raise InvalidReport(tool, "api/issues/search response", f"creationDate missing, got {value!r}")
    try:
        parsed = datetime.strptime(value, _DATE_FORMAT)
    except ValueError:
        raise InvalidReport(
            tool, "api/issues/search response", f"creationDate {_shown(value)} is not a date"
        ) from None
    try:
        parsed = parsed.astimezone(UTC)
        in_range = parsed <= _LATEST_DATE
    except OverflowError:
        # Within the calendar in its own zone, before year 1 or after 9999 in UTC.
        in_range = False
    if not in_range:
        raise InvalidReport(
            tool,
            "api/issues/search response",
            f"creationDate {_shown(value)} is out of range; expected a UTC time from "
            f"0001-01-01T00:00:00+0000 to {_format_date(_LATEST_DATE)}",
        )
    return parsed


def _format_date(value: datetime) -> str:
    # strftime's %Y drops the leading zeros of years before 1000 on glibc; SonarQube wants four digits.
    value = value.astimezone(UTC)
    return f"{value.year:04d}-{value:%m-%dT%H:%M:%S}+0000"
