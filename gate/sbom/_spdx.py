"""SPDX 2.3 JSON: reading packages into the component index, and writing a converted document.

The SPDX project does not ship its JSON schema in any package this project
installs, so :data:`SCHEMA` states the part of SPDX 2.3 gate relies on (the
document's required fields, packages, external references, checksums and
relationships, with the spec's SPDXID pattern and enumerations), and
jsonschema-rs checks it, reporting errors with the same JSON-pointer paths as
for CycloneDX.

Writing follows the CycloneDX-to-SPDX rules of the project's notes: SPDXIDs
are generated (bom-refs and purls are not valid SPDXIDs), free-text licences
become ``LicenseRef-`` ids with an extracted-licence entry, the purl goes in
``externalRefs`` (``PACKAGE-MANAGER``/``purl``), dependencies become
``DEPENDS_ON`` and the subject is ``DESCRIBES``-d.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any
from urllib.parse import unquote

from gate.errors import InvalidArgument
from gate.model import Component, SbomFormat
from gate.sbom import _licenses
from gate.sbom._ingest import (
    MAX_COMPONENTS,
    ParsedComponent,
    ParsedSbom,
    first_schema_error,
    identifier,
    purl,
    text,
)

_SPDXID = "^SPDXRef-[A-Za-z0-9.-]+$"
_RELATIONSHIP_TYPES = [
    "DESCRIBES", "DESCRIBED_BY", "CONTAINS", "CONTAINED_BY", "DEPENDS_ON", "DEPENDENCY_OF",
    "DEPENDENCY_MANIFEST_OF", "BUILD_DEPENDENCY_OF", "DEV_DEPENDENCY_OF", "OPTIONAL_DEPENDENCY_OF",
    "PROVIDED_DEPENDENCY_OF", "TEST_DEPENDENCY_OF", "RUNTIME_DEPENDENCY_OF", "EXAMPLE_OF", "GENERATES",
    "GENERATED_FROM", "ANCESTOR_OF", "DESCENDANT_OF", "VARIANT_OF", "DISTRIBUTION_ARTIFACT", "PATCH_FOR",
    "PATCH_APPLIED", "COPY_OF", "FILE_ADDED", "FILE_DELETED", "FILE_MODIFIED", "EXPANDED_FROM_ARCHIVE",
    "DYNAMIC_LINK", "STATIC_LINK", "DATA_FILE_OF", "TEST_CASE_OF", "BUILD_TOOL_OF", "DEV_TOOL_OF", "TEST_OF",
    "TEST_TOOL_OF", "DOCUMENTATION_OF", "OPTIONAL_COMPONENT_OF", "METAFILE_OF", "PACKAGE_OF", "AMENDS",
    "PREREQUISITE_FOR", "HAS_PREREQUISITE", "REQUIREMENT_DESCRIPTION_FOR", "SPECIFICATION_FOR", "OTHER",
]  # fmt: skip
_PURPOSES = [
    "APPLICATION", "FRAMEWORK", "LIBRARY", "CONTAINER", "OPERATING-SYSTEM", "DEVICE", "FIRMWARE", "SOURCE",
    "ARCHIVE", "FILE", "INSTALL", "OTHER",
]  # fmt: skip
_CHECKSUM_ALGORITHMS = [
    "SHA1", "SHA224", "SHA256", "SHA384", "SHA512", "SHA3-256", "SHA3-384", "SHA3-512", "BLAKE2b-256",
    "BLAKE2b-384", "BLAKE2b-512", "BLAKE3", "MD2", "MD4", "MD5", "MD6", "ADLER32",
]  # fmt: skip

_STRING = {"type": "string"}
SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["spdxVersion", "dataLicense", "SPDXID", "name", "documentNamespace", "creationInfo"],
    "properties": {
        "spdxVersion": {"const": "SPDX-2.3"},
        "dataLicense": {"const": "CC0-1.0"},
        "SPDXID": {"const": "SPDXRef-DOCUMENT"},
        "name": _STRING,
        "documentNamespace": _STRING,
        "documentDescribes": {"type": "array", "items": _STRING},
        "creationInfo": {
            "type": "object",
            "required": ["created", "creators"],
            "properties": {
                "created": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"},
                "creators": {"type": "array", "minItems": 1, "items": _STRING},
            },
        },
        "packages": {
            "type": "array",
            "maxItems": MAX_COMPONENTS,
            "items": {
                "type": "object",
                "required": ["SPDXID", "name", "downloadLocation"],
                "properties": {
                    "SPDXID": {"type": "string", "pattern": _SPDXID},
                    "name": _STRING,
                    "versionInfo": _STRING,
                    "downloadLocation": _STRING,
                    "licenseConcluded": _STRING,
                    "licenseDeclared": _STRING,
                    "primaryPackagePurpose": {"enum": _PURPOSES},
                    "checksums": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["algorithm", "checksumValue"],
                            "properties": {
                                "algorithm": {"enum": _CHECKSUM_ALGORITHMS},
                                "checksumValue": _STRING,
                            },
                        },
                    },
                    "externalRefs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["referenceCategory", "referenceType", "referenceLocator"],
                            "properties": {
                                "referenceCategory": {
                                    "enum": [
                                        "SECURITY",
                                        "PACKAGE-MANAGER",
                                        "PERSISTENT-ID",
                                        "OTHER",
                                        "PACKAGE_MANAGER",
                                        "PERSISTENT_ID",
                                    ]
                                },
                                "referenceType": _STRING,
                                "referenceLocator": _STRING,
                            },
                        },
                    },
                },
            },
        },
        "relationships": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["spdxElementId", "relationshipType", "relatedSpdxElement"],
                "properties": {
                    "spdxElementId": _STRING,
                    "relationshipType": {"enum": _RELATIONSHIP_TYPES},
                    "relatedSpdxElement": _STRING,
                },
            },
        },
        "hasExtractedLicensingInfos": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["licenseId", "extractedText"],
                "properties": {"licenseId": {"type": "string", "pattern": "^LicenseRef-[A-Za-z0-9.-]+$"}},
            },
        },
    },
}

_CHECKSUM_TO_CDX = {
    "SHA1": "SHA-1",
    "SHA256": "SHA-256",
    "SHA384": "SHA-384",
    "SHA512": "SHA-512",
    "SHA3-256": "SHA3-256",
    "SHA3-384": "SHA3-384",
    "SHA3-512": "SHA3-512",
    "BLAKE2b-256": "BLAKE2b-256",
    "BLAKE2b-384": "BLAKE2b-384",
    "BLAKE2b-512": "BLAKE2b-512",
    "BLAKE3": "BLAKE3",
    "MD5": "MD5",
}
_CDX_TO_CHECKSUM = {cdx: spdx for spdx, cdx in _CHECKSUM_TO_CDX.items()}
_TYPE_OF_PURPOSE = {
    "APPLICATION": "application",
    "FRAMEWORK": "framework",
    "LIBRARY": "library",
    "CONTAINER": "container",
    "OPERATING-SYSTEM": "operating-system",
    "DEVICE": "device",
    "FIRMWARE": "firmware",
    "FILE": "file",
}
_PURPOSE_OF_TYPE = {kind: purpose for purpose, kind in _TYPE_OF_PURPOSE.items()}
_NO_LICENCE = frozenset({"", "NOASSERTION", "NONE"})
_GROUP_TYPES = ("pkg:npm/", "pkg:maven/")


@cache
def _validator() -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for(SCHEMA)


def parse_spdx_json(data: dict[str, Any], *, check_schema: bool = True) -> ParsedSbom:
    """Read an SPDX 2.3 JSON document (already ``json.loads``-ed).

    Packages the document describes become the subject (the first) and are
    left out of the component index, like CycloneDX's ``metadata.component``.
    """
    version = data.get("spdxVersion")
    if version != "SPDX-2.3":
        raise InvalidArgument("document/spdxVersion", f"expected 'SPDX-2.3', got {version!r}")
    if check_schema:
        first_schema_error(_validator(), data)
    described = [str(x) for x in data.get("documentDescribes") or ()]
    dependencies: dict[str, list[str]] = {}
    for relation in data.get("relationships") or ():
        kind = relation["relationshipType"]
        source, target = str(relation["spdxElementId"]), str(relation["relatedSpdxElement"])
        if kind == "DESCRIBES" and source == "SPDXRef-DOCUMENT":
            described.append(target)
        elif kind == "DESCRIBED_BY" and target == "SPDXRef-DOCUMENT":
            described.append(source)
        elif kind == "DEPENDS_ON":
            dependencies.setdefault(source, []).append(target)
        elif kind == "DEPENDENCY_OF":
            dependencies.setdefault(target, []).append(source)
    roots = set(described)
    subject: ParsedComponent | None = None
    components: list[ParsedComponent] = []
    for index, package in enumerate(data.get("packages") or ()):
        parsed = _package(package, f"document/packages/{index}")
        if parsed.ref in roots:
            subject = subject or parsed
        else:
            components.append(parsed)
    creators = data["creationInfo"]["creators"]
    tools = [
        identifier(c, f"document/creationInfo/creators/{index}").removeprefix("Tool:").strip()
        for index, c in enumerate(creators)
        if str(c).startswith("Tool:")
    ]
    return ParsedSbom(
        format=SbomFormat.SPDX_JSON,
        spec_version="2.3",
        generator=tools[0] if tools else "",
        subject=subject,
        components=tuple(components),
        dependencies={ref: tuple(dict.fromkeys(targets)) for ref, targets in dependencies.items()},
        serial_number=str(data["documentNamespace"]),
        timestamp=str(data["creationInfo"]["created"]),
    )


def _package(package: dict[str, Any], path: str) -> ParsedComponent:
    locator = ""
    for index, ref in enumerate(package.get("externalRefs") or ()):
        if ref["referenceType"] == "purl":
            locator = purl(ref["referenceLocator"], f"{path}/externalRefs/{index}/referenceLocator")
            break
    licences = [
        text(package.get(key, ""), f"{path}/{key}")
        for key in ("licenseConcluded", "licenseDeclared")
        if str(package.get(key, "")) not in _NO_LICENCE
    ]
    group = ""
    if locator.startswith(_GROUP_TYPES):
        # SPDX has no group; npm scopes and Maven groupIds are the purl namespace.
        from packageurl import PackageURL

        try:
            group = unquote(PackageURL.from_string(locator).namespace or "")
        except ValueError:
            group = ""
    hashes = tuple(
        (
            _CHECKSUM_TO_CDX[c["algorithm"]],
            identifier(c["checksumValue"], f"{path}/checksums/{index}/checksumValue").lower(),
        )
        for index, c in enumerate(package.get("checksums") or ())
        if c["algorithm"] in _CHECKSUM_TO_CDX
    )
    return ParsedComponent(
        ref=identifier(package["SPDXID"], f"{path}/SPDXID"),
        component=Component(
            type=_TYPE_OF_PURPOSE.get(str(package.get("primaryPackagePurpose", "")), "library"),
            name=identifier(package["name"], f"{path}/name"),
            version=identifier(package.get("versionInfo", ""), f"{path}/versionInfo"),
            group=group,
            purl=locator,
            licenses=tuple(dict.fromkeys(licences[:1])),
        ),
        hashes=hashes,
    )


# --- writing ------------------------------------------------------------------------------

_NOT_IDSTRING = re.compile(r"[^A-Za-z0-9.-]+")


def _licence_ref(name: str) -> str:
    return "LicenseRef-" + (_NOT_IDSTRING.sub("-", name).strip("-") or "unnamed")


def to_spdx_json(parsed: ParsedSbom, *, name: str, namespace: str, created: str, tool: str) -> dict[str, Any]:
    """An SPDX 2.3 JSON document (as data) for a parsed SBOM.

    Args:
        parsed: The SBOM read from its stored document.
        name: The document name (the artifact).
        namespace: A unique URI for this document.
        created: Creation time, ``YYYY-MM-DDThh:mm:ssZ``.
        tool: The converting tool, ``name-version``.
    """
    ids: dict[str, str] = {}
    extracted: dict[str, str] = {}
    packages: list[dict[str, Any]] = []
    entries = ([parsed.subject] if parsed.subject else []) + list(parsed.components)
    for index, entry in enumerate(entries):
        spdx_id = f"SPDXRef-Package-{index}"
        ids.setdefault(entry.ref, spdx_id)
        packages.append(_spdx_package(entry, spdx_id, extracted))
    relationships: list[dict[str, str]] = []
    if parsed.subject is not None:
        relationships.append(_relation("SPDXRef-DOCUMENT", "DESCRIBES", ids[parsed.subject.ref]))
    else:
        relationships.extend(_relation("SPDXRef-DOCUMENT", "DESCRIBES", p["SPDXID"]) for p in packages)
    for ref, targets in parsed.dependencies.items():
        for target in targets:
            if ref in ids and target in ids:
                relationships.append(_relation(ids[ref], "DEPENDS_ON", ids[target]))
    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": namespace,
        "creationInfo": {"created": created, "creators": [f"Tool: {tool}"]},
        "packages": packages,
        "relationships": relationships,
    }
    if extracted:
        document["hasExtractedLicensingInfos"] = [
            {"licenseId": licence_id, "extractedText": text, "name": text}
            for licence_id, text in sorted(extracted.items())
        ]
    return document


def _relation(source: str, kind: str, target: str) -> dict[str, str]:
    return {"spdxElementId": source, "relationshipType": kind, "relatedSpdxElement": target}


def _spdx_licence(values: tuple[str, ...], extracted: dict[str, str]) -> str:
    terms: list[str] = []
    for value in values:
        if _licenses.is_spdx_id(value) or _licenses.is_compound(value):
            terms.append(f"({value})" if _licenses.is_compound(value) and len(values) > 1 else value)
        else:
            ref = _licence_ref(value)
            extracted[ref] = value
            terms.append(ref)
    # Several CycloneDX licence entries have no defined combination; all of them apply.
    return " AND ".join(terms) if terms else "NOASSERTION"


def _spdx_package(entry: ParsedComponent, spdx_id: str, extracted: dict[str, str]) -> dict[str, Any]:
    model = entry.component
    package: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": model.name or entry.ref,
        "downloadLocation": "NOASSERTION",
        # Without this SPDX 2.3 requires a verification code over files gate does not list.
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": _spdx_licence(model.licenses, extracted),
        "copyrightText": "NOASSERTION",
    }
    if model.version:
        package["versionInfo"] = model.version
    purpose = _PURPOSE_OF_TYPE.get(model.type)
    if purpose:
        package["primaryPackagePurpose"] = purpose
    checksums = [
        {"algorithm": _CDX_TO_CHECKSUM[alg], "checksumValue": content}
        for alg, content in entry.hashes
        if alg in _CDX_TO_CHECKSUM
    ]
    if checksums:
        package["checksums"] = checksums
    if model.purl:
        package["externalRefs"] = [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": model.purl}
        ]
    return package
