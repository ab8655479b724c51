"""Reading SBOMs made elsewhere: CycloneDX 1.4-1.7 (JSON, XML) and SPDX 2.3 JSON.

Every document is checked against its schema before anything is read from
it; the first error is reported with its path (JSON pointer or XML line and
element path), so a pipeline sees what to fix.

The component index is extracted from the parsed JSON (or XML tree)
directly, not through ``cyclonedx.model.bom.Bom.from_json``: the library's
deserialiser took 18 s for a 5,000-component document here, where
``json.loads`` took 0.07 s and the schema check (jsonschema-rs) 0.65 s.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from gate._strict_json import SURROGATE, DuplicateKey, finite_float, lone_surrogate, unique_keys
from gate.errors import InvalidArgument
from gate.model import Component, SbomFormat

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
MAX_COMPONENTS = 500_000
# Nested components deeper than this are refused (a hostile document could recurse forever).
MAX_NESTING = 64

CYCLONEDX_VERSIONS = ("1.4", "1.5", "1.6", "1.7")
_XML_NAMESPACE = re.compile(r"\{http://cyclonedx\.org/schema/bom/(\d+\.\d+)\}bom")

_UTF8_BOM = b"\xef\xbb\xbf"
# UTF-32 first: its little-endian mark starts with UTF-16's.
_OTHER_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)

# A NUL can reach decoded JSON only through this escape (json.loads refuses raw control
# characters in strings), so a document without it needs no walk.
_NUL_ESCAPE = "\\u0000"
# Every C0 control: identifiers are single-line tokens, so a line break or an escape
# sequence in one could only forge lines or terminal output where gate shows it.
_IDENTIFIER_CONTROL = re.compile("[\x00-\x1f]")
# The C0 controls XML 1.0 cannot carry: licence names are free text (some generators put a
# whole licence text, line breaks included, in one), but converting to XML must still work.
_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_ENCODED_CONTROL = re.compile("%[01][0-9a-fA-F]")


@dataclass(frozen=True, slots=True)
class ParsedComponent:
    """A component as read from a document: the index view plus what conversion keeps."""

    ref: str
    component: Component
    hashes: tuple[tuple[str, str], ...] = ()
    scope: str = ""


@dataclass(frozen=True, slots=True)
class ParsedSbom:
    """What gate reads from an SBOM document.

    Attributes:
        format: The document's format.
        spec_version: ``1.4``-``1.7`` for CycloneDX, ``2.3`` for SPDX.
        generator: The producing tool (``name version``), or ``""`` when the document names none.
        subject: The component the document describes (CycloneDX ``metadata.component``,
            SPDX packages the document DESCRIBES), if any.
        components: Every other component, nested ones flattened, in document order.
        dependencies: bom-ref (or SPDXID) to the refs it depends on.
        serial_number: The CycloneDX serial number or SPDX document namespace.
        timestamp: The document's creation time as written.
    """

    format: SbomFormat
    spec_version: str
    generator: str
    subject: ParsedComponent | None
    components: tuple[ParsedComponent, ...]
    dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    serial_number: str = ""
    timestamp: str = ""

    @property
    def model_components(self) -> tuple[Component, ...]:
        """The components for the store's index."""
        return tuple(parsed.component for parsed in self.components)


def detect_format(document: bytes) -> SbomFormat:
    """Guess the format of a document from its first bytes and top-level keys.

    Raises:
        InvalidArgument: the document is not UTF-8, neither JSON nor XML, or JSON of neither kind.
    """
    refuse_other_encodings(document)
    return _detect(document)[0]


def _detect(document: bytes) -> tuple[SbomFormat, dict[str, Any] | None]:
    """The format, and the JSON already loaded to tell SPDX from CycloneDX (None for XML)."""
    head = document.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"<":
        return SbomFormat.CYCLONEDX_XML, None
    if head != b"{":
        raise InvalidArgument("document", "expected a CycloneDX JSON or XML, or SPDX JSON document")
    data = _load_json(document)
    if "spdxVersion" in data:
        return SbomFormat.SPDX_JSON, data
    return SbomFormat.CYCLONEDX_JSON, data


