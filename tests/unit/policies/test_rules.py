"""Rule evaluation: results and messages, preconditions, deny, foreach, context, actions, DELETE."""

from __future__ import annotations

from gate.model import EnforcementAction, RuleOutcome
from policies import AdmissionRequest, ContextValues
from tests.unit.policies.conftest import pod, policy

POD_MATCH = "match: {any: [{resources: {kinds: [Pod]}}]}"


def outcomes(bundle, resource, **request) -> dict[str, RuleOutcome]:  # type: ignore[no-untyped-def]
    return {r.rule: r.outcome for r in bundle.evaluate(AdmissionRequest(object=resource, **request))}


def test_pattern_results_carry_kyverno_messages() -> None:
    bundle = policy(
        f"""
        - name: latest
          {POD_MATCH}
          validate:
            message: "no latest"
            pattern:
              spec:
                containers:
                - image: "!*:latest"
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    bad = pod(containers=[{"name": "c", "image": "nginx:latest"}])
    [response] = bundle.evaluate_resource(bad)
    assert response.outcome is RuleOutcome.FAIL
    assert (
        response.message
        == "validation error: no latest. rule latest failed at path /spec/containers/0/image/"
    )
    [ok] = bundle.evaluate_resource(pod())
    assert (ok.outcome, ok.message) == (RuleOutcome.PASS, "validation rule 'latest' passed.")


def test_any_pattern_passes_on_first_match_and_fails_listing_each_pattern() -> None:
    bundle = policy(
        f"""
        - name: probes
          {POD_MATCH}
          validate:
            message: need a probe.
            anyPattern:
            - spec: {{containers: [{{livenessProbe: "*"}}]}}
            - spec: {{containers: [{{readinessProbe: "*"}}]}}
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    good = pod(containers=[{"name": "c", "image": "x", "readinessProbe": {"tcpSocket": {"port": 1}}}])
    [passed] = bundle.evaluate_resource(good)
    assert passed.message == "validation rule 'probes' anyPattern[1] passed."
    [failed] = bundle.evaluate_resource(pod())
    assert failed.outcome is RuleOutcome.FAIL
    assert "rule probes[0] failed at path" in failed.message
    assert "rule probes[1] failed at path" in failed.message


def test_preconditions_false_skip_and_errors_give_error() -> None:
    bundle = policy(
        f"""
        - name: only-prod
          {POD_MATCH}
          preconditions:
            all:
            - key: "{{{{ request.object.metadata.namespace }}}}"
              operator: Equals
              value: prod
              message: not prod
          validate:
            deny: {{}}
        - name: broken
          {POD_MATCH}
          preconditions:
            any:
            - key: "{{{{ request.object.metadata.labels.team }}}}"
              operator: Equals
              value: a
          validate:
            deny: {{}}
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    responses = {r.rule: r for r in bundle.evaluate_resource(pod())}
    assert responses["only-prod"].outcome is RuleOutcome.SKIP
    assert responses["only-prod"].message == "preconditions not met; not prod"
    assert responses["broken"].outcome is RuleOutcome.ERROR
    assert "request.object.metadata.labels.team" in responses["broken"].message
    assert "Unknown key" in responses["broken"].message


def test_deny_conditions_fail_with_substituted_message() -> None:
    bundle = policy(
        f"""
        - name: no-host-network
          {POD_MATCH}
          validate:
            message: "{{{{ request.object.metadata.name }}}} uses the host network"
            deny:
              conditions:
                any:
                - key: "{{{{ request.object.spec.hostNetwork || `false` }}}}"
                  operator: Equals
                  value: true
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    [bad] = bundle.evaluate_resource(pod(name="web", hostNetwork=True))
    assert (bad.outcome, bad.message) == (RuleOutcome.FAIL, "web uses the host network")
    [ok] = bundle.evaluate_resource(pod())
    assert ok.outcome is RuleOutcome.PASS


def test_foreach_checks_each_element_with_element_scope_and_preconditions() -> None:
    bundle = policy(
        f"""
        - name: registries
          {POD_MATCH}
          validate:
            message: bad registry
            foreach:
            - list: request.object.spec.containers
              preconditions:
                all:
                - key: "{{{{ element.name }}}}"
                  operator: NotEquals
                  value: sidecar
              pattern:
                image: "corp.io/*"
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    sidecar = {"name": "sidecar", "image": "docker.io/envoy"}
    good = pod(containers=[{"name": "a", "image": "corp.io/a"}, sidecar])
    bad = pod(containers=[{"name": "a", "image": "docker.io/a"}])
    assert outcomes(bundle, good) == {"registries": RuleOutcome.PASS}
    [failed] = bundle.evaluate_resource(bad)
    assert failed.outcome is RuleOutcome.FAIL
    assert failed.message.startswith("validation failure: ")
    only_sidecar = pod(containers=[sidecar])
    assert bundle.evaluate_resource(only_sidecar) == []  # no element processed: no response


def test_nested_foreach_and_deny_use_element_variables() -> None:
    bundle = policy(
        f"""
        - name: ports
          {POD_MATCH}
          validate:
            message: port too low
            foreach:
            - list: request.object.spec.containers
              foreach:
              - list: element.ports
                deny:
                  conditions:
                    any:
                    - key: "{{{{ element.containerPort }}}}"
                      operator: LessThan
                      value: 1024
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    low = pod(
        containers=[{"name": "a", "image": "x", "ports": [{"containerPort": 8080}, {"containerPort": 80}]}]
    )
    high = pod(containers=[{"name": "a", "image": "x", "ports": [{"containerPort": 8080}]}])
    assert outcomes(bundle, low) == {"ports": RuleOutcome.FAIL}
    assert outcomes(bundle, high) == {"ports": RuleOutcome.PASS}


def test_context_variables_with_jmespath_and_default() -> None:
    bundle = policy(
        f"""
        - name: ctx
          {POD_MATCH}
          context:
          - name: count
            variable:
              jmesPath: length(request.object.spec.containers)
          - name: team
            variable:
              jmesPath: request.object.metadata.labels.team
              default: none
          validate:
            message: "{{{{ team }}}} has {{{{ count }}}}"
            deny:
              conditions:
                all:
                - key: "{{{{ count }}}}"
                  operator: GreaterThan
                  value: 0
                - key: "{{{{ team }}}}"
                  operator: Equals
                  value: none
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    [response] = bundle.evaluate_resource(pod())
    assert (response.outcome, response.message) == (RuleOutcome.FAIL, "none has 1")


def test_supplied_values_stand_in_for_cluster_context() -> None:
    bundle = policy(
        f"""
        - name: allowed
          {POD_MATCH}
          context:
          - name: cm
            configMap: {{name: allowed, namespace: default}}
          validate:
            deny:
              conditions:
                any:
                - key: "{{{{ request.object.spec.containers[0].image }}}}"
                  operator: AnyNotIn
                  value: "{{{{ cm.data.images }}}}"
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    values = ContextValues(rule_values={("p", "allowed"): {"cm.data.images": '["nginx:1.0"]'}})
    [ok] = bundle.evaluate_resource(pod(), values=values)
    assert ok.outcome is RuleOutcome.PASS
    [missing] = bundle.evaluate_resource(pod())
    assert missing.outcome is RuleOutcome.ERROR


def test_failure_actions_policy_rule_and_namespace_overrides() -> None:
    bundle = policy(
        f"""
        - name: inherits
          {POD_MATCH}
          validate: {{deny: {{}}}}
        - name: audits
          {POD_MATCH}
          validate:
            failureAction: Audit
            failureActionOverrides:
            - action: Enforce
              namespaces: ["prod-*"]
            deny: {{}}
        """,
        spec="validationFailureAction: Enforce",
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    actions = {r.rule: r.action for r in bundle.evaluate_resource(pod())}
    assert actions == {"inherits": EnforcementAction.ENFORCE, "audits": EnforcementAction.AUDIT}
    prod = {r.rule: r.action for r in bundle.evaluate_resource(pod(namespace="prod-1"))}
    assert prod["audits"] is EnforcementAction.ENFORCE
    assert all(r.blocks for r in bundle.evaluate_resource(pod(namespace="prod-1")))


def test_audit_failures_never_block_and_errors_block_only_when_enforced() -> None:
    bundle = policy(f"- name: r\n  {POD_MATCH}\n  validate: {{deny: {{}}}}")
    [response] = bundle.evaluate_resource(pod())
    assert response.outcome is RuleOutcome.FAIL
    assert not response.blocks
    assert response.to_rule_result().action is EnforcementAction.AUDIT


def test_unscored_policy_reports_failures_as_warn() -> None:
    bundle = policy(
        f"- name: r\n  {POD_MATCH}\n  validate: {{deny: {{}}}}",
        annotations='policies.kyverno.io/scored: "false"\npod-policies.kyverno.io/autogen-controllers: none',
    )
    [response] = bundle.evaluate_resource(pod())
    assert response.outcome is RuleOutcome.FAIL
    assert response.report_outcome is RuleOutcome.WARN


def test_delete_skips_pattern_rules_and_runs_deny_on_the_old_object() -> None:
    bundle = policy(
        f"""
        - name: pattern
          {POD_MATCH}
          validate:
            pattern: {{metadata: {{name: "x*"}}}}
        - name: deny
          {POD_MATCH}
          validate:
            deny:
              conditions:
                any:
                - key: "{{{{ request.object.metadata.name }}}}"
                  operator: Equals
                  value: p1
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    responses = bundle.evaluate(AdmissionRequest(operation="DELETE", old_object=pod()))
    assert {r.rule: r.outcome for r in responses} == {"deny": RuleOutcome.FAIL}


def test_update_with_pre_existing_violation_is_skipped_when_enforced() -> None:
    bundle = policy(
        f"""
        - name: label
          {POD_MATCH}
          validate:
            pattern: {{metadata: {{labels: {{team: "?*"}}}}}}
        """,
        spec="validationFailureAction: Enforce",
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    request = AdmissionRequest(operation="UPDATE", object=pod(), old_object=pod())
    [response] = bundle.evaluate(request)
    assert response.outcome is RuleOutcome.SKIP
    labelled = pod()
    labelled["metadata"]["labels"]["team"] = "a"
    [blocked] = bundle.evaluate(AdmissionRequest(operation="UPDATE", object=pod(), old_object=labelled))
    assert blocked.outcome is RuleOutcome.FAIL


def test_apply_rules_one_stops_after_the_first_pass_or_fail() -> None:
    bundle = policy(
        f"- name: a\n  {POD_MATCH}\n  validate: {{deny: {{}}}}\n"
        f"- name: b\n  {POD_MATCH}\n  validate: {{deny: {{}}}}",
        spec="applyRules: One",
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    assert [r.rule for r in bundle.evaluate_resource(pod())] == ["a"]


def test_unsupported_rule_types_skip_with_a_reason_and_a_load_diagnostic() -> None:
    bundle = policy(
        f"""
        - name: mutate
          {POD_MATCH}
          mutate:
            patchStrategicMerge: {{metadata: {{labels: {{a: b}}}}}}
        - name: manifests
          {POD_MATCH}
          validate:
            manifests: {{attestors: []}}
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    assert len(bundle.diagnostics) == 2
    responses = bundle.evaluate_resource(pod())
    assert {r.outcome for r in responses} == {RuleOutcome.SKIP}
    assert "mutate rules are not supported" in responses[0].message


def test_jmespath_failure_during_evaluation_is_an_error_with_expression_and_reason() -> None:
    bundle = policy(
        f"""
        - name: r
          {POD_MATCH}
          validate:
            deny:
              conditions:
                any:
                - key: "{{{{ sum(request.object.metadata.name) }}}}"
                  operator: Equals
                  value: 1
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    [response] = bundle.evaluate_resource(pod())
    assert response.outcome is RuleOutcome.ERROR
    assert "sum(request.object.metadata.name)" in response.message
    assert "invalid type" in response.message


def test_foreach_without_element_scope_applies_the_pattern_to_the_resource() -> None:
    bundle = policy(
        f"""
        - name: scoped
          {POD_MATCH}
          validate:
            foreach:
            - list: request.object.spec.containers
              elementScope: false
              pattern:
                metadata:
                  labels:
                    app: "{{{{ element.name }}}}"
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    named = pod(containers=[{"name": "web", "image": "x"}])
    other = pod(containers=[{"name": "db", "image": "x"}])
    assert outcomes(bundle, named) == {"scoped": RuleOutcome.PASS}
    assert outcomes(bundle, other) == {"scoped": RuleOutcome.FAIL}
