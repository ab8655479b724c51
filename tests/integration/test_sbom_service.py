"""GenerateSbom over gRPC (progress, storage, auditor reads) and `gate sbom generate`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from gate.cli import main
from gate.v1 import common_pb2, sbom_pb2, scan_pb2
from tests.conftest import RunningGate, loopback_config

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "sbom"
DIGEST = "sha256:" + "9" * 64


def generate(gate: RunningGate, request: sbom_pb2.GenerateSbomRequest) -> list[sbom_pb2.GenerateSbomEvent]:
    stub = gate.channel.unary_stream(
        "/gate.v1.SbomService/GenerateSbom",
        request_serializer=sbom_pb2.GenerateSbomRequest.SerializeToString,
        response_deserializer=sbom_pb2.GenerateSbomEvent.FromString,
    )
    return list(stub(request, timeout=60))


def lock_files(tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(ASSETS / "poetry", target / "poetry")
    shutil.copytree(ASSETS / "npm-v3", target / "npm")
    return target


def test_an_sbom_is_generated_with_progress_stored_and_searchable(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    gate = serve_gate(loopback_config(tmp_path / "gate"))
    request = sbom_pb2.GenerateSbomRequest(
        target_kind=scan_pb2.TARGET_KIND_FILESYSTEM,
        location=str(lock_files(tmp_path)),
        artifact=common_pb2.ArtifactRef(digest=DIGEST),
    )
    events = generate(gate, request)
    assert len(events) >= 2
    assert all(0 <= e.progress.fraction <= 1 for e in events)
    stored = events[-1].sbom
    assert stored.artifact_digest == DIGEST
    assert stored.component_count > 0
    got = gate.call(
        "gate.v1.SbomService/GetSbom",
        sbom_pb2.GetSbomRequest(id=stored.id, include_document=True),
        sbom_pb2.Sbom,
    )
    document = json.loads(got.document)
    assert document["specVersion"] == "1.6"
    assert len(document["components"]) == stored.component_count
    name = document["components"][0]["name"]
    found = gate.call(
        "gate.v1.SbomService/SearchComponents",
        sbom_pb2.SearchComponentsRequest(name=name),
        sbom_pb2.SearchComponentsResponse,
    )
    assert {m.sbom_id for m in found.matches} == {stored.id}


@pytest.mark.parametrize(
    ("change", "code", "expected"),
    [
        (
            {"target_kind": scan_pb2.TARGET_KIND_REPOSITORY},
            grpc.StatusCode.UNIMPLEMENTED,
            "SBOMs of repository targets",
        ),
        ({"generator": "cdxgen"}, grpc.StatusCode.UNIMPLEMENTED, "'cdxgen' SBOM generator"),
        ({"location": "/nonexistent/dir"}, grpc.StatusCode.INVALID_ARGUMENT, "target.location"),
        ({"artifact": None}, grpc.StatusCode.INVALID_ARGUMENT, "artifact: required"),
        ({"target_kind": 42}, grpc.StatusCode.INVALID_ARGUMENT, "target_kind: unknown enum value 42"),
    ],
)
def test_what_gate_cannot_generate_is_refused_clearly(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], change: dict, code: grpc.StatusCode, expected: str
) -> None:
    gate = serve_gate(loopback_config(tmp_path / "gate"))
    request = sbom_pb2.GenerateSbomRequest(
        target_kind=scan_pb2.TARGET_KIND_FILESYSTEM,
        location=str(lock_files(tmp_path)),
        artifact=common_pb2.ArtifactRef(digest=DIGEST),
    )
    for field, value in change.items():
        if value is None:
            request.ClearField(field)
        else:
            setattr(request, field, value)
    with pytest.raises(grpc.RpcError) as caught:
        generate(gate, request)
    assert caught.value.code() is code
    assert expected in caught.value.details()


def test_the_cli_writes_the_document_of_a_git_work_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    target = lock_files(tmp_path)
    for args in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.name=t", "-c", "user.email=t@e.invalid", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", *args], cwd=target, check=True, capture_output=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=target, check=True, capture_output=True, text=True
    )
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    output = tmp_path / "sbom.xml"
    code = main(["sbom", "generate", str(target), "-o", "cyclonedx-xml", "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert output.read_bytes().startswith(b"<?xml")
    assert f"of git:{head.stdout.strip()} (cyclonedx-xml) written to {output}" in err
