"""Hostile uploads found by fuzzing: each is refused with InvalidArgument naming the problem.

Valid documents that look like them (surrogate pairs, escaped backslashes,
finite numbers) are still read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from gate.errors import InvalidArgument
from gate.model import SbomFormat
from gate.sbom import _ingest_xml
from gate.sbom._ingest import detect_format, parse

UPLOADS = Path(__file__).resolve().parents[2] / "assets" / "sbom" / "uploads"
CDX_NAME = '{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"library","name":"%s"}]}'
XML_NAME = (
    '<bom xmlns="http://cyclonedx.org/schema/bom/1.5"><components>'
    '<component type="library"><name>%s</name></component></components></bom>'
)
UTF16_ENTITY = (
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE bom [<!ENTITY a "x">]>'
    '<bom xmlns="http://cyclonedx.org/schema/bom/1.5"><components><component type="library">'
    "<name>&a;</name></component></components></bom>"
)


def spdx_with(field_json: str) -> bytes:
    """The SPDX upload with ``field_json`` (raw JSON text) as an extra top-level field SPDX leaves open."""
    document = (UPLOADS / "spdx-2.3.json").read_bytes().decode()
    return ('{"comment": ' + field_json + ", " + document.lstrip()[1:]).encode()


def refused(document: bytes, fmt: SbomFormat | None = None, *, check_schema: bool = True) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        parse(document, fmt, check_schema=check_schema)
    return caught.value


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [None, SbomFormat.CYCLONEDX_JSON, SbomFormat.SPDX_JSON])
def test_an_integer_with_more_digits_than_python_converts_is_refused(fmt: SbomFormat | None) -> None:
    error = refused(b'{"a":' + b"1" * 4301 + b"}", fmt)
    assert error.field == "document/a"
    assert "4301 digits" in error.problem


def test_format_detection_refuses_an_oversized_integer_with_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="digits"):
        detect_format(b'{"a":[' + b"9" * 5000 + b"]}")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_in_an_open_field_are_refused(literal: str) -> None:
    error = refused(spdx_with('{"x": [1, ' + literal + "]}"))
    assert error.field == "document/comment/x/1"
    assert literal in error.problem
    assert "not a JSON number" in error.problem


@pytest.mark.parametrize("literal", ["1e400", "-1e400", "1" * 400 + ".0"])
def test_a_number_overflowing_to_infinity_is_refused(literal: str) -> None:
    error = refused(spdx_with('{"x": ' + literal + "}"))
    assert error.field == "document/comment/x"
    assert "beyond a double's range" in error.problem
    assert literal[:20] in error.problem


def test_finite_numbers_in_an_open_field_are_still_accepted() -> None:
    parsed = parse(spdx_with('{"x": [1.5, -2e300, 1e-400, 12345678901234567890]}'))
    assert parsed.format is SbomFormat.SPDX_JSON


# --- lone surrogates ------------------------------------------------------------------------


@pytest.mark.parametrize("escape", [r"\ud800", r"\uDC00", r"x\udbff", r"\ude00\ud83d"])
def test_a_lone_surrogate_escape_in_a_component_name_is_refused(escape: str) -> None:
    error = refused((CDX_NAME % escape).encode())
    assert error.field == "document/components/0/name"
    assert "lone UTF-16 surrogate" in error.problem


def test_a_lone_surrogate_escape_in_an_object_key_is_refused() -> None:
    error = refused(spdx_with(r'{"ok": 1, "k\ud800": 2}'))
    assert error.field == "document/comment"
    assert "lone UTF-16 surrogate" in error.problem
    assert "key" in error.problem


def test_a_lone_surrogate_in_spdx_is_refused_even_without_the_schema_check() -> None:
    error = refused(spdx_with(r'"\udfff"'), check_schema=False)
    assert error.field == "document/comment"
    assert "lone UTF-16 surrogate" in error.problem


def test_a_surrogate_encoded_as_raw_utf8_bytes_is_refused() -> None:
    error = refused((CDX_NAME % "NAME").encode().replace(b"NAME", b"\xed\xa0\x80"))
    assert "not UTF-8" in error.problem


def test_a_non_bmp_character_written_as_a_surrogate_pair_escape_is_still_accepted() -> None:
    parsed = parse((CDX_NAME % r"smile-\ud83d\ude00").encode())
    assert [c.component.name for c in parsed.components] == ["smile-\U0001f600"]


def test_an_escaped_backslash_before_a_surrogate_lookalike_is_plain_text() -> None:
    parsed = parse((CDX_NAME % r"\\ud800").encode())
    assert [c.component.name for c in parsed.components] == [r"\ud800"]


# --- encodings ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [None, SbomFormat.CYCLONEDX_JSON])
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"])
def test_a_json_sbom_in_utf16_or_utf32_is_refused(codec: str, fmt: SbomFormat | None) -> None:
    error = refused((CDX_NAME % "a").encode(codec), fmt)
    assert error.field == "document"
    assert "not UTF-8" in error.problem
    assert "UTF-" in error.problem.removeprefix("not UTF-8")


def test_a_json_sbom_with_a_utf8_byte_order_mark_is_still_accepted() -> None:
    parsed = parse(b"\xef\xbb\xbf" + (CDX_NAME % "a").encode())
    assert [c.component.name for c in parsed.components] == ["a"]


@pytest.mark.parametrize("check_schema", [True, False])
def test_an_xml_sbom_declaring_an_entity_in_utf16_is_refused(check_schema: bool) -> None:
    error = refused(UTF16_ENTITY.encode("utf-16"), SbomFormat.CYCLONEDX_XML, check_schema=check_schema)
    assert error.field == "document"
    assert "not UTF-8" in error.problem
    assert "UTF-16" in error.problem


def test_an_xml_sbom_in_utf16_without_a_byte_order_mark_is_refused() -> None:
    document = UTF16_ENTITY.replace("UTF-16", "UTF-16LE").encode("utf-16-le")
    error = refused(document, SbomFormat.CYCLONEDX_XML)
    assert "not UTF-8" in error.problem


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-16", "windows-1252"])
def test_an_xml_sbom_declaring_an_encoding_other_than_utf8_is_refused(encoding: str) -> None:
    document = f'<?xml version="1.0" encoding="{encoding}"?>'.encode() + (XML_NAME % "a").encode()
    error = refused(document)
    assert "not UTF-8" in error.problem
    assert encoding in error.problem


@pytest.mark.parametrize(
    "declaration", ['<?xml version="1.0" encoding="utf-8"?>', "<?xml version='1.0'?>", ""]
)
def test_an_xml_sbom_in_utf8_is_still_accepted(declaration: str) -> None:
    parsed = parse((declaration + XML_NAME % "caf\u00e9").encode())
    assert [c.component.name for c in parsed.components] == ["caf\u00e9"]


# --- DTDs, entities and what lxml reports ---------------------------------------------------


def test_a_doctype_after_a_long_leading_comment_is_refused() -> None:
    comment = "<!--" + "x" * 8192 + "-->"
    document = (comment + '<!DOCTYPE bom SYSTEM "http://attacker.invalid/x.dtd">' + XML_NAME % "a").encode()
    error = refused(document)
    assert error.field == "document"
    assert "DTD" in error.problem


def test_a_schema_validator_internal_error_is_an_invalid_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def validate(self, root: Any) -> bool:
            raise etree.XMLSchemaValidateError("Internal error in XML Schema validation.")

    monkeypatch.setattr(_ingest_xml, "_schema", lambda version: Broken())
    error = refused((XML_NAME % "a").encode())
    assert error.field == "document"
    assert "schema validation failed" in error.problem
    assert "Internal error" in error.problem


@pytest.mark.parametrize("name", ["re<!--x-->quests", "re<?pi x?>quests", "re<![CDATA[ques]]>ts"])
def test_comments_and_processing_instructions_inside_a_name_do_not_truncate_it(name: str) -> None:
    parsed = parse((XML_NAME % name).encode())
    assert [c.component.name for c in parsed.components] == ["requests"]


def test_a_key_written_twice_in_a_json_sbom_is_refused() -> None:
    document = (
        b'{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,'
        b'"components":[{"type":"library","name":"hidden","name":"shown","version":"1"}]}'
    )
    with pytest.raises(InvalidArgument, match="the key 'name' appears twice in one object"):
        parse(document)
