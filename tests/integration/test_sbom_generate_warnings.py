"""What SBOM generation skipped reaches the caller: on the stream's last event and in the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gate.cli import main

DIGEST = "sha256:" + "5" * 64
NPM_LOCK_WITH_NUL = Path(__file__).resolve().parents[1] / "assets/sbom-generation/npm-lock-entry-with-nul"


def _project_with_a_broken_lock_entry(root: Path) -> Path:
    shutil.copytree(NPM_LOCK_WITH_NUL, root)
    return root


def test_the_cli_prints_what_generation_skipped_and_still_stores_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    project = _project_with_a_broken_lock_entry(tmp_path / "project")
    document = tmp_path / "sbom.json"
    code = main(["sbom", "generate", str(project), "--artifact", DIGEST, "--output", str(document)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "gate: warning: package-lock.json: npm-lock entry 'le\\x00ft' skipped: name: got a NUL" in err
    names = {component["name"] for component in json.loads(document.read_text())["components"]}
    assert "left-pad" in names
    assert not any("\0" in name for name in names)


def test_the_stream_carries_the_warnings_on_its_last_event(tmp_path: Path) -> None:
    from gate._api import Api
    from gate.config import load_config
    from gate.core import Gate
    from gate.store import open_store
    from gate.v1 import common_pb2, sbom_pb2, scan_pb2

    config = load_config(None, {"GATE_DATA_DIR": str(tmp_path / "data"), "GATE_METRICS_ENABLED": "false"})
    store = open_store(config.effective_database_url)
    try:
        api = Api(Gate.from_config(config, store, None))
        project = _project_with_a_broken_lock_entry(tmp_path / "project")
        request = sbom_pb2.GenerateSbomRequest(
            target_kind=scan_pb2.TARGET_KIND_FILESYSTEM,
            location=str(project),
            artifact=common_pb2.ArtifactRef(digest=DIGEST),
        )
        events = [event for event in api._generate_sbom(request) if event is not None]
    finally:
        store.close()
    *progress, last = events
    assert last.HasField("sbom")
    assert list(last.warnings) == [
        "package-lock.json: npm-lock entry 'le\\x00ft' skipped: name: got a NUL character (\\u0000), "
        "expected text without NUL"
    ]
    assert not any(event.warnings for event in progress)
