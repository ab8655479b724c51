"""CEL policies: validate.cel rules, ValidatingPolicy and ValidatingAdmissionPolicy (+ binding)."""

from __future__ import annotations

import textwrap
import time
from typing import Any

import pytest

from gate.model import EnforcementAction, RuleOutcome
from policies import AdmissionRequest, ContextValues, PolicyBundle, PolicyLoadError, parse_policies, verdict
from policies._cel_libs import RequestData
from policies._cel_policy import CelInputs

from .conftest import pod, policy


def vpol(spec: str, *, name: str = "v") -> PolicyBundle:
    """A ValidatingPolicy on Pods (CREATE/UPDATE) with the given spec fields."""
    head = textwrap.dedent(
        f"""\
        apiVersion: policies.kyverno.io/v1alpha1
        kind: ValidatingPolicy
        metadata:
          name: {name}
        spec:
          matchConstraints:
            resourceRules:
              - apiGroups: [""]
                apiVersions: [v1]
                operations: [CREATE, UPDATE]
                resources: [pods]
        """
    )
    return parse_policies(head + textwrap.indent(textwrap.dedent(spec).strip(), "  ") + "\n")


def cel_rule(expressions: str, extra: str = "") -> PolicyBundle:
    return policy(
        f"""
        - name: r
          match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}
          {extra}
          validate:
            cel:
              {expressions}
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )


def outcomes(bundle: PolicyBundle, resource: dict[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
    return [(r.outcome.value, r.message) for r in bundle.evaluate_resource(resource, **kwargs)]


# --- validate.cel -----------------------------------------------------------------------------


def test_validate_cel_false_fails_with_the_message_and_true_passes() -> None:
    bundle = cel_rule('expressions: [{expression: "object.spec.containers.size() < 2", message: "too many"}]')
    assert outcomes(bundle, pod()) == [("pass", "Validation rule 'r' passed.")]
    two = pod(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    assert outcomes(bundle, two) == [("fail", "too many")]


def test_validate_cel_evaluation_error_counts_as_fail_with_the_error_text() -> None:
    bundle = cel_rule('expressions: [{expression: "object.spec.nothere == 1"}]')
    [(result, message)] = outcomes(bundle, pod())
    assert result == "fail"
    assert "no such key: nothere" in message


def test_validate_cel_message_expression_wins_and_falls_back_to_the_expression_text() -> None:
    bundle = cel_rule(
        'expressions: [{expression: "false", messageExpression: "\'pod \' + object.metadata.name"}]'
    )
    assert outcomes(bundle, pod("web")) == [("fail", "pod web")]
    bare = cel_rule('expressions: [{expression: "1 == 2"}]')
    assert outcomes(bare, pod()) == [("fail", "failed expression: 1 == 2")]


def test_cel_preconditions_false_skip_the_rule() -> None:
    bundle = cel_rule(
        'expressions: [{expression: "false"}]',
        extra='celPreconditions: [{name: hostnet, expression: "object.spec.?hostNetwork.orValue(false)"}]',
    )
    assert outcomes(bundle, pod()) == [("skip", "cel preconditions not met")]
    assert outcomes(bundle, pod(hostNetwork=True))[0][0] == "fail"


def test_variables_are_lazy_and_or_value_on_a_plain_value_returns_it() -> None:
    bundle = cel_rule(
        """variables:
                - {name: broken, expression: "object.spec.missing"}
                - {name: images, expression: "object.spec.containers.map(c, c.image)"}
              expressions:
                - expression: "variables.images.orValue([]).all(i, i.startsWith('nginx'))"
                  message: bad image"""
    )
    assert outcomes(bundle, pod()) == [("pass", "Validation rule 'r' passed.")]


def test_null_values_are_absent_for_has_and_optional_selection() -> None:
    bundle = cel_rule('expressions: [{expression: "!has(object.spec.securityContext.runAsUser)"}]')
    assert outcomes(bundle, pod(securityContext=None))[0][0] == "pass"


def test_validate_cel_autogen_rewrites_object_paths_for_controllers() -> None:
    bundle = policy(
        """
        - name: r
          match: {any: [{resources: {kinds: [Pod]}}]}
          validate:
            cel:
              expressions: [{expression: "object.spec.containers.all(c, c.image != 'bad')"}]
        """
    )
    template = {"metadata": {}, "spec": {"containers": [{"name": "c", "image": "bad"}]}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {"template": template},
    }
    [response] = bundle.evaluate_resource(deployment)
    assert (response.rule, response.outcome) == ("autogen-r", RuleOutcome.FAIL)


def test_compile_errors_name_the_policy_the_field_path_and_the_library_message() -> None:
    with pytest.raises(PolicyLoadError) as caught:
        cel_rule('expressions: [{expression: "object.spec.containers.all(c, "}]')
    error = caught.value
    assert error.field == "spec.rules[0].validate.cel.expressions[0].expression"
    assert "policy p: CEL compile error" in error.problem
    assert "Syntax error" in error.problem


# --- ValidatingPolicy ---------------------------------------------------------------------------

_TWO_VALIDATIONS = """
validations:
  - expression: "object.metadata.name != 'bad'"
  - expression: "object.spec.nothere == 1"
"""


def test_validating_policy_stops_at_the_first_failing_validation_with_its_index_message() -> None:
    bundle = vpol(_TWO_VALIDATIONS)
    assert outcomes(bundle, pod("bad")) == [("fail", "CEL expression validation failed at index 0")]


def test_validating_policy_evaluation_error_is_an_error_result() -> None:
    bundle = vpol(_TWO_VALIDATIONS)
    [(result, message)] = outcomes(bundle, pod("good"))
    assert result == "error"
    assert "no such key: nothere" in message


def test_validating_policy_pass_message_and_match_conditions_skip() -> None:
    bundle = vpol(
        """
        matchConditions:
          - {name: only-web, expression: "object.metadata.name == 'web'"}
        validations:
          - expression: "true"
        """
    )
    assert outcomes(bundle, pod("web")) == [("pass", "success")]
    assert outcomes(bundle, pod("other"))[0][0] == "skip"


def test_match_condition_errors_follow_the_failure_policy() -> None:
    conditions = """
        matchConditions:
          - {name: broken, expression: "object.spec.nothere"}
        validations:
          - expression: "true"
        """
    assert outcomes(vpol(conditions), pod())[0][0] == "error"
    assert outcomes(vpol("failurePolicy: Ignore\n" + textwrap.dedent(conditions)), pod())[0][0] == "skip"


def test_validating_policy_does_not_answer_for_resources_outside_its_match_constraints() -> None:
    bundle = vpol('validations: [{expression: "true"}]')
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
    assert bundle.evaluate_resource(config_map) == []


def test_validating_policy_autogen_evaluates_pod_templates_of_controllers() -> None:
    bundle = vpol("validations: [{expression: \"object.spec.containers.all(c, c.image != 'bad')\"}]")
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "cj", "namespace": "default"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "bad"}]}}}}},
    }
    assert [r[0] for r in outcomes(bundle, cronjob)] == ["fail"]


def test_validation_actions_decide_whether_admission_is_denied() -> None:
    deny = vpol('validationActions: [Deny]\nvalidations: [{expression: "false", message: "no"}]')
    audit = vpol('validationActions: [Audit]\nvalidations: [{expression: "false", message: "no"}]')
    request = AdmissionRequest(operation="CREATE", object=pod())
    denied = deny.evaluate(request)
    assert denied[0].action is EnforcementAction.ENFORCE
    assert not verdict(denied).allowed
    assert verdict(audit.evaluate(request)).allowed


def test_kyverno_functions_read_the_offline_context() -> None:
    bundle = vpol(
        """
        variables:
          - {name: cm, expression: 'resource.Get("v1", "configmaps", "platform", "allowed")'}
        validations:
          - expression: >-
              object.spec.containers.all(c,
                image.GetMetadata(c.image).config.user in variables.cm.data.users.split(','))
        """
    )
    inputs = CelInputs(
        data=RequestData(
            images={"nginx:1.0": {"config": {"user": "nobody"}}},
            resources=(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "allowed", "namespace": "platform"},
                    "data": {"users": "nobody,app"},
                },
            ),
        )
    )
    assert outcomes(bundle, pod(), values=ContextValues(cel=inputs)) == [("pass", "success")]
    [(result, message)] = outcomes(
        bundle, pod(containers=[{"name": "c", "image": "unknown:1"}]), values=ContextValues(cel=inputs)
    )
    assert result == "error"
    assert "unknown:1" in message


def test_kubernetes_libraries_are_available() -> None:
    bundle = vpol(
        """
        validations:
          - expression: "quantity('1Gi').isGreaterThan(quantity('512Mi'))"
          - expression: "cidr('10.0.0.0/8').containsIP(ip('10.1.2.3'))"
          - expression: "semver('1.2.3').isLessThan(semver('1.10.0'))"
          - expression: "url('https://example.com:8443/x').getPort() == '8443'"
          - expression: "[1, 2, 3].isSorted() && [1, 2, 3].sum() == 6 && 'abc'.find('b.') == 'bc'"
          - expression: "'a,b'.split(',').join('-') == 'a-b' && 'AB'.lowerAscii() == 'ab'"
        """
    )
    assert outcomes(bundle, pod()) == [("pass", "success")]


# --- ValidatingAdmissionPolicy ------------------------------------------------------------------

_VAP = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: max-replicas}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
  validations:
    - expression: "object.spec.replicas <= int(params.data.max)"
      messageExpression: "'replicas must be at most ' + params.data.max"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: max-replicas-binding}
spec:
  policyName: max-replicas
  validationActions: [Deny]
  paramRef: {name: limits, namespace: default}
"""


def test_admission_policy_binding_runs_with_its_params_and_denies() -> None:
    bundle = parse_policies(_VAP)
    params = (
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "limits", "namespace": "default"},
            "data": {"max": "3"},
        },
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {"replicas": 5},
    }
    responses = bundle.evaluate_resource(deployment, values=ContextValues(cel=CelInputs(params=params)))
    assert [(r.rule, r.outcome.value, r.message) for r in responses] == [
        ("max-replicas-binding", "fail", "replicas must be at most 3")
    ]
    assert not verdict(responses).allowed
    deployment["spec"] = {"replicas": 2}
    passed = bundle.evaluate_resource(deployment, values=ContextValues(cel=CelInputs(params=params)))
    assert [r.outcome.value for r in passed] == ["pass"]


