"""SARIF 2.1.0 from any tool, with the conventions of Trivy, gitleaks and Snyk Code.

Severity: a severity name among the rule's or result's ``tags`` (Trivy writes one), else a
``security-severity`` score (GitHub's bands), else ``level`` (error high, warning medium,
note low, none info; absent means warning). gitleaks writes no level at all: its results
are secrets and get :data:`SECRET_SEVERITY` as in its JSON report.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import unquote

from gate.model import Finding, FindingKind, FindingStatus, Location, Package, Severity
from scanners.reports._context import Ctx, fingerprint, join, masked_tokens
from scanners.reports._normalise import (
    SECRET_SEVERITY,
    UPPER_SEVERITY,
    from_score,
    references,
    vulnerability_fingerprint,
)
from scanners.reports._types import ArtifactHints

_LEVELS = {
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "note": Severity.LOW,
    "none": Severity.INFO,
}
_TRIVY_KINDS = {
    "OsPackageVulnerability": FindingKind.VULNERABILITY,
    "LanguageSpecificPackageVulnerability": FindingKind.VULNERABILITY,
    "Misconfiguration": FindingKind.MISCONFIGURATION,
    "Secret": FindingKind.SECRET,
    "License": FindingKind.LICENSE,
}
_TOOL_NAMES = {"trivy": "trivy", "gitleaks": "gitleaks", "snykcode": "snyk", "snyk": "snyk"}
_SUPPRESSION = {
    "accepted": FindingStatus.NOT_AFFECTED,
    "underReview": FindingStatus.UNDER_INVESTIGATION,
    "rejected": FindingStatus.AFFECTED,
}
# gitleaks' partialFingerprints describe the commit, not the issue.
_VOLATILE_FINGERPRINTS = frozenset({"commitSha", "email", "author", "date", "commitMessage"})
_NOT_FAILURES = frozenset({"pass", "notApplicable", "informational"})
_MATCH_LINE = re.compile(r"^Match: (.*)$", re.M)
_PACKAGE = re.compile(r"^Package: (.*)$", re.M)
_INSTALLED = re.compile(r"^Installed Version: (.*)$", re.M)
_FIXED = re.compile(r"^Fixed Version: (.*)$", re.M)
_REDACTED = "<redacted by gate>"


def is_sarif(doc: Any) -> bool:
    """True for a document that declares itself SARIF."""
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("runs"), list)
        and ("sarif" in str(doc.get("$schema", "")).lower() or "version" in doc)
    )


def tool_of(doc: dict[str, Any]) -> str:
    """The gate name of the tool that wrote the first run (``trivy``, ``gitleaks``, ``snyk`` or its own)."""
    for run in doc.get("runs") or []:
        tool = run.get("tool") if isinstance(run, dict) else None
        driver = tool.get("driver") if isinstance(tool, dict) else None
        if isinstance(driver, dict) and isinstance(driver.get("name"), str):
            name = driver["name"].strip().lower()
            return _TOOL_NAMES.get(name, name or "sarif")
    return "sarif"


def parse(doc: dict[str, Any], ctx: Ctx) -> ArtifactHints:
    """Parse every run of a SARIF 2.1.0 log into ``ctx.findings``."""
    version = doc.get("version")
    if version != "2.1.0":
        raise ctx.error("version", f"unsupported SARIF version: expected '2.1.0', got {version!r}")
    ctx.format = "sarif"
    hints = ArtifactHints()
    for run_path, run in ctx.field_objects(doc, "runs", ""):
        driver = ctx.field_obj(ctx.field_obj(run, "tool", run_path), "driver", join(run_path, "tool"))
        driver_path = join(run_path, "tool.driver")
        name = ctx.text(driver, "name", driver_path, required=True)
        tool = _TOOL_NAMES.get(name.strip().lower(), name.strip().lower())
        ctx.tool = ctx.tool or tool
        ctx.tool_version = ctx.tool_version or (
            ctx.text(driver, "version", driver_path) or ctx.text(driver, "semanticVersion", driver_path)
        )
        rules = ctx.field_objects(driver, "rules", driver_path)
        by_id = {ctx.text(rule, "id", path): rule for path, rule in rules}
        for result_path, result in ctx.field_objects(run, "results", run_path):
            found = _result(result, result_path, ctx, tool, rules, by_id)
            if found is not None:
                ctx.add(found, result_path)
        for vpath, provenance in ctx.field_objects(run, "versionControlProvenance", run_path):
            if not hints.commit:
                hints = ArtifactHints(
                    repo_url=ctx.text(provenance, "repositoryUri", vpath),
                    commit=ctx.text(provenance, "revisionId", vpath),
                    branch=ctx.text(provenance, "branch", vpath),
                )
    return hints


def _rule_for(
    result: dict[str, Any],
    path: str,
    ctx: Ctx,
    rules: list[tuple[str, dict[str, Any]]],
    by_id: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    rule_id = ctx.text(result, "ruleId", path)
    index = result.get("ruleIndex")
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(rules):
        rule = rules[index][1]
        return rule_id or ctx.text(rule, "id", rules[index][0]), rule
    reference = ctx.field_obj(result, "rule", path)
    rule_id = rule_id or ctx.text(reference, "id", join(path, "rule"))
    if not rule_id:
        raise ctx.error(join(path, "ruleId"), "required (or rule.id or ruleIndex), missing")
    return rule_id, by_id.get(rule_id, {})


def _properties(item: dict[str, Any], path: str, ctx: Ctx) -> dict[str, Any]:
    return ctx.field_obj(item, "properties", path)


def _kind(tool: str, rule: dict[str, Any], tags: list[str]) -> FindingKind:
    if tool == "gitleaks":
        return FindingKind.SECRET
    if tool == "trivy":
        return _TRIVY_KINDS.get(str(rule.get("name", "")), FindingKind.CODE)
    lowered = {t.lower() for t in tags}
    if "secret" in lowered:
        return FindingKind.SECRET
    return FindingKind.CODE


def _severity(
    result: dict[str, Any],
    path: str,
    ctx: Ctx,
    rule: dict[str, Any],
    tags: list[str],
    kind: FindingKind,
    tool: str,
) -> tuple[Severity, str]:
    for tag in tags:
        if tag in UPPER_SEVERITY:
            return UPPER_SEVERITY[tag], tag
    default = rule.get("defaultConfiguration")
    level = ctx.text(result, "level", path) or str(
        default.get("level", "") if isinstance(default, dict) else ""
    )
    if not level and kind is FindingKind.SECRET and tool == "gitleaks":
        return SECRET_SEVERITY, ""
    for props in (_properties(result, path, ctx), rule.get("properties") or {}):
        score = props.get("security-severity") if isinstance(props, dict) else None
        if isinstance(score, str | int | float) and not isinstance(score, bool):
            value = _score(score)
            if value is not None:
                return from_score(value), f"security-severity {score}"
            ctx.warn(
                join(path, "properties.security-severity"),
                f"expected a score from 0 to 10 such as '7.5', got {str(score)[:40]!r}",
            )
    level = level or "warning"
    if level not in _LEVELS:
        raise ctx.error(
            join(path, "level"), f"expected one of 'error', 'warning', 'note', 'none', got {level!r}"
        )
    return _LEVELS[level], level


# GitHub's security-severity: a decimal CVSS-like score. Python's float() also reads "inf",
# "nan", "1_0" and non-ASCII digits, which made such a text CRITICAL; those are not scores.
_SCORE_TEXT = re.compile(r"[0-9]{1,2}(?:\.[0-9]+)?")


def _score(score: str | int | float) -> float | None:
    """A ``security-severity`` value as a score from 0 to 10, or None when it is not one."""
    if isinstance(score, str):
        text = score.strip()
        if _SCORE_TEXT.fullmatch(text) is None:
            return None
        score = float(text)
    return float(score) if 0 <= score <= 10 else None


def _location(result: dict[str, Any], path: str, ctx: Ctx) -> tuple[Location | None, str]:
    """The first physical location and its snippet text."""
    for lpath, location in ctx.field_objects(result, "locations", path):
        physical = ctx.field_obj(location, "physicalLocation", lpath)
        if not physical:
            continue
        ppath = join(lpath, "physicalLocation")
        artifact = ctx.field_obj(physical, "artifactLocation", ppath)
        region = ctx.field_obj(physical, "region", ppath)
        rpath = join(ppath, "region")
        uri = ctx.text(artifact, "uri", join(ppath, "artifactLocation"))
        uri = unquote(uri.removeprefix("file://") if uri.startswith("file:///") else uri)
        start = ctx.integer(region, "startLine", rpath)
        snippet = ctx.field_obj(region, "snippet", rpath)
        text = ctx.text(snippet, "text", join(rpath, "snippet"))
        return Location(
            path=ctx.relpath(uri), start_line=start, end_line=ctx.integer(region, "endLine", rpath) or start
        ), text
    return None, ""


def _result(
    result: dict[str, Any],
    path: str,
    ctx: Ctx,
    tool: str,
    rules: list[tuple[str, dict[str, Any]]],
    by_id: dict[str, Any],
) -> Finding | None:
    if ctx.text(result, "kind", path) in _NOT_FAILURES:
        return None
    rule_id, rule = _rule_for(result, path, ctx, rules, by_id)
    props = _properties(result, path, ctx)
    raw = rule.get("properties")
    rule_props: dict[str, Any] = raw if isinstance(raw, dict) else {}
    tags = [
        tag
        for group in (props.get("tags"), rule_props.get("tags"))
        if isinstance(group, list)
        for tag in group
        if isinstance(tag, str)
    ]
    kind = _kind(tool, rule, tags)
    severity, tool_severity = _severity(result, path, ctx, rule, tags, kind, tool)
    message = ctx.text(ctx.field_obj(result, "message", path), "text", join(path, "message"))
    location, snippet = _location(result, path, ctx)
    file_path = location.path if location else ""
    status = _status(result, path, ctx)
    short = ctx.text(ctx.field_obj(rule, "shortDescription", "rule"), "text", "rule.shortDescription")
    title = short or message.split("\n", 1)[0] or rule_id
    shown = ""
    package: Package | None = None
    if kind is FindingKind.SECRET:
        keyed, shown = _secret(result, rule, ctx, snippet, message)
        fp = fingerprint(
            tool, kind.value, rule_id, file_path, keyed or f"line:{location.start_line if location else 0}"
        )
        message = _REDACTED if shown or keyed else message
    elif kind is FindingKind.VULNERABILITY:
        name = _first(_PACKAGE, message)
        package = (
            Package(
                name=name,
                version=_first(_INSTALLED, message),
                fixed_versions=tuple(v.strip() for v in _first(_FIXED, message).split(",") if v.strip()),
            )
            if name
            else None
        )
        # OS packages are "declared" by the image, whose path names a tag: left out as in JSON.
        declared_in = "" if rule.get("name") == "OsPackageVulnerability" else file_path
        fp = vulnerability_fingerprint(rule_id, f"{tool}/{name.lower()}", declared_in)
    else:
        fp = fingerprint(
            tool, kind.value, rule_id, file_path, _stable_hash(result, path, ctx, snippet, message)
        )
    return Finding(
        fingerprint=fp,
        scan_id="",
        scanner=tool,
        kind=kind,
        rule_id=rule_id,
        title=title,
        severity=severity,
        tool_severity=tool_severity,
        description=message if message != title else "",
        package=package,
        location=location,
        fix_available=bool(package and package.fixed_versions),
        references=references(ctx.text(rule, "helpUri", "rule")),
        redacted_match=shown,
        status=status,
    )


def _first(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    return match.group(1).strip() if match else ""


def _status(result: dict[str, Any], path: str, ctx: Ctx) -> FindingStatus:
    props = _properties(result, path, ctx)
    own = props.get("gate.status")
    if isinstance(own, str) and own in FindingStatus.__members__.values():
        return FindingStatus(own)
    suppressions = ctx.field_objects(result, "suppressions", path)
    if not suppressions:
        return FindingStatus.AFFECTED
    spath, suppression = suppressions[0]
    return ctx.choice(suppression, "status", spath, _SUPPRESSION, FindingStatus.NOT_AFFECTED)


def _stable_hash(result: dict[str, Any], path: str, ctx: Ctx, snippet: str, message: str) -> str:
    """The tool's own stable identity, else a normalised snippet, else the message."""
    for key in ("partialFingerprints", "fingerprints"):
        prints = ctx.field_obj(result, key, path)
        stable = sorted(
            (k, v) for k, v in prints.items() if k not in _VOLATILE_FINGERPRINTS and isinstance(v, str)
        )
        if stable:
            return f"{key}:" + ";".join(f"{k}={v}" for k, v in stable)
    if snippet.strip():
        normalised = " ".join(snippet.split())
        return "snippet:" + hashlib.sha256(normalised.encode()).hexdigest()
    return "message:" + message


def _secret(
    result: dict[str, Any], rule: dict[str, Any], ctx: Ctx, snippet: str, message: str
) -> tuple[str, str]:
    """Hash the secret a result shows (snippet, or Trivy's ``Match:`` line) and redact it everywhere."""
    match = _first(_MATCH_LINE, message)
    if snippet and not ctx.is_placeholder(snippet.strip()):
        keyed, shown = ctx.secret(snippet)
    elif match:
        ctx.mark_sensitive(match)
        tokens = masked_tokens(match)
        for token in tokens:
            ctx.mark_sensitive(token)
        keyed, shown = ctx.secret(max(tokens, key=len) if tokens else match)
    else:
        return "", ""
    for location in result.get("locations") or []:
        physical = location.get("physicalLocation") if isinstance(location, dict) else None
        region = physical.get("region") if isinstance(physical, dict) else None
        snippet_obj = region.get("snippet") if isinstance(region, dict) else None
        if isinstance(snippet_obj, dict) and snippet_obj.get("text"):
            snippet_obj["text"] = shown or _REDACTED
            ctx.changed = True
    return keyed, shown
