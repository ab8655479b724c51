"""NUL and other control characters in uploaded SBOMs: refused with the path of the value.

PostgreSQL's text columns cannot hold a NUL where SQLite's can, and XML cannot
carry one: refusing it at ingest makes both backends and every output format
accept the same documents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gate.errors import InvalidArgument
from gate.sbom._ingest import parse

UPLOADS = Path(__file__).resolve().parents[2] / "assets" / "sbom" / "uploads"
NUL = "got a NUL character (\\u0000), expected text without NUL"
XML_COMPONENT = (
    '<bom xmlns="http://cyclonedx.org/schema/bom/1.5"><components>'
    '<component type="library"><name>%s</name><purl>%s</purl></component></components></bom>'
)


def cyclonedx(**component: Any) -> bytes:
    entry = {"type": "library", "name": "requests", "version": "2.31.0", **component}
    return json.dumps(
        {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [entry]}
    ).encode()


def refused(document: bytes, *, check_schema: bool = True) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        parse(document, check_schema=check_schema)
    return caught.value


@pytest.mark.parametrize(
    ("component", "field"),
    [
        ({"name": "req\0uests"}, "document/components/0/name"),
        ({"version": "2.31.0\0"}, "document/components/0/version"),
        ({"purl": "pkg:pypi/requests@2.31.0\0"}, "document/components/0/purl"),
        ({"licenses": [{"license": {"name": "MIT\0"}}]}, "document/components/0/licenses/0/license/name"),
        ({"properties": [{"name": "build", "value": "a\0b"}]}, "document/components/0/properties/0/value"),
        ({"description": "\0"}, "document/components/0/description"),
        (
            {"components": [{"type": "library", "name": "ok"}, {"type": "library", "name": "x\0"}]},
            "document/components/0/components/1/name",
        ),
    ],
)
@pytest.mark.parametrize("check_schema", [True, False])
def test_a_nul_anywhere_in_a_cyclonedx_json_sbom_is_refused_naming_its_path(
    component: dict[str, Any], field: str, check_schema: bool
) -> None:
    error = refused(cyclonedx(**component), check_schema=check_schema)
    assert (error.field, error.problem) == (field, NUL)
    assert str(error) == f"{field}: {NUL}"


def test_a_nul_in_an_object_key_is_refused() -> None:
    error = refused(cyclonedx(properties=[{"name": "a", "value": "b", "x\0": 1}]), check_schema=False)
    assert error.field == "document/components/0/properties/0"
    assert error.problem == "got a NUL character (\\u0000) in a key, expected text without NUL"


def test_a_nul_in_an_spdx_package_name_is_refused_naming_its_path() -> None:
    data = json.loads((UPLOADS / "spdx-2.3.json").read_bytes())
    data["packages"][1]["name"] = "bad\0name"
    error = refused(json.dumps(data).encode())
    assert (error.field, error.problem) == ("document/packages/1/name", NUL)


@pytest.mark.parametrize(
    ("component", "field", "code"),
    [
        ({"name": "requests\u001b[31m"}, "document/components/0/name", "\\u001b"),
        ({"name": "requests\nforged line"}, "document/components/0/name", "\\u000a"),
        ({"version": "2.31.0\t"}, "document/components/0/version", "\\u0009"),
        ({"purl": "pkg:pypi/requests@2.31.0\r"}, "document/components/0/purl", "\\u000d"),
        ({"bom-ref": "ref\u0001"}, "document/components/0/bom-ref", "\\u0001"),
        ({"group": "\u007f\u001f"}, "document/components/0/group", "\\u001f"),
    ],
)
def test_a_control_character_in_an_identifier_is_refused_naming_its_path(
    component: dict[str, Any], field: str, code: str
) -> None:
    error = refused(cyclonedx(**component))
    assert error.field == field
    assert error.problem == (
        f"got a control character ({code}), expected an identifier without control characters"
    )


def test_the_subject_of_a_cyclonedx_sbom_is_checked_like_its_components() -> None:
    document = json.dumps(
        {
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "version": 1,
            "metadata": {"component": {"type": "container", "name": "registry.example/app\u001b]0;x\u0007"}},
        }
    ).encode()
    error = refused(document)
    assert error.field == "document/metadata/component/name"
    assert "control character (\\u001b)" in error.problem


def test_licence_names_keep_line_breaks_but_refuse_other_control_characters() -> None:
    licence_text = "Copyright (c) the authors\n\tAll rights reserved.\r\n"
    parsed = parse(cyclonedx(licenses=[{"license": {"name": licence_text}}]))
    assert parsed.components[0].component.licenses == (licence_text,)
    error = refused(cyclonedx(licenses=[{"license": {"name": "MIT\u000b"}}]))
    assert error.field == "document/components/0/licenses/0/license/name"
    assert error.problem == (
        "got a control character (\\u000b), "
        "expected text without control characters other than tab, LF and CR"
    )


@pytest.mark.parametrize("encoded", ["%00", "%1B", "%0a"])
def test_a_percent_encoded_control_character_in_a_purl_is_refused(encoded: str) -> None:
    # The purl index decodes names and versions: %00 would become a NUL in a PostgreSQL text column.
    error = refused(cyclonedx(purl=f"pkg:pypi/re{encoded}quests@2.31.0"))
    assert error.field == "document/components/0/purl"
    assert error.problem == (
        f"got a percent-encoded control character ({encoded}), "
        "expected a package URL without control characters"
    )


def test_a_percent_encoded_nul_in_an_spdx_purl_is_refused() -> None:
    data = json.loads((UPLOADS / "spdx-2.3.json").read_bytes())
    package = next(p for p in data["packages"] if p.get("externalRefs"))
    index = data["packages"].index(package)
    package["externalRefs"][0]["referenceLocator"] = "pkg:npm/%00evil/x@1.0.0"
    error = refused(json.dumps(data).encode())
    assert error.field == f"document/packages/{index}/externalRefs/0/referenceLocator"
    assert "percent-encoded control character (%00)" in error.problem


def test_a_control_character_is_refused_from_json_and_xml_alike() -> None:
    json_error = refused(cyclonedx(name="re\u0001quests"))
    assert json_error.field == "document/components/0/name"
    # XML 1.0 cannot carry NUL or this control at all: libxml2 refuses the reference.
    for reference in ("&#0;", "&#1;", "&#x1b;"):
        xml_error = refused((XML_COMPONENT % (f"re{reference}quests", "pkg:pypi/requests@1")).encode())
        assert xml_error.field == "document"
        assert "invalid XML" in xml_error.problem
    # Tab, LF and CR are XML characters: inside an identifier they are refused as in JSON.
    xml_error = refused((XML_COMPONENT % ("re&#10;quests", "pkg:pypi/requests@1")).encode())
    assert xml_error.field == "document/bom/components/component[0]/name"
    assert xml_error.problem == (
        "got a control character (\\u000a), expected an identifier without control characters"
    )
    xml_error = refused((XML_COMPONENT % ("requests", "pkg:pypi/re%00quests@1")).encode())
    assert xml_error.field == "document/bom/components/component[0]/purl"


def test_text_that_merely_spells_an_escape_is_still_accepted() -> None:
    parsed = parse(cyclonedx(name="\\u0000-literal", licenses=[{"license": {"name": "50%-off"}}]))
    assert parsed.components[0].component.name == "\\u0000-literal"
    error = refused(cyclonedx(name="\\u0000-literal", description="\0"))
    assert error.field == "document/components/0/description"
