"""What gate announces: notifications built from decisions, scans and waivers (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gate.model import Decision, EnforcementAction, Finding, RuleOutcome, Scan

DENY = "deny"
CRITICAL_FINDING = "critical_finding"
WAIVER_EXPIRING = "waiver_expiring"
EVENTS = (DENY, CRITICAL_FINDING, WAIVER_EXPIRING)

# Items listed in one notification at most (rules, findings); the count says how many there were.
MAX_ITEMS = 20


@dataclass(frozen=True, slots=True)
class Notification:
    """One announcement, independent of the format it is sent in.

    Attributes:
        event: ``deny``, ``critical_finding`` or ``waiver_expiring``.
        title: one line saying what happened.
        time: when it happened.
        facts: short labelled values (stage, subject, ...), in display order.
        items: the lines that explain it (failing rules, new findings).
        details: the machine-readable document of the event (the JSON format's ``details``).
    """

    event: str
    title: str
    time: datetime
    facts: tuple[tuple[str, str], ...] = ()
    items: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


def denied(decision: Decision) -> Notification | None:
    """The notification of a denied decision (None when it was allowed)."""
    if decision.allowed:
        return None
    failing = [
        result
        for result in decision.results
        if result.outcome in (RuleOutcome.FAIL, RuleOutcome.ERROR)
        and result.action is EnforcementAction.ENFORCE
    ]
    rules = [
        {"policy": r.policy, "rule": r.rule, "result": r.outcome.value, "message": r.message}
        | ({"remediation": r.remediation} if r.remediation else {})
        for r in failing
    ]
    subject = decision.subject or "(unnamed subject)"
    facts = [("stage", decision.stage), ("subject", subject), ("decision", decision.id)]
    if decision.caller:
        facts.append(("caller", decision.caller))
    return Notification(
        event=DENY,
        title=f"gate denied {subject} at stage {decision.stage}",
        time=decision.decided_at,
        facts=tuple(facts),
        items=tuple(f"{r.policy}/{r.rule}: {r.message}" for r in failing[:MAX_ITEMS]),
        details={
            "decision_id": decision.id,
            "stage": decision.stage,
            "subject": decision.subject,
            "caller": decision.caller,
            "message": decision.message,
            "failing_rules": rules[:MAX_ITEMS],
            "failing_rule_count": len(rules),
            "artifact_digests": list(decision.artifact_digests),
            "policy_bundle_digest": decision.policy_bundle_digest,
        },
    )


def new_criticals(scan: Scan, current: Sequence[Finding], previous: Sequence[Finding]) -> Notification | None:
    """The notification of critical findings in ``scan`` that the previous scan did not report.

    Findings are matched by fingerprint (the same finding in the same place);
    None when there is nothing new.
    """
    known = {finding.fingerprint for finding in previous}
    fresh = [finding for finding in current if finding.fingerprint not in known]
    if not fresh:
        return None
    listed = [
        {
            "rule_id": f.rule_id,
            "title": f.title,
            "kind": f.kind.value,
            "fix_available": f.fix_available,
            "where": _where(f),
        }
        for f in fresh[:MAX_ITEMS]
    ]
    return Notification(
        event=CRITICAL_FINDING,
        title=f"{len(fresh)} new critical finding{'s' if len(fresh) != 1 else ''} in {scan.artifact_digest}",
        time=scan.finished_at or scan.created_at,
        facts=(("artifact", scan.artifact_digest), ("scanner", scan.scanner), ("scan", scan.id)),
        items=tuple(
            f"{f.rule_id} {f.title} ({_where(f)}){', fix available' if f.fix_available else ''}"
            for f in fresh[:MAX_ITEMS]
        ),
        details={
            "scan_id": scan.id,
            "artifact_digest": scan.artifact_digest,
            "scanner": scan.scanner,
            "new_critical_count": len(fresh),
            "findings": listed,
        },
    )


@dataclass(frozen=True, slots=True)
class ExpiringWaiver:
    """A waiver that ends soon: what the waiver check reads from the store."""

    id: str
    owner: str
    policy: str
    rule: str
    expires: datetime
    reason: str = ""


def waiver_expiring(waiver: ExpiringWaiver, now: datetime) -> Notification:
    """The notification that ``waiver`` ends soon."""
    hours = max(0.0, (waiver.expires - now).total_seconds() / 3600)
    return Notification(
        event=WAIVER_EXPIRING,
        title=f"waiver {waiver.id} for {waiver.policy}/{waiver.rule} expires in {hours:.0f} h",
        time=now,
        facts=(("owner", waiver.owner), ("expires", waiver.expires.isoformat()), ("waiver", waiver.id)),
        items=(waiver.reason,) if waiver.reason else (),
        details={
            "waiver_id": waiver.id,
            "owner": waiver.owner,
            "policy": waiver.policy,
            "rule": waiver.rule,
            "expires": waiver.expires.isoformat(),
            "reason": waiver.reason,
        },
    )


def _where(finding: Finding) -> str:
    if finding.package is not None:
        return f"{finding.package.name} {finding.package.version}".strip()
    if finding.location is not None:
        return f"{finding.location.path}:{finding.location.start_line}"
    return ""
