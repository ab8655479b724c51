"""SonarQube Web API results: the bundle of API responses, or single search responses.

The bundle is what the SonarQube provider (``scanners._sonarqube``) writes after following
``report-task.txt``; a pipeline can build the same from its own API calls and import it::

    {"tool": "sonarqube",
     "server_version": "10.6.0.92116",       # api/server/version (optional)
     "server_url": "https://sonar.example",   # optional
     "project": "my-app", "branch": "", "pull_request": "", "analysis_id": "AYx2...",
     "revision": "<commit>",                  # optional: the analysed commit (sonar.scm.revision)
     "task": {...} | null,                    # the api/ce/task "task" object
     "quality_gate": {...} | null,            # api/qualitygates/project_status response
     "issues": [<issue>...],                  # api/issues/search "issues", all pages
     "hotspots": [<hotspot>...],              # api/hotspots/search "hotspots", all pages
     "components": {"<key>": <component>},    # from both searches (for file paths)
     "rules": {"<key>": <rule>}}              # api/issues/search additionalFields=rules

Entries that describe the same issue share a fingerprint and are merged. A task
that did not succeed fails the import: no results is not the same as a clean result.

Single responses are read too: an ``api/issues/search`` or ``api/hotspots/search`` page, or
its bare ``issues``/``hotspots`` array.

Severity: SonarQube 10.2+ ``impacts`` (the highest impact severity) when present, else the
legacy ``severity`` (BLOCKER critical, CRITICAL high, MAJOR medium, MINOR low, INFO info);
the two scales are independent and never converted into each other. ``tool_severity`` keeps
the value used (``MAJOR`` or ``SECURITY:HIGH``).
"""

from __future__ import annotations

from typing import Any

from gate.model import Finding, FindingKind, FindingStatus, Location, Severity
from scanners.reports._context import Ctx, fingerprint, join
from scanners.reports._types import ArtifactHints, QualityGate, QualityGateCondition, UnsupportedReport

TOOL = "sonarqube"
BUNDLE_TOOL = "sonarqube"
"""The ``tool`` member that marks a bundle."""

_LEGACY = {
    "BLOCKER": Severity.CRITICAL,
    "CRITICAL": Severity.HIGH,
    "MAJOR": Severity.MEDIUM,
    "MINOR": Severity.LOW,
    "INFO": Severity.INFO,
}
_IMPACT = {
    "BLOCKER": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
    "INFO": Severity.INFO,
}
_TYPES = {"BUG": FindingKind.BUG, "VULNERABILITY": FindingKind.CODE, "CODE_SMELL": FindingKind.CODE_SMELL}
_QUALITIES = {
    "SECURITY": FindingKind.CODE,
    "RELIABILITY": FindingKind.BUG,
    "MAINTAINABILITY": FindingKind.CODE_SMELL,
}
_PROBABILITY = {"HIGH": Severity.HIGH, "MEDIUM": Severity.MEDIUM, "LOW": Severity.LOW}
_RESOLUTION = {
    "FIXED": FindingStatus.RESOLVED,
    "REMOVED": FindingStatus.RESOLVED,
    "WONTFIX": FindingStatus.WILL_NOT_FIX,
    "FALSE-POSITIVE": FindingStatus.NOT_AFFECTED,
    "SAFE": FindingStatus.NOT_AFFECTED,
    "ACKNOWLEDGED": FindingStatus.WILL_NOT_FIX,
}
_ISSUE_STATUS = {
    "OPEN": FindingStatus.AFFECTED,
    "CONFIRMED": FindingStatus.AFFECTED,
    "REOPENED": FindingStatus.AFFECTED,
    "IN_SANDBOX": FindingStatus.AFFECTED,
    "ACCEPTED": FindingStatus.WILL_NOT_FIX,
    "FALSE_POSITIVE": FindingStatus.NOT_AFFECTED,
    "FIXED": FindingStatus.RESOLVED,
}
_TASK_DONE = "SUCCESS"


def parse(doc: Any, ctx: Ctx) -> tuple[ArtifactHints, QualityGate | None]:
    """Parse a bundle, an issues/hotspots search response or a bare issues/hotspots array."""
    ctx.tool = TOOL
    if isinstance(doc, list):
        items = ctx.objects(doc, "")
        if items and "vulnerabilityProbability" in items[0][1]:
            ctx.format = "sonarqube-hotspots"
            _hotspots(doc, "", ctx, {})
        else:
            ctx.format = "sonarqube-issues"
            _issues(doc, "", ctx, {})
        return ArtifactHints(), None
    top = ctx.obj(doc, "")
    if top.get("tool") == BUNDLE_TOOL:
        return _bundle(top, ctx)
    errors = top.get("errors")
    if isinstance(errors, list) and errors:
        messages = "; ".join(str(e.get("msg", e)) if isinstance(e, dict) else str(e) for e in errors)
        raise ctx.error(
            "errors", f"the document is a SonarQube error response, not results: {messages[:300]}"
        )
    if "projectName" in top and ("allBugs" in top or "sonarBaseURL" in top or "noSecurityHotspot" in top):
        raise UnsupportedReport(ctx.where(""), _what(top))
    if "issues" in top:
        ctx.format = "sonarqube-issues"
        _search_page(top, "", ctx, "issues")
        return ArtifactHints(), None
    if "hotspots" in top:
        ctx.format = "sonarqube-hotspots"
        _search_page(top, "", ctx, "hotspots")
        return ArtifactHints(), None
    raise UnsupportedReport(ctx.where(""), _what(top))


