"""SARIF 2.1.0 export of normalised findings: one run per scanner, GitHub code-scanning friendly."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from gate.model import Finding, FindingStatus, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
    Severity.UNKNOWN: "warning",
}
# GitHub reads "security-severity" in CVSS bands; these sit inside each band.
_SCORE = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "2.0",
    Severity.INFO: "0.0",
    Severity.UNKNOWN: "0.0",
}
_SUPPRESSED = {
    FindingStatus.NOT_AFFECTED: "accepted",
    FindingStatus.WILL_NOT_FIX: "accepted",
    FindingStatus.RESOLVED: "accepted",
}


def to_sarif(
    findings: Iterable[Finding],
    *,
    tool_name: str = "gate",
    tool_version: str = "",
    information_uri: str = "",
) -> dict[str, Any]:
    """A SARIF 2.1.0 log of ``findings`` (a JSON-ready dict).

    Each scanner gets its own run (provenance stays visible), named ``tool_name`` with the
    scanner as ``automationDetails.id``. Rules are ``<scanner>/<rule id>``. Paths are relative
    URIs under ``SRCROOT``. ``partialFingerprints["gateFindingId/v1"]`` carries the gate
    fingerprint, so tools that track results across runs follow gate's identity. Findings
    that are not affected, resolved or accepted are exported with a suppression rather than
    dropped; ``properties`` keeps gate's severity, kind, status, package and tool values.
    """
    by_scanner: dict[str, list[Finding]] = {}
    for finding in findings:
        by_scanner.setdefault(finding.scanner, []).append(finding)
    runs = [
        _run(scanner, items, tool_name, tool_version, information_uri)
        for scanner, items in sorted(by_scanner.items())
    ]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": runs}


def _run(scanner: str, findings: list[Finding], name: str, version: str, uri: str) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results = []
    for finding in findings:
        rule_id = f"{scanner}/{finding.rule_id}"
        if rule_id not in index:
            index[rule_id] = len(rules)
            rules.append(_rule(rule_id, finding))
        results.append(_result(finding, rule_id, index[rule_id]))
    driver: dict[str, Any] = {"name": name, "rules": rules}
    if version:
        driver["version"] = version
    if uri:
        driver["informationUri"] = uri
    return {
        "tool": {"driver": driver},
        "automationDetails": {"id": f"{name}/{scanner}/"},
        "originalUriBaseIds": {"SRCROOT": {"uri": "file:///"}},
        "results": results,
        "properties": {"scanner": scanner},
    }


def _score(finding: Finding) -> str:
    return f"{finding.cvss_score:.1f}" if finding.cvss_score > 0 else _SCORE[finding.severity]


def _rule(rule_id: str, finding: Finding) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_id,
        "name": finding.kind.value,
        "shortDescription": {"text": finding.title or finding.rule_id},
        "defaultConfiguration": {"level": _LEVEL[finding.severity]},
        "properties": {
            "security-severity": _score(finding),
            "tags": ["security", finding.kind.value],
        },
    }
    if finding.references:
        rule["helpUri"] = finding.references[0]
    return rule


def _message(finding: Finding) -> str:
    text = finding.title or finding.rule_id
    package = finding.package
    if package is not None and package.name:
        text += f" ({package.name}{' ' + package.version if package.version else ''}"
        text += f"; fixed in {', '.join(package.fixed_versions)})" if package.fixed_versions else ")"
    if finding.redacted_match:
        text += f" [{finding.redacted_match}]"
    return text


def _result(finding: Finding, rule_id: str, rule_index: int) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "gate.severity": finding.severity.name,
        "gate.kind": finding.kind.value,
        "gate.status": finding.status.value,
        "security-severity": _score(finding),
    }
    if finding.tool_severity:
        properties["toolSeverity"] = finding.tool_severity
    if finding.package is not None:
        properties["package"] = {
            "name": finding.package.name,
            "version": finding.package.version,
            "purl": finding.package.purl,
            "fixedVersions": list(finding.package.fixed_versions),
        }
    if finding.cvss_score > 0:
        properties["cvss"] = finding.cvss_score
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "kind": "fail",
        "message": {"text": _message(finding)},
        "partialFingerprints": {"gateFindingId/v1": finding.fingerprint},
        "properties": properties,
    }
    location = finding.location
    if location is not None and location.path:
        physical: dict[str, Any] = {
            "artifactLocation": {"uri": quote(location.path.lstrip("/"), safe="/"), "uriBaseId": "SRCROOT"}
        }
        if location.start_line > 0:
            physical["region"] = {
                "startLine": location.start_line,
                "endLine": max(location.end_line, location.start_line),
            }
        result["locations"] = [{"physicalLocation": physical}]
        if location.commit:
            properties["commit"] = location.commit
        if location.layer_digest:
            properties["layer"] = location.layer_digest
    suppression = _SUPPRESSED.get(finding.status)
    if suppression is not None:
        result["suppressions"] = [
            {"kind": "external", "status": suppression, "justification": finding.status.value}
        ]
    return result
