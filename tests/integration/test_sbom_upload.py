"""SBOMs made elsewhere on a running gate: UploadSbom, GetSbom conversions, DiffSboms, licences, the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from gate.cli import main
from gate.v1 import common_pb2, sbom_pb2, scan_pb2
from tests.conftest import RunningGate, loopback_config
from tests.integration.scanners.runner_support import FIXTURES

UPLOADS = Path(__file__).resolve().parents[1] / "assets" / "sbom" / "uploads"
OLD = "sha256:" + "1" * 64
NEW = "sha256:" + "2" * 64


def upload(gate: RunningGate, name: str, digest: str) -> sbom_pb2.Sbom:
    request = sbom_pb2.UploadSbomRequest(
        artifact=common_pb2.ArtifactRef(digest=digest),
        artifact_kind=common_pb2.ARTIFACT_KIND_IMAGE,
        document=(UPLOADS / name).read_bytes(),
    )
    result = gate.call("gate.v1.SbomService/UploadSbom", request, sbom_pb2.Sbom)
    assert isinstance(result, sbom_pb2.Sbom)
    return result


@pytest.fixture
def gate(tmp_path: Path, serve_gate: Callable[..., RunningGate]) -> RunningGate:
    return serve_gate(loopback_config(tmp_path / "gate"))


def test_uploaded_sboms_are_stored_verbatim_and_converted_on_request(gate: RunningGate) -> None:
    stored = upload(gate, "cyclonedx-1.7.json", NEW)
    assert (stored.format, stored.spec_version, stored.generator, stored.component_count) == (
        sbom_pb2.SBOM_FORMAT_CYCLONEDX_JSON,
        "1.7",
        "trivy 0.76.0",
        3,
    )

    def get(fmt: int) -> bytes:
        request = sbom_pb2.GetSbomRequest(id=stored.id, include_document=True, format=fmt)
        result = gate.call("gate.v1.SbomService/GetSbom", request, sbom_pb2.Sbom)
        assert isinstance(result, sbom_pb2.Sbom)
        return result.document

    original = (UPLOADS / "cyclonedx-1.7.json").read_bytes()
    assert get(sbom_pb2.SBOM_FORMAT_UNSPECIFIED) == original
    assert get(sbom_pb2.SBOM_FORMAT_CYCLONEDX_JSON) == original
    assert json.loads(get(sbom_pb2.SBOM_FORMAT_SPDX_JSON))["spdxVersion"] == "SPDX-2.3"
    assert get(sbom_pb2.SBOM_FORMAT_CYCLONEDX_XML).startswith(b"<?xml")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b"{", "document: invalid JSON at line 1 column 2"),
        (b'{"bomFormat":"CycloneDX","specVersion":"1.2"}', "document/specVersion: expected CycloneDX 1.4"),
        (
            b'{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library"}]}',
            'document/components/0: "name" is a required property',
        ),
    ],
)
def test_bad_uploads_are_invalid_arguments_naming_the_first_error(
    gate: RunningGate, document: bytes, expected: str
) -> None:
    request = sbom_pb2.UploadSbomRequest(artifact=common_pb2.ArtifactRef(digest=OLD), document=document)
    with pytest.raises(grpc.RpcError) as caught:
        gate.call("gate.v1.SbomService/UploadSbom", request, sbom_pb2.Sbom)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert expected in caught.value.details()


def test_auditor_questions_across_artifacts(gate: RunningGate) -> None:
    old = upload(gate, "cyclonedx-1.4.json", OLD)
    new = upload(gate, "cyclonedx-1.7.json", NEW)

    search = sbom_pb2.SearchComponentsRequest(
        purl="pkg:deb/debian/bsdutils", version_range=">=1:2.38,<1:2.39"
    )
    found = gate.call("gate.v1.SbomService/SearchComponents", search, sbom_pb2.SearchComponentsResponse)
    assert isinstance(found, sbom_pb2.SearchComponentsResponse)
    assert sorted(m.artifact_digest for m in found.matches) == [OLD, NEW]

    request = sbom_pb2.DiffSbomsRequest(
        base_artifact=common_pb2.ArtifactRef(digest=OLD), head_artifact=common_pb2.ArtifactRef(digest=NEW)
    )
    diff = gate.call("gate.v1.SbomService/DiffSboms", request, sbom_pb2.DiffSbomsResponse)
    assert isinstance(diff, sbom_pb2.DiffSbomsResponse)
    assert (diff.base_id, diff.head_id) == (old.id, new.id)
    assert [c.name for c in diff.added] == ["musl"]
    assert [c.name for c in diff.removed] == ["code-frame"]
    assert sorted(c.head.name for c in diff.changed) == ["bsdutils", "requests"]

    summary = gate.call(
        "gate.v1.SbomService/SummarizeLicenses",
        sbom_pb2.SummarizeLicensesRequest(sbom_id=new.id),
        sbom_pb2.SummarizeLicensesResponse,
    )
    assert isinstance(summary, sbom_pb2.SummarizeLicensesResponse)
    assert [(e.license, e.count) for e in summary.licenses] == [("GPL-2.0-or-later", 1), ("MIT", 1)]
    assert (summary.unknown_count, [c.name for c in summary.unknown]) == (1, ["requests"])

    with pytest.raises(grpc.RpcError) as caught:
        gate.call(
            "gate.v1.SbomService/DiffSboms",
            sbom_pb2.DiffSbomsRequest(
                base_id=old.id, head_artifact=common_pb2.ArtifactRef(digest="sha256:" + "3" * 64)
            ),
            sbom_pb2.DiffSbomsResponse,
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_the_cli_uploads_searches_diffs_and_reports_on_a_running_gate(
    gate: RunningGate, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    server = ["--server", gate.addresses.grpc]

    def run(*args: str) -> str:
        code = main([*server, *args])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        return captured.out

    assert "3 components of" in run("sbom", "upload", str(UPLOADS / "cyclonedx-1.4.json"), "--artifact", OLD)
    assert "(spdx-json 2.3)" in run(
        "sbom", "upload", str(UPLOADS / "spdx-2.3.json"), "--artifact", NEW, "--format", "spdx-json"
    )
    out = run("sbom", "search", "--purl", "pkg:pypi/requests", "--version-range", ">=2.31")
    assert "2.32.3" in out
    assert "2.30.0" not in out
    out = run("sbom", "diff", OLD, NEW)
    assert "1 added, 2 removed, 1 changed" in out
    assert "lodash" in out
    assert "Apache-2.0" in run("sbom", "licenses", NEW)
    report = tmp_path / "report.html"
    run("sbom", "report", NEW, "-o", "html", "--output", str(report))
    page = report.read_text()
    assert "lodash" in page
    assert "<svg" in page
    listing = json.loads(run("sbom", "list", "--artifact", NEW, "-o", "json"))
    spdx = json.loads(run("sbom", "get", listing["id"], "-o", "cyclonedx-json"))
    assert [c["name"] for c in spdx["components"]] == ["requests", "lodash"]
    code = main([*server, "sbom", "search", "--purl", "pkg:pypi/requests", "--version-range", ">>1"])
    assert code == 1
    assert "version_range: constraint '>>1' at character 1" in capsys.readouterr().err


def test_the_report_shows_the_vulnerabilities_of_the_latest_scan(
    gate: RunningGate, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    upload(gate, "spdx-2.3.json", NEW)
    imported = scan_pb2.ImportReportRequest(
        artifact=common_pb2.ArtifactRef(digest=NEW),
        scanner="trivy",
        report=(FIXTURES / "trivy_local" / "pip-vuln.json").read_bytes(),
    )
    gate.call("gate.v1.ScanService/ImportReport", imported, scan_pb2.Scan)
    code = main(["--server", gate.addresses.grpc, "sbom", "report", NEW, "-o", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert sorted(v["rule_id"] for v in report["vulnerabilities"]) == ["CVE-2019-14806", "CVE-2020-28724"]
    assert {v["package"] for v in report["vulnerabilities"]} == {"Werkzeug"}
    assert [c["name"] for c in report["components"]] == ["lodash", "requests"]
    assert report["unknown_licence_count"] == 0


def test_the_cli_reads_answers_larger_than_grpcs_default_4_mib(
    gate: RunningGate, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI's channel kept gRPC's 4 MiB receive limit: a large SBOM (or PolicyReport export)
    # uploaded within the server's 64 MiB was then unreadable from the CLI.
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    components = [
        {"type": "library", "name": f"package-{i}", "version": "1.0.0", "purl": f"pkg:npm/package-{i}@1.0.0",
         "description": "d" * 400}
        for i in range(12_000)
    ]  # fmt: skip
    document = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": components}
    path = tmp_path / "big.cdx.json"
    path.write_text(json.dumps(document))
    assert path.stat().st_size > 5 * 1024 * 1024
    server = ["--server", gate.addresses.grpc]
    artifact = "sha256:" + "5" * 64
    assert main([*server, "sbom", "upload", str(path), "--artifact", artifact]) == 0, capsys.readouterr().err
    capsys.readouterr()
    listing = json.loads(_run_ok(capsys, [*server, "sbom", "list", "--artifact", artifact, "-o", "json"]))
    fetched = json.loads(_run_ok(capsys, [*server, "sbom", "get", listing["id"], "-o", "cyclonedx-json"]))
    assert len(fetched["components"]) == 12_000


def _run_ok(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out
