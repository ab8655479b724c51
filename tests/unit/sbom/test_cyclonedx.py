"""CycloneDX 1.6 output: schema-valid, reproducible, equal to the library's rendering."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import OutputFormat

from gate.model import ArtifactKind
from gate.sbom import GeneratedSbom, Subject, _bom, generate

from .conftest import ASSETS, FIXED_TIME
from .schema import library_errors, rs_errors

# Every generation input; ``uploads`` holds SBOM documents made elsewhere (the ingest tests' data).
ALL_ASSETS = sorted(p.name for p in ASSETS.iterdir() if p.is_dir() and p.name != "uploads")


def normalised(document: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(document)
    data["components"].sort(key=lambda c: c["bom-ref"])
    data["dependencies"].sort(key=lambda d: d["ref"])
    for entry in data["dependencies"]:
        entry.get("dependsOn", []).sort()
    return data


@pytest.mark.parametrize("asset", ALL_ASSETS)
def test_json_and_xml_validate_against_the_1_6_schema(
    generate_asset: Callable[[str], GeneratedSbom], asset: str
) -> None:
    sbom = generate_asset(asset)
    assert sbom.components
    as_json = sbom.to_cyclonedx_json()
    assert library_errors(as_json, OutputFormat.JSON) == ""
    assert rs_errors(as_json) == []
    assert library_errors(sbom.to_cyclonedx_xml(), OutputFormat.XML) == ""


@pytest.mark.parametrize("asset", ALL_ASSETS)
def test_fast_json_writer_matches_the_library_output(
    generate_asset: Callable[[str], GeneratedSbom], asset: str
) -> None:
    sbom = generate_asset(asset)
    assert normalised(sbom.to_cyclonedx_json()) == normalised(_bom.to_json(sbom))


@pytest.mark.parametrize("asset", ["npm-v3", "rootfs-debian"])
def test_fast_xml_writer_matches_the_library_output(
    generate_asset: Callable[[str], GeneratedSbom], asset: str
) -> None:
    sbom = generate_asset(asset)

    def canonical(document: bytes) -> str:
        root = ET.fromstring(document)
        namespace = "{http://cyclonedx.org/schema/bom/1.6}"
        for parent in (root.find(f"{namespace}components"), root.find(f"{namespace}dependencies")):
            assert parent is not None
            parent[:] = sorted(parent, key=lambda e: e.get("bom-ref") or e.get("ref") or "")
        return ET.canonicalize(ET.tostring(root), strip_text=True)

    assert canonical(sbom.to_cyclonedx_xml()) == canonical(_bom.to_xml(sbom))


def test_output_is_byte_identical_for_the_same_input_and_timestamp(subject: Subject) -> None:
    first = generate(ASSETS / "npm-v3", subject=subject, timestamp=FIXED_TIME)
    second = generate(ASSETS / "npm-v3", subject=subject, timestamp=FIXED_TIME)
    assert first.to_cyclonedx_json() == second.to_cyclonedx_json()
    assert first.to_cyclonedx_xml() == second.to_cyclonedx_xml()
    assert _bom.to_json(first) == _bom.to_json(second)


def test_serial_number_depends_on_subject_and_content_not_on_time(subject: Subject, tmp_path: Path) -> None:
    now = generate(ASSETS / "poetry", subject=subject)
    earlier = generate(ASSETS / "poetry", subject=subject, timestamp=datetime(2020, 1, 1, tzinfo=UTC))
    assert now.serial_number == earlier.serial_number
    other_subject = Subject("registry.example/team/app", "sha256:" + "6" * 64)
    assert generate(ASSETS / "poetry", subject=other_subject).serial_number != now.serial_number
    (tmp_path / "poetry.lock").write_text(
        (ASSETS / "poetry" / "poetry.lock").read_text().replace("3.10", "3.11")
    )
    assert generate(tmp_path, subject=subject).serial_number != now.serial_number
    assert now.serial_number.version == 5


def test_every_bom_ref_is_derived_from_purl_and_path(generate_asset: Callable[[str], GeneratedSbom]) -> None:
    document = json.loads(generate_asset("uv").to_cyclonedx_json())
    for component in document["components"]:
        assert component["bom-ref"] == f"{component['purl']}#uv.lock"
    refs = {c["bom-ref"] for c in document["components"]} | {document["metadata"]["component"]["bom-ref"]}
    assert {d["ref"] for d in document["dependencies"]} == refs


def test_metadata_names_gate_and_the_image(generate_asset: Callable[[str], GeneratedSbom]) -> None:
    metadata = json.loads(generate_asset("rootfs-alpine").to_cyclonedx_json())["metadata"]
    assert metadata["timestamp"] == "2026-01-02T03:04:05+00:00"
    assert [t["name"] for t in metadata["tools"]["components"]] == ["gate", "cyclonedx-python-lib"]
    image = metadata["component"]
    assert image["type"] == "container"
    assert image["version"] == "sha256:" + "5" * 64
    assert image["purl"] == (
        "pkg:oci/app@sha256:" + "5" * 64 + "?repository_url=registry.example/team/app&tag=1.4.2"
    )
    assert image["hashes"] == [{"alg": "SHA-256", "content": "5" * 64}]
    assert {"name": "gate:target-kind", "value": "rootfs"} in image["properties"]


def test_source_subject_is_an_application_at_its_commit(tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    (tmp_path / "requirements.txt").write_text("click==8.1.7\n")
    subject = Subject("github.com/example/service", f"git:{commit}", kind=ArtifactKind.SOURCE)
    document = json.loads(generate(tmp_path, subject=subject).to_cyclonedx_json())
    root = document["metadata"]["component"]
    assert (root["type"], root["version"]) == ("application", commit)
    assert root["purl"] == f"pkg:github/example/service@{commit}"
    assert rs_errors(json.dumps(document).encode()) == []


def test_licences_render_as_one_expression_or_a_list_of_ids_and_names(
    generate_asset: Callable[[str], GeneratedSbom],
) -> None:
    alpine = json.loads(generate_asset("rootfs-alpine").to_cyclonedx_json())
    licences = {c["name"]: c.get("licenses") for c in alpine["components"]}
    assert licences["ca-certificates-bundle"] == [{"expression": "MPL-2.0 AND MIT"}]
    assert licences["musl"] == [{"license": {"id": "MIT"}}]
    debian = json.loads(generate_asset("rootfs-debian").to_cyclonedx_json())
    bash = next(c for c in debian["components"] if c["name"] == "bash")
    assert bash["licenses"] == [
        {"license": {"id": "GPL-3.0-or-later"}},
        {"license": {"name": "GFDL-NIV-1.3"}},
        {"license": {"name": "GPL-3+ with Bison exception"}},
    ]


def test_subject_depends_on_every_top_level_component_and_cycles_are_reachable(
    tmp_path: Path, subject: Subject
) -> None:
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    # a <-> b form a cycle that nothing else points at; c is top level.
    (tmp_path / "var/lib/dpkg/status").write_text(
        "Package: a\nVersion: 1\nDepends: b\n\nPackage: b\nVersion: 1\nDepends: a\n\nPackage: c\nVersion: 1\n"
    )
    sbom = generate(tmp_path, subject=subject)
    refs = {c.component.name: c.ref for c in sbom.components}
    top = sbom.dependencies[sbom.subject.bom_ref]
    assert refs["c"] in top
    assert len({refs["a"], refs["b"]} & set(top)) == 1
    assert library_errors(sbom.to_cyclonedx_json(), OutputFormat.JSON) == ""


def test_large_inventory_writes_and_validates_quickly(tmp_path: Path, subject: Subject) -> None:
    packages: dict[str, Any] = {"": {"name": "big", "version": "1.0.0", "dependencies": {"pkg-0": "*"}}}
    for index in range(5000):
        deps = {f"pkg-{(index * 7 + step) % 5000}": "*" for step in (1, 2, 3)}
        packages[f"node_modules/pkg-{index}"] = {
            "version": f"1.{index}.0",
            "license": "MIT",
            "dependencies": deps,
        }
    (tmp_path / "package-lock.json").write_text(json.dumps({"lockfileVersion": 3, "packages": packages}))
    sbom = generate(tmp_path, subject=subject)
    assert len(sbom.components) == 5001
    document = sbom.to_cyclonedx_json()
    assert rs_errors(document) == []
    assert len(json.loads(document)["dependencies"]) == 5002
    assert library_errors(sbom.to_cyclonedx_xml(), OutputFormat.XML) == ""


def test_library_model_has_the_same_components_and_graph(
    generate_asset: Callable[[str], GeneratedSbom],
) -> None:
    sbom = generate_asset("npm-v3")
    bom = sbom.to_bom()
    assert {c.bom_ref.value for c in bom.components} == {c.ref for c in sbom.components}
    edges = {d.ref.value: {x.ref.value for x in d.dependencies} for d in bom.dependencies}
    assert edges == {ref: set(deps) for ref, deps in sbom.dependencies.items()}


def test_control_characters_in_metadata_and_paths_still_give_valid_documents(
    tmp_path: Path, subject: Subject
) -> None:
    folder = tmp_path / "odd\x01dir"
    folder.mkdir()
    (folder / "requirements.txt").write_text("click==8.1.7\n")
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text("Package: tool\nVersion: 1.0\nSource: to\x02ol\n")
    # A directory name that is not UTF-8: Python hands it over with surrogates.
    latin1 = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(latin1)
    Path(os.fsdecode(latin1), "requirements.txt").write_text("rich==13.9.4\n")
    sbom = generate(tmp_path, subject=subject)
    assert len(sbom.components) == 3
    assert "caf\ufffd/requirements.txt" in {c.path for c in sbom.components}
    assert library_errors(sbom.to_cyclonedx_xml(), OutputFormat.XML) == ""
    assert rs_errors(sbom.to_cyclonedx_json()) == []
    assert json.loads(sbom.to_cyclonedx_json())["components"]
