"""Trivy and syft documents lose an entry gate cannot store, not the whole SBOM.

The tools copy package metadata into their documents as they find it: a NUL or a control
character in one package's name used to make gate refuse the whole generated document, where
the native generator skips that entry with a warning. Each test takes a real document the tool
wrote (tests/assets/sbom-generation/tool-output), plants the bad text in one entry, and reads it
through ``read_output``, the function the trivy and syft generators read their output with.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from gate.errors import InvalidArgument
from gate.model import SbomFormat, TargetKind
from gate.sbom import SbomWarning, Subject
from gate.sbom._ingest import parse
from gate.sbom._tool_generators import ToolDocument, read_output
from scanners import InvalidReport
from tests.unit.sbom.schema import rs_errors

TOOL_OUTPUT = Path(__file__).resolve().parents[2] / "assets/sbom-generation/tool-output"
RECORDED = {
    "trivy": TOOL_OUTPUT / "trivy-0.76.0-rootfs-debian.cdx.json",
    "syft": TOOL_OUTPUT / "syft-1.18.1-rootfs-debian.cdx.json",
}
SUBJECT = Subject("registry.example/team/app", "sha256:" + "5" * 64, version="1.4.2")
NUL = "got a NUL character (\\u0000), expected text without NUL"


def recorded(tool: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RECORDED[tool].read_text())
    return data


def cut(text: str) -> str:
    """How a warning shows a name or a bom-ref: escaped, and cut after 80 characters."""
    return repr(text[:80]) + (f"... ({len(text)} characters)" if len(text) > 80 else "")


def find(document: dict[str, Any], name: str) -> tuple[int, dict[str, Any]]:
    return next((i, c) for i, c in enumerate(document["components"]) if c["name"] == name)


def read(document: dict[str, Any], tool: str) -> ToolDocument:
    # json.dumps escapes a NUL as \u0000 and a lone surrogate as \udXXX, as the tools (Go) do.
    raw = json.dumps(document).encode()
    return read_output(raw, SUBJECT, TargetKind.ROOTFS, f"{tool} 1.0", tool=tool)


def stored(result: ToolDocument) -> dict[str, Any]:
    """The stored document, checked to be one an upload (the strict parser) would accept."""
    assert rs_errors(result.document) == []
    parse(result.document, SbomFormat.CYCLONEDX_JSON)
    data: dict[str, Any] = json.loads(result.document)
    return data


def every_ref(document: dict[str, Any]) -> set[str]:
    refs: set[str] = set()
    for entry in document.get("dependencies", []):
        refs.add(entry["ref"])
        refs.update(entry.get("dependsOn", []))
    return refs


@pytest.mark.parametrize("tool", ["trivy", "syft"])
def test_a_component_with_a_nul_in_its_name_is_skipped_and_the_rest_stored(tool: str) -> None:
    document = recorded(tool)
    names = {c["name"] for c in document["components"]}
    index, bash = find(document, "bash")
    bash["name"] = "ba\0sh"
    result = read(document, tool)
    assert {c.name for c in result.components} == names - {"bash"}
    assert result.warnings == (
        SbomWarning(
            f"components/{index}",
            f"{tool} component 'ba\\x00sh' (bom-ref {cut(bash['bom-ref'])}) skipped: name: {NUL}",
        ),
    )
    document_stored = stored(result)
    assert bash["bom-ref"] not in every_ref(document_stored)
    assert len(document_stored["components"]) == len(names) - 1


@pytest.mark.parametrize("tool", ["trivy", "syft"])
def test_an_upload_of_the_same_document_is_still_refused_whole(tool: str) -> None:
    document = recorded(tool)
    index, bash = find(document, "bash")
    bash["name"] = "ba\0sh"
    with pytest.raises(InvalidArgument) as refused:
        parse(json.dumps(document).encode())
    assert (refused.value.field, refused.value.problem) == (f"document/components/{index}/name", NUL)


def test_a_control_character_in_a_version_skips_the_component_and_every_reference_to_it() -> None:
    document = recorded("syft")
    _, libc = find(document, "libc6")
    libc["version"] = "2.36\x1b[31m"
    dependents = [d["ref"] for d in document["dependencies"] if libc["bom-ref"] in d.get("dependsOn", [])]
    assert len(dependents) >= 3  # bash, bsdutils, dash ... depend on it in the recording
    result = read(document, "syft")
    (warning,) = result.warnings
    assert warning.message.endswith(
        "skipped: version: got a control character (\\u001b), "
        "expected an identifier without control characters"
    )
    document_stored = stored(result)
    assert libc["bom-ref"] not in every_ref(document_stored)
    # Its dependents keep their entries and their other targets.
    kept = {d["ref"]: d.get("dependsOn", []) for d in document_stored["dependencies"]}
    assert set(dependents) <= set(kept)
    assert all(kept[ref] for ref in dependents if ref.startswith("pkg:deb/debian/bash@"))


def test_a_percent_encoded_nul_in_a_purl_skips_the_component() -> None:
    document = recorded("trivy")
    _, zlib = find(document, "zlib1g")
    zlib["purl"] = zlib["purl"].replace("zlib1g", "zlib%001g")
    result = read(document, "trivy")
    assert "zlib1g" not in {c.name for c in result.components}
    (warning,) = result.warnings
    assert warning.message.endswith(
        "skipped: purl: got a percent-encoded control character (%00), "
        "expected a package URL without control characters"
    )
    stored(result)


def test_a_nul_in_a_property_value_is_replaced_and_the_component_kept() -> None:
    # As native generation keeps a component whose dpkg Source field (a property) holds a NUL:
    # only identifiers cost the entry.
    document = recorded("syft")
    index, bash = find(document, "bash")
    position = next(i for i, p in enumerate(bash["properties"]) if p["name"] == "syft:metadata:source")
    bash["properties"][position]["value"] = "ba\0sh"
    result = read(document, "syft")
    assert "bash" in {c.name for c in result.components}
    assert result.warnings == (
        SbomWarning(
            f"components/{index}",
            f"syft component 'bash' (bom-ref {cut(bash['bom-ref'])}): NUL characters replaced with U+FFFD "
            f"in properties/{position}/value",
        ),
    )
    _, kept = find(stored(result), "bash")
    assert {"name": "syft:metadata:source", "value": "ba\ufffdsh"} in kept["properties"]


def test_a_nul_in_a_url_skips_the_component_as_the_replaced_url_is_not_valid() -> None:
    document = recorded("syft")
    index, debian = find(document, "debian")
    debian["externalReferences"][1]["url"] = "https://www.debian.org/\0"
    result = read(document, "syft")
    assert "debian" not in {c.name for c in result.components}
    assert result.warnings == (
        SbomWarning(
            f"components/{index}",
            f"syft component 'debian' (bom-ref {cut(debian['bom-ref'])}) skipped: externalReferences/1/url: "
            "NUL characters replaced with U+FFFD, but then not valid CycloneDX 1.6",
        ),
    )
    stored(result)


def test_a_lone_surrogate_in_a_name_becomes_a_replacement_character_instead_of_a_crash() -> None:
    # The schema validator cannot even encode a lone surrogate: this document used to end in a
    # UnicodeEncodeError. Native reading decodes invalid bytes to U+FFFD; so does this.
    document = recorded("trivy")
    index, bash = find(document, "bash")
    bash["name"] = "ba\ud800sh"
    result = read(document, "trivy")
    assert "ba\ufffdsh" in {c.name for c in result.components}
    assert result.warnings == (
        SbomWarning(
            f"components/{index}",
            f"trivy component 'ba\\ud800sh' (bom-ref {cut(bash['bom-ref'])}): "
            "lone UTF-16 surrogates replaced with U+FFFD in name",
        ),
    )
    stored(result)


@pytest.mark.parametrize(
    ("plant", "problem"),
    [
        (lambda bash: bash.update(name="ba\0sh", description="\udc80"), f"name: {NUL}"),
        (lambda bash: bash.update({"x-\ud800": "y"}), "'x-\\ud800': a key holding lone UTF-16 surrogates"),
        (lambda bash: bash.update({"x-\0": "y"}), "'x-\\x00': a key holding NUL characters"),
    ],
    ids=["nul-in-name-and-surrogate-elsewhere", "surrogate-in-a-key", "nul-in-a-key"],
)
def test_a_component_left_out_may_hold_anything_without_breaking_the_schema_check(
    plant: Any, problem: str
) -> None:
    document = recorded("syft")
    index, bash = find(document, "bash")
    plant(bash)
    result = read(document, "syft")
    assert "bash" not in {c.name for c in result.components}
    (warning,) = result.warnings
    assert warning.path == f"components/{index}"
    assert warning.message.endswith(f"skipped: {problem}")
    stored(result)


def test_components_nested_in_a_skipped_component_take_its_place() -> None:
    document = recorded("trivy")
    _, zlib = find(document, "zlib1g")
    document["components"].remove(zlib)
    _, bash = find(document, "bash")
    bash["components"] = [zlib]
    bash["version"] = "5.2\0"
    result = read(document, "trivy")
    names = {c.name for c in result.components}
    assert "zlib1g" in names
    assert "bash" not in names
    assert "zlib1g" in {c["name"] for c in stored(result)["components"]}


def test_a_dependency_target_holding_a_nul_is_dropped_and_its_entry_kept() -> None:
    document = recorded("trivy")
    entry = next(d for d in document["dependencies"] if len(d.get("dependsOn", [])) > 2)
    targets = list(entry["dependsOn"])
    entry["dependsOn"].append("pkg:deb/debian/ghost@1\0")
    result = read(document, "trivy")
    (warning,) = result.warnings
    assert warning.message == (
        f"trivy target 'pkg:deb/debian/ghost@1\\x00' of the dependency entry {entry['ref']!r} skipped: {NUL}"
    )
    kept = {d["ref"]: d.get("dependsOn", []) for d in stored(result)["dependencies"]}
    assert kept[entry["ref"]] == targets


def test_a_service_with_a_nul_in_its_name_is_skipped_and_one_in_its_description_kept() -> None:
    document = recorded("syft")
    document["services"] = [
        {"bom-ref": "service-1", "name": "api\0"},
        {"bom-ref": "service-2", "name": "web", "description": "front\0end"},
    ]
    result = read(document, "syft")
    assert [w.message for w in result.warnings] == [
        f"syft service 'api\\x00' (bom-ref 'service-1') skipped: name: {NUL}",
        "syft service 'web' (bom-ref 'service-2'): NUL characters replaced with U+FFFD in description",
    ]
    assert stored(result)["services"] == [
        {"bom-ref": "service-2", "name": "web", "description": "front\ufffdend"}
    ]


def test_nul_elsewhere_in_the_document_is_replaced_and_a_bad_tool_entry_skipped() -> None:
    document = recorded("trivy")
    tool = document["metadata"]["tools"]["components"][0]
    tool["manufacturer"]["name"] = "Aqua\0"
    document["metadata"]["tools"]["components"].append(
        {"type": "application", "name": "helper", "version": "1\n"}
    )
    result = read(document, "trivy")
    assert [w.message for w in result.warnings] == [
        "trivy tool entry 'helper' skipped: version: got a control character (\\u000a), "
        "expected an identifier without control characters",
        "trivy document: NUL characters replaced with U+FFFD in tools/components/0/manufacturer/name",
    ]
    assert len(result.components) == len(document["components"])
    stored(result)


def test_the_warning_shows_a_long_name_escaped_and_cut_short() -> None:
    document = recorded("syft")
    _, bash = find(document, "bash")
    bash["name"] = "\x1b[2J" + "x" * 10_000 + "\0"
    bash["bom-ref"] = "y" * 10_000
    (warning,) = read(document, "syft").warnings
    name, ref = "\x1b[2J" + "x" * 76, "y" * 80
    assert warning.message.startswith(
        f"syft component {name!r}... (10005 characters) "
        f"(bom-ref {ref!r}... (10000 characters)) skipped: name: "
    )
    assert len(warning.message) < 400
    assert "\x1b" not in warning.message


def test_skipped_entries_are_logged_once_per_document(caplog: pytest.LogCaptureFixture) -> None:
    document = recorded("syft")
    for name in ("bash", "dash", "libc6"):
        find(document, name)[1]["version"] += "\0"
    with caplog.at_level(logging.WARNING, logger="gate.sbom"):
        result = read(document, "syft")
    assert len(result.warnings) == 3
    (record,) = [r for r in caplog.records if r.name == "gate.sbom"]
    assert "by syft: 3 entries skipped for holding a NUL or a control character" in record.getMessage()
    assert "\0" not in record.getMessage()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.update(bomFormat="SPDX"), r"expected CycloneDX 1.4, 1.5, 1.6, 1.7, got '1.7'"),
        (lambda d: d["components"].append({"name": 3}), r"invalid against the 1.7 schema at /components/13"),
        (lambda d: d.update(components={"bash": "ba\0sh"}), r"invalid against the 1.7 schema at /components"),
    ],
    ids=["not-cyclonedx", "a-component-of-the-wrong-shape", "components-not-a-list"],
)
def test_a_structurally_wrong_document_still_fails_whole(change: Any, problem: str) -> None:
    document = recorded("trivy")
    find(document, "bash")[1]["name"] = "ba\0sh"  # what alone would cost one component
    change(document)
    with pytest.raises(InvalidReport, match=problem):
        read(copy.deepcopy(document), "trivy")
