"""CycloneDX documents with a ``vulnerabilities`` array (Trivy ``-f cyclonedx --scanners vuln``)."""

from __future__ import annotations

from typing import Any

from gate.model import Finding, FindingKind, FindingStatus, Location, Package, Severity
from scanners.reports._context import Ctx, join
from scanners.reports._normalise import package_identity, parse_purl, references, vulnerability_fingerprint
from scanners.reports._types import ArtifactHints, UnsupportedReport

_SEVERITY = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "info": Severity.INFO,
    "none": Severity.INFO,
    "unknown": Severity.UNKNOWN,
}
_ANALYSIS = {
    "not_affected": FindingStatus.NOT_AFFECTED,
    "false_positive": FindingStatus.NOT_AFFECTED,
    "resolved": FindingStatus.RESOLVED,
    "resolved_with_pedigree": FindingStatus.RESOLVED,
    "in_triage": FindingStatus.UNDER_INVESTIGATION,
    "exploitable": FindingStatus.AFFECTED,
}


def is_cyclonedx(doc: Any) -> bool:
    """True for a CycloneDX JSON document."""
    return isinstance(doc, dict) and doc.get("bomFormat") == "CycloneDX"


def parse(doc: dict[str, Any], ctx: Ctx, tool: str) -> ArtifactHints:
    """Findings from a CycloneDX document's vulnerabilities; an SBOM without them is refused."""
    if not doc.get("vulnerabilities"):
        raise UnsupportedReport(
            ctx.where(""),
            "a CycloneDX SBOM without vulnerabilities is not a scan report; store it with UploadSbom",
        )
    ctx.format = "cyclonedx"
    metadata = ctx.field_obj(doc, "metadata", "")
    tools = metadata.get("tools")
    tool_items = tools.get("components") if isinstance(tools, dict) else tools
    for _, item in ctx.objects(tool_items, "metadata.tools"):
        if str(item.get("name", "")).lower() == tool:
            ctx.tool_version = ctx.text(item, "version", "metadata.tools")
    subject = ctx.field_obj(metadata, "component", "metadata")
    purls, owners = _components(doc, ctx)
    for path, vuln in ctx.field_objects(doc, "vulnerabilities", ""):
        _vulnerability(vuln, path, ctx, tool, purls, owners)
    return ArtifactHints(name=ctx.text(subject, "name", "metadata.component"), type="cyclonedx")


def _components(doc: dict[str, Any], ctx: Ctx) -> tuple[dict[str, tuple[str, str, str]], dict[str, str]]:
    """bom-ref to (purl, name, version); bom-ref to the application (lockfile) that declares it."""
    purls: dict[str, tuple[str, str, str]] = {}
    apps: dict[str, str] = {}
    pending = ctx.field_objects(doc, "components", "")
    while pending:
        path, component = pending.pop()
        ref = ctx.text(component, "bom-ref", path)
        name = ctx.text(component, "name", path)
        if ctx.text(component, "type", path) == "application":
            apps[ref] = name
        purls[ref] = (ctx.text(component, "purl", path), name, ctx.text(component, "version", path))
        pending.extend(ctx.field_objects(component, "components", path))
    owners: dict[str, str] = {}
    for path, dependency in ctx.field_objects(doc, "dependencies", ""):
        app = apps.get(ctx.text(dependency, "ref", path))
        if app is not None:
            for child in ctx.texts(dependency, "dependsOn", path):
                owners.setdefault(child, app)
    return purls, owners


def _vulnerability(
    vuln: dict[str, Any],
    path: str,
    ctx: Ctx,
    tool: str,
    purls: dict[str, tuple[str, str, str]],
    owners: dict[str, str],
) -> None:
    vuln_id = ctx.text(vuln, "id", path, required=True)
    source = ctx.text(ctx.field_obj(vuln, "source", path), "name", join(path, "source"))
    ratings: list[tuple[str, Severity, str]] = []
    best_score = 0.0
    for rating_path, rating in ctx.field_objects(vuln, "ratings", path):
        severity = ctx.choice(rating, "severity", rating_path, _SEVERITY, Severity.UNKNOWN)
        best_score = max(best_score, ctx.number(rating, "score", rating_path))
        rater = ctx.text(ctx.field_obj(rating, "source", rating_path), "name", join(rating_path, "source"))
        ratings.append((rater, severity, ctx.text(rating, "severity", rating_path)))
    # The rating by the advisory's own source is the one the tool chose; else the highest.
    own = [r for r in ratings if r[0] == source]
    chosen = own[0] if own else max(ratings, key=lambda r: r[1], default=None)
    severity, tool_severity = (chosen[1], chosen[2]) if chosen else (Severity.UNKNOWN, "")
    analysis = ctx.field_obj(vuln, "analysis", path)
    status = ctx.choice(analysis, "state", join(path, "analysis"), _ANALYSIS, FindingStatus.AFFECTED)
    advisories = [ctx.text(a, "url", p) for p, a in ctx.field_objects(vuln, "advisories", path)]
    for affect_path, affect in ctx.field_objects(vuln, "affects", path):
        ref = ctx.text(affect, "ref", affect_path, required=True)
        purl_text, name, version = purls.get(ref, (ref if ref.startswith("pkg:") else "", "", ""))
        purl = parse_purl(ctx, purl_text, join(affect_path, "ref"))
        name = name or (purl.name if purl is not None else ref)
        version = version or (purl.version if purl is not None else "")
        declared_in = owners.get(ref, "")
        recommendation = ctx.text(vuln, "recommendation", path)
        ctx.add(
            Finding(
                fingerprint=vulnerability_fingerprint(vuln_id, package_identity(purl, "", name), declared_in),
                scan_id="",
                scanner=tool,
                kind=FindingKind.VULNERABILITY,
                rule_id=vuln_id,
                title=vuln_id,
                severity=severity,
                tool_severity=tool_severity,
                description="\n\n".join(
                    p for p in (ctx.text(vuln, "description", path), recommendation) if p
                ),
                package=Package(name=name, version=version, purl=purl.text if purl is not None else ""),
                location=Location(path=declared_in) if declared_in else None,
                fix_available=recommendation.startswith("Upgrade"),
                references=references(advisories),
                cvss_score=best_score,
                status=status,
            ),
            path,
        )
