"""PolicyExceptions and waivers: which rules they exempt, for which resources, with which message."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gate.model import RuleOutcome
from policies import (
    AdmissionRequest,
    ContextValues,
    PolicyBundle,
    PolicyLoadError,
    Waiver,
    parse_policies,
)

HOST_POLICY = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: disallow-host-namespaces}
spec:
  validationFailureAction: Enforce
  rules:
  - name: host-namespaces
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: host namespaces are not allowed
      pattern:
        spec:
          =(hostNetwork): "false"
"""

PSS_POLICY = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: pss-baseline}
spec:
  validationFailureAction: Enforce
  rules:
  - name: baseline
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      podSecurity: {level: baseline, version: latest}
"""


def exception(
    *,
    name: str = "delta-exception",
    namespace: str = "delta",
    policy: str = "disallow-host-namespaces",
    rules: str = "[host-namespaces, autogen-host-namespaces]",
    match: str = "{any: [{resources: {kinds: [Pod, Deployment], names: [important-tool*]}}]}",
    extra: str = "",
) -> str:
    return f"""
---
apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  exceptions:
  - policyName: {policy}
    ruleNames: {rules}
  match: {match}
{extra}
"""


def pod(name: str = "important-tool-1", namespace: str = "delta", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": [{"name": "c", "image": "registry.example/tool:1"}]}
    body.update(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def deployment(name: str = "important-tool", namespace: str = "delta") -> dict[str, Any]:
    template = pod()
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"labels": {"app": "x"}},
                "spec": {**template["spec"], "hostNetwork": True},
            },
        },
    }


def outcomes(
    bundle: PolicyBundle, resource: dict[str, Any], values: ContextValues | None = None
) -> dict[str, Any]:
    request = AdmissionRequest(operation="CREATE", object=resource)
    return {r.rule: r for r in bundle.evaluate(request, values=values)}


def test_a_matching_exception_turns_the_failure_into_a_skip_with_kyvernos_message() -> None:
    bundle = parse_policies(HOST_POLICY + exception())
    response = outcomes(bundle, pod(hostNetwork=True))["host-namespaces"]
    assert response.outcome is RuleOutcome.SKIP
    assert response.message == "rule is skipped due to policy exceptionsdelta/delta-exception"
    assert response.exceptions == ("delta/delta-exception",)
    assert not response.blocks


def test_a_resource_outside_the_exception_match_still_fails() -> None:
    bundle = parse_policies(HOST_POLICY + exception())
    assert (
        outcomes(bundle, pod(name="other", hostNetwork=True))["host-namespaces"].outcome is RuleOutcome.FAIL
    )


def test_an_exception_for_another_rule_or_policy_does_not_apply() -> None:
    other_rule = parse_policies(HOST_POLICY + exception(rules="[something-else]"))
    other_policy = parse_policies(HOST_POLICY + exception(policy="another-policy"))
    for bundle in (other_rule, other_policy):
        assert outcomes(bundle, pod(hostNetwork=True))["host-namespaces"].outcome is RuleOutcome.FAIL


def test_policy_and_rule_names_accept_wildcards() -> None:
    bundle = parse_policies(HOST_POLICY + exception(policy="disallow-*", rules="['host-*']"))
    assert outcomes(bundle, pod(hostNetwork=True))["host-namespaces"].outcome is RuleOutcome.SKIP


def test_autogen_rules_are_exempted_by_their_generated_names() -> None:
    named = parse_policies(HOST_POLICY + exception())
    assert outcomes(named, deployment())["autogen-host-namespaces"].outcome is RuleOutcome.SKIP
    original_only = parse_policies(HOST_POLICY + exception(rules="[host-namespaces]"))
    assert outcomes(original_only, deployment())["autogen-host-namespaces"].outcome is RuleOutcome.FAIL


def test_conditions_must_hold_for_the_exception_to_apply() -> None:
    conditions = """  conditions:
    any:
    - key: "{{ request.object.metadata.labels.team || '' }}"
      operator: Equals
      value: platform
