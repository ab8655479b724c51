"""Every manifest renders with kustomize and validates: Kubernetes kinds against the API schemas
(kubernetes-validate, strict), CRD kinds against the CRD schemas kept in tests/assets/deployments/crds."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from policies import AdmissionRequest, load_policies, verdict
from tests.integration.deployments._support import (
    CI,
    DEPLOYMENTS,
    KUSTOMIZATIONS,
    crd_schemas,
    find,
    is_builtin,
    render,
    yaml_files,
)

KUBERNETES_VERSION = kubernetes_validate.latest_version()


def _name(doc: Mapping[str, Any]) -> str:
    return (
        f"{doc['apiVersion']} {doc['kind']} {doc['metadata'].get('namespace', '')}/{doc['metadata']['name']}"
    )


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kustomization_renders_and_every_builtin_kind_matches_the_kubernetes_schema(
    kustomization: str,
) -> None:
    docs = render(kustomization)
    assert docs, f"{kustomization} rendered nothing"
    for doc in docs:
        if not is_builtin(doc["apiVersion"]):
            continue
        try:
            kubernetes_validate.validate(dict(doc), KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(p) for p in error.path)
            pytest.fail(f"{kustomization}: {_name(doc)}: {path}: {error.message}")


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_custom_kind_matches_its_crd_schema(kustomization: str) -> None:
    schemas = crd_schemas()
    for doc in render(kustomization):
        if is_builtin(doc["apiVersion"]):
            continue
        key = (doc["apiVersion"], doc["kind"])
        assert key in schemas, f"{_name(doc)}: no CRD schema in tests/assets/deployments/crds for {key}"
        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(schemas[key]).iter_errors(doc)
        )
        assert error is None, (
            f"{kustomization}: {_name(doc)}: {'/'.join(map(str, error.path))}: {error.message}"
        )


# One misspelt field per schema family: the schemas reject what the API server (or, for
# Tekton, its webhook) would, so a passing validation above says something.
_MISSPELT = (
    ("deployments/policies/kyverno", "ClusterPolicy", ("spec", "rules", 0, "validate"), "mesage"),
    ("deployments/base", "Certificate", ("spec",), "dnsName"),
    ("deployments/gitops/flux", "Kustomization", ("spec",), "dependOn"),
    ("deployments/gitops/flux/infrastructure", "HelmRelease", ("spec", "chart", "spec"), "chartt"),
    ("deployments/gitops/flux", "GitRepository", ("spec",), "branch"),
    ("deployments/gitops/argocd", "Application", ("spec", "syncPolicy"), "automatic"),
    ("deployments/monitoring/prometheus", "ServiceMonitor", ("spec", "endpoints", 0), "intervall"),
    ("deployments/monitoring/prometheus", "PrometheusRule", ("spec", "groups", 0), "rule"),
    ("deployments/canary/flagger", "Canary", ("spec", "analysis"), "iteration"),
    ("deployments/canary/flagger", "MetricTemplate", ("spec", "provider"), "adress"),
    ("ci/tekton", "Task", ("spec", "steps", 0), "scripts"),
    ("ci/tekton", "Pipeline", ("spec", "tasks", 0), "runafter"),
)


@pytest.mark.parametrize(("kustomization", "kind", "where", "field"), _MISSPELT)
def test_crd_schemas_reject_a_misspelt_field(
    kustomization: str, kind: str, where: tuple[Any, ...], field: str
) -> None:
    doc = copy.deepcopy(dict(next(d for d in render(kustomization) if d["kind"] == kind)))
    node: Any = doc
    for step in where:
        node = node[step]
    node[field] = "x"
    schema = crd_schemas()[(doc["apiVersion"], kind)]
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(doc)), f"{kind} accepted {field!r}"


def test_every_manifest_file_is_reached_by_a_kustomization() -> None:
    rendered = {(d["kind"], d["metadata"]["name"]) for k in KUSTOMIZATIONS for d in render(k)}
    missing = []
    for root in (DEPLOYMENTS, CI / "tekton"):
        for path in yaml_files(root):
            if (
                ".kyverno-test" in path.parts
                or path.name == "kustomization.yaml"
                or path.name.endswith("-patch.yaml")
            ):
                continue
            for doc in yaml.safe_load_all(path.read_text()):
                if (
                    isinstance(doc, dict)
                    and "kind" in doc
                    and (doc["kind"], doc["metadata"]["name"]) not in rendered
                ):
                    missing.append(
                        f"{path.relative_to(root.parent)}: {doc['kind']} {doc['metadata']['name']}"
                    )
    assert not missing, "manifests no kustomization renders (so never validated):\n" + "\n".join(missing)


def _pod_labels(docs: tuple[Mapping[str, Any], ...]) -> Mapping[str, str]:
    labels: Mapping[str, str] = find(docs, "Deployment", "gate")["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize("overlay", ["local", "staging", "production"])
def test_selectors_of_service_pdb_and_network_policy_select_gates_pods(overlay: str) -> None:
    docs = render(f"deployments/overlays/{overlay}")
    labels = _pod_labels(docs).items()
    assert find(docs, "Service", "gate")["spec"]["selector"].items() <= labels
    assert find(docs, "PodDisruptionBudget", "gate")["spec"]["selector"]["matchLabels"].items() <= labels
    assert find(docs, "NetworkPolicy", "gate")["spec"]["podSelector"]["matchLabels"].items() <= labels


def test_flagger_selectors_survive_the_primary_relabelling() -> None:
    # Flagger sets app.kubernetes.io/name to gate-primary on the primary's pods and owns Service gate.
    docs = render("deployments/canary/flagger")
    assert not [d for d in docs if d["kind"] == "Service"], "the base Service must give way to Flagger's"
    canary = find(docs, "Canary", "gate")
    assert canary["spec"]["targetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gate"}
    for kind, path in (
        ("PodDisruptionBudget", ("spec", "selector", "matchLabels")),
        ("NetworkPolicy", ("spec", "podSelector", "matchLabels")),
    ):
        node: Any = find(docs, kind, "gate")
        for step in path:
            node = node[step]
        assert "app.kubernetes.io/name" not in node, f"{kind} selects on a label Flagger rewrites"


def test_overlays_differ_where_their_readme_says() -> None:
    base = find(render("deployments/base"), "Deployment", "gate")
    assert base["spec"]["replicas"] == 3
    local = render("deployments/overlays/local")
    assert find(local, "Deployment", "gate")["spec"]["replicas"] == 1
    assert find(local, "ValidatingWebhookConfiguration", "gate")["webhooks"][0]["failurePolicy"] == "Ignore"
    assert {d["metadata"]["name"].rsplit("-", 1)[0] for d in local if d["kind"] == "Secret"} >= {
        "gate-database",
        "gate-findings-key",
    }
    staging = render("deployments/overlays/staging")
    assert {d["spec"]["validationFailureAction"] for d in staging if d["kind"] == "ClusterPolicy"} == {
        "Audit"
    }
    production = render("deployments/overlays/production")
    assert {d["spec"]["validationFailureAction"] for d in production if d["kind"] == "ClusterPolicy"} == {
        "Enforce"
    }
    assert (
        find(production, "ValidatingWebhookConfiguration", "gate")["webhooks"][0]["failurePolicy"] == "Fail"
    )
    assert find(production, "Deployment", "gate")["spec"]["replicas"] >= 3
    # Staging and production bring their Secrets out of band (deployments/README.md).
    assert not [d for d in staging + production if d["kind"] == "Secret"]


def test_gate_runs_unprivileged_with_no_kubernetes_api_access() -> None:
    docs = render("deployments/overlays/production")
    pod = find(docs, "Deployment", "gate")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    account = find(docs, "ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    bound = [
        d
        for d in docs
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and any(s.get("name") == account["metadata"]["name"] for s in d.get("subjects", ()))
    ]
    assert not bound, "gate needs no Kubernetes API permissions"
    namespace = find(docs, "Namespace", "gate-system")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_gates_own_deployment_passes_the_projects_pod_security_policy() -> None:
    bundle = load_policies([DEPLOYMENTS / "policies" / "kyverno" / "pod-security-baseline"])
    for overlay in ("local", "production"):
        for doc in render(f"deployments/overlays/{overlay}"):
            if doc["kind"] in ("Deployment", "StatefulSet"):
                answer = verdict(bundle.evaluate(AdmissionRequest(operation="CREATE", object=doc)))
                assert answer.allowed, f"{overlay} {doc['kind']} {doc['metadata']['name']}: {answer.message}"
