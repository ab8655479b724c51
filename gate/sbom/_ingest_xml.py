"""CycloneDX XML (1.4-1.7): schema check with lxml against the library's XSDs, then the component index.

The parser refuses DTDs, entities and network access (a hostile document
cannot expand entities or make gate fetch anything). Only UTF-8 is read, as
for JSON: the document is stored verbatim and handed back as the UTF-8 that
``parse`` promises, and a check on the raw bytes (as for ``<!ENTITY``) only
means something when each ASCII character is one byte.
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
    refuse_other_encodings,
)

_PREFIX = "{http://cyclonedx.org/schema/bom/"
_DECLARED_ENCODING = re.compile(
    rb"""\A(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]{0,200}?\bencoding\s*=\s*["']([^"']{0,64})["']"""
)
_UTF8_NAMES = ("utf-8", "utf8")


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
    # Refused before the parser sees them when they are easy to spot; _refuse_dtd below has
    # the last word, whatever the bytes looked like.
    if b"<!DOCTYPE" in document[:4096] or b"<!ENTITY" in document:
        raise InvalidArgument("document", "XML with a DTD or entities is refused")
    try:
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
        subject = _component(found, ns, "metadata") if found is not None else None
        timestamp = metadata.findtext(f"{ns}timestamp") or ""
        generator = _generator(metadata, ns)
    components: list[ParsedComponent] = []
    container = root.find(f"{ns}components")
    if container is not None:
        _walk(container, ns, components, 0)
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


def _refuse_dtd(docinfo: Any) -> None:
    # What libxml2 parsed, not the bytes: a declaration past the first 4096 bytes (after a long
    # comment) or one the byte check could not see is still refused here.
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        doctype = docinfo.doctype if len(docinfo.doctype) <= 80 else docinfo.doctype[:80] + "..."
        raise InvalidArgument("document", f"XML with a DTD or entities is refused, got {doctype!r}")


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


def _walk(container: Any, ns: str, into: list[ParsedComponent], depth: int) -> None:
    if depth > MAX_NESTING:
        raise InvalidArgument("document/components", f"components nested deeper than {MAX_NESTING} levels")
    for element in container.findall(f"{ns}component"):
        into.append(_component(element, ns, str(len(into))))
        nested = element.find(f"{ns}components")
        if nested is not None:
            _walk(nested, ns, into, depth + 1)


def _component(element: Any, ns: str, fallback_ref: str) -> ParsedComponent:
    licences: list[str] = []
    container = element.find(f"{ns}licenses")
    if container is not None:
        for choice in container:
            if not isinstance(choice.tag, str):
                continue
            if choice.tag == f"{ns}expression":
                licences.append((choice.text or "").strip())
            elif choice.tag == f"{ns}license":
                value = choice.findtext(f"{ns}id") or choice.findtext(f"{ns}name") or ""
                licences.append(value.strip())
    hashes: list[tuple[str, str]] = []
    hash_container = element.find(f"{ns}hashes")
    if hash_container is not None:
        hashes = [
            (h.get("alg", ""), (h.text or "").strip().lower()) for h in hash_container.findall(f"{ns}hash")
        ]
    return ParsedComponent(
        ref=element.get("bom-ref") or f"component-{fallback_ref}",
        component=Component(
            type=element.get("type", "library"),
            name=(element.findtext(f"{ns}name") or "").strip(),
            version=(element.findtext(f"{ns}version") or "").strip(),
            group=(element.findtext(f"{ns}group") or "").strip(),
            purl=(element.findtext(f"{ns}purl") or "").strip(),
            licenses=tuple(dict.fromkeys(v for v in licences if v)),
        ),
        hashes=tuple(hashes),
        scope=(element.findtext(f"{ns}scope") or "").strip(),
    )


def _generator(metadata: Any, ns: str) -> str:
    tools = metadata.find(f"{ns}tools")
    if tools is None:
        return ""
    # 1.4: <tool> elements; 1.5+: <components>/<component> and <services>/<service>.
    candidates = [*tools.findall(f"{ns}tool"), *tools.iterfind(f"{ns}components/{ns}component")]
    candidates += list(tools.iterfind(f"{ns}services/{ns}service"))
    for tool in candidates:
        name = (tool.findtext(f"{ns}name") or "").strip()
        if name:
            return f"{name} {(tool.findtext(f'{ns}version') or '').strip()}".strip()
    return ""