def _what(top: dict[str, Any]) -> str:
    if "mdDesc" in top or "htmlDesc" in top or "repo" in top or "descriptionSections" in top:
        found = "a SonarQube rule (api/rules/show), which holds no findings"
    elif "vulnerabilityDescription" in top or "riskDescription" in top:
        found = "a SonarQube hotspot rule (api/hotspots/show), which holds no findings"
    elif "qualifier" in top:
        found = "a SonarQube component (api/components), which holds no findings"
    elif "projectName" in top and ("allBugs" in top or "issues" in top or "noSecurityHotspot" in top):
        found = "a sonar-report (third-party) export"
    else:
        found = f"an object with keys {sorted(top)[:8]}"
    return (
        f"{found}; gate reads the SonarQube bundle, api/issues/search and api/hotspots/search "
        "responses, or their bare issues/hotspots arrays"
    )


def _bundle(bundle: dict[str, Any], ctx: Ctx) -> tuple[ArtifactHints, QualityGate | None]:
    ctx.format = "sonarqube-bundle"
    ctx.tool_version = ctx.text(bundle, "server_version", "")
    task = ctx.field_obj(bundle, "task", "")
    if task:
        status = ctx.text(task, "status", "task", required=True)
        if status != _TASK_DONE:
            reason = ctx.text(task, "errorMessage", "task")
            raise ctx.error(
                "task.status",
                f"the SonarQube analysis did not succeed: expected {_TASK_DONE!r}, got {status!r}"
                + (f" ({reason[:300]})" if reason else ""),
            )
    gate = _quality_gate(ctx.field_obj(bundle, "quality_gate", ""), ctx)
    components: dict[str, str] = {}
    for key, component in ctx.field_obj(bundle, "components", "").items():
        cpath = join("components", key)
        file_path = ctx.text(ctx.obj(component, cpath), "path", cpath)
        if file_path:
            components[key] = file_path
    rules: dict[str, str] = {}
    for key, rule in ctx.field_obj(bundle, "rules", "").items():
        rules[key] = ctx.text(ctx.obj(rule, join("rules", key)), "name", join("rules", key))
    _issues(bundle.get("issues"), "issues", ctx, components, rules)
    _hotspots(bundle.get("hotspots"), "hotspots", ctx, components)
    pull_request = ctx.text(bundle, "pull_request", "")
    return (
        ArtifactHints(
            name=ctx.text(bundle, "project", ""),
            type="sonarqube-project",
            repo_url=ctx.text(bundle, "server_url", ""),
            commit=ctx.text(bundle, "revision", ""),
            branch=ctx.text(bundle, "branch", "") or (f"pull-request/{pull_request}" if pull_request else ""),
        ),
        gate,
    )


def _quality_gate(response: dict[str, Any], ctx: Ctx) -> QualityGate | None:
    if not response:
        return None
    status = ctx.field_obj(response, "projectStatus", "quality_gate")
    path = "quality_gate.projectStatus"
    conditions = tuple(
        QualityGateCondition(
            metric=ctx.text(c, "metricKey", cpath),
            status=ctx.text(c, "status", cpath),
            comparator=ctx.text(c, "comparator", cpath),
            threshold=ctx.text(c, "errorThreshold", cpath),
            actual=ctx.text(c, "actualValue", cpath),
        )
        for cpath, c in ctx.field_objects(status, "conditions", path)
    )
    return QualityGate(status=ctx.text(status, "status", path, required=True), conditions=conditions)


def _search_page(
    page: dict[str, Any],
    path: str,
    ctx: Ctx,
    key: str,
) -> None:
    page = ctx.obj(page, path)
    components: dict[str, str] = {}
    for cpath, component in ctx.field_objects(page, "components", path):
        file_path = ctx.text(component, "path", cpath)
        if file_path:
            components[ctx.text(component, "key", cpath)] = file_path
    if key == "issues":
        _issues(page.get("issues"), join(path, "issues"), ctx, components)
    else:
        _hotspots(page.get("hotspots"), join(path, "hotspots"), ctx, components)