def refuse_other_encodings(document: bytes) -> None:
    """Raise InvalidArgument when the first bytes show UTF-16 or UTF-32.

    Both parsers would decode those (json.loads and libxml2 detect the
    encoding), but gate stores the document verbatim as the UTF-8 the API
    promises, and byte-level checks (the XML DTD refusal) only see characters
    when each ASCII character is one byte.
    """
    for mark, name in _OTHER_BOMS:
        if document.startswith(mark):
            raise InvalidArgument("document", f"not UTF-8: got a {name} byte order mark")
    if b"\x00" in document[:4]:
        raise InvalidArgument(
            "document", "not UTF-8: NUL bytes at the start (UTF-16 or UTF-32 without a byte order mark)"
        )


def parse(document: bytes, fmt: SbomFormat | None = None, *, check_schema: bool = True) -> ParsedSbom:
    """Validate a document against its schema and read its components.

    Args:
        document: The document bytes (UTF-8), at most 64 MiB.
        fmt: Its format; ``None`` detects it.
        check_schema: False for documents gate stored itself (checked on the way in).

    Raises:
        InvalidArgument: the document is empty, too large, not UTF-8, not well-formed
            (JSON with NaN, Infinity, a number out of range or a lone surrogate escape
            included; XML with a DTD), of an unsupported specification version, or not
            valid against its schema (the field is ``document`` plus the path of the
            first error).
    """
    if not document:
        raise InvalidArgument("document", "required, got an empty document")
    if len(document) > MAX_DOCUMENT_BYTES:
        raise InvalidArgument("document", f"at most {MAX_DOCUMENT_BYTES} bytes, got {len(document)}")
    refuse_other_encodings(document)
    data = None
    if fmt is None:
        fmt, data = _detect(document)
    try:
        if fmt is SbomFormat.CYCLONEDX_XML:
            from gate.sbom._ingest_xml import parse_cyclonedx_xml

            return parse_cyclonedx_xml(document, check_schema=check_schema)
        if data is None:
            data = _load_json(document)
        if fmt is SbomFormat.SPDX_JSON:
            from gate.sbom._spdx import parse_spdx_json

            return parse_spdx_json(data, check_schema=check_schema)
        return parse_cyclonedx_json(data, check_schema=check_schema)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError, RecursionError) as exc:
        # The walkers trust the shapes the schemas promise; documents read without the schema
        # (generator output, SPDX fields its schema leaves open) can break that promise anywhere.
        raise InvalidArgument(
            "document", f"{fmt.value} structure not as expected: {type(exc).__name__}: {exc}"
        ) from None


