"""match/exclude: kinds, names, namespaces, selectors, annotations, operations, user info."""

from __future__ import annotations

from policies import AdmissionRequest, UserInfo
from policies._match import parse_kind
from tests.unit.policies.conftest import pod, policy

DENY_ALL = """
validate:
  message: blocked
  deny: {}
"""


def rule(match: str, exclude: str = "") -> str:
    text = "- name: r\n  match:\n" + "\n".join("    " + line for line in match.strip().splitlines()) + "\n"
    if exclude:
        text += "  exclude:\n" + "\n".join("    " + line for line in exclude.strip().splitlines()) + "\n"
    return text + "\n".join("  " + line for line in DENY_ALL.strip().splitlines())


def rules_hit(match: str, resource: dict, exclude: str = "", **request: object) -> bool:
    bundle = policy(rule(match, exclude), annotations="pod-policies.kyverno.io/autogen-controllers: none")
    responses = bundle.evaluate(AdmissionRequest(object=resource, **request))  # type: ignore[arg-type]
    return bool(responses)


def test_kind_selectors_parse_group_version_kind_and_subresource() -> None:
    assert parse_kind("Pod") == ("*", "*", "Pod", "")
    assert parse_kind("v1/Pod") == ("*", "v1", "Pod", "")
    assert parse_kind("apps/v1/Deployment") == ("apps", "v1", "Deployment", "")
    assert parse_kind("Pod/exec") == ("*", "*", "Pod", "exec")
    assert parse_kind("*/*") == ("*", "*", "*", "*")


def test_kinds_match_by_kind_and_qualified_gvk() -> None:
    assert rules_hit("any:\n- resources: {kinds: [Pod]}", pod())
    assert rules_hit("any:\n- resources: {kinds: [v1/Pod]}", pod())
    assert not rules_hit("any:\n- resources: {kinds: [apps/v1/Pod]}", pod())
    assert not rules_hit("any:\n- resources: {kinds: [Service]}", pod())


def test_plain_kind_does_not_match_subresources() -> None:
    assert not rules_hit("any:\n- resources: {kinds: [Pod]}", pod(), sub_resource="status")
    assert rules_hit("any:\n- resources: {kinds: [Pod/status]}", pod(), sub_resource="status")


def test_names_and_namespaces_match_with_wildcards() -> None:
    assert rules_hit("any:\n- resources: {kinds: [Pod], names: ['p*']}", pod())
    assert not rules_hit("any:\n- resources: {kinds: [Pod], names: ['q*']}", pod())
    assert rules_hit("any:\n- resources: {kinds: [Pod], namespaces: ['def*']}", pod())
    assert not rules_hit("any:\n- resources: {kinds: [Pod], namespaces: [prod]}", pod())


def test_selector_match_labels_and_expressions() -> None:
    assert rules_hit("any:\n- resources: {kinds: [Pod], selector: {matchLabels: {app: 'w*'}}}", pod())
    assert not rules_hit("any:\n- resources: {kinds: [Pod], selector: {matchLabels: {app: db}}}", pod())
    expr = (
        "any:\n- resources: {kinds: [Pod], "
        "selector: {matchExpressions: [{key: app, operator: NotIn, values: [web]}]}}"
    )
    assert not rules_hit(expr, pod())


def test_namespace_selector_uses_namespace_labels() -> None:
    match = "any:\n- resources: {kinds: [Pod], namespaceSelector: {matchLabels: {tier: prod}}}"
    assert rules_hit(match, pod(), namespace_labels={"tier": "prod"})
    assert not rules_hit(match, pod(), namespace_labels={"tier": "dev"})


def test_annotations_must_all_match() -> None:
    resource = pod()
    resource["metadata"]["annotations"] = {"team": "a"}
    assert rules_hit("any:\n- resources: {kinds: [Pod], annotations: {team: '*'}}", resource)
    assert not rules_hit("any:\n- resources: {kinds: [Pod], annotations: {owner: '*'}}", resource)


def test_operations_filter_requests() -> None:
    match = "any:\n- resources: {kinds: [Pod], operations: [UPDATE]}"
    assert not rules_hit(match, pod())
    assert rules_hit(match, pod(), operation="UPDATE", old_object=pod())


def test_all_block_needs_every_filter() -> None:
    match = "all:\n- resources: {kinds: [Pod]}\n- resources: {namespaces: [prod]}"
    assert not rules_hit(match, pod())
    assert rules_hit(match, pod(namespace="prod"))


def test_exclude_any_and_all() -> None:
    match = "any:\n- resources: {kinds: [Pod]}"
    assert not rules_hit(match, pod(), exclude="any:\n- resources: {namespaces: [default]}")
    both = "all:\n- resources: {namespaces: [default]}\n- resources: {names: [other]}"
    assert rules_hit(match, pod(), exclude=both)


def test_subjects_roles_and_cluster_roles_come_from_user_info() -> None:
    match = (
        "any:\n- resources: {kinds: [Pod]}\n"
        "  subjects: [{kind: ServiceAccount, name: builder, namespace: ci}]"
    )
    sa = UserInfo(username="system:serviceaccount:ci:builder")
    assert rules_hit(match, pod(), user_info=sa)
    assert not rules_hit(match, pod(), user_info=UserInfo(username="alice"))
    exclude = "any:\n- clusterRoles: [cluster-admin]"
    admin = UserInfo(username="root", cluster_roles=("cluster-admin",))
    assert not rules_hit("any:\n- resources: {kinds: [Pod]}", pod(), exclude=exclude, user_info=admin)


def test_without_user_info_user_filters_are_ignored_in_match_and_never_exclude() -> None:
    match = "any:\n- resources: {kinds: [Pod]}\n  subjects: [{kind: User, name: alice}]"
    assert rules_hit(match, pod())
    assert rules_hit(
        "any:\n- resources: {kinds: [Pod]}", pod(), exclude="any:\n- clusterRoles: [cluster-admin]"
    )


def test_namespaced_policy_applies_only_in_its_namespace() -> None:
    from policies import parse_policies

    bundle = parse_policies(
        "apiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {name: p, namespace: team}\n"
        "spec:\n  rules:\n  - name: r\n    match: {any: [{resources: {kinds: [ConfigMap]}}]}\n"
        "    validate: {deny: {}}\n"
    )
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "team"}}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x"}}
    assert [r.policy for r in bundle.evaluate_resource(cm)] == ["team/p"]
    assert bundle.evaluate_resource(other) == []