def test_admission_policy_without_params_fails_closed() -> None:
    bundle = parse_policies(_VAP)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {"replicas": 1},
    }
    [response] = bundle.evaluate_resource(deployment)
    assert response.outcome is RuleOutcome.FAIL
    assert "no params" in response.message


# --- cost bounds --------------------------------------------------------------------------------


def test_a_huge_list_range_is_rejected_at_load() -> None:
    with pytest.raises(PolicyLoadError, match=r"lists\.range needs an integer literal"):
        vpol('validations: [{expression: "lists.range(100000000).size() > 0"}]')


def test_a_hostile_object_cannot_stall_evaluation() -> None:
    pairs = "object.spec.containers.all(a, object.spec.containers.all(b, a.name != b.name || a == b))"
    bundle = vpol(f'validations: [{{expression: "{pairs}"}}]')
    many = pod(containers=[{"name": f"c{i}", "image": "x"} for i in range(500)])
    started = time.monotonic()
    [(result, message)] = outcomes(bundle, many)
    assert time.monotonic() - started < 2.0
    assert result == "error"
    assert "iteration budget" in message


def test_the_request_time_budget_turns_later_expressions_into_errors() -> None:
    from policies import _cel_env

    environment = _cel_env.kyverno_environment()
    program = _cel_env.compile_expression(environment, "true", "x")
    bound = _cel_env.activation(environment, {}, RequestData())
    assert _cel_env.evaluate(program, bound, _cel_env.Budget(10.0)) is True
    with pytest.raises(_cel_env.EvalError, match="request budget"):
        _cel_env.evaluate(program, bound, _cel_env.Budget(-1.0))


