"""Snyk CLI JSON (``snyk test``, ``snyk container test``, ``snyk iac test``) and REST issues pages.

Snyk's own ``severity`` is kept (it is not recomputed from ``cvssScore``). ``snyk test``
lists a vulnerability once per dependency path; those entries share a fingerprint and
are merged by the caller. Snyk Code writes SARIF, read by the SARIF parser.
"""

from __future__ import annotations

from typing import Any

from gate.model import Finding, FindingKind, FindingStatus, Location, Package, Severity
from scanners.reports._context import Ctx, fingerprint, join
from scanners.reports._normalise import (
    LOWER_SEVERITY,
    build_purl,
    package_identity,
    references,
    vulnerability_fingerprint,
)
from scanners.reports._types import ArtifactHints, UnsupportedReport

TOOL = "snyk"
_REST_KINDS = {
    "package_vulnerability": FindingKind.VULNERABILITY,
    "license": FindingKind.LICENSE,
    "code": FindingKind.CODE,
    "cloud": FindingKind.MISCONFIGURATION,
    "config": FindingKind.MISCONFIGURATION,
    "custom": FindingKind.CODE,
}


def parse(doc: Any, ctx: Ctx) -> ArtifactHints:
    """Parse a Snyk JSON report (one project, an ``--all-projects`` array, or a REST page)."""
    ctx.tool = TOOL
    if isinstance(doc, dict) and "data" in doc and ("jsonapi" in doc or "links" in doc):
        return _rest(doc, ctx)
    projects = ctx.objects(doc, "") if isinstance(doc, list) else [("", ctx.obj(doc, ""))]
    hints = ArtifactHints()
    for path, project in projects:
        found = _project(project, path, ctx)
        hints = hints if hints.name else found
    return hints


def _project(project: dict[str, Any], path: str, ctx: Ctx) -> ArtifactHints:
    if "vulnerabilities" not in project and "infrastructureAsCodeIssues" not in project:
        error = project.get("error")
        if isinstance(error, str) and error:
            raise ctx.error(join(path, "error"), f"the report is a Snyk error, not results: {error[:300]}")
        raise UnsupportedReport(
            ctx.where(path),
            "not a Snyk test result (expected `vulnerabilities` or `infrastructureAsCodeIssues`; "
            f"got keys {sorted(project)[:8]})",
        )
    manager = ctx.text(project, "packageManager", path)
    manifest = ctx.relpath(
        ctx.text(project, "displayTargetFile", path) or ctx.text(project, "targetFile", path)
    )
    if "infrastructureAsCodeIssues" in project:
        ctx.format = ctx.format or "snyk-iac"
        # targetFilePath is the runner's absolute path; targetFile is relative to the scan.
        manifest = manifest or ctx.relpath(ctx.text(project, "targetFilePath", path))
        for item_path, item in ctx.field_objects(project, "infrastructureAsCodeIssues", path):
            ctx.add(_iac(item, item_path, ctx, manifest), item_path)
        return ArtifactHints(name=ctx.text(project, "projectName", path), type="iac")
    ctx.format = ctx.format or "snyk-json"
    for item_path, item in ctx.field_objects(project, "vulnerabilities", path):
        ctx.add(_vulnerability(item, item_path, ctx, manager, manifest, FindingStatus.AFFECTED), item_path)
    filtered = ctx.field_obj(project, "filtered", path)
    for item_path, item in ctx.field_objects(filtered, "ignore", join(path, "filtered")):
        # Ignored in the Snyk policy: an accepted risk, kept rather than dropped.
        ctx.add(
            _vulnerability(item, item_path, ctx, manager, manifest, FindingStatus.WILL_NOT_FIX),
            item_path,
        )
    for app_path, app in ctx.field_objects(project, "applications", path):
        _project(app, app_path, ctx)
    name = ctx.text(project, "projectName", path)
    is_image = name.startswith("docker-image|")
    return ArtifactHints(
        name=name.removeprefix("docker-image|") if is_image else name,
        type="container_image" if is_image else manager,
    )


