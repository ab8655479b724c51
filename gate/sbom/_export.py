"""Converting a stored SBOM document to another format (CycloneDX 1.6 JSON/XML, SPDX 2.3 JSON).

The stored document is the record; conversions are made from it on request
and are lossy (properties, services, vulnerabilities and anything else outside
the component model are not carried over), which is why a document asked for
in its own format is returned verbatim by the caller and never converted.
"""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from typing import Any

import gate
from gate.model import Sbom, SbomFormat
from gate.sbom import _document, _licenses
from gate.sbom._ingest import ParsedComponent, ParsedSbom


def _cdx_licences(values: tuple[str, ...]) -> list[dict[str, Any]]:
    if len(values) == 1 and _licenses.is_compound(values[0]):
        return [{"expression": values[0]}]
    choices: list[dict[str, Any]] = []
    for value in values:
        if _licenses.is_compound(value):
            # The schema allows one expression or a list of licences, not both.
            choices.append({"license": {"name": value}})
        elif _licenses.is_spdx_id(value):
            choices.append({"license": {"id": value}})
        else:
            choices.append({"license": {"name": value}})
    return choices


def _cdx_component(entry: ParsedComponent, ref: str) -> dict[str, Any]:
    model = entry.component
    result: dict[str, Any] = {"type": model.type or "library", "bom-ref": ref}
    if model.group:
        result["group"] = model.group
    result["name"] = model.name
    if model.version:
        result["version"] = model.version
    if entry.scope in ("required", "optional", "excluded"):
        result["scope"] = entry.scope
    if entry.hashes:
        result["hashes"] = [{"alg": alg, "content": content} for alg, content in entry.hashes]
    if model.licenses:
        result["licenses"] = _cdx_licences(model.licenses)
    if model.purl:
        result["purl"] = model.purl
    return result


def _serial(parsed: ParsedSbom, sbom: Sbom) -> str:
    if parsed.serial_number.startswith("urn:uuid:"):
        return parsed.serial_number
    # Deterministic: the same stored document always converts to the same serial number.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"gate:sbom:{sbom.id}").urn


def cyclonedx_dict(parsed: ParsedSbom, sbom: Sbom) -> dict[str, Any]:
    """A CycloneDX 1.6 document (as data) for a parsed SBOM."""
    refs: dict[str, str] = {}
    components: list[dict[str, Any]] = []
    for entry in parsed.components:
        # bom-refs must be unique; SPDX ids and refs of flattened nested components may repeat.
        ref = entry.ref if entry.ref not in refs.values() else f"{entry.ref}#{len(components)}"
        refs.setdefault(entry.ref, ref)
        components.append(_cdx_component(entry, ref))
    metadata: dict[str, Any] = {
        "timestamp": sbom.created_at.isoformat(),
        "tools": {"components": [{"type": "application", "name": "gate", "version": gate.__version__}]},
    }
    if parsed.subject is not None:
        subject_ref = parsed.subject.ref if parsed.subject.ref not in refs.values() else "subject"
        refs.setdefault(parsed.subject.ref, subject_ref)
        metadata["component"] = _cdx_component(parsed.subject, subject_ref)
    dependencies = [
        {"ref": refs[ref], "dependsOn": list(dict.fromkeys(refs[t] for t in targets if t in refs))}
        for ref, targets in parsed.dependencies.items()
        if ref in refs
    ]
    document: dict[str, Any] = {
        "$schema": _document.SCHEMA,
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": _serial(parsed, sbom),
        "version": 1,
        "metadata": metadata,
        "components": components,
    }
    if dependencies:
        document["dependencies"] = [d if d["dependsOn"] else {"ref": d["ref"]} for d in dependencies]
    return document


def _xml(document: dict[str, Any]) -> bytes:
    bom = ET.Element(
        "bom", {"xmlns": _document.XML_NAMESPACE, "serialNumber": document["serialNumber"], "version": "1"}
    )
    metadata = ET.SubElement(bom, "metadata")
    ET.SubElement(metadata, "timestamp").text = document["metadata"]["timestamp"]
    tools = ET.SubElement(ET.SubElement(metadata, "tools"), "components")
    for tool in document["metadata"]["tools"]["components"]:
        element = ET.SubElement(tools, "component", {"type": tool["type"]})
        ET.SubElement(element, "name").text = tool["name"]
        ET.SubElement(element, "version").text = tool["version"]
    if "component" in document["metadata"]:
        _document._xml_component(metadata, document["metadata"]["component"])
    return _document.xml_body(bom, document, empty_dependencies=False)


def convert(parsed: ParsedSbom, sbom: Sbom, fmt: SbomFormat) -> bytes:
    """The parsed SBOM written in ``fmt`` (CycloneDX 1.6 JSON or XML, or SPDX 2.3 JSON)."""
    if fmt is SbomFormat.SPDX_JSON:
        from gate.sbom._spdx import to_spdx_json

        created = sbom.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        spdx = to_spdx_json(
            parsed,
            name=sbom.artifact_digest,
            namespace=f"https://gate.invalid/spdx/{sbom.id}",
            created=created,
            tool=f"gate-{gate.__version__}",
        )
        return json.dumps(spdx, ensure_ascii=False, separators=(",", ":")).encode()
    document = cyclonedx_dict(parsed, sbom)
    if fmt is SbomFormat.CYCLONEDX_XML:
        return _xml(document)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