def _path(component: str, project: str, components: dict[str, str]) -> str:
    if component in components:
        return components[component]
    if project and component.startswith(project + ":"):
        return component[len(project) + 1 :]
    return "" if component == project else component.partition(":")[2]


def _lines(item: dict[str, Any], path: str, ctx: Ctx) -> tuple[int, int]:
    text_range = ctx.field_obj(item, "textRange", path)
    start = ctx.integer(text_range, "startLine", join(path, "textRange")) or ctx.integer(item, "line", path)
    end = ctx.integer(text_range, "endLine", join(path, "textRange")) or start
    return start, end


def _issues(
    items: Any,
    path: str,
    ctx: Ctx,
    components: dict[str, str],
    rules: dict[str, str] | None = None,
) -> None:
    rules = rules or {}
    for ipath, issue in ctx.objects(items, path):
        key = ctx.text(issue, "key", ipath, required=True)
        rule = ctx.text(issue, "rule", ipath, required=True)
        file_path = _path(ctx.text(issue, "component", ipath), ctx.text(issue, "project", ipath), components)
        impacts = ctx.field_objects(issue, "impacts", ipath)
        kind = ctx.choice(issue, "type", ipath, _TYPES, FindingKind.CODE)
        if impacts:
            ranked = [
                (
                    ctx.choice(i, "severity", p, _IMPACT, Severity.UNKNOWN),
                    ctx.text(i, "softwareQuality", p),
                    i,
                )
                for p, i in impacts
            ]
            severity, quality, impact = max(ranked, key=lambda r: r[0])
            tool_severity = f"{quality}:{impact.get('severity', '')}"
            if "type" not in issue:
                kind = _QUALITIES.get(quality, FindingKind.CODE)
        else:
            severity = ctx.choice(issue, "severity", ipath, _LEGACY, Severity.UNKNOWN)
            tool_severity = ctx.text(issue, "severity", ipath)
        start, end = _lines(issue, ipath, ctx)
        message = ctx.text(issue, "message", ipath)
        line_hash = ctx.text(issue, "hash", ipath)
        ctx.add(
            Finding(
                # SonarQube's line hash follows the code, not its position; without one the
                # issue key (SonarQube's own tracking) is the best identity left.
                fingerprint=fingerprint(TOOL, kind.value, rule, file_path, line_hash or f"key:{key}"),
                scan_id="",
                scanner=TOOL,
                kind=kind,
                rule_id=rule,
                title=message or rule,
                severity=severity,
                tool_severity=tool_severity,
                description="\n".join(
                    p for p in (rules.get(rule, ""), ", ".join(ctx.texts(issue, "tags", ipath))) if p
                ),
                location=Location(path=file_path, start_line=start, end_line=end) if file_path else None,
                status=_issue_status(issue, ipath, ctx),
            ),
            ipath,
        )


def _issue_status(issue: dict[str, Any], path: str, ctx: Ctx) -> FindingStatus:
    if issue.get("issueStatus"):
        return ctx.choice(issue, "issueStatus", path, _ISSUE_STATUS, FindingStatus.AFFECTED)
    resolution = ctx.text(issue, "resolution", path)
    if resolution:
        return _RESOLUTION.get(resolution, FindingStatus.RESOLVED)
    return FindingStatus.RESOLVED if ctx.text(issue, "status", path) == "CLOSED" else FindingStatus.AFFECTED


def _hotspots(items: Any, path: str, ctx: Ctx, components: dict[str, str]) -> None:
    for hpath, hotspot in ctx.objects(items, path):
        key = ctx.text(hotspot, "key", hpath, required=True)
        rule = ctx.text(hotspot, "ruleKey", hpath) or ctx.text(hotspot, "securityCategory", hpath)
        file_path = _path(
            ctx.text(hotspot, "component", hpath), ctx.text(hotspot, "project", hpath), components
        )
        resolution = ctx.text(hotspot, "resolution", hpath)
        status = _RESOLUTION.get(resolution, FindingStatus.AFFECTED) if resolution else FindingStatus.AFFECTED
        start, end = _lines(hotspot, hpath, ctx)
        ctx.add(
            Finding(
                # Hotspots carry no line hash; SonarQube tracks them by key across analyses.
                fingerprint=fingerprint(TOOL, FindingKind.HOTSPOT.value, rule, file_path, f"key:{key}"),
                scan_id="",
                scanner=TOOL,
                kind=FindingKind.HOTSPOT,
                rule_id=rule,
                title=ctx.text(hotspot, "message", hpath) or rule,
                severity=ctx.choice(
                    hotspot, "vulnerabilityProbability", hpath, _PROBABILITY, Severity.UNKNOWN
                ),
                tool_severity=ctx.text(hotspot, "vulnerabilityProbability", hpath),
                description=ctx.text(hotspot, "securityCategory", hpath),
                location=Location(path=file_path, start_line=start, end_line=end) if file_path else None,
                status=status,
            ),
            hpath,
        )