def _advisory(item: dict[str, Any], path: str, ctx: Ctx, snyk_id: str) -> str:
    identifiers = ctx.field_obj(item, "identifiers", path)
    for scheme in ("CVE", "GHSA"):
        ids = sorted(ctx.texts(identifiers, scheme, join(path, "identifiers")))
        if ids:
            return ids[0]
    return snyk_id


def _cvss(item: dict[str, Any], path: str, ctx: Ctx) -> float:
    best = ctx.number(item, "cvssScore", path)
    for detail_path, detail in ctx.field_objects(item, "cvssDetails", path):
        best = max(best, ctx.number(detail, "cvssV3BaseScore", detail_path))
    return best


def _vulnerability(
    item: dict[str, Any], path: str, ctx: Ctx, manager: str, manifest: str, status: FindingStatus
) -> Finding:
    snyk_id = ctx.text(item, "id", path, required=True)
    name = ctx.text(item, "packageName", path) or ctx.text(item, "moduleName", path)
    version = ctx.text(item, "version", path)
    severity = ctx.choice(item, "severity", path, LOWER_SEVERITY, Severity.UNKNOWN)
    is_license = ctx.text(item, "type", path) == "license"
    purl = build_purl(manager, name, version)
    fixed = [v for v in ctx.arr(item.get("fixedIn"), join(path, "fixedIn")) if isinstance(v, str)]
    nearest = ctx.text(item, "nearestFixedInVersion", path)
    if nearest and nearest not in fixed:
        fixed.insert(0, nearest)
    upgradable = ctx.boolean(item, "isUpgradable", path) or ctx.boolean(item, "isPatchable", path)
    refs = [ctx.text(ref, "url", ref_path) for ref_path, ref in ctx.field_objects(item, "references", path)]
    kind = FindingKind.LICENSE if is_license else FindingKind.VULNERABILITY
    if is_license:
        fp = fingerprint(TOOL, kind.value, snyk_id, package_identity(purl, manager, name), manifest)
    else:
        fp = vulnerability_fingerprint(
            _advisory(item, path, ctx, snyk_id), package_identity(purl, manager, name), manifest
        )
    return Finding(
        fingerprint=fp,
        scan_id="",
        scanner=TOOL,
        kind=kind,
        rule_id=snyk_id,
        title=ctx.text(item, "title", path) or snyk_id,
        severity=severity,
        tool_severity=ctx.text(item, "severity", path),
        description=ctx.text(item, "description", path),
        package=Package(
            name=name, version=version, purl=purl.text if purl else "", fixed_versions=tuple(fixed)
        )
        if name
        else None,
        location=Location(path=manifest) if manifest else None,
        fix_available=upgradable or bool(fixed),
        references=references(refs),
        cvss_score=_cvss(item, path, ctx),
        status=status,
    )


def _iac(item: dict[str, Any], path: str, ctx: Ctx, manifest: str) -> Finding:
    rule = ctx.text(item, "publicId", path) or ctx.text(item, "id", path)
    if not rule:
        raise ctx.error(join(path, "id"), "required, missing")
    resource = ctx.text(item, "msg", path)
    line = ctx.integer(item, "lineNumber", path)
    description = ctx.field_obj(item, "iacDescription", path)
    text = "\n\n".join(
        ctx.text(description, key, join(path, "iacDescription"))
        for key in ("issue", "impact", "resolve")
        if description.get(key)
    )
    return Finding(
        fingerprint=fingerprint(TOOL, FindingKind.MISCONFIGURATION.value, rule, manifest, resource),
        scan_id="",
        scanner=TOOL,
        kind=FindingKind.MISCONFIGURATION,
        rule_id=rule,
        title=ctx.text(item, "title", path) or rule,
        severity=ctx.choice(item, "severity", path, LOWER_SEVERITY, Severity.UNKNOWN),
        tool_severity=ctx.text(item, "severity", path),
        description=text,
        location=Location(path=manifest, start_line=max(line, 0), end_line=max(line, 0))
        if manifest
        else None,
        references=references(ctx.texts(item, "references", path), ctx.text(item, "documentation", path)),
        status=FindingStatus.WILL_NOT_FIX if ctx.boolean(item, "isIgnored", path) else FindingStatus.AFFECTED,
    )


