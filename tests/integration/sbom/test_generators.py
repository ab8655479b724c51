"""The trivy and syft SBOM generators with the real binaries, against the native one on the same targets."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from gate.config import ScannerProvider
from gate.errors import Unsupported
from gate.model import ArtifactKind, SbomFormat, TargetKind
from gate.oci import OciLayout
from gate.sbom import Limits, Subject
from gate.sbom._generators import GeneratorRequest, SbomTarget, load_generator
from gate.sbom._image import open_docker_archive, open_oci_layout, parse_location
from gate.sbom._tool_generators import adopt
from scanners import InvalidReport, ScannerUnavailable
from tests.unit.sbom.conftest import ASSETS
from tests.unit.sbom.layers import docker_archive, image_config, tree_layer
from tests.unit.sbom.schema import rs_errors

SUBJECT = Subject("github.com/example/project", "git:" + "a" * 40, ArtifactKind.SOURCE)


def lock_files(tmp_path: Path) -> Path:
    target = tmp_path / "project"
    shutil.copytree(ASSETS / "poetry", target / "backend")
    shutil.copytree(ASSETS / "npm-v3", target / "frontend")
    return target


def run(name: str, target: SbomTarget, subject: Subject, tmp_path: Path) -> tuple[dict, set[str]]:
    generator = load_generator(name, {})
    workdir = tmp_path / f"work-{name}"
    workdir.mkdir(exist_ok=True)
    output = generator.generate(GeneratorRequest(target, subject, SbomFormat.CYCLONEDX_JSON, workdir))
    assert rs_errors(output.document) == []
    document = json.loads(output.document)
    assert document["specVersion"] == "1.6"
    assert document["metadata"]["component"]["bom-ref"] == subject.bom_ref
    assert len(output.components) == len(document.get("components", []))
    assert output.generator.startswith(("gate ", f"{name} "))
    assert not list(workdir.glob("*-sbom.json"))  # tool output is read and deleted
    return document, {c.purl.split("?")[0] for c in output.components if c.purl}


@pytest.mark.parametrize("name", ["trivy", "syft"])
def test_tools_find_the_lock_file_packages_native_finds(tmp_path: Path, name: str) -> None:
    target = SbomTarget(TargetKind.FILESYSTEM, path=lock_files(tmp_path))
    _, native = run("native", target, SUBJECT, tmp_path)
    document, tool = run(name, target, SUBJECT, tmp_path)
    assert document["metadata"]["component"]["version"] == "a" * 40
    # Trivy leaves out poetry's dev group; both list the runtime packages native lists.
    assert len(tool & native) >= 10
    assert tool - native == set(), f"{name} found what native did not: {sorted(tool - native)}"


def debian_rootfs(tmp_path: Path) -> Path:
    """The Debian asset with ``etc/debian_version``, which Trivy needs to recognise the OS."""
    root = tmp_path / "rootfs"
    shutil.copytree(ASSETS / "rootfs-debian", root)
    (root / "etc" / "debian_version").write_text("12.15\n")
    return root


@pytest.mark.parametrize("name", ["trivy", "syft"])
def test_tools_read_a_debian_root_filesystem(tmp_path: Path, name: str) -> None:
    target = SbomTarget(TargetKind.ROOTFS, path=debian_rootfs(tmp_path))
    _, native = run("native", target, SUBJECT, tmp_path)
    _, tool = run(name, target, SUBJECT, tmp_path)
    debs = {p.split("@")[0] for p in tool if p.startswith("pkg:deb/")}
    native_debs = {p.split("@")[0] for p in native if p.startswith("pkg:deb/")}
    # syft also lists nano, whose status is "deinstall ok config-files": only its configuration is left.
    assert debs - native_debs == ({"pkg:deb/debian/nano"} if name == "syft" else set())
    assert len(debs & native_debs) == len(native_debs) == 12


@pytest.mark.parametrize("name", ["trivy", "syft"])
@pytest.mark.parametrize("kind", ["oci", "docker-archive"])
def test_tools_read_local_images_and_the_subject_is_the_image_digest(
    tmp_path: Path, name: str, kind: str
) -> None:
    base = tree_layer(debian_rootfs(tmp_path))
    if kind == "oci":
        layout = OciLayout.create(tmp_path / "layout")
        layout.write_image(image_config([base]), [gzip.compress(base)], tag="1.0")
        location = parse_location(f"oci:{tmp_path / 'layout'}")
        image = open_oci_layout(tmp_path / "layout", "", platform="linux/amd64", limits=Limits())
        target = SbomTarget(TargetKind.IMAGE, path=tmp_path / "layout", image=location, content=image)
        document, tool = run(name, target, image.subject, tmp_path)
    else:
        archive = tmp_path / "app.tar"
        docker_archive(archive, [base], ["registry.example/app:1.0"])
        location = parse_location(f"docker-archive:{archive}")
        with open_docker_archive(archive, limits=Limits()) as image:
            target = SbomTarget(TargetKind.IMAGE, path=archive, image=location, content=image)
            document, tool = run(name, target, image.subject, tmp_path)
    component = document["metadata"]["component"]
    assert (component["type"], component["version"]) == ("container", image.digest)
    assert any(p.startswith("pkg:deb/debian/bash@") for p in tool)


def test_trivy_cyclonedx_1_7_is_stored_as_1_6() -> None:
    raw = json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.7",
            "version": 1,
            "metadata": {"component": {"type": "application", "name": "vm", "bom-ref": "root"}},
            "components": [
                {
                    "type": "library",
                    "name": "x",
                    "version": "1",
                    "bom-ref": "x",
                    "purl": "pkg:pypi/x@1",
                    "isExternal": False,
                }
            ],
            "dependencies": [{"ref": "root", "dependsOn": ["x"]}, {"ref": "x"}],
            "citations": [],
        }
    ).encode()
    document = json.loads(adopt(raw, SUBJECT, TargetKind.FILESYSTEM, "trivy 0.76.0", tool="trivy"))
    assert rs_errors(json.dumps(document).encode()) == []
    assert document["specVersion"] == "1.6"
    assert "citations" not in document
    assert "isExternal" not in document["components"][0]
    assert document["dependencies"][0] == {"ref": SUBJECT.bom_ref, "dependsOn": ["x"]}
    properties = {p["name"]: p["value"] for p in document["metadata"]["component"]["properties"]}
    assert properties["gate:generator"] == "trivy 0.76.0"


def test_a_tool_document_invalid_against_its_schema_is_refused() -> None:
    raw = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": 3}]}).encode()
    with pytest.raises(InvalidReport, match=r"invalid against the 1.6 schema at /components/0"):
        adopt(raw, SUBJECT, TargetKind.FILESYSTEM, "syft 1.18.1", tool="syft")


def test_tool_generators_write_json_only(tmp_path: Path) -> None:
    generator = load_generator("syft", {})
    request = GeneratorRequest(
        SbomTarget(TargetKind.FILESYSTEM, path=tmp_path), SUBJECT, SbomFormat.CYCLONEDX_XML, tmp_path
    )
    with pytest.raises(Unsupported, match="cyclonedx-xml output from the syft generator"):
        generator.generate(request)


def test_a_missing_tool_binary_names_its_configuration_key(tmp_path: Path) -> None:
    generator = load_generator("trivy", {"trivy": ScannerProvider(binary=str(tmp_path / "no-trivy"))})
    with pytest.raises(ScannerUnavailable, match=r"configuration key sbom.generators.trivy.binary"):
        generator.version()


def test_unknown_and_disabled_generators_are_refused() -> None:
    with pytest.raises(Unsupported, match=r"'cdxgen' SBOM generator.*known generators: native, syft, trivy"):
        load_generator("cdxgen", {})
    with pytest.raises(Unsupported, match=r"disabled by sbom\.generators\.syft\.enabled"):
        load_generator("syft", {"syft": ScannerProvider(enabled=False)})