"""
    bundle = parse_policies(HOST_POLICY + exception(extra=conditions))
    labelled = pod(hostNetwork=True)
    labelled["metadata"]["labels"] = {"team": "platform"}
    assert outcomes(bundle, labelled)["host-namespaces"].outcome is RuleOutcome.SKIP
    assert outcomes(bundle, pod(hostNetwork=True))["host-namespaces"].outcome is RuleOutcome.FAIL


def test_conditions_that_cannot_be_evaluated_leave_the_rule_in_force() -> None:
    conditions = """  conditions:
    all:
    - key: "{{ request.object.metadata.labels.team }}"
      operator: Equals
      value: platform
"""
    bundle = parse_policies(HOST_POLICY + exception(extra=conditions))
    assert outcomes(bundle, pod(hostNetwork=True))["host-namespaces"].outcome is RuleOutcome.FAIL


def test_pod_security_controls_exempt_only_the_named_violations() -> None:
    controls = """  podSecurity:
  - controlName: Host Namespaces
"""
    bundle = parse_policies(
        PSS_POLICY
        + exception(
            policy="pss-baseline",
            rules="[baseline]",
            match="{any: [{resources: {kinds: [Pod]}}]}",
            extra=controls,
        )
    )
    only_host = outcomes(bundle, pod(hostNetwork=True))["baseline"]
    assert only_host.outcome is RuleOutcome.SKIP
    assert only_host.message == "rule is skipped due to policy exceptions delta/delta-exception"
    privileged = pod(
        hostNetwork=True, containers=[{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
    )
    still = outcomes(bundle, privileged)["baseline"]
    assert still.outcome is RuleOutcome.FAIL
    assert "Privileged Containers" in still.message
    assert "Host Namespaces" not in still.message


def test_an_exception_without_pod_security_controls_skips_a_pod_security_rule_entirely() -> None:
    bundle = parse_policies(
        PSS_POLICY
        + exception(policy="pss-baseline", rules="[baseline]", match="{any: [{resources: {kinds: [Pod]}}]}")
    )
    response = outcomes(bundle, pod(hostNetwork=True))["baseline"]
    assert response.outcome is RuleOutcome.SKIP
    assert response.message == "rule is skipped due to policy exception delta/delta-exception"


def test_exceptions_are_part_of_the_bundle_digest_and_documents() -> None:
    plain = parse_policies(HOST_POLICY)
    with_exception = parse_policies(HOST_POLICY + exception())
    assert plain.digest != with_exception.digest
    assert [d["kind"] for d in with_exception.documents()] == ["ClusterPolicy", "PolicyException"]
    assert parse_policies(HOST_POLICY).digest == plain.digest
    # What the store keeps for replays compiles back to the same bundle.
    kept = "\n---\n".join(json.dumps(d) for d in with_exception.documents())
    again = parse_policies(kept, "kept bundle")
    assert again.digest == with_exception.digest
    assert [e.key for e in again.exceptions] == ["delta/delta-exception"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        (exception(rules="host-namespaces"), "ruleNames"),
        (exception(match="{}"), "spec.match"),
        (exception(extra="  podSecurity:\n  - controlName: Nope\n"), "podSecurity"),
        (exception(extra="  bogus: 1\n"), "bogus"),
        (exception(policy="''"), "policyName"),
    ],
)
def test_malformed_exceptions_are_load_errors_naming_the_field(document: str, field: str) -> None:
    with pytest.raises(PolicyLoadError) as raised:
        parse_policies(HOST_POLICY + document)
    assert field in str(raised.value)


def test_duplicate_exceptions_are_load_errors() -> None:
    with pytest.raises(PolicyLoadError, match="duplicate PolicyException"):
        parse_policies(HOST_POLICY + exception() + exception())


def waiver(**fields: Any) -> Waiver:
    base: dict[str, Any] = {
        "id": "w-1",
        "policy": "disallow-host-namespaces",
        "owner": "alice@example.com",
        "expires": "2026-12-31T00:00:00+00:00",
        "reason": "migration",
    }
    base.update(fields)
    return Waiver(**base)


def test_a_waiver_skips_the_rule_naming_its_id_owner_and_expiry() -> None:
    bundle = parse_policies(HOST_POLICY)
    values = ContextValues(exceptions=(waiver(namespace="delta"),))
    response = outcomes(bundle, pod(hostNetwork=True), values)["host-namespaces"]
    assert response.outcome is RuleOutcome.SKIP
    assert response.waivers == ("w-1",)
    assert "w-1" in response.message
    assert "alice@example.com" in response.message
    assert "2026-12-31" in response.message


@pytest.mark.parametrize(
    ("selector", "applies"),
    [
        ({"namespace": "del*"}, True),
        ({"namespace": "prod"}, False),
        ({"image": "registry.example/*"}, True),
        ({"image": "docker.io/*"}, False),
        ({"digest": "sha256:" + "a" * 64}, True),
        ({"digest": "sha256:" + "b" * 64}, False),
        ({"namespace": "delta", "image": "docker.io/*"}, False),
        ({"namespace": "delta", "rule": "other-rule"}, False),
    ],
)
def test_waiver_selectors_must_all_match(selector: dict[str, str], applies: bool) -> None:
    bundle = parse_policies(HOST_POLICY)
    values = ContextValues(
        exceptions=(waiver(**selector),),
        image_digests={"registry.example/tool:1": "sha256:" + "a" * 64},
    )
    outcome = outcomes(bundle, pod(hostNetwork=True), values)["host-namespaces"].outcome
    assert outcome is (RuleOutcome.SKIP if applies else RuleOutcome.FAIL)


def test_a_pinned_image_digest_matches_without_a_lookup() -> None:
    bundle = parse_policies(HOST_POLICY)
    digest = "sha256:" + "c" * 64
    resource = pod(hostNetwork=True, containers=[{"name": "c", "image": f"registry.example/tool@{digest}"}])
    values = ContextValues(exceptions=(waiver(digest=digest),))
    assert outcomes(bundle, resource, values)["host-namespaces"].outcome is RuleOutcome.SKIP


def test_a_policy_exception_takes_precedence_over_a_waiver() -> None:
    bundle = parse_policies(HOST_POLICY + exception())
    values = ContextValues(exceptions=(waiver(namespace="delta"),))
    response = outcomes(bundle, pod(hostNetwork=True), values)["host-namespaces"]
    assert response.exceptions == ("delta/delta-exception",)
    assert response.waivers == ()


CEL_POLICY = """
apiVersion: policies.kyverno.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: no-host-network}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [pods]
  validations:
  - expression: "!has(object.spec.hostNetwork) || !object.spec.hostNetwork"
    message: host network is not allowed