def _rest(doc: dict[str, Any], ctx: Ctx) -> ArtifactHints:
    """A page of ``GET /rest/orgs/{org}/issues`` (JSON:API)."""
    ctx.format = "snyk-rest"
    for path, issue in ctx.field_objects(doc, "data", ""):
        attributes = ctx.field_obj(issue, "attributes", path)
        apath = join(path, "attributes")
        key = ctx.text(attributes, "key", apath) or ctx.text(issue, "id", path, required=True)
        kind = ctx.choice(attributes, "type", apath, _REST_KINDS, FindingKind.VULNERABILITY)
        severity = ctx.choice(attributes, "effective_severity_level", apath, LOWER_SEVERITY, Severity.UNKNOWN)
        status = FindingStatus.AFFECTED
        if ctx.text(attributes, "status", apath) == "resolved":
            status = FindingStatus.RESOLVED
        elif ctx.boolean(attributes, "ignored", apath):
            status = FindingStatus.WILL_NOT_FIX
        package: Package | None = None
        location: Location | None = None
        fixable = False
        for cpath, coordinate in ctx.field_objects(attributes, "coordinates", apath):
            fixable = fixable or any(
                ctx.boolean(coordinate, flag, cpath)
                for flag in (
                    "is_fixable_snyk",
                    "is_fixable_upstream",
                    "is_fixable_manually",
                    "is_upgradeable",
                )
            )
            for rpath, representation in ctx.field_objects(coordinate, "representations", cpath):
                dependency = ctx.field_obj(representation, "dependency", rpath)
                if dependency and package is None:
                    dpath = join(rpath, "dependency")
                    package = Package(
                        name=ctx.text(dependency, "package_name", dpath),
                        version=ctx.text(dependency, "package_version", dpath),
                    )
                source = ctx.field_obj(representation, "sourceLocation", rpath)
                if source and location is None:
                    spath = join(rpath, "sourceLocation")
                    region = ctx.field_obj(source, "region", spath)
                    start = ctx.field_obj(region, "start", join(spath, "region"))
                    end = ctx.field_obj(region, "end", join(spath, "region"))
                    location = Location(
                        path=ctx.relpath(ctx.text(source, "file", spath)),
                        start_line=ctx.integer(start, "line", spath),
                        end_line=ctx.integer(end, "line", spath),
                        commit=ctx.text(source, "commit_id", spath),
                    )
        problems = ctx.field_objects(attributes, "problems", apath)
        advisory = next(
            (ctx.text(p, "id", pp) for pp, p in problems if ctx.text(p, "id", pp).upper().startswith("CVE-")),
            key,
        )
        score = max(
            (ctx.number(s, "score", sp) for sp, s in ctx.field_objects(attributes, "severities", apath)),
            default=0.0,
        )
        if kind is FindingKind.VULNERABILITY and package is not None:
            fp = vulnerability_fingerprint(advisory, f"snyk/{package.name.lower()}", "")
        else:
            fp = fingerprint(
                TOOL, kind.value, key, location.path if location else "", package.name if package else ""
            )
        ctx.add(
            Finding(
                fingerprint=fp,
                scan_id="",
                scanner=TOOL,
                kind=kind,
                rule_id=key,
                title=ctx.text(attributes, "title", apath) or key,
                severity=severity,
                tool_severity=ctx.text(attributes, "effective_severity_level", apath),
                package=package,
                location=location,
                fix_available=fixable,
                references=references([ctx.text(p, "url", pp) for pp, p in problems]),
                cvss_score=score,
                status=status,
            ),
            path,
        )
    return ArtifactHints()