def test_oversized_inputs_are_an_error_not_a_stall() -> None:
    bundle = vpol('validations: [{expression: "true"}]')
    big = pod(containers=[{"name": "c", "image": "x" * (5 * 1024 * 1024)}])
    [(result, message)] = outcomes(bundle, big)
    assert result == "error"
    assert "bytes of JSON" in message


def test_namespace_object_comes_from_the_request_namespace_and_its_labels() -> None:
    bundle = vpol(
        """
        validations:
          - expression: "namespaceObject.metadata.labels.?team.orValue('') == 'web'"
        """
    )
    labelled = AdmissionRequest(object=pod(), namespace="default", namespace_labels={"team": "web"})
    other = AdmissionRequest(object=pod(), namespace="default", namespace_labels={"team": "db"})
    assert [r.outcome for r in bundle.evaluate(labelled)] == [RuleOutcome.PASS]
    assert [r.outcome for r in bundle.evaluate(other)] == [RuleOutcome.FAIL]


def test_audit_annotation_errors_turn_a_validating_policy_result_into_error() -> None:
    bundle = vpol(
        """
        validations:
          - expression: "true"
        auditAnnotations:
          - {key: owner, valueExpression: "object.metadata.labels.owner"}
        """
    )
    [(result, message)] = outcomes(bundle, pod())
    assert result == "error"
    assert "audit annotation 'owner'" in message


