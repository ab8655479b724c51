"""apiCall context entries answered by a caller-supplied resolver (gate's evidence), foreach included."""

from __future__ import annotations

from typing import Any

from gate.model import RuleOutcome
from policies import UNANSWERED, ApiCall, ContextValues
from policies._errors import EvaluationError
from tests.unit.policies.conftest import pod, policy

EVIDENCE_URL = "https://gate.gate-system.svc:8443/v1/evidence"

CRITICAL_RULE = f"""
- name: no-fixable-critical
  match:
    any:
    - resources:
        kinds: [Pod]
  validate:
    message: "image {{{{ element.image }}}} has fixable critical vulnerabilities"
    foreach:
    - list: request.object.spec.containers
      context:
      - name: evidence
        apiCall:
          method: POST
          data:
          - key: image
            value: "{{{{ element.image }}}}"
          service:
            url: {EVIDENCE_URL}
      deny:
        conditions:
          any:
          - key: "{{{{ evidence.scan.fixable.critical }}}}"
            operator: GreaterThan
            value: 0
"""


def _resolver(fixable: dict[str, int], seen: list[ApiCall]) -> Any:
    def resolve(call: ApiCall) -> Any:
        seen.append(call)
        if call.url != EVIDENCE_URL:
            return UNANSWERED
        return {"scan": {"fixable": {"critical": fixable.get(call.data["image"], 0)}}}

    return resolve


def test_foreach_context_api_call_is_answered_per_element_and_can_deny() -> None:
    bundle = policy(CRITICAL_RULE)
    seen: list[ApiCall] = []
    resource = pod(containers=[{"name": "a", "image": "reg/a:1"}, {"name": "b", "image": "reg/b:1"}])
    values = ContextValues(api_calls=_resolver({"reg/b:1": 2}, seen))
    [response] = bundle.evaluate_resource(resource, values=values)
    assert response.outcome is RuleOutcome.FAIL
    assert "reg/b:1" in response.message
    assert [(c.method, c.data["image"]) for c in seen] == [("POST", "reg/a:1"), ("POST", "reg/b:1")]


def test_clean_evidence_passes() -> None:
    bundle = policy(CRITICAL_RULE)
    values = ContextValues(api_calls=_resolver({}, []))
    [response] = bundle.evaluate_resource(pod(), values=values)
    assert response.outcome is RuleOutcome.PASS


def test_rule_context_api_call_applies_jmespath_and_default() -> None:
    bundle = policy(
        f"""
        - name: signed
          match:
            any:
            - resources:
                kinds: [Pod]
          context:
          - name: signed
            apiCall:
              method: POST
              data:
              - key: image
                value: "{{{{ images.containers.*.reference | [0] }}}}"
              service:
                url: {EVIDENCE_URL}
              jmesPath: signature.verified
              default: false
          validate:
            message: not signed
            deny:
              conditions:
                any:
                - key: "{{{{ signed }}}}"
                  operator: Equals
                  value: false
        """
    )

    def unsigned(call: ApiCall) -> Any:
        return {"signature": {"verified": None}}

    def signed(call: ApiCall) -> Any:
        return {"signature": {"verified": True}}

    [denied] = bundle.evaluate_resource(pod(), values=ContextValues(api_calls=unsigned))
    assert denied.outcome is RuleOutcome.FAIL
    [allowed] = bundle.evaluate_resource(pod(), values=ContextValues(api_calls=signed))
    assert allowed.outcome is RuleOutcome.PASS


def test_a_resolver_failure_without_default_is_a_rule_error() -> None:
    bundle = policy(
        f"""
        - name: r
          match:
            any:
            - resources:
                kinds: [Pod]
          context:
          - name: ev
            apiCall:
              service:
                url: {EVIDENCE_URL}
          validate:
            message: m
            deny:
              conditions:
                any:
                - key: "{{{{ ev.x }}}}"
                  operator: Equals
                  value: 1
        """
    )

    def failing(call: ApiCall) -> Any:
        raise EvaluationError("evidence store unavailable")

    [response] = bundle.evaluate_resource(pod(), values=ContextValues(api_calls=failing))
    assert response.outcome is RuleOutcome.ERROR
    assert "evidence store unavailable" in response.message


def test_without_a_resolver_api_call_entries_stay_unset_as_in_kyverno_test() -> None:
    [response] = policy(CRITICAL_RULE).evaluate_resource(pod())
    # The variable is unset, so the deny condition cannot be evaluated: an error, never a pass.
    assert response.outcome is RuleOutcome.ERROR
    assert "Unknown key 'evidence'" in response.message
