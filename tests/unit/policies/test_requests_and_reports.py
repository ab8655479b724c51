"""AdmissionReview requests, predefined variables, rule results as gate's model, PolicyReports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gate.model import EnforcementAction, RuleOutcome, RuleResult
from policies import AdmissionRequest
from policies._images import container_images, parse_image
from policies._report import policy_reports
from tests.unit.policies.conftest import pod, policy

SAMPLE = Path(__file__).resolve().parents[3] / ".." / "shared" / "notes" / "admission_review.json"


def test_admission_review_requests_carry_operation_user_and_namespace() -> None:
    review = json.loads(SAMPLE.read_text())
    request = AdmissionRequest.from_admission_review(review["request"])
    assert request.operation == review["request"]["operation"]
    assert request.user_info is not None
    assert request.user_info.username == review["request"]["userInfo"]["username"]
    assert request.resource["kind"] == "Pod"


def test_request_variables_and_service_account_are_available_to_rules() -> None:
    bundle = policy(
        """
        - name: who
          match: {any: [{resources: {kinds: [Pod]}}]}
          validate:
            message: "{{ serviceAccountName }}/{{ request.operation }}/{{ request.userInfo.username }}"
            deny: {}
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    from policies import UserInfo

    user = UserInfo(username="system:serviceaccount:ci:builder")
    [response] = bundle.evaluate(AdmissionRequest(object=pod(), user_info=user))
    assert response.message == "builder/CREATE/system:serviceaccount:ci:builder"


def test_images_variable_parses_registry_path_tag_and_digest() -> None:
    assert parse_image("nginx") == {
        "registry": "docker.io",
        "path": "nginx",
        "name": "nginx",
        "tag": "latest",
        "digest": "",
        "reference": "docker.io/nginx:latest",
        "referenceWithTag": "docker.io/nginx:latest",
    }
    info = parse_image("ghcr.io/org/app:1.2@sha256:abc")
    assert (info["registry"], info["path"], info["tag"], info["digest"]) == (
        "ghcr.io",
        "org/app",
        "1.2",
        "sha256:abc",
    )
    assert parse_image("localhost:5000/app")["registry"] == "localhost:5000"
    bundle = policy(
        """
        - name: registry
          match: {any: [{resources: {kinds: [Pod]}}]}
          validate:
            deny:
              conditions:
                any:
                - key: "{{ images.containers.*.registry }}"
                  operator: AnyNotIn
                  value: [corp.io]
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    assert bundle.evaluate_resource(pod())[0].outcome is RuleOutcome.FAIL
    corp = pod(containers=[{"name": "c", "image": "corp.io/app:1"}])
    assert bundle.evaluate_resource(corp)[0].outcome is RuleOutcome.PASS


def test_rule_responses_convert_to_gate_rule_results() -> None:
    bundle = policy(
        "- name: r\n  match: {any: [{resources: {kinds: [Pod]}}]}\n  validate: {message: denied, deny: {}}",
        spec="validationFailureAction: Enforce",
    )
    [response] = bundle.evaluate_resource(pod())
    assert response.to_rule_result() == RuleResult(
        policy="p",
        rule="r",
        outcome=RuleOutcome.FAIL,
        message="denied",
        action=EnforcementAction.ENFORCE,
        resource="Pod/default/p1",
    )
    assert response.blocks


def test_policy_reports_group_results_by_namespace_with_summaries() -> None:
    bundle = policy(
        """
        - name: team
          match: {any: [{resources: {kinds: [Pod]}}]}
          validate:
            pattern: {metadata: {labels: {team: "?*"}}}
        """,
        annotations="policies.kyverno.io/category: Best Practices\npolicies.kyverno.io/severity: medium",
    )
    responses = bundle.evaluate_resource(pod()) + bundle.evaluate_resource(pod(name="p2", namespace="prod"))
    reports = policy_reports(responses, now=0)
    assert [r["metadata"]["namespace"] for r in reports] == ["default", "prod"]
    report = reports[0]
    assert report["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
    assert report["kind"] == "PolicyReport"
    assert report["summary"] == {"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0}
    [result] = report["results"]
    assert result["category"] == "Best Practices"
    assert result["severity"] == "medium"
    assert result["resources"] == [{"apiVersion": "v1", "kind": "Pod", "name": "p1", "namespace": "default"}]


def test_verdict_denies_on_enforced_failures_with_kyverno_message_and_warns_on_audit() -> None:
    from policies import verdict

    enforce = policy(
        "- name: r\n  match: {any: [{resources: {kinds: [Pod]}}]}\n  validate: {message: denied, deny: {}}",
        name="strict",
        spec="validationFailureAction: Enforce",
    )
    audit = policy(
        "- name: a\n  match: {any: [{resources: {kinds: [Pod]}}]}\n  validate: {message: noted, deny: {}}",
        name="soft",
    )
    blocked = verdict(enforce.evaluate_resource(pod()) + audit.evaluate_resource(pod()), emit_warnings=True)
    assert not blocked.allowed
    assert blocked.message == (
        "\n\nresource Pod/default/p1 was blocked due to the following policies \n\nstrict:\n  r: denied\n"
    )
    assert blocked.warnings == ("policy soft.a: noted",)
    assert verdict(audit.evaluate_resource(pod())).allowed


@pytest.mark.parametrize(
    "spec",
    [{"jobTemplate": "x"}, {"jobTemplate": {"spec": "y"}}, {"jobTemplate": {"spec": {"template": 7}}}],
    ids=["job-template-string", "job-spec-string", "template-number"],
)
def test_a_cronjob_with_a_malformed_job_template_has_no_pod_and_is_still_evaluated(
    spec: dict[str, Any],
) -> None:
    bundle = policy(
        """
        - name: registries
          match: {any: [{resources: {kinds: [CronJob]}}]}
          validate:
            message: "images must come from registry.example.com"
            deny:
              conditions:
                any:
                - key: "{{ images.containers.*.registry || `[]` }}"
                  operator: AnyNotIn
                  value: [registry.example.com]
        """,
        annotations="pod-policies.kyverno.io/autogen-controllers: none",
    )
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": spec}
    [response] = bundle.evaluate(AdmissionRequest(object=cronjob))
    assert response.outcome is RuleOutcome.PASS
    assert container_images(cronjob) == []


def test_container_images_skips_entries_that_are_not_containers() -> None:
    resource = pod(
        initContainers=5,
        containers=[{"name": "a", "image": "nginx:1"}, "b", {"name": "c", "image": ""}, {"name": "d"}],
        ephemeralContainers={"name": "e", "image": "busybox"},
    )
    assert container_images(resource) == ["nginx:1"]
