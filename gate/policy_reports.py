"""PolicyReport export: recorded admission decisions as wgpolicyk8s.io/v1alpha2 reports.

Pure: the caller pages decisions out of the store and says where a policy
bundle's annotations come from; the documents are built by the policy
engine's report builder (:func:`policies._report.resource_report`), the same
one ``gate policy apply -o json`` uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gate.model import Decision, EnforcementAction

# The stage admission decisions are recorded under (gate.decisions.STAGE).
ADMISSION_STAGE = "admission"
# Decisions read for one export at most; a bigger trail is exported in windows (``since``).
MAX_EXPORT_DECISIONS = 100_000


@dataclass(frozen=True, slots=True)
class PolicyMeta:
    """What a report says about a policy besides its results (Kyverno's policy annotations)."""

    scored: bool = True
    category: str = ""
    severity: str = ""


def policy_meta(documents: Iterable[Mapping[str, Any]]) -> dict[str, PolicyMeta]:
    """Report annotations of a policy bundle's documents, keyed as rule results name policies.

    A namespaced Policy is ``namespace/name``, anything else ``name`` (as the engine keys them).
    """
    found: dict[str, PolicyMeta] = {}
    for document in documents:
        metadata = document.get("metadata")
        if not isinstance(metadata, Mapping):
            continue
        name = str(metadata.get("name") or "")
        namespace = str(metadata.get("namespace") or "")
        annotations = metadata.get("annotations")
        annotations = annotations if isinstance(annotations, Mapping) else {}
        found[f"{namespace}/{name}" if namespace else name] = PolicyMeta(
            scored=str(annotations.get("policies.kyverno.io/scored", "true")).lower() != "false",
            category=str(annotations.get("policies.kyverno.io/category", "")),
            severity=str(annotations.get("policies.kyverno.io/severity", "")),
        )
    return found


@dataclass(frozen=True, slots=True)
class _Resource:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    @property
    def key(self) -> tuple[str, ...]:
        # A uid names one incarnation of a resource; without one (an object the API
        # server had not created yet) the coordinates do.
        return (self.uid,) if self.uid else (self.api_version, self.kind, self.namespace, self.name)


def export_reports(
    decisions: Iterable[Decision],
    meta_of: Callable[[str], Mapping[str, PolicyMeta]],
    *,
    namespace: str = "",
) -> list[dict[str, Any]]:
    """One PolicyReport (ClusterPolicyReport when cluster-scoped) per resource, from ``decisions``.

    ``decisions`` come newest first: the first decision seen about a resource
    is its report (the latest decision wins); a resource whose latest
    decision is a DELETE, or has no rule results, has none. Decisions of
    other stages or with no identifiable resource are skipped. ``meta_of``
    maps a decision's policy bundle digest to its policies' annotations.
    Denied creations are reported too: the resource never existed in the
    cluster, but the trail shows what was refused and why. Every result
    carries the decision id in ``properties``, so the record can be fetched,
    verified and replayed.
    """
    from policies import ResourceRef, RuleResponse
    from policies._report import resource_report

    seen: set[tuple[str, ...]] = set()
    reports: list[dict[str, Any]] = []
    for decision in decisions:
        if decision.stage != ADMISSION_STAGE:
            continue
        resource = _resource_of(decision.request)
        if resource is None or resource.key in seen:
            continue
        seen.add(resource.key)
        if decision.request.get("operation") == "DELETE" or not decision.results:
            continue
        if namespace and resource.namespace != namespace:
            continue
        meta = meta_of(decision.policy_bundle_digest)
        scope = ResourceRef(resource.api_version, resource.kind, resource.namespace, resource.name)
        responses = []
        for result in decision.results:
            policy = meta.get(result.policy, PolicyMeta())
            responses.append(
                RuleResponse(
                    policy=result.policy,
                    rule=result.rule,
                    outcome=result.outcome,
                    message=result.message,
                    action=result.action or EnforcementAction.ENFORCE,
                    resource=scope,
                    scored=policy.scored,
                    category=policy.category,
                    severity=policy.severity,
                )
            )
        report = resource_report(
            responses,
            name=resource.uid or _coordinates_name(resource),
            uid=resource.uid,
            scope=scope,
            now=decision.decided_at.timestamp(),
            properties={
                "process": "admission review",
                "decision": decision.id,
                "allowed": "true" if decision.allowed else "false",
            },
        )
        reports.append(report)
    reports.sort(key=lambda r: (r["kind"], r["metadata"].get("namespace", ""), r["scope"]["name"]))
    return reports


def _resource_of(request: Mapping[str, Any]) -> _Resource | None:
    """The resource an AdmissionReview ``request`` is about (the object, or the old one on DELETE)."""
    obj = request.get("object") or request.get("oldObject")
    obj = obj if isinstance(obj, Mapping) else {}
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    gvk = request.get("kind")
    gvk = gvk if isinstance(gvk, Mapping) else {}
    kind = str(gvk.get("kind") or obj.get("kind") or "")
    api_version = str(obj.get("apiVersion") or "")
    if not api_version and gvk.get("version"):
        group = str(gvk.get("group") or "")
        api_version = f"{group}/{gvk['version']}" if group else str(gvk["version"])
    name = str(request.get("name") or metadata.get("name") or "")
    if not kind or not name:
        return None
    namespace = str(request.get("namespace") or metadata.get("namespace") or "")
    return _Resource(api_version, kind, namespace, name, str(metadata.get("uid") or ""))


# Names for reports of resources with no uid: stable for the same coordinates.
_REPORT_NAMESPACE = uuid.UUID("5b0f2f7e-6a4d-4d43-9a53-1c2f0c6e7a11")


def _coordinates_name(resource: _Resource) -> str:
    coordinates = (resource.api_version, resource.kind, resource.namespace, resource.name)
    return str(uuid.uuid5(_REPORT_NAMESPACE, "/".join(coordinates)))
