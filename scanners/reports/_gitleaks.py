"""gitleaks JSON reports: the 8.x array (also with template extras) and the pre-8 (v7) array.

gitleaks rates nothing, so every leak is :data:`SECRET_SEVERITY` with an empty
``tool_severity``. Secret values (``Secret``/``offender``) and the text around them
(``Match``, ``Line``, ``line``) are replaced in the report by the redacted preview.
"""

from __future__ import annotations

from typing import Any

from gate.model import Finding, FindingKind, Location
from scanners.reports._context import Ctx, fingerprint
from scanners.reports._normalise import SECRET_SEVERITY
from scanners.reports._types import ArtifactHints

TOOL = "gitleaks"


def parse(doc: Any, ctx: Ctx) -> ArtifactHints:
    """Parse a gitleaks JSON report into ``ctx.findings``."""
    ctx.tool = TOOL
    if doc is not None and not isinstance(doc, list):
        raise ctx.error("", f"expected a JSON array of leaks (gitleaks -f json), got {type(doc).__name__}")
    items = ctx.objects(doc, "")
    legacy = (
        bool(items) and "RuleID" not in items[0][1] and ("offender" in items[0][1] or "rule" in items[0][1])
    )
    ctx.format = "gitleaks-legacy" if legacy else "gitleaks-json"
    commits: list[str] = []
    for path, item in items:
        found = _legacy(item, path, ctx) if legacy else _leak(item, path, ctx)
        ctx.add(found, path)
        if found.location is not None and found.location.commit:
            commits.append(found.location.commit)
    # A history scan lists many commits; only a scan of exactly one names the artifact's commit.
    return ArtifactHints(commit=commits[0] if commits and len(set(commits)) == 1 else "")


def _identity(ctx: Ctx, rule: str, file_path: str, secret: str, fallback: tuple[int, int]) -> tuple[str, str]:
    """Fingerprint and preview: rule, file and the keyed hash of the secret.

    Never the commit or the line: the same secret in another commit, or after lines moved,
    is the same leak. A report written with ``--redact`` hides the value; then the start
    line and column are the only distinction left between two leaks of one rule in one file.
    """
    keyed, shown = ctx.secret(secret)
    if keyed:
        return fingerprint(TOOL, FindingKind.SECRET.value, rule, file_path, keyed), shown
    line, column = fallback
    return fingerprint(
        TOOL, FindingKind.SECRET.value, rule, file_path, "redacted", str(line), str(column)
    ), ""


def _scrub(item: dict[str, Any], keys: tuple[str, ...], shown: str, ctx: Ctx) -> None:
    for key in keys:
        value = item.get(key)
        if isinstance(value, str) and not ctx.is_placeholder(value.strip()):
            ctx.mark_sensitive(value)
            item[key] = shown or "REDACTED"
            ctx.changed = True


def _leak(item: dict[str, Any], path: str, ctx: Ctx) -> Finding:
    rule = ctx.text(item, "RuleID", path, required=True)
    file_path = ctx.relpath(ctx.text(item, "File", path))
    secret = ctx.text(item, "Secret", path) or ctx.text(item, "Match", path)
    start = ctx.integer(item, "StartLine", path)
    fp, shown = _identity(ctx, rule, file_path, secret, (start, ctx.integer(item, "StartColumn", path)))
    _scrub(item, ("Secret", "Match", "Line"), shown, ctx)
    description = ctx.text(item, "Description", path)
    commit = ctx.text(item, "Commit", path)
    return Finding(
        fingerprint=fp,
        scan_id="",
        scanner=TOOL,
        kind=FindingKind.SECRET,
        rule_id=rule,
        title=description or rule,
        severity=SECRET_SEVERITY,
        description=description,
        location=Location(
            path=file_path,
            start_line=start,
            end_line=ctx.integer(item, "EndLine", path),
            commit=commit,
        ),
        references=tuple(link for link in (ctx.text(item, "Link", path),) if link),
        redacted_match=shown,
    )


def _legacy(item: dict[str, Any], path: str, ctx: Ctx) -> Finding:
    rule = ctx.text(item, "rule", path, required=True)
    file_path = ctx.relpath(ctx.text(item, "file", path))
    line = ctx.integer(item, "lineNumber", path)
    fp, shown = _identity(ctx, rule, file_path, ctx.text(item, "offender", path), (line, 0))
    _scrub(item, ("offender", "line"), shown, ctx)
    commit = ctx.text(item, "commit", path)
    return Finding(
        fingerprint=fp,
        scan_id="",
        scanner=TOOL,
        kind=FindingKind.SECRET,
        rule_id=rule,
        title=rule,
        severity=SECRET_SEVERITY,
        description=ctx.text(item, "tags", path) if isinstance(item.get("tags"), str) else "",
        location=Location(path=file_path, start_line=line, end_line=line, commit=commit),
        references=tuple(link for link in (ctx.text(item, "leakURL", path),) if link),
        redacted_match=shown,
    )