"""


def test_waivers_also_skip_cel_policies() -> None:
    bundle = parse_policies(CEL_POLICY)
    [denied] = bundle.evaluate(AdmissionRequest(operation="CREATE", object=pod(hostNetwork=True)))
    assert denied.outcome is RuleOutcome.FAIL
    values = ContextValues(exceptions=(waiver(policy="no-host-network", namespace="delta"),))
    [waived] = bundle.evaluate(
        AdmissionRequest(operation="CREATE", object=pod(hostNetwork=True)), values=values
    )
    assert waived.outcome is RuleOutcome.SKIP
    assert waived.waivers == ("w-1",)


@pytest.mark.parametrize(
    ("changed", "field", "problem"),
    [
        (
            {"match": "{any: [{resources: [Pod]}]}"},
            "spec.match.any[0].resources",
            "expected a mapping, got list",
        ),
        (
            {"match": "{any: [{resources: {kinds: Pod}}]}"},
            "spec.match.any[0].resources.kinds",
            "expected a list, got string",
        ),
        (
            {"extra": "  conditions: {any: key-equals-value}"},
            "spec.conditions.any",
            "expected a list, got string",
        ),
        (
            {"extra": "  conditions: {all: [[key, Equals, value]]}"},
            "spec.conditions.all[0]",
            "expected a mapping, got list",
        ),
    ],
)
def test_a_policy_exception_with_misshapen_filters_or_conditions_is_a_load_error_naming_the_field(
    changed: dict[str, str], field: str, problem: str
) -> None:
    # These reached Selection.parse and the operator check as AttributeError.
    with pytest.raises(PolicyLoadError) as caught:
        parse_policies(HOST_POLICY + exception(**changed), "exception.yaml")
    assert (caught.value.field, caught.value.problem) == (field, problem)


def test_an_exception_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(PolicyLoadError, match=r"expected a DNS-1123 name, got 'delta-exception\\n'"):
        parse_policies(HOST_POLICY + exception(name='"delta-exception\\n"'))
