"""GenerateSbom of images on a running gate (docker-archive, OCI layout, a real registry) and the CLI."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from gate.cli import main
from gate.config import RegistrySettings
from gate.oci import OciLayout, encode_manifest, media
from gate.v1 import common_pb2, sbom_pb2, scan_pb2
from tests.conftest import RunningGate, loopback_config
from tests.registry_support import RegistryServer
from tests.unit.sbom.conftest import ASSETS
from tests.unit.sbom.layers import docker_archive, file, image_config, tar, tree_layer
from tests.unit.sbom.schema import rs_errors


def generate(gate: RunningGate, request: sbom_pb2.GenerateSbomRequest) -> list[sbom_pb2.GenerateSbomEvent]:
    stub = gate.channel.unary_stream(
        "/gate.v1.SbomService/GenerateSbom",
        request_serializer=sbom_pb2.GenerateSbomRequest.SerializeToString,
        response_deserializer=sbom_pb2.GenerateSbomEvent.FromString,
    )
    return list(stub(request, timeout=120))


def stored_document(gate: RunningGate, sbom_id: str) -> dict:
    got = gate.call(
        "gate.v1.SbomService/GetSbom",
        sbom_pb2.GetSbomRequest(id=sbom_id, include_document=True),
        sbom_pb2.Sbom,
    )
    assert isinstance(got, sbom_pb2.Sbom)
    assert rs_errors(got.document) == []
    document: dict = json.loads(got.document)
    return document


def debian_layers(tmp_path: Path) -> list[bytes]:
    root = tmp_path / "rootfs"
    shutil.copytree(ASSETS / "rootfs-debian", root)
    (root / "etc" / "debian_version").write_text("12.15\n")
    app = tar(
        file("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", "Name: six\nVersion: 1.16.0\n")
    )
    return [tree_layer(root), app]


def image_request(location: str, **fields: object) -> sbom_pb2.GenerateSbomRequest:
    return sbom_pb2.GenerateSbomRequest(target_kind=scan_pb2.TARGET_KIND_IMAGE, location=location, **fields)


def purls(document: dict) -> set[str]:
    return {c["purl"].split("?")[0] for c in document.get("components", []) if "purl" in c}


def test_docker_archive_sbom_is_stored_under_the_image_digest_with_progress(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    archive = tmp_path / "app.tar"
    digest = docker_archive(archive, debian_layers(tmp_path), ["registry.example/team/app:1.0"], oci=True)
    gate = serve_gate(loopback_config(tmp_path / "gate"))
    events = generate(gate, image_request(f"docker-archive:{archive}"))
    messages = [e.progress.message for e in events]
    # Events are coalesced to one per 100 ms: the first layer's always shows, later ones when slow.
    assert any(m.startswith("unpacking layer 1 (") for m in messages), messages
    assert events[-1].progress.fraction == 1.0
    stored = events[-1].sbom
    assert stored.artifact_digest == digest
    assert stored.generator.startswith("gate ")
    document = stored_document(gate, stored.id)
    component = document["metadata"]["component"]
    assert (component["type"], component["name"], component["version"]) == (
        "container",
        "registry.example/team/app",
        digest,
    )
    found = purls(document)
    assert "pkg:pypi/six@1.16.0" in found
    assert any(p.startswith("pkg:deb/debian/bash@5.2.15") for p in found), sorted(found)


def test_an_artifact_that_is_not_the_image_is_refused(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    layout = OciLayout.create(tmp_path / "layout")
    layers = debian_layers(tmp_path)
    manifest = layout.write_image(image_config(layers), [gzip.compress(x) for x in layers], tag="1.0")
    gate = serve_gate(loopback_config(tmp_path / "gate"))
    other = "sha256:" + "e" * 64
    request = image_request(f"oci:{tmp_path / 'layout'}:1.0", artifact=common_pb2.ArtifactRef(digest=other))
    with pytest.raises(grpc.RpcError) as caught:
        generate(gate, request)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"is {manifest.digest}, not {other}" in caught.value.details()


def test_a_hostile_image_is_refused_naming_the_layer_and_member(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    archive = tmp_path / "evil.tar"
    docker_archive(
        archive, [tar(file("etc/os-release", "ID=debian\n"), file("/etc/cron.d/evil", "x"))], ["e:1"]
    )
    gate = serve_gate(loopback_config(tmp_path / "gate"))
    with pytest.raises(grpc.RpcError) as caught:
        generate(gate, image_request(f"docker-archive:{archive}"))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "member '/etc/cron.d/evil': absolute path" in caught.value.details()
    assert not Path("/etc/cron.d/evil").exists()


def push_image(registry: RegistryServer, layers: list[bytes], repository: str, tag: str) -> str:
    ref = registry.ref(repository, tag)
    with registry.client() as client:
        config = client.push_blob(ref, image_config(layers), media.OCI_CONFIG)
        blobs = [client.push_blob(ref, gzip.compress(x), media.OCI_LAYER_TAR_GZIP) for x in layers]
        return client.push_manifest(ref, encode_manifest(config, blobs), media.OCI_MANIFEST)


@pytest.mark.parametrize("generator", ["native", "trivy", "syft"])
def test_registry_image_sbom_with_each_generator(
    tmp_path: Path,
    serve_gate: Callable[..., RunningGate],
    plain_registry: RegistryServer,
    generator: str,
) -> None:
    digest = push_image(plain_registry, debian_layers(tmp_path), f"sbom/{generator}", "1.0")
    config = loopback_config(tmp_path / "gate")
    config = config.model_copy(update={"registry": RegistrySettings(insecure=(plain_registry.host,))})
    gate = serve_gate(config)
    location = f"{plain_registry.host}/sbom/{generator}:1.0"
    events = generate(gate, image_request(location, generator=generator))
    stored = events[-1].sbom
    assert stored.artifact_digest == digest
    assert stored.generator.split()[0] == ("gate" if generator == "native" else generator)
    document = stored_document(gate, stored.id)
    assert document["metadata"]["component"]["version"] == digest
    found = purls(document)
    assert any(p.startswith("pkg:deb/debian/bash@") for p in found), sorted(found)
    assert any(p.startswith("pkg:pypi/six@1.16.0") for p in found), sorted(found)


def test_cli_generates_the_sbom_of_an_oci_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = OciLayout.create(tmp_path / "layout")
    layers = debian_layers(tmp_path)
    manifest = layout.write_image(image_config(layers), [gzip.compress(x) for x in layers], tag="1.0")
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    output = tmp_path / "sbom.json"
    code = main(["sbom", "generate", f"oci:{tmp_path / 'layout'}", "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert rs_errors(output.read_bytes()) == []
    assert f"of {manifest.digest} (cyclonedx-json) written to {output}" in err
    assert json.loads(output.read_bytes())["metadata"]["component"]["name"] == "layout"


@pytest.mark.parametrize(("generator", "fmt"), [("native", "spdx-json"), ("syft", "cyclonedx-xml")])
def test_cli_writes_formats_the_generator_does_not_by_converting_the_stored_document(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    generator: str,
    fmt: str,
) -> None:
    archive = tmp_path / "app.tar"
    digest = docker_archive(archive, debian_layers(tmp_path), ["registry.example/team/app:1.0"], oci=True)
    for name in ("GATE_CONFIG", "GATE_SERVER", "GATE_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    output = tmp_path / "sbom.out"
    args = ["sbom", "generate", f"docker-archive:{archive}", "--generator", generator, "-o", fmt]
    code = main([*args, "--output", str(output)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"of {digest} ({fmt}) written to {output}" in err
    written = output.read_bytes()
    if fmt == "spdx-json":
        document = json.loads(written)
        assert document["spdxVersion"] == "SPDX-2.3"
        assert any(p["name"] == "bash" for p in document["packages"])
    else:
        assert written.startswith(b"<?xml")
        assert b"http://cyclonedx.org/schema/bom/1.6" in written
        assert b"<name>bash</name>" in written