def _load_json(document: bytes) -> dict[str, Any]:
    text = _utf8_text(document)
    try:
        data = json.loads(
            text, parse_constant=_refuse_constant, parse_float=finite_float, object_pairs_hook=unique_keys
        )
    except DuplicateKey as error:
        raise InvalidArgument("document", str(error)) from None
    except json.JSONDecodeError as error:
        raise InvalidArgument(
            "document", f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise InvalidArgument("document", "JSON nested too deeply") from None
    except ValueError as error:
        # NaN/Infinity, a float overflowing, or an integer past Python's digit limit: json says
        # neither which nor where, so the (rare) failing document is read again to find out.
        raise _number_error(text, error) from None
    if not isinstance(data, dict):
        raise InvalidArgument("document", f"expected a JSON object, got {type(data).__name__}")
    if lone_surrogate(document, data) is not None:
        _refuse_lone_surrogates(data)
    if _NUL_ESCAPE in text:
        _refuse_nul(data)
    return data


def _utf8_text(document: bytes) -> str:
    # Decoded here, strictly: json.loads decodes bytes with "surrogatepass", which lets a
    # UTF-8-encoded surrogate (ED A0 80) through to the store, where encoding it fails.
    start = len(_UTF8_BOM) if document.startswith(_UTF8_BOM) else 0
    try:
        return document[start:].decode()
    except UnicodeDecodeError as error:
        raise InvalidArgument(
            "document", f"not UTF-8: {error.reason} at byte {start + error.start}"
        ) from None


def _refuse_constant(name: str) -> NoReturn:
    # json.loads accepts NaN and Infinity, which RFC 8259 does not: the stored document would not
    # be JSON to any other reader.
    raise ValueError(name)


class _BadNumber:
    """Stands in for a refused number while a failing document is read again to locate it."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _number_error(text: str, error: ValueError) -> InvalidArgument:
    limit = sys.get_int_max_str_digits()

    def integer(literal: str) -> Any:
        digits = len(literal.lstrip("-"))
        if limit and digits > limit:
            return _BadNumber(f"integer with {digits} digits, at most {limit}")
        return int(literal)

    def number(literal: str) -> Any:
        try:
            return finite_float(literal)
        except ValueError as problem:
            return _BadNumber(str(problem))

    def constant(name: str) -> Any:
        return _BadNumber(f"{name} is not a JSON number (RFC 8259 has no NaN or Infinity)")

    try:
        data = json.loads(text, parse_int=integer, parse_float=number, parse_constant=constant)
    except ValueError:
        return InvalidArgument("document", f"number not accepted: {error}")
    found = _first_problem(data, lambda value: value.problem if isinstance(value, _BadNumber) else None)
    return found or InvalidArgument("document", f"number not accepted: {error}")


def _refuse_lone_surrogates(data: dict[str, Any]) -> None:
    # Storing or converting a lone surrogate fails later: refused here, naming where it is.
    def problem(value: Any) -> str | None:
        if isinstance(value, str):
            found = SURROGATE.search(value)
            return None if found is None else _surrogate_problem(found.group(), "")
        if isinstance(value, dict):
            for key in value:
                found = SURROGATE.search(key)
                if found is not None:
                    return _surrogate_problem(found.group(), " in a key")
        return None

    error = _first_problem(data, problem)
    raise error or InvalidArgument("document", _surrogate_problem("", ""))


def _refuse_nul(data: dict[str, Any]) -> None:
    # PostgreSQL's text columns cannot hold NUL (SQLite's can), and XML cannot carry one: refused
    # anywhere in the document, so both backends and every output format accept the same uploads.
    def problem(value: Any) -> str | None:
        if isinstance(value, str):
            return NUL_PROBLEM if "\x00" in value else None
        if isinstance(value, dict) and any("\x00" in key for key in value):
            return "got a NUL character (\\u0000) in a key, expected text without NUL"
        return None

    error = _first_problem(data, problem)
    if error is not None:
        raise error


NUL_PROBLEM = "got a NUL character (\\u0000), expected text without NUL"


def identifier(value: object, field: str) -> str:
    """``value`` as text, or InvalidArgument naming ``field`` when it holds a C0 control character.

    For the values gate indexes, stores and shows as identifiers: names, versions, groups,
    purls, refs, types, scopes, hashes.
    """
    return _checked(str(value), field, _IDENTIFIER_CONTROL, "an identifier without control characters")


def purl(value: object, field: str) -> str:
    """``value`` as an identifier that also holds no percent-encoded C0 control character.

    The purl index decodes names, namespaces and versions (``%00`` becomes a NUL there).
    """
    checked = identifier(value, field)
    found = _ENCODED_CONTROL.search(checked)
    if found is not None:
        raise InvalidArgument(
            field,
            f"got a percent-encoded control character ({found.group()}), "
            "expected a package URL without control characters",
        )
    return checked


def text(value: object, field: str) -> str:
    """``value`` as text, or InvalidArgument naming ``field`` when it holds a control character
    other than tab, line feed or carriage return (for licence names and the generator)."""
    return _checked(
        str(value), field, _TEXT_CONTROL, "text without control characters other than tab, LF and CR"
    )


def _checked(value: str, field: str, pattern: re.Pattern[str], expected: str) -> str:
    found = pattern.search(value)
    if found is None:
        return value
    if found.group() == "\x00":
        raise InvalidArgument(field, NUL_PROBLEM)
    code = f"\\u{ord(found.group()):04x}"
    raise InvalidArgument(field, f"got a control character ({code}), expected {expected}")


def _surrogate_problem(surrogate: str, where: str) -> str:
    code = f" \\u{ord(surrogate):04x}" if surrogate else ""
    return f"lone UTF-16 surrogate{code}{where} is not a Unicode character (expected a surrogate pair)"


def _first_problem(data: Any, problem: Callable[[Any], str | None]) -> InvalidArgument | None:
    """InvalidArgument at the JSON pointer of the first value, in document order, ``problem`` names."""
    # A loop, not recursion: json.loads nests as deep as the recursion limit allows.
    stack: list[tuple[tuple[str, ...], Any]] = [((), data)]
    while stack:
        parts, value = stack.pop()
        found = problem(value)
        if found is not None:
            # A key on the path may hold a lone surrogate itself; the message must stay encodable.
            path = "/".join(part.encode("utf-8", "backslashreplace").decode() for part in parts)
            return InvalidArgument(f"document/{path}" if path else "document", found)
        if isinstance(value, dict):
            stack.extend(((*parts, str(key)), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*parts, str(index)), item) for index, item in reversed(list(enumerate(value))))
    return None


# --- CycloneDX JSON -----------------------------------------------------------------------


def _resources() -> Path:
    import cyclonedx.schema

    return Path(cyclonedx.schema.__file__).parent / "_res"


def _retrieve(uri: str) -> Any:
    # The CycloneDX schemas refer to their siblings (spdx, jsf, crypto defs) by relative URI.
    name = uri.rsplit("/", 1)[-1]
    if name.endswith(".schema.json") and ".SNAPSHOT." not in name:
        name = name.replace(".schema.json", ".SNAPSHOT.schema.json")
    path = _resources() / name
    if not path.is_file():
        raise ValueError(f"unknown schema {uri}")
    return json.loads(path.read_text())


@cache
def cyclonedx_validator(version: str) -> Any:
    """The jsonschema-rs validator of a CycloneDX JSON schema (1.4-1.7), built once."""
    import jsonschema_rs

    schema = json.loads((_resources() / f"bom-{version}.SNAPSHOT.schema.json").read_text())
    return jsonschema_rs.validator_for(schema, retriever=_retrieve, validate_formats=True)


def first_schema_error(validator: Any, data: Any) -> None:
    """Raise InvalidArgument for the first error ``validator`` finds in ``data``."""
    for error in validator.iter_errors(data):
        path = "/".join(str(part) for part in error.instance_path)
        raise InvalidArgument(f"document/{path}" if path else "document", error.message)


def check_spec_version(version: object, field_name: str) -> str:
    """Return a supported CycloneDX version or raise InvalidArgument naming the field."""
    if not isinstance(version, str) or version not in CYCLONEDX_VERSIONS:
        raise InvalidArgument(
            field_name, f"expected CycloneDX {', '.join(CYCLONEDX_VERSIONS)}, got {version!r}"
        )
    return version


def parse_cyclonedx_json(data: dict[str, Any], *, check_schema: bool = True) -> ParsedSbom:
    """Read a CycloneDX JSON document (already ``json.loads``-ed)."""
    if data.get("bomFormat") != "CycloneDX":
        raise InvalidArgument("document/bomFormat", f"expected 'CycloneDX', got {data.get('bomFormat')!r}")
    version = check_spec_version(data.get("specVersion"), "document/specVersion")
    if check_schema:
        first_schema_error(cyclonedx_validator(version), data)
    metadata = data.get("metadata") or {}
    subject_data = metadata.get("component")
    subject = (
        _json_component(subject_data, "metadata", "document/metadata/component") if subject_data else None
    )
    components = tuple(
        _json_component(entry, str(index), path)
        for index, path, entry in _walk_json(data.get("components") or [], "document/components", 0)
    )
    _cap(len(components))
    dependencies = {
        str(entry["ref"]): tuple(str(ref) for ref in entry.get("dependsOn") or ())
        for entry in data.get("dependencies") or ()
    }
    return ParsedSbom(
        format=SbomFormat.CYCLONEDX_JSON,
        spec_version=version,
        generator=_json_generator(metadata.get("tools")),
        subject=subject,
        components=components,
        dependencies=dependencies,
        serial_number=str(data.get("serialNumber", "")),
        timestamp=str(metadata.get("timestamp", "")),
    )


def _cap(count: int) -> None:
    if count > MAX_COMPONENTS:
        raise InvalidArgument("document/components", f"at most {MAX_COMPONENTS} components, got {count}")


def _walk_json(entries: list[Any], path: str, depth: int) -> Iterator[tuple[int, str, dict[str, Any]]]:
    if depth > MAX_NESTING:
        raise InvalidArgument("document/components", f"components nested deeper than {MAX_NESTING} levels")
    for index, entry in enumerate(entries):
        yield index, f"{path}/{index}", entry
        if entry.get("components"):
            yield from _walk_json(entry["components"], f"{path}/{index}/components", depth + 1)


def _json_licences(entries: list[Any], path: str) -> tuple[str, ...]:
    values: list[str] = []
    for index, entry in enumerate(entries):
        if "expression" in entry:
            values.append(text(entry["expression"], f"{path}/{index}/expression"))
            continue
        licence = entry.get("license") or {}
        key = "id" if licence.get("id") else "name"
        value = licence.get(key)
        if value:
            values.append(text(value, f"{path}/{index}/license/{key}"))
    return tuple(dict.fromkeys(values))


def _json_component(entry: dict[str, Any], fallback_ref: str, path: str) -> ParsedComponent:
    def field(key: str, default: str = "") -> str:
        return identifier(entry.get(key, default), f"{path}/{key}")

    component = Component(
        type=field("type", "library"),
        name=field("name"),
        version=field("version"),
        group=field("group"),
        purl=purl(entry.get("purl", ""), f"{path}/purl"),
        licenses=_json_licences(entry.get("licenses") or [], f"{path}/licenses"),
    )
    hashes = tuple(
        (
            identifier(h["alg"], f"{path}/hashes/{index}/alg"),
            identifier(h["content"], f"{path}/hashes/{index}/content").lower(),
        )
        for index, h in enumerate(entry.get("hashes") or ())
    )
    return ParsedComponent(
        ref=identifier(entry.get("bom-ref") or f"component-{fallback_ref}", f"{path}/bom-ref"),
        component=component,
        hashes=hashes,
        scope=field("scope"),
    )


def _json_generator(tools: Any) -> str:
    # 1.4: an array of {vendor, name, version}; 1.5+: {components: [...], services: [...]}
    # (the array form is still allowed there, deprecated).
    path = "document/metadata/tools"
    if isinstance(tools, dict):
        listed = [
            (f"{path}/{kind}/{index}", tool)
            for kind in ("components", "services")
            for index, tool in enumerate(tools.get(kind) or ())
        ]
    else:
        listed = [(f"{path}/{index}", tool) for index, tool in enumerate(tools or ())]
    for where, tool in listed:
        name = identifier(tool.get("name", ""), f"{where}/name").strip()
        if name:
            return f"{name} {identifier(tool.get('version', ''), f'{where}/version')}".strip()
    return ""
