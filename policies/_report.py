"""PolicyReport (wgpolicyk8s.io/v1alpha2) documents from rule responses."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from policies._model import ResourceRef, RuleResponse

API_VERSION = "wgpolicyk8s.io/v1alpha2"
_SUMMARY_KEYS = ("pass", "fail", "warn", "error", "skip")
_MANAGED_BY = {"app.kubernetes.io/managed-by": "kyverno"}


def policy_reports(responses: Sequence[RuleResponse], *, now: float | None = None) -> list[dict[str, Any]]:
    """One PolicyReport per namespace (ClusterPolicyReport for cluster-scoped resources)."""
    stamp = int(now if now is not None else time.time())
    by_namespace: dict[str, list[RuleResponse]] = {}
    for response in responses:
        by_namespace.setdefault(response.resource.namespace, []).append(response)
    reports = []
    for namespace, items in sorted(by_namespace.items()):
        results = [
            {**_result(response, stamp), "resources": [_scope(response.resource)]} for response in items
        ]
        metadata: dict[str, Any] = {
            "name": f"{'polr-ns-' + namespace if namespace else 'clusterpolicyreport'}",
            "labels": dict(_MANAGED_BY),
        }
        if namespace:
            metadata["namespace"] = namespace
        reports.append(_report(namespace, metadata, items, results))
    return reports


def resource_report(
    responses: Sequence[RuleResponse],
    *,
    name: str,
    uid: str,
    scope: ResourceRef,
    now: float,
    properties: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The report of one resource, as Kyverno's reports controller keeps it.

    Named ``name`` (Kyverno uses the resource uid) and, when the resource's
    ``uid`` is known, owned by it (so that Kubernetes deletes it with the
    resource), with ``scope`` naming the resource. A PolicyReport in the
    resource's namespace, or a ClusterPolicyReport for a cluster-scoped
    resource. ``properties`` are added to every result.
    """
    stamp = int(now)
    results = []
    for response in responses:
        entry = _result(response, stamp)
        if properties:
            entry["properties"] = dict(properties)
        results.append(entry)
    metadata: dict[str, Any] = {"name": name, "labels": dict(_MANAGED_BY)}
    if scope.namespace:
        metadata["namespace"] = scope.namespace
    if uid:
        metadata["ownerReferences"] = [
            {"apiVersion": scope.api_version, "kind": scope.kind, "name": scope.name, "uid": uid}
        ]
    report = _report(scope.namespace, metadata, responses, results)
    report["scope"] = {**_scope(scope), "uid": uid} if uid else _scope(scope)
    return report


def _report(
    namespace: str, metadata: dict[str, Any], responses: Sequence[RuleResponse], results: list[dict[str, Any]]
) -> dict[str, Any]:
    summary = dict.fromkeys(_SUMMARY_KEYS, 0)
    for response in responses:
        summary[response.report_outcome.value] += 1
    return {
        "apiVersion": API_VERSION,
        "kind": "PolicyReport" if namespace else "ClusterPolicyReport",
        "metadata": metadata,
        "summary": summary,
        "results": results,
    }


def _result(response: RuleResponse, stamp: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "policy": response.policy,
        "rule": response.rule,
        "result": response.report_outcome.value,
        "message": response.message,
        "scored": response.scored,
        "source": "kyverno",
        "timestamp": {"seconds": stamp, "nanos": 0},
    }
    if response.category:
        entry["category"] = response.category
    if response.severity:
        entry["severity"] = response.severity
    return entry


def _scope(ref: ResourceRef) -> dict[str, str]:
    scope = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name}
    if ref.namespace:
        scope["namespace"] = ref.namespace
    return scope