def test_warn_and_audit_actions_never_block_admission() -> None:
    bundle = vpol('validationActions: [Warn, Audit]\nvalidations: [{expression: "false"}]')
    responses = bundle.evaluate(AdmissionRequest(object=pod()))
    assert [r.outcome for r in responses] == [RuleOutcome.FAIL]
    assert verdict(responses).allowed


def test_deny_and_warn_together_are_rejected_at_load() -> None:
    with pytest.raises(PolicyLoadError, match="Deny and Warn"):
        vpol('validationActions: [Deny, Warn]\nvalidations: [{expression: "true"}]')


def test_unscored_validating_policies_report_warn_for_failures() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: policies.kyverno.io/v1
        kind: ValidatingPolicy
        metadata:
          name: unscored
          annotations: {policies.kyverno.io/scored: "false"}
        spec:
          matchConstraints:
            resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
          validations: [{expression: "false"}]
        """
    )
    [response] = parse_policies(text).evaluate_resource(pod())
    assert response.report_outcome is RuleOutcome.WARN


def test_http_calls_are_answered_by_the_api_call_resolver_and_error_when_unanswered() -> None:
    from policies import UNANSWERED, ApiCall

    bundle = vpol(
        """
        validations:
          - expression: >-
              http.Get('https://gate.local/evidence/' + object.metadata.name).critical == 0
            message: critical findings
        """
    )
    calls: list[ApiCall] = []

    def resolve(call: ApiCall) -> Any:
        calls.append(call)
        return {"critical": 2} if call.url.endswith("/web") else UNANSWERED

    values = ContextValues(api_calls=resolve)
    assert outcomes(bundle, pod("web"), values=values) == [("fail", "critical findings")]
    assert calls == [ApiCall("GET", "https://gate.local/evidence/web", {})]
    [(result, message)] = outcomes(bundle, pod("other"), values=values)
    assert result == "error"
    assert "no resolver answers" in message
    [(result, message)] = outcomes(bundle, pod("web"))
    assert result == "error"
    assert "no HTTP responses" in message


def test_validate_cel_rules_using_the_authorizer_skip_with_a_load_diagnostic() -> None:
    bundle = cel_rule(
        "expressions: [{expression: \"authorizer.group('').resource('pods').check('get').allowed()\"}]"
    )
    assert len(bundle.diagnostics) == 1
    assert "authorizer" in bundle.diagnostics[0]
    [(result, message)] = outcomes(bundle, pod())
    assert result == "skip"
    assert "authorizer" in message


def test_validate_cel_param_kind_runs_once_per_matching_param_object() -> None:
    bundle = cel_rule(
        """paramKind: {apiVersion: v1, kind: ConfigMap}
              paramRef: {name: limits, namespace: default}
              expressions:
                - expression: "object.spec.containers.size() <= int(params.data.max)"
                  messageExpression: "'at most ' + params.data.max + ' containers'\""""
    )
    limits = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "limits", "namespace": "default"},
        "data": {"max": "1"},
    }
    two = pod(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    values = ContextValues(cel=CelInputs(params=(limits,)))
    assert outcomes(bundle, two, values=values) == [("fail", "at most 1 containers")]
    assert outcomes(bundle, pod(), values=values)[0][0] == "pass"
    [(result, message)] = outcomes(bundle, pod())
    assert result == "fail"
    assert "no params" in message


_VALIDATION = """
validations:
  - expression: "true"
"""


@pytest.mark.parametrize(
    ("metadata", "field", "problem"),
    [
        ("metadata: [v]", "metadata", "expected a mapping, got list"),
        (
            "metadata:\n  name: v\n  annotations: text",
            "metadata.annotations",
            "expected a mapping, got string",
        ),
    ],
)
def test_a_cel_policy_with_misshapen_metadata_is_a_load_error_naming_the_field(
    metadata: str, field: str, problem: str
) -> None:
    # The annotations were read before the shape was checked: AttributeError on a list or string.
    text = textwrap.dedent(
        """\
        apiVersion: policies.kyverno.io/v1alpha1
        kind: ValidatingPolicy
        METADATA
        spec:
          validations:
            - expression: "true"
        """
    ).replace("METADATA", metadata.replace("\n", "\n"))
    with pytest.raises(PolicyLoadError) as caught:
        parse_policies(text, "vpol.yaml")
    assert (caught.value.field, caught.value.problem) == (field, problem)


def test_a_validating_policy_with_a_non_mapping_background_setting_is_a_load_error() -> None:
    with pytest.raises(PolicyLoadError) as caught:
        vpol(_VALIDATION + "evaluation:\n  background: yes-please\n")
    assert caught.value.field == "spec.evaluation.background"
    assert caught.value.problem == "expected a mapping, got string"


@pytest.mark.parametrize(
    ("expressions", "extra", "field", "problem"),
    [
        ("expressions: 7", "", "spec.rules[0].validate.cel.expressions", "expected a list, got integer"),
        (
            'expressions: [{expression: "true"}]',
            "celPreconditions: 3",
            "spec.rules[0].celPreconditions",
            "expected a list, got integer",
        ),
    ],
)
def test_a_misshapen_validate_cel_block_is_a_load_error_naming_the_field(
    expressions: str, extra: str, field: str, problem: str
) -> None:
    # The authorizer check walked these lists before their shape was checked: TypeError.
    with pytest.raises(PolicyLoadError) as caught:
        cel_rule(expressions, extra)
    assert (caught.value.field, caught.value.problem) == (field, problem)


@pytest.mark.parametrize(
    ("autogen", "field", "problem"),
    [
        ("autogen: -1", "spec.autogen", "expected a mapping, got integer"),
        (
            "autogen: {podControllers: [deployments]}",
            "spec.autogen.podControllers",
            "expected a mapping, got list",
        ),
    ],
)
def test_a_validating_policy_with_misshapen_autogen_settings_is_a_load_error(
    autogen: str, field: str, problem: str
) -> None:
    # The pod controllers were read from these unchecked: AttributeError.
    with pytest.raises(PolicyLoadError) as caught:
        vpol(_VALIDATION + autogen + "\n")
    assert (caught.value.field, caught.value.problem) == (field, problem)
