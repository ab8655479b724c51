"""The RBAC components grant what gate's Kubernetes calls need and nothing more, and the webhook
client-CA component moves probes and Kyverno's evidence calls to the probe listener.

gate's own calls are recorded against the API server stand-in (tests.kube_support) and each one
is checked against the rendered rules, so a new call without a matching rule fails here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from gate.auth._kubernetes import KubernetesTokenReviewer
from gate.config import load_config, parse_listen
from gate.credentials import CredentialMaterial, KubernetesObjects, ProjectCredentials, ProjectRef
from gate.oci._pull_secrets import KubernetesSecretReader, SecretRef, pull_secret_refs
from tests.integration.deployments._support import (
    DEPLOYMENTS,
    KUSTOMIZATIONS,
    ROOT,
    find,
    is_builtin,
    render,
    run,
    tool,
)
from tests.kube_support import FakeApiServer, ReviewedToken, api_client, fake_api_server

FULL = "deployments/overlays/production-kubernetes"
COMPONENTS = DEPLOYMENTS / "components"
SSH_KEY = ROOT / "tests" / "assets" / "credentials" / "id_ed25519"
_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/v1)(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[a-z]+)"
    r"(?:/(?P<name>[^/?]+))?"
)
_VERB = {"GET": "get", "POST": "create", "PUT": "update", "DELETE": "delete"}


def _render_dir(directory: Path, text: str) -> tuple[Mapping[str, Any], ...]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kustomization.yaml").write_text(text)
    result = run(tool("kubectl"), "kustomize", str(directory))
    assert result.returncode == 0, f"kubectl kustomize failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def _relative(directory: Path, target: Path) -> str:
    # kustomize takes only relative paths to other kustomizations.
    return os.path.relpath(target, directory)


def _calls(api: FakeApiServer) -> Iterator[tuple[str, str, str, str, str]]:
    """(verb, API group, resource, namespace, name) of every request gate made."""
    for method, path in api.requests:
        match = _PATH.match(path)
        assert match is not None, path
        yield _VERB[method], match["group"] or "", match["resource"], match["ns"] or "", match["name"] or ""


def _rules_of(docs: Sequence[Mapping[str, Any]], kind: str, name: str) -> list[Mapping[str, Any]]:
    rules: list[Mapping[str, Any]] = find(tuple(docs), kind, name)["rules"]
    return rules


def _allows(rules: Sequence[Mapping[str, Any]], verb: str, group: str, resource: str, name: str) -> bool:
    return any(
        group in rule["apiGroups"]
        and resource in rule["resources"]
        and verb in rule["verbs"]
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
        for rule in rules
    )


def _bound_to_gate(docs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        d
        for d in docs
        if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and any(
            s["kind"] == "ServiceAccount" and s["name"] == "gate" and s["namespace"] == "gate-system"
            for s in d["subjects"]
        )
    ]


def _container(docs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    container: Mapping[str, Any] = find(tuple(docs), "Deployment", "gate")["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def _env(container: Mapping[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", ()) if "value" in e}


def test_no_rule_uses_wildcards_or_lists_or_watches() -> None:
    for kustomization in KUSTOMIZATIONS:
        for doc in render(kustomization):
            if doc["kind"] not in ("Role", "ClusterRole"):
                continue
            for rule in doc["rules"]:
                where = f"{kustomization}: {doc['kind']} {doc['metadata']['name']}"
                assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], where
                assert not {"list", "watch", "escalate", "bind", "impersonate"} & set(rule["verbs"]), where


def test_every_kustomization_that_binds_gate_mounts_its_token_and_lets_it_reach_the_api_server() -> None:
    for kustomization in KUSTOMIZATIONS:
        docs = render(kustomization)
        if not _bound_to_gate(docs) or not [d for d in docs if d["kind"] == "Deployment"]:
            continue
        pod = find(docs, "Deployment", "gate")["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is True, kustomization
        assert find(docs, "ServiceAccount", "gate")["automountServiceAccountToken"] is True, kustomization
        egress = find(docs, "NetworkPolicy", "gate-kubernetes-api")["spec"]["egress"]
        assert {p["port"] for rule in egress for p in rule["ports"]} >= {6443}


def test_token_review_rights_are_exactly_what_the_reviewer_uses() -> None:
    docs = render(FULL)
    rules = _rules_of(docs, "ClusterRole", "gate-token-review")
    assert rules == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}
    ]
    binding = find(docs, "ClusterRoleBinding", "gate-token-review")
    assert binding["roleRef"]["name"] == "gate-token-review"
    with fake_api_server() as api:
        api.tokens["t"] = ReviewedToken("system:serviceaccount:ci:runner")
        assert KubernetesTokenReviewer(api_client(api)).review("t", ()).authenticated
        for verb, group, resource, _, name in _calls(api):
            assert _allows(rules, verb, group, resource, name), (verb, group, resource)


def test_project_credentials_rights_cover_apply_rotate_and_delete_and_are_bound_per_namespace(
    tmp_path: Path,
) -> None:
    docs = render(FULL)
    rules = _rules_of(docs, "ClusterRole", "gate-project-credentials")
    # No cluster-wide binding: the rights hold only in namespaces bound one by one.
    assert not [d for d in _bound_to_gate(docs) if d["roleRef"]["name"] == "gate-project-credentials"], (
        "gate-project-credentials must be bound per project namespace, not cluster-wide"
    )
    directory = tmp_path / "team-a"
    namespaced = _render_dir(
        directory,
        "namespace: team-a\nresources:\n  - "
        + _relative(directory, COMPONENTS / "project-credentials" / "namespace")
        + "\n",
    )
    (binding,) = namespaced
    assert binding["kind"] == "RoleBinding"
    assert binding["metadata"]["namespace"] == "team-a"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "gate-project-credentials",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gate", "namespace": "gate-system"}]

    def material(password: bytes) -> CredentialMaterial:
        return CredentialMaterial.check(
            ssh_private_key=SSH_KEY.read_bytes(),
            known_hosts=b"",
            registry="registry.example.com",
            username="ci",
            password=password,
        )

    with fake_api_server() as api:
        service = ProjectCredentials(lambda: KubernetesObjects(api_client(api)))
        ref = ProjectRef.of("web", "team-a")
        service.apply(ref, material(b"first"))
        service.rotate(ref, material(b"rotated"))
        service.delete(ref)
        calls = list(_calls(api))
    assert {verb for verb, *_ in calls} == {"get", "create", "update", "delete"}
    for verb, group, resource, namespace, name in calls:
        assert namespace == "team-a"
        assert _allows(rules, verb, group, resource, name), (verb, group, resource)


def test_pull_secret_rights_name_exactly_the_secrets_gate_is_configured_to_read() -> None:
    docs = render(FULL)
    role = find(docs, "Role", "gate-pull-secrets")
    binding = find(docs, "RoleBinding", "gate-pull-secrets")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "gate-pull-secrets",
    }
    config = load_config(None, environ=_env(_container(docs)))
    refs = pull_secret_refs(config.registry)
    assert refs
    for ref in refs:
        assert ref.namespace == role["metadata"]["namespace"]
    assert sorted(role["rules"][0]["resourceNames"]) == sorted(ref.name for ref in refs)
    with fake_api_server() as api:
        reader = KubernetesSecretReader(api_client(api))
        for ref in refs:
            reader.read(ref)
        assert reader.read(SecretRef("gate-system", "another")) is None
        calls = list(_calls(api))
    for verb, group, resource, _, name in calls[: len(refs)]:
        assert _allows(role["rules"], verb, group, resource, name)
    verb, group, resource, _, name = calls[-1]
    assert not _allows(role["rules"], verb, group, resource, name), "a Secret not configured is readable"


# Objects each component adds to production (with kubernetes-api for the RBAC ones).
_ADDED = {
    "token-review": {("ClusterRole", "gate-token-review"), ("ClusterRoleBinding", "gate-token-review")},
    "project-credentials": {("ClusterRole", "gate-project-credentials")},
    "pull-secrets": {("Role", "gate-pull-secrets"), ("RoleBinding", "gate-pull-secrets")},
    "webhook-client-ca": set(),
}


@pytest.mark.parametrize("component", sorted(_ADDED))
def test_each_component_composes_alone_with_production_and_validates(tmp_path: Path, component: str) -> None:
    directory = tmp_path / component
    extra = [] if component == "webhook-client-ca" else ["kubernetes-api"]
    lines = [
        "resources:",
        "  - " + _relative(directory, DEPLOYMENTS / "overlays" / "production"),
        "components:",
    ]
    lines += [f"  - {_relative(directory, COMPONENTS / name)}" for name in (component, *extra)]
    docs = _render_dir(directory, "\n".join(lines) + "\n")
    production = {(d["kind"], d["metadata"]["name"]) for d in render("deployments/overlays/production")}
    added = {(d["kind"], d["metadata"]["name"]) for d in docs} - production
    api_access = set() if component == "webhook-client-ca" else {("NetworkPolicy", "gate-kubernetes-api")}
    assert added == _ADDED[component] | api_access
    for doc in docs:
        if is_builtin(doc["apiVersion"]):
            try:
                kubernetes_validate.validate(dict(doc), kubernetes_validate.latest_version(), strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{component}: {doc['kind']} {doc['metadata']['name']}: {error.message}")


def test_with_a_client_ca_probes_and_kyverno_reach_the_probe_listener_and_the_api_server_the_webhook() -> (
    None
):
    docs = render(FULL)
    container = _container(docs)
    environ = _env(container)
    config = load_config(None, environ=environ)
    assert config.webhook.client_ca_file is not None
    assert config.webhook.probe_listen is not None
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["probes"] == parse_listen(config.webhook.probe_listen).port
    assert ports["webhook"] == parse_listen(config.webhook.listen).port
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "probes", probe
        assert container[probe]["httpGet"]["scheme"] == "HTTPS", probe
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(config.webhook.client_ca_file.parent) in mounts
    service = {p["port"]: p["targetPort"] for p in find(docs, "Service", "gate")["spec"]["ports"]}
    webhook = find(docs, "ValidatingWebhookConfiguration", "gate")["webhooks"][0]["clientConfig"]["service"]
    assert service[webhook["port"]] == "webhook"
    # Every evidence URL Kyverno calls lands on the probe listener, and gate answers it in process.
    urls = {
        call["service"]["url"] for doc in docs if doc["kind"] == "ClusterPolicy" for call in _api_calls(doc)
    }
    assert urls
    for url in urls:
        port = int(re.fullmatch(r"https://gate\.gate-system\.svc:(\d+)/v1/evidence", url)[1])  # type: ignore[index]
        assert service[port] == "probes", url
        assert url in config.policies.evidence_urls
    ingress_ports = {
        p["port"] for rule in find(docs, "NetworkPolicy", "gate")["spec"]["ingress"] for p in rule["ports"]
    }
    assert {"webhook", "probes"} <= ingress_ports


def _api_calls(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, dict):
        if "apiCall" in node and "service" in node["apiCall"]:
            yield node["apiCall"]
        for value in node.values():
            yield from _api_calls(value)
    elif isinstance(node, list):
        for value in node:
            yield from _api_calls(value)
