"""Autogen: Pod rules rewritten for pod controllers the way Kyverno does it."""

from __future__ import annotations

from gate.model import RuleOutcome
from tests.unit.policies.conftest import pod, policy

RULE = """
- name: no-host-network
  match: {any: [{resources: {kinds: [Pod]}}]}
  preconditions:
    all:
    - key: "{{ request.object.metadata.name }}"
      operator: NotEquals
      value: skip-me
  validate:
    message: no host network
    pattern:
      spec:
        =(hostNetwork): false
"""


def deployment(spec: dict, name: str = "d") -> dict:
    template = {"metadata": {"name": "t"}, "spec": spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"template": template},
    }


def cronjob(spec: dict) -> dict:
    template = {"metadata": {"name": "t"}, "spec": spec}
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "c", "namespace": "default"},
        "spec": {"jobTemplate": {"spec": {"template": template}}},
    }


def test_pod_rules_generate_controller_and_cronjob_rules() -> None:
    bundle = policy(RULE)
    names = [r.name for r in bundle.policies[0].rules]
    assert names == ["no-host-network", "autogen-no-host-network", "autogen-cronjob-no-host-network"]


def test_generated_rules_wrap_patterns_under_the_pod_template() -> None:
    bundle = policy(RULE)
    bad = {"containers": [{"name": "c", "image": "x"}], "hostNetwork": True}
    [deploy] = bundle.evaluate_resource(deployment(bad))
    assert (deploy.rule, deploy.outcome) == ("autogen-no-host-network", RuleOutcome.FAIL)
    assert deploy.message.endswith("/spec/template/spec/hostNetwork/")
    [cron] = bundle.evaluate_resource(cronjob(bad))
    assert (cron.rule, cron.outcome) == ("autogen-cronjob-no-host-network", RuleOutcome.FAIL)
    assert bundle.evaluate_resource(pod(hostNetwork=True))[0].rule == "no-host-network"


def test_request_paths_are_rewritten_to_the_template() -> None:
    bundle = policy(RULE)
    bad = {"containers": [{"name": "c", "image": "x"}], "hostNetwork": True}
    skipped = deployment(bad, name="skip-me")
    # the precondition now reads the template's name ("t"), not the Deployment's
    assert bundle.evaluate_resource(skipped)[0].outcome is RuleOutcome.FAIL


def test_annotation_limits_or_disables_controllers() -> None:
    only = policy(RULE, annotations="pod-policies.kyverno.io/autogen-controllers: Deployment")
    assert [r.name for r in only.policies[0].rules] == ["no-host-network", "autogen-no-host-network"]
    none = policy(RULE, annotations="pod-policies.kyverno.io/autogen-controllers: none")
    assert [r.name for r in none.policies[0].rules] == ["no-host-network"]


def test_policies_selecting_by_name_or_mixing_kinds_get_no_autogen() -> None:
    named = policy(RULE.replace("kinds: [Pod]", "kinds: [Pod], names: [web]"))
    assert len(named.policies[0].rules) == 1
    mixed = policy(RULE.replace("kinds: [Pod]", "kinds: [Pod, Service]"))
    assert len(mixed.policies[0].rules) == 1
