"""XML SBOMs: DTDs and entity declarations are refused from what libxml2 parsed, not from the bytes.

Text that merely spells ``<!ENTITY`` or ``<!DOCTYPE`` in a comment or a CDATA
section is accepted and kept where it was written; real declarations, hostile
or not, are still refused before any entity is declared.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree  # type: ignore[import-untyped]

from gate.errors import InvalidArgument
from gate.sbom import _ingest_xml
from gate.sbom._ingest import parse

DECLARATIONS = Path(__file__).resolve().parents[2] / "assets" / "sbom-xml-declarations"
REFUSED = "XML with a DTD or entities is refused, got "
XML_NAME = (
    '<bom xmlns="http://cyclonedx.org/schema/bom/1.5"><components>'
    '<component type="library"><name>%s</name></component></components></bom>'
)


def refused(document: bytes) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        parse(document)
    return caught.value


def test_declarations_written_in_comments_and_cdata_are_accepted_and_kept_as_text() -> None:
    document = (DECLARATIONS / "declaration-text-in-comment-and-cdata.xml").read_bytes()
    parsed = parse(document)
    [component] = parsed.components
    assert (component.component.name, component.component.licenses) == (
        "xml-guard",
        ("Custom <!ENTITY> licence",),
    )
    root = etree.fromstring(document, _ingest_xml._parser())
    description = root.findtext(".//{http://cyclonedx.org/schema/bom/1.5}description")
    assert description == 'Refuses <!DOCTYPE x [<!ENTITY a "&b;">]> in untrusted input.'


@pytest.mark.parametrize(
    "text", ["<!--<!ENTITY a 'b'>-->", "<![CDATA[<!ENTITY a 'b'>]]>", "<![CDATA[<!DOCTYPE bom>]]>"]
)
def test_a_name_holding_declaration_text_in_cdata_or_a_comment_is_read(text: str) -> None:
    parsed = parse((XML_NAME % f"lib{text}").encode())
    expected = "lib" if text.startswith("<!--") else "lib" + text[len("<![CDATA[") : -len("]]>")]
    assert [c.component.name for c in parsed.components] == [expected]


@pytest.mark.parametrize(
    ("name", "doctype"),
    [
        ("billion-laughs.xml", "<!DOCTYPE bom>"),
        ("external-entity.xml", "<!DOCTYPE bom>"),
        ("external-parameter-entity.xml", "<!DOCTYPE bom>"),
        ("internal-entity.xml", "<!DOCTYPE bom>"),
        ("external-dtd.xml", '<!DOCTYPE bom SYSTEM "http://attacker.invalid/bom.dtd">'),
    ],
)
def test_real_declarations_are_refused_naming_the_parsed_doctype(name: str, doctype: str) -> None:
    error = refused((DECLARATIONS / name).read_bytes())
    assert (error.field, error.problem) == ("document", REFUSED + repr(doctype))


def test_entities_in_attribute_values_are_refused_before_libxml2_expands_them() -> None:
    # libxml2 expands internal entities in attribute values whatever resolve_entities says.
    laughs = (DECLARATIONS / "billion-laughs.xml").read_text()
    document = laughs.replace("<name>&lol9;</name>", "<name>a</name>").replace(
        '<component type="library">', '<component type="library" bom-ref="&lol3;">'
    )
    error = refused(document.encode())
    assert (error.field, error.problem) == ("document", REFUSED + "'<!DOCTYPE bom>'")


def test_a_doctype_is_refused_before_its_internal_subset_is_read() -> None:
    # A malformed declaration in the subset would be a syntax error had the parser gone on.
    error = refused(b'<!DOCTYPE bom [<!ENTITY broken>]><bom xmlns="http://cyclonedx.org/schema/bom/1.5"/>')
    assert (error.field, error.problem) == ("document", REFUSED + "'<!DOCTYPE bom>'")


def test_a_public_doctype_after_a_long_comment_is_refused_naming_it() -> None:
    comment = "<!--" + "<!ENTITY x 'y'>" * 600 + "-->"
    document = comment + '<!DOCTYPE bom PUBLIC "-//gate//x" "http://attacker.invalid/x.dtd">' + XML_NAME % "a"
    error = refused(document.encode())
    assert error.problem == REFUSED + repr(
        '<!DOCTYPE bom PUBLIC "-//gate//x" "http://attacker.invalid/x.dtd">'
    )
