"""Trivy JSON reports: SchemaVersion 2, the legacy results array, ``trivy k8s`` and trivy-operator CRDs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gate._git import COMMIT
from gate.model import Finding, FindingKind, FindingStatus, Location, Package, Severity
from scanners.reports._context import Ctx, fingerprint, join, masked_tokens
from scanners.reports._normalise import (
    OS_TYPES,
    TRIVY_STATUS,
    UPPER_SEVERITY,
    Purl,
    build_purl,
    package_identity,
    parse_purl,
    references,
    split_versions,
    vulnerability_fingerprint,
)
from scanners.reports._types import ArtifactHints, UnsupportedReport

TOOL = "trivy"
_OPERATOR_GROUP = "aquasecurity.github.io"
_MISCONF_STATUS = {"FAIL": FindingStatus.AFFECTED, "EXCEPTION": FindingStatus.WILL_NOT_FIX}
_HIDDEN = "<redacted by gate>"
_CHECK_REPORTS = frozenset(
    {
        "ConfigAuditReport",
        "ClusterConfigAuditReport",
        "RbacAssessmentReport",
        "ClusterRbacAssessmentReport",
        "InfraAssessmentReport",
        "ClusterInfraAssessmentReport",
    }
)


def parse(doc: Any, ctx: Ctx) -> ArtifactHints:
    """Parse any Trivy JSON shape into ``ctx.findings``; return the artifact hints."""
    ctx.tool = TOOL
    if doc is None or isinstance(doc, list):
        if doc and isinstance(doc[0], dict) and "apiVersion" in doc[0]:
            return _operator_list(doc, ctx, "")
        ctx.format = "trivy-legacy"
        for path, result in ctx.objects(doc, ""):
            _result(result, path, ctx, scope="")
        return ArtifactHints()
    report = ctx.obj(doc, "")
    if "SchemaVersion" in report:
        return _schema2(report, ctx)
    if "ClusterName" in report:
        return _k8s(report, ctx)
    if _OPERATOR_GROUP in str(report.get("apiVersion", "")):
        return _operator(report, "", ctx)
    if report and all(k.endswith(_OPERATOR_GROUP) for k in report):
        hints = ArtifactHints()
        for key, value in report.items():
            found = _operator_list(ctx.arr(value, key), ctx, key)
            hints = hints if hints.name else found
        return hints
    raise UnsupportedReport(
        ctx.where(""),
        "not a Trivy report (expected SchemaVersion 2, a legacy results array, a `trivy k8s` "
        f"report or trivy-operator CRDs; got an object with keys {sorted(report)[:8]})",
    )


def _schema2(report: dict[str, Any], ctx: Ctx) -> ArtifactHints:
    version = report.get("SchemaVersion")
    if version != 2 or isinstance(version, bool):
        raise ctx.error("SchemaVersion", f"unsupported schema version: expected 2, got {version!r}")
    ctx.format = "trivy-json"
    trivy = ctx.field_obj(report, "Trivy", "")
    ctx.tool_version = ctx.text(trivy, "Version", "Trivy")
    for path, result in ctx.field_objects(report, "Results", ""):
        _result(result, path, ctx, scope="")
    metadata = ctx.field_obj(report, "Metadata", "")
    commit = ctx.text(metadata, "Commit", "Metadata")
    return ArtifactHints(
        name=ctx.text(report, "ArtifactName", ""),
        type=ctx.text(report, "ArtifactType", ""),
        image_id=ctx.text(metadata, "ImageID", "Metadata"),
        repo_digests=tuple(ctx.texts(metadata, "RepoDigests", "Metadata")),
        repo_url=ctx.text(metadata, "RepoURL", "Metadata"),
        commit=commit if COMMIT.fullmatch(commit) else "",
        branch=ctx.text(metadata, "Branch", "Metadata"),
    )


def _k8s(report: dict[str, Any], ctx: Ctx) -> ArtifactHints:
    """``trivy k8s``: ``Resources[]`` (current) or ``Vulnerabilities[]``/``Misconfigurations[]`` (old)."""
    ctx.format = "trivy-k8s"
    for key in ("Resources", "Vulnerabilities", "Misconfigurations"):
        for path, resource in ctx.field_objects(report, key, ""):
            scope = "/".join(ctx.text(resource, part, path) for part in ("Namespace", "Kind", "Name"))
            for result_path, result in ctx.field_objects(resource, "Results", path):
                _result(result, result_path, ctx, scope=scope)
    return ArtifactHints(name=ctx.text(report, "ClusterName", ""), type="kubernetes")


def _result(result: dict[str, Any], path: str, ctx: Ctx, *, scope: str) -> None:
    target = ctx.relpath(ctx.text(result, "Target", path))
    result_class = ctx.text(result, "Class", path)
    result_type = ctx.text(result, "Type", path)
    is_os = result_class == "os-pkgs" or (not result_class and result_type in OS_TYPES)
    where = (target, result_type, is_os, scope)
    for item_path, item in ctx.field_objects(result, "Vulnerabilities", path):
        ctx.add(_vulnerability(item, item_path, ctx, where), item_path)
    for item_path, item in ctx.field_objects(result, "Misconfigurations", path):
        found = _misconfiguration(item, item_path, ctx, target, scope)
        if found is not None:
            ctx.add(found, item_path)
    for item_path, item in ctx.field_objects(result, "Secrets", path):
        ctx.add(_secret(item, item_path, ctx, target, scope), item_path)
    for item_path, item in ctx.field_objects(result, "Licenses", path):
        ctx.add(_license(item, item_path, ctx, target, scope), item_path)
    for item_path, item in ctx.field_objects(result, "ExperimentalModifiedFindings", path):
        _suppressed(item, item_path, ctx, where)


def _suppressed(item: dict[str, Any], path: str, ctx: Ctx, where: tuple[str, str, bool, str]) -> None:
    """``--show-suppressed`` entries: kept, with the status the ignore file or VEX gave them."""
    kind = ctx.text(item, "Type", path).lower()
    status = ctx.choice(item, "Status", path, TRIVY_STATUS, FindingStatus.WILL_NOT_FIX)
    inner = ctx.field_obj(item, "Finding", path)
    inner_path = join(path, "Finding")
    target, _, _, scope = where
    found: Finding | None
    if kind == "vulnerability":
        found = _vulnerability(inner, inner_path, ctx, where)
    elif kind == "misconfiguration":
        found = _misconfiguration(inner, inner_path, ctx, target, scope)
    elif kind == "secret":
        found = _secret(inner, inner_path, ctx, target, scope)
    elif kind == "license":
        found = _license(inner, inner_path, ctx, target, scope)
    else:
        ctx.warn(join(path, "Type"), f"unknown suppressed finding type {kind!r}, skipped")
        return
    if found is None:
        return
    statement = ctx.text(item, "Statement", path)
    source = ctx.text(item, "Source", path)
    note = f"Suppressed by {source or 'policy'}: {statement}" if statement else ""
    description = "\n\n".join(part for part in (found.description, note) if part)
    ctx.add(replace(found, status=status, description=description), path)


def _severity(item: dict[str, Any], path: str, ctx: Ctx, key: str = "Severity") -> tuple[Severity, str]:
    severity = ctx.choice(item, key, path, UPPER_SEVERITY, Severity.UNKNOWN)
    return severity, ctx.text(item, key, path)


def _cvss(item: dict[str, Any], path: str, ctx: Ctx) -> float:
    best = 0.0
    for vendor, scores in ctx.field_obj(item, "CVSS", path).items():
        vendor_path = f"{path}.CVSS.{vendor}"
        vendor_scores = ctx.obj(scores, vendor_path)
        for key in ("V2Score", "V3Score", "V40Score"):
            if key in vendor_scores:
                best = max(best, ctx.number(vendor_scores, key, vendor_path))
    return best


def _vulnerability(item: dict[str, Any], path: str, ctx: Ctx, where: tuple[str, str, bool, str]) -> Finding:
    target, result_type, is_os, scope = where
    vuln_id = ctx.text(item, "VulnerabilityID", path, required=True)
    name = ctx.text(item, "PkgName", path, required=True)
    installed = ctx.text(item, "InstalledVersion", path)
    fixed = ctx.text(item, "FixedVersion", path)
    identifier = ctx.field_obj(item, "PkgIdentifier", path)
    purl = parse_purl(
        ctx, ctx.text(identifier, "PURL", join(path, "PkgIdentifier")), join(path, "PkgIdentifier.PURL")
    )
    if purl is None:
        purl = build_purl(result_type, name, installed)
    severity, tool_severity = _severity(item, path, ctx)
    status = ctx.choice(item, "Status", path, TRIVY_STATUS, FindingStatus.AFFECTED)
    pkg_path = ctx.relpath(ctx.text(item, "PkgPath", path))
    declared_in = pkg_path or ("" if is_os else target)
    layer = ctx.field_obj(item, "Layer", path)
    location = None
    if declared_in or layer:
        location = Location(path=declared_in, layer_digest=ctx.text(layer, "Digest", join(path, "Layer")))
    return _vulnerability_finding(
        vuln_id=vuln_id,
        name=name,
        installed=installed,
        fixed=fixed,
        purl=purl,
        package_type=result_type,
        declared_in=declared_in,
        scope=scope,
        title=ctx.text(item, "Title", path) or vuln_id,
        severity=severity,
        tool_severity=tool_severity,
        description=ctx.text(item, "Description", path),
        location=location,
        links=references(ctx.text(item, "PrimaryURL", path), ctx.texts(item, "References", path)),
        cvss_score=_cvss(item, path, ctx),
        status=status,
    )


def _vulnerability_finding(
    *,
    vuln_id: str,
    name: str,
    installed: str,
    fixed: str,
    purl: Purl | None,
    package_type: str,
    declared_in: str,
    scope: str,
    title: str,
    severity: Severity,
    tool_severity: str,
    location: Location | None,
    links: tuple[str, ...],
    cvss_score: float,
    description: str = "",
    status: FindingStatus = FindingStatus.AFFECTED,
) -> Finding:
    """A vulnerability finding of either report shape (``trivy`` JSON or the Trivy Operator's).

    The fingerprint and the package fields are built alike for both shapes, so the
    same advisory in the same package matches across them. ``fixed`` is the fixed
    versions as Trivy lists them (a comma-separated string).
    """
    return Finding(
        fingerprint=vulnerability_fingerprint(
            vuln_id, package_identity(purl, package_type, name), declared_in, scope
        ),
        scan_id="",
        scanner=TOOL,
        kind=FindingKind.VULNERABILITY,
        rule_id=vuln_id,
        title=title,
        severity=severity,
        tool_severity=tool_severity,
        description=description,
        package=Package(
            name=name,
            version=installed,
            purl=purl.text if purl is not None else "",
            fixed_versions=split_versions(fixed),
        ),
        location=location,
        fix_available=bool(fixed),
        references=links,
        cvss_score=cvss_score,
        status=status,
    )


def _cause_lines(item: dict[str, Any], path: str, ctx: Ctx) -> tuple[str, int, int]:
    cause = ctx.field_obj(item, "CauseMetadata", path)
    cause_path = join(path, "CauseMetadata")
    return (
        ctx.text(cause, "Resource", cause_path),
        ctx.integer(cause, "StartLine", cause_path),
        ctx.integer(cause, "EndLine", cause_path),
    )


def _misconfiguration(item: dict[str, Any], path: str, ctx: Ctx, target: str, scope: str) -> Finding | None:
    status_text = ctx.text(item, "Status", path) or "FAIL"
    if status_text == "PASS":
        return None
    status = _MISCONF_STATUS.get(status_text)
    if status is None:
        raise ctx.error(
            join(path, "Status"), f"expected one of 'FAIL', 'PASS', 'EXCEPTION', got {status_text!r}"
        )
    rule_id = ctx.text(item, "ID", path) or ctx.text(item, "AVDID", path)
    if not rule_id:
        raise ctx.error(join(path, "ID"), "required, missing")
    severity, tool_severity = _severity(item, path, ctx)
    resource, start, end = _cause_lines(item, path, ctx)
    message = ctx.text(item, "Message", path)
    description = "\n\n".join(
        part
        for part in (ctx.text(item, "Description", path), message, ctx.text(item, "Resolution", path))
        if part
    )
    return Finding(
        fingerprint=fingerprint(
            TOOL, FindingKind.MISCONFIGURATION.value, rule_id, target, resource, message, scope
        ),
        scan_id="",
        scanner=TOOL,
        kind=FindingKind.MISCONFIGURATION,
        rule_id=rule_id,
        title=ctx.text(item, "Title", path) or rule_id,
        severity=severity,
        tool_severity=tool_severity,
        description=description,
        location=Location(path=target, start_line=start, end_line=end) if target else None,
        references=references(ctx.text(item, "PrimaryURL", path), ctx.texts(item, "References", path)),
        status=status,
    )


def _secret(item: dict[str, Any], path: str, ctx: Ctx, target: str, scope: str) -> Finding:
    """A Trivy secret. Trivy masks only the rule's secret group, so the whole masked token,
    the match line and every code line are treated as secret and replaced in the report."""
    rule_id = ctx.text(item, "RuleID", path, required=True)
    severity, tool_severity = _severity(item, path, ctx)
    match = ctx.text(item, "Match", path)
    keyed, shown = _hash_match(match, ctx)
    if match:
        item["Match"] = shown or _HIDDEN
        ctx.changed = True
    _redact_code(item, path, ctx)
    layer = ctx.field_obj(item, "Layer", path)
    return Finding(
        fingerprint=fingerprint(TOOL, FindingKind.SECRET.value, rule_id, target, keyed, scope),
        scan_id="",
        scanner=TOOL,
        kind=FindingKind.SECRET,
        rule_id=rule_id,
        title=ctx.text(item, "Title", path) or rule_id,
        severity=severity,
        tool_severity=tool_severity,
        description=ctx.text(item, "Category", path),
        location=Location(
            path=target,
            start_line=ctx.integer(item, "StartLine", path),
            end_line=ctx.integer(item, "EndLine", path),
            layer_digest=ctx.text(layer, "Digest", join(path, "Layer")),
        )
        if target
        else None,
        redacted_match=shown,
    )


def _hash_match(match: str, ctx: Ctx) -> tuple[str, str]:
    """Keyed hash and preview of the secret in a (partly masked) match line."""
    if not match.strip():
        return "", ""
    ctx.mark_sensitive(match)
    tokens = masked_tokens(match)
    secret = max(tokens, key=len) if tokens else match
    for token in tokens:
        ctx.mark_sensitive(token)
    return ctx.secret(secret)


def _redact_code(item: dict[str, Any], path: str, ctx: Ctx) -> None:
    code = ctx.field_obj(item, "Code", path)
    for line_path, line in ctx.field_objects(code, "Lines", join(path, "Code")):
        for key in ("Content", "Highlighted"):
            text = ctx.text(line, key, line_path)
            if text:
                ctx.mark_sensitive(text)
                line[key] = _HIDDEN
                ctx.changed = True


def _license(item: dict[str, Any], path: str, ctx: Ctx, target: str, scope: str) -> Finding:
    name = ctx.text(item, "Name", path, required=True)
    package = ctx.text(item, "PkgName", path)
    file_path = ctx.relpath(ctx.text(item, "FilePath", path))
    severity, tool_severity = _severity(item, path, ctx)
    category = ctx.text(item, "Category", path)
    subject = package or file_path or target
    return Finding(
        fingerprint=fingerprint(TOOL, FindingKind.LICENSE.value, name, package, file_path, target, scope),
        scan_id="",
        scanner=TOOL,
        kind=FindingKind.LICENSE,
        rule_id=name,
        title=f"{name} ({category})" if category else name,
        severity=severity,
        tool_severity=tool_severity,
        description=f"License {name} of {subject}" if subject else f"License {name}",
        package=Package(name=package) if package else None,
        location=Location(path=file_path or target) if (file_path or target) else None,
        references=references(ctx.text(item, "Link", path)),
    )


# -- trivy-operator CRDs -----------------------------------------------------------


def _operator_list(items: list[Any], ctx: Ctx, path: str) -> ArtifactHints:
    hints = ArtifactHints()
    for item_path, item in ctx.objects(items, path):
        found = _operator(item, item_path, ctx)
        hints = hints if hints.name else found
    if not ctx.format:
        ctx.format = "trivy-operator"
    return hints


def _operator(crd: dict[str, Any], path: str, ctx: Ctx) -> ArtifactHints:
    ctx.format = "trivy-operator"
    kind = ctx.text(crd, "kind", path, required=True)
    if kind == "List":
        return _operator_list(ctx.arr(crd.get("items"), join(path, "items")), ctx, join(path, "items"))
    metadata = ctx.field_obj(crd, "metadata", path)
    labels = ctx.field_obj(metadata, "labels", join(path, "metadata"))
    label_path = join(path, "metadata.labels")
    scope = "/".join(
        ctx.text(labels, f"trivy-operator.resource.{part}", label_path)
        for part in ("namespace", "kind", "name")
    )
    container = ctx.text(labels, "trivy-operator.container.name", label_path)
    if container:
        scope = f"{scope}/{container}"
    report = ctx.field_obj(crd, "report", path)
    report_path = join(path, "report")
    scanner = ctx.field_obj(report, "scanner", report_path)
    ctx.tool_version = ctx.tool_version or ctx.text(scanner, "version", join(report_path, "scanner"))
    if kind == "VulnerabilityReport":
        return _operator_vulns(report, report_path, ctx, scope)
    if kind in _CHECK_REPORTS:
        for check_path, check in ctx.field_objects(report, "checks", report_path):
            found = _operator_check(check, check_path, ctx, scope)
            if found is not None:
                ctx.add(found, check_path)
        return ArtifactHints(name=scope, type="kubernetes")
    if kind == "ExposedSecretReport":
        for secret_path, secret in ctx.field_objects(report, "secrets", report_path):
            ctx.add(_operator_secret(secret, secret_path, ctx, scope), secret_path)
        return _operator_artifact(report, report_path, ctx)
    raise UnsupportedReport(
        ctx.where(join(path, "kind")),
        f"trivy-operator {kind} holds no findings gate imports (supported: VulnerabilityReport, "
        "ConfigAuditReport and the other assessment reports, ExposedSecretReport; a compliance report "
        "summarises checks whose findings are in those)",
    )


def _operator_artifact(report: dict[str, Any], path: str, ctx: Ctx) -> ArtifactHints:
    artifact = ctx.field_obj(report, "artifact", path)
    registry = ctx.field_obj(report, "registry", path)
    repository = ctx.text(artifact, "repository", join(path, "artifact"))
    server = ctx.text(registry, "server", join(path, "registry"))
    tag = ctx.text(artifact, "tag", join(path, "artifact"))
    name = "/".join(p for p in (server, repository) if p) + (f":{tag}" if tag else "")
    digest = ctx.text(artifact, "digest", join(path, "artifact"))
    return ArtifactHints(
        name=name,
        type="container_image",
        repo_digests=(f"{'/'.join(p for p in (server, repository) if p)}@{digest}",) if digest else (),
    )


def _operator_vulns(report: dict[str, Any], path: str, ctx: Ctx, scope: str) -> ArtifactHints:
    for item_path, item in ctx.field_objects(report, "vulnerabilities", path):
        vuln_id = ctx.text(item, "vulnerabilityID", item_path, required=True)
        name = ctx.text(item, "resource", item_path, required=True)
        installed = ctx.text(item, "installedVersion", item_path)
        fixed = ctx.text(item, "fixedVersion", item_path)
        package_type = ctx.text(item, "packageType", item_path)
        is_os = ctx.text(item, "class", item_path) == "os-pkgs" or package_type in OS_TYPES
        declared_in = (
            ""
            if is_os
            else ctx.relpath(ctx.text(item, "pkgPath", item_path) or ctx.text(item, "target", item_path))
        )
        purl = parse_purl(
            ctx, ctx.text(item, "pkgPURL", item_path), join(item_path, "pkgPURL")
        ) or build_purl(package_type, name, installed)
        severity, tool_severity = _severity(item, item_path, ctx, "severity")
        ctx.add(
            _vulnerability_finding(
                vuln_id=vuln_id,
                name=name,
                installed=installed,
                fixed=fixed,
                purl=purl,
                package_type=package_type,
                declared_in=declared_in,
                scope=scope,
                title=ctx.text(item, "title", item_path) or vuln_id,
                severity=severity,
                tool_severity=tool_severity,
                location=Location(path=declared_in) if declared_in else None,
                links=references(
                    ctx.text(item, "primaryLink", item_path), ctx.texts(item, "links", item_path)
                ),
                cvss_score=ctx.number(item, "score", item_path),
            ),
            item_path,
        )
    return _operator_artifact(report, path, ctx)


def _operator_check(check: dict[str, Any], path: str, ctx: Ctx, scope: str) -> Finding | None:
    if ctx.boolean(check, "success", path):
        return None
    title = ctx.text(check, "title", path)
    rule_id = ctx.text(check, "checkID", path)
    if not rule_id:
        ctx.warn(join(path, "checkID"), "missing; the title stands in for the rule id")
        rule_id = title
    if not rule_id:
        raise ctx.error(join(path, "checkID"), "required (or a title), missing")
    severity, tool_severity = _severity(check, path, ctx, "severity")
    messages = ctx.texts(check, "messages", path)
    description = "\n\n".join(
        p
        for p in (ctx.text(check, "description", path), *messages, ctx.text(check, "remediation", path))
        if p
    )
    return Finding(
        fingerprint=fingerprint(
            TOOL, FindingKind.MISCONFIGURATION.value, rule_id, "", scope, "\n".join(messages)
        ),
        scan_id="",
        scanner=TOOL,
        kind=FindingKind.MISCONFIGURATION,
        rule_id=rule_id,
        title=title or rule_id,
        severity=severity,
        tool_severity=tool_severity,
        description=description,
        location=Location(path=scope) if scope else None,
    )


def _operator_secret(secret: dict[str, Any], path: str, ctx: Ctx, scope: str) -> Finding:
    rule_id = ctx.text(secret, "ruleID", path, required=True)
    target = ctx.relpath(ctx.text(secret, "target", path))
    severity, tool_severity = _severity(secret, path, ctx, "severity")
    match = ctx.text(secret, "match", path)
    keyed, shown = _hash_match(match, ctx)
    if match:
        secret["match"] = shown or _HIDDEN
        ctx.changed = True
    return Finding(
        fingerprint=fingerprint(TOOL, FindingKind.SECRET.value, rule_id, target, keyed, scope),
        scan_id="",
        scanner=TOOL,
        kind=FindingKind.SECRET,
        rule_id=rule_id,
        title=ctx.text(secret, "title", path) or rule_id,
        severity=severity,
        tool_severity=tool_severity,
        description=ctx.text(secret, "category", path),
        location=Location(path=target) if target else None,
        redacted_match=shown,
    )
