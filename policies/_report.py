"""PolicyReport (wgpolicyk8s.io/v1alpha2) documents from rule responses."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from policies._model import ResourceRef, RuleResponse

_SUMMARY_KEYS = ("pass", "fail", "warn", "error", "skip")


def policy_reports(responses: Sequence[RuleResponse], *, now: float | None = None) -> list[dict[str, Any]]:
    """One PolicyReport per namespace (ClusterPolicyReport for cluster-scoped resources)."""
    stamp = int(now if now is not None else time.time())
    by_namespace: dict[str, list[RuleResponse]] = {}
    for response in responses:
        by_namespace.setdefault(response.resource.namespace, []).append(response)
    reports = []
    for namespace, items in sorted(by_namespace.items()):
        summary = dict.fromkeys(_SUMMARY_KEYS, 0)
        results = []
        for response in items:
            outcome = response.report_outcome.value
            summary[outcome] += 1
            entry: dict[str, Any] = {
                "policy": response.policy,
                "rule": response.rule,
                "result": outcome,
                "message": response.message,
                "scored": response.scored,
                "source": "kyverno",
                "timestamp": {"seconds": stamp, "nanos": 0},
                "resources": [_scope(response.resource)],
            }
            if response.category:
                entry["category"] = response.category
            if response.severity:
                entry["severity"] = response.severity
            results.append(entry)
        metadata: dict[str, Any] = {
            "name": f"{'polr-ns-' + namespace if namespace else 'clusterpolicyreport'}",
            "labels": {"app.kubernetes.io/managed-by": "kyverno"},
        }
        if namespace:
            metadata["namespace"] = namespace
        reports.append(
            {
                "apiVersion": "wgpolicyk8s.io/v1alpha2",
                "kind": "PolicyReport" if namespace else "ClusterPolicyReport",
                "metadata": metadata,
                "summary": summary,
                "results": results,
            }
        )
    return reports


def _scope(ref: ResourceRef) -> dict[str, str]:
    scope = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name}
    if ref.namespace:
        scope["namespace"] = ref.namespace
    return scope
