"""Reading uploaded SBOMs, converting stored ones, diffs, licence summaries and the auditor report."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cyclonedx.schema import OutputFormat, SchemaVersion
from cyclonedx.validation import make_schemabased_validator

from gate.errors import InvalidArgument
from gate.model import Component, Sbom, SbomFormat
from gate.sbom import GeneratedSbom
from gate.sbom._diff import diff
from gate.sbom._export import convert
from gate.sbom._ingest import detect_format, parse
from gate.sbom._licence_summary import summarize
from gate.sbom._report import ReportData, Vulnerability, to_csv, to_html, to_json
from tests.unit.sbom.schema import rs_errors

UPLOADS = Path(__file__).resolve().parents[2] / "assets" / "sbom" / "uploads"
RECORD = Sbom(
    id="6f0b6c1e-6a57-4f3c-9d7b-1f1e2d3c4b5a",
    artifact_digest="sha256:" + "5" * 64,
    format=SbomFormat.CYCLONEDX_JSON,
    spec_version="1.6",
    generator="test",
    created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    component_count=0,
    document_digest="sha256:" + "0" * 64,
)


def upload(name: str) -> bytes:
    return (UPLOADS / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "fmt", "version", "generator"),
    [
        ("cyclonedx-1.4.json", SbomFormat.CYCLONEDX_JSON, "1.4", "old-scanner 0.9"),
        ("cyclonedx-1.5.xml", SbomFormat.CYCLONEDX_XML, "1.5", "syft 1.18.1"),
        ("cyclonedx-1.7.json", SbomFormat.CYCLONEDX_JSON, "1.7", "trivy 0.76.0"),
        ("spdx-2.3.json", SbomFormat.SPDX_JSON, "2.3", "github.com/example/exporter-2.1"),
    ],
)
def test_each_accepted_format_is_detected_and_read(
    name: str, fmt: SbomFormat, version: str, generator: str
) -> None:
    document = upload(name)
    assert detect_format(document) is fmt
    parsed = parse(document)
    assert (parsed.format, parsed.spec_version, parsed.generator) == (fmt, version, generator)
    assert parsed.components


def test_nested_components_are_flattened_and_the_subject_is_left_out() -> None:
    parsed = parse(upload("cyclonedx-1.4.json"))
    assert parsed.subject is not None
    assert parsed.subject.component.name == "registry.example/team/api"
    assert [(c.name, c.group, c.licenses) for c in parsed.model_components] == [
        ("requests", "", ("Apache-2.0",)),
        ("bsdutils", "", ("GPL-2.0-or-later OR BSD-3-Clause",)),
        ("code-frame", "@babel", ("Custom Licence",)),
    ]
    assert parsed.dependencies == {"a": ("b",), "b": ()}


def test_spdx_packages_map_to_components_with_purls_licences_and_edges() -> None:
    parsed = parse(upload("spdx-2.3.json"))
    assert parsed.subject is not None
    assert parsed.subject.ref == "SPDXRef-root"
    requests, lodash = parsed.components
    assert requests.component == Component(
        type="library",
        name="requests",
        version="2.32.3",
        purl="pkg:pypi/requests@2.32.3",
        licenses=("Apache-2.0",),
    )
    assert requests.hashes == (("SHA-1", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"),)
    assert lodash.component.licenses == ("MIT",)
    assert parsed.dependencies == {"SPDXRef-root": ("SPDXRef-requests", "SPDXRef-lodash")}


@pytest.mark.parametrize(
    ("document", "fmt", "field", "problem"),
    [
        (b"", None, "document", "required, got an empty document"),
        (b"{\n  x", None, "document", "invalid JSON at line 2 column 3"),
        (b"[1]", SbomFormat.CYCLONEDX_JSON, "document", "expected a JSON object, got list"),
        (b"\xff\xfe{", SbomFormat.CYCLONEDX_JSON, "document", "not UTF-8"),
        (b"plain text", None, "document", "expected a CycloneDX JSON or XML, or SPDX JSON document"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, None, "document", "JSON nested too deeply"),
        (b"<a>" * 100_000 + b"</a>" * 100_000, None, "document", "invalid XML at line 1"),
        (b'{"bomFormat":"SPDX"}', SbomFormat.CYCLONEDX_JSON, "document/bomFormat", "expected 'CycloneDX'"),
        (b'{"bomFormat":"CycloneDX","specVersion":"1.3"}', None, "document/specVersion", "got '1.3'"),
        (b'{"bomFormat":"CycloneDX","specVersion":"2.0"}', None, "document/specVersion", "got '2.0'"),
        (
            b'{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"a"},{"name":"b"}]}',
            None,
            "document/components/1",
            '"type" is a required property',
        ),
        (
            b'{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"nope","name":"a"}]}',
            None,
            "document/components/0/type",
            "is not one of",
        ),
        (b'{"spdxVersion":"SPDX-2.2"}', None, "document/spdxVersion", "expected 'SPDX-2.3', got 'SPDX-2.2'"),
        (
            b'{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0"}',
            None,
            "document",
            '"SPDXID" is a required property',
        ),
        (b"<bom", None, "document", "invalid XML at line 1"),
        (b'<bom xmlns="http://cyclonedx.org/schema/bom/1.2"/>', None, "document/xmlns", "got '1.2'"),
        (b"<other/>", None, "document", "expected a CycloneDX <bom> element"),
        (
            b'<?xml version="1.0"?><!DOCTYPE bom [<!ENTITY x "y">]><bom xmlns="http://cyclonedx.org/schema/bom/1.6"/>',
            None,
            "document",
            "XML with a DTD or entities is refused",
        ),
        (
            b'<bom xmlns="http://cyclonedx.org/schema/bom/1.6"><components><component><name>a</name>'
            b"</component></components></bom>",
            None,
            "document/bom/components/component",
            "line 1",
        ),
    ],
)
def test_bad_documents_name_the_first_error(
    document: bytes, fmt: SbomFormat | None, field: str, problem: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(document, fmt)
    assert caught.value.field.startswith(field), caught.value.message
    assert problem in caught.value.problem


def test_spdx_with_a_bad_spdxid_is_schema_invalid() -> None:
    data = json.loads(upload("spdx-2.3.json"))
    data["packages"][1]["SPDXID"] = "pkg:pypi/requests"
    with pytest.raises(InvalidArgument) as caught:
        parse(json.dumps(data).encode())
    assert caught.value.field == "document/packages/1/SPDXID"


@pytest.mark.parametrize("name", sorted(p.name for p in UPLOADS.iterdir()))
@pytest.mark.parametrize("target", list(SbomFormat))
def test_conversions_keep_the_component_index_and_are_schema_valid(name: str, target: SbomFormat) -> None:
    parsed = parse(upload(name))
    converted = convert(parsed, RECORD, target)
    back = parse(converted, target)  # checks the target's schema
    if target is SbomFormat.SPDX_JSON:
        # SPDX has no group (only npm and Maven get theirs back from the purl) and
        # carries free-text licences as LicenseRef ids.
        def identity(c: Component) -> tuple[str, ...]:
            return (c.type, c.name, c.version, c.purl)

        assert [identity(c) for c in back.model_components] == [identity(c) for c in parsed.model_components]
    else:
        assert back.model_components == parsed.model_components
    if target is SbomFormat.CYCLONEDX_JSON:
        assert json.loads(converted)["specVersion"] == "1.6"
        assert rs_errors(converted) == []
    if target is SbomFormat.CYCLONEDX_XML:
        validator = make_schemabased_validator(OutputFormat.XML, SchemaVersion.V1_6)
        assert validator.validate_str(converted.decode()) is None


def test_free_text_licences_become_licence_refs_with_their_text_in_spdx() -> None:
    converted = json.loads(convert(parse(upload("cyclonedx-1.4.json")), RECORD, SbomFormat.SPDX_JSON))
    assert converted["hasExtractedLicensingInfos"] == [
        {
            "licenseId": "LicenseRef-Custom-Licence",
            "extractedText": "Custom Licence",
            "name": "Custom Licence",
        }
    ]
    declared = {p["name"]: p["licenseDeclared"] for p in converted["packages"]}
    assert declared["code-frame"] == "LicenseRef-Custom-Licence"
    kinds = {r["relationshipType"] for r in converted["relationships"]}
    assert kinds == {"DESCRIBES", "DEPENDS_ON"}


def test_generated_sboms_read_back_to_the_same_index(generate_asset: object) -> None:
    assert callable(generate_asset)
    generated = generate_asset("rootfs-debian")
    assert isinstance(generated, GeneratedSbom)

    def sorted_licences(components: tuple[Component, ...]) -> list[Component]:
        # The writer puts licence ids before names; the set is what must survive.
        return [replace(c, licenses=tuple(sorted(c.licenses))) for c in components]

    for document in (generated.to_cyclonedx_json(), generated.to_cyclonedx_xml()):
        assert sorted_licences(parse(document).model_components) == sorted_licences(
            generated.model_components
        )


def test_diff_matches_packages_across_tool_spellings() -> None:
    base = parse(upload("cyclonedx-1.4.json")).model_components
    head = parse(upload("cyclonedx-1.7.json")).model_components
    result = diff(base, head)
    # bsdutils is the same version (epoch in the version vs in a qualifier): only its licence changed.
    changed = {(c.base.name, c.base.version, c.head.version) for c in result.changed}
    assert changed == {
        ("requests", "2.30.0", "2.31.0"),
        ("bsdutils", "1:2.38.1-5+deb12u3", "2.38.1-5+deb12u3"),
    }
    assert [c.name for c in result.added] == ["musl"]
    assert [c.name for c in result.removed] == ["code-frame"]


def test_diff_of_multi_version_packages_lists_versions_added_and_removed() -> None:
    base = [
        Component("library", "a", "1.0", purl="pkg:pypi/a@1.0"),
        Component("library", "a", "2.0", purl="pkg:pypi/a@2.0"),
    ]
    head = [
        Component("library", "a", "2.0", purl="pkg:pypi/A@2.0"),
        Component("library", "a", "3.0", purl="pkg:pypi/a@3.0"),
    ]
    result = diff(base, head)
    assert [c.version for c in result.added] == ["3.0"]
    assert [c.version for c in result.removed] == ["1.0"]
    assert result.changed == ()
    assert diff(base, base).added == diff(base, base).removed == diff(base, base).changed == ()


def test_licence_summary_counts_each_licence_and_the_components_without_one() -> None:
    components = [
        Component("library", "a", licenses=("MIT",)),
        Component("library", "b", licenses=("MIT", "Apache-2.0")),
        Component("library", "c", licenses=("MIT OR Apache-2.0",)),
        Component("library", "d"),
    ]
    summary = summarize("id", components)
    assert [(entry.license, entry.count) for entry in summary.licenses] == [
        ("MIT", 2),
        ("Apache-2.0", 1),
        ("MIT OR Apache-2.0", 1),
    ]
    assert [c.name for c in summary.unknown] == ["d"]
    assert summary.component_count == 4


HOSTILE = '<script>alert("x")</script>'


def report_data() -> ReportData:
    return ReportData(
        artifact="sha256:" + "5" * 64,
        aliases=(f"registry.example/{HOSTILE}",),
        sbom_id=RECORD.id,
        sbom_format="cyclonedx-json 1.6",
        generator=HOSTILE,
        created_at="2026-01-02T03:04:05Z",
        components=(
            Component("library", HOSTILE, "1.0", purl="pkg:npm/evil@1.0", licenses=(HOSTILE,)),
            Component("library", "=cmd|' /C calc'!A0", "2.0"),
        ),
        licenses=((HOSTILE, 1),),
        unknown_licence_count=1,
        vulnerabilities=(Vulnerability("critical", "CVE-2026-1", HOSTILE, "1.0", HOSTILE, ("1.1",)),),
    )


def test_the_html_report_escapes_everything_and_loads_nothing_from_elsewhere() -> None:
    page = to_html(report_data()).decode()
    assert HOSTILE not in page
    assert "&lt;script&gt;" in page
    assert "<svg" in page
    assert "<style>" in page
    for external in ("http://", "https://", "<script", "<link", "src="):
        assert external not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_the_csv_report_defuses_spreadsheet_formulas_and_json_has_everything() -> None:
    rows = list(csv.reader(io.StringIO(to_csv(report_data()).decode())))
    assert rows[0] == ["name", "version", "group", "type", "purl", "licenses"]
    assert rows[2][0] == "'=cmd|' /C calc'!A0"
    body = json.loads(to_json(report_data()))
    assert body["vulnerabilities"][0]["rule_id"] == "CVE-2026-1"
    assert body["licenses"] == [{"license": HOSTILE, "count": 1}]


def test_components_nested_beyond_the_cap_are_refused() -> None:
    component: dict[str, object] = {"type": "library", "name": "leaf"}
    for depth in range(70):
        component = {"type": "library", "name": f"level-{depth}", "components": [component]}
    document = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [component]}
    with pytest.raises(InvalidArgument, match="nested deeper than 64 levels"):
        parse(json.dumps(document).encode())
