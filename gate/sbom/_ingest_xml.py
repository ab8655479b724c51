"""CycloneDX XML (1.4-1.7): schema check with lxml against the library's XSDs, then the component index.

A first pass stops at whichever libxml2 reports first, a document type
declaration (refused) or the root element (nothing can be declared after it),
so no entity is ever declared, let alone expanded: libxml2 expands internal
entities in attribute values whatever the parser options say. The tree parse
that follows neither expands entities, loads a DTD nor touches the network,
and refuses a DTD it sees as a second line. Both rest on what libxml2 parsed,
never on the raw bytes, so ``<!ENTITY`` or ``<!DOCTYPE`` written as text in a
comment or a CDATA section is just text. Only UTF-8 is read, as for
JSON: the document is stored verbatim and handed back as the UTF-8 that
``parse`` promises.

XML 1.0 cannot carry NUL or the other C0 controls but tab, LF and CR (libxml2
refuses ``&#0;`` and raw control bytes as not well-formed), so the checks of
the JSON path that refuse them have nothing to find here; identifiers are
still checked for tab, LF and CR, as JSON ones are.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from gate.errors import InvalidArgument
from gate.model import Component, SbomFormat
from gate.sbom._ingest import (
    MAX_NESTING,
    ParsedComponent,
    ParsedSbom,
    _cap,
    _resources,
    check_spec_version,
    identifier,
    purl,
    refuse_other_encodings,
    text,
)

_PREFIX = "{http://cyclonedx.org/schema/bom/"
_DECLARED_ENCODING = re.compile(
    rb"""\A(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]{0,200}?\bencoding\s*=\s*["']([^"']{0,64})["']"""
)
_UTF8_NAMES = ("utf-8", "utf8")
_DTD_REFUSED = "XML with a DTD or entities is refused"


class _Doctype(Exception):
    """The first pass met a document type declaration (the message shows it)."""


class _RootReached(Exception):
    """The first pass met the root element: the prolog held no document type declaration."""


class _Prolog:
    """lxml parser target for the first pass: raises at the first event that settles it."""

    def doctype(self, name: str | None, public: str | None, system: str | None) -> None:
        shown = f"<!DOCTYPE {name or ''}"
        if public:
            shown += f' PUBLIC "{public}" "{system or ""}"'
        elif system:
            shown += f' SYSTEM "{system}"'
        raise _Doctype(shown + ">")

    def start(self, *element: object) -> None:
        raise _RootReached

    def close(self) -> None:
        return None


def _parser() -> Any:
    from lxml import etree  # type: ignore[import-untyped]

    # Without comments and processing instructions, text they split reads whole: findtext()
    # stops at the first one, so <name>re<!---->quests</name> would be indexed as "re".
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


@cache
def _schema(version: str) -> Any:
    from lxml import etree

    path = _resources() / f"bom-{version}.SNAPSHOT.xsd"
    return etree.XMLSchema(etree.parse(str(path)))


def parse_cyclonedx_xml(document: bytes, *, check_schema: bool = True) -> ParsedSbom:
    """Read a CycloneDX XML document.

    Raises:
        InvalidArgument: not well-formed XML, a DTD, an unknown namespace or
            version, or a schema error (line and element path named).
    """
    from lxml import etree

    refuse_other_encodings(document)
    declared = _DECLARED_ENCODING.match(document)
    if declared is not None:
        _require_utf8(declared.group(1).decode("ascii", "backslashreplace"))
    try:
        _refuse_declarations(document)
        root = etree.fromstring(document, _parser())
    except etree.XMLSyntaxError as syntax:
        raise InvalidArgument("document", f"invalid XML at line {syntax.lineno}: {syntax.msg}") from None
    docinfo = root.getroottree().docinfo
    _require_utf8(docinfo.encoding or "UTF-8")
    _refuse_dtd(docinfo)
    tag = root.tag if isinstance(root.tag, str) else ""
    if not tag.startswith(_PREFIX) or not tag.endswith("}bom"):
        raise InvalidArgument("document", f"expected a CycloneDX <bom> element, got {tag or root.tag!r}")
    version = check_spec_version(tag[len(_PREFIX) : -len("}bom")], "document/xmlns")
    if check_schema:
        _validate(_schema(version), root)
    ns = f"{_PREFIX}{version}}}"
    metadata = root.find(f"{ns}metadata")
    subject = None
    generator = ""
    timestamp = ""
    if metadata is not None:
        found = metadata.find(f"{ns}component")
        if found is not None:
            subject = _component(found, ns, "metadata", "document/bom/metadata/component")
        timestamp = metadata.findtext(f"{ns}timestamp") or ""
        generator = _generator(metadata, ns)
    components: list[ParsedComponent] = []
    container = root.find(f"{ns}components")
    if container is not None:
        _walk(container, ns, components, 0, "document/bom/components")
    _cap(len(components))
    dependencies: dict[str, tuple[str, ...]] = {}
    deps = root.find(f"{ns}dependencies")
    if deps is not None:
        for dep in deps.findall(f"{ns}dependency"):
            dependencies[dep.get("ref", "")] = tuple(
                child.get("ref", "") for child in dep.findall(f"{ns}dependency")
            )
    return ParsedSbom(
        format=SbomFormat.CYCLONEDX_XML,
        spec_version=version,
        generator=generator,
        subject=subject,
        components=tuple(components),
        dependencies=dependencies,
        serial_number=root.get("serialNumber", ""),
        timestamp=timestamp,
    )


def _require_utf8(encoding: str) -> None:
    if encoding.lower() not in _UTF8_NAMES:
        raise InvalidArgument("document", f"not UTF-8: the XML declares encoding {encoding!r}")


def _refuse_declarations(document: bytes) -> None:
    from lxml import etree

    parser = etree.XMLParser(
        target=_Prolog(), resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        etree.fromstring(document, parser)
    except _RootReached:
        return
    except _Doctype as found:
        raise InvalidArgument("document", f"{_DTD_REFUSED}, got {_shorten(str(found))!r}") from None


def _shorten(doctype: str) -> str:
    return doctype if len(doctype) <= 80 else doctype[:80] + "..."


def _refuse_dtd(docinfo: Any) -> None:
    # The parser kept entity references unexpanded and loaded nothing, so refusing after the
    # parse is safe; a bare <!DOCTYPE bom> is refused too, as no CycloneDX document needs one.
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise InvalidArgument("document", f"{_DTD_REFUSED}, got {_shorten(docinfo.doctype)!r}")


def _validate(schema: Any, root: Any) -> None:
    from lxml import etree

    try:
        valid = schema.validate(root)
    except etree.XMLSchemaValidateError as error:
        # libxml2 gives up on trees it did not expect (entity references did this) instead of
        # reporting an invalid document.
        raise InvalidArgument("document", f"XML schema validation failed: {error}") from None
    if valid:
        return
    errors = schema.error_log.filter_from_errors()
    if not errors:
        raise InvalidArgument("document", "not valid against the CycloneDX XML schema")
    first = errors[0]
    where = _element_path(root, first.line, (first.path or "").count("/"))
    raise InvalidArgument(f"document/{where}", f"line {first.line}: {first.message}")


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _element_path(root: Any, line: int, depth: int) -> str:
    """``bom/components/component[1]`` for the first element at ``depth`` on ``line``.

    lxml reports namespaced elements as ``/*/*/*``; this names them, with the
    position among same-named siblings.
    """
    found = root
    for element in root.iter():
        if isinstance(element.tag, str) and element.sourceline == line:
            found = element
            if len(list(element.iterancestors())) + 1 == depth:
                break
    parts: list[str] = []
    for element in [*reversed(list(found.iterancestors())), found]:
        parent = element.getparent()
        name = _local(element.tag)
        if parent is not None:
            same = [e for e in parent if _local(e.tag) == name]
            if len(same) > 1:
                name += f"[{same.index(element)}]"
        parts.append(name)
    return "/".join(parts)


def _walk(container: Any, ns: str, into: list[ParsedComponent], depth: int, path: str) -> None:
    if depth > MAX_NESTING:
        raise InvalidArgument("document/components", f"components nested deeper than {MAX_NESTING} levels")
    for index, element in enumerate(container.findall(f"{ns}component")):
        where = f"{path}/component[{index}]"
        into.append(_component(element, ns, str(len(into)), where))
        nested = element.find(f"{ns}components")
        if nested is not None:
            _walk(nested, ns, into, depth + 1, f"{where}/components")


def _component(element: Any, ns: str, fallback_ref: str, path: str) -> ParsedComponent:
    def child(name: str) -> str:
        return identifier((element.findtext(f"{ns}{name}") or "").strip(), f"{path}/{name}")

    licences: list[str] = []
    container = element.find(f"{ns}licenses")
    if container is not None:
        for index, choice in enumerate(container):
            if not isinstance(choice.tag, str):
                continue
            where = f"{path}/licenses/{_local(choice.tag)}[{index}]"
            if choice.tag == f"{ns}expression":
                licences.append(text((choice.text or "").strip(), where))
            elif choice.tag == f"{ns}license":
                key = "id" if choice.findtext(f"{ns}id") else "name"
                licences.append(text((choice.findtext(f"{ns}{key}") or "").strip(), f"{where}/{key}"))
    hashes: list[tuple[str, str]] = []
    hash_container = element.find(f"{ns}hashes")
    if hash_container is not None:
        hashes = [
            (
                identifier(h.get("alg", ""), f"{path}/hashes/hash[{index}]/@alg"),
                identifier((h.text or "").strip().lower(), f"{path}/hashes/hash[{index}]"),
            )
            for index, h in enumerate(hash_container.findall(f"{ns}hash"))
        ]
    return ParsedComponent(
        ref=identifier(element.get("bom-ref") or f"component-{fallback_ref}", f"{path}/@bom-ref"),
        component=Component(
            type=identifier(element.get("type", "library"), f"{path}/@type"),
            name=child("name"),
            version=child("version"),
            group=child("group"),
            purl=purl((element.findtext(f"{ns}purl") or "").strip(), f"{path}/purl"),
            licenses=tuple(dict.fromkeys(v for v in licences if v)),
        ),
        hashes=tuple(hashes),
        scope=child("scope"),
    )


def _generator(metadata: Any, ns: str) -> str:
    tools = metadata.find(f"{ns}tools")
    if tools is None:
        return ""
    # 1.4: <tool> elements; 1.5+: <components>/<component> and <services>/<service>.
    candidates = [*tools.findall(f"{ns}tool"), *tools.iterfind(f"{ns}components/{ns}component")]
    candidates += list(tools.iterfind(f"{ns}services/{ns}service"))
    for tool in candidates:
        name = identifier((tool.findtext(f"{ns}name") or "").strip(), "document/bom/metadata/tools")
        if name:
            version = identifier((tool.findtext(f"{ns}version") or "").strip(), "document/bom/metadata/tools")
            return f"{name} {version}".strip()
    return ""
