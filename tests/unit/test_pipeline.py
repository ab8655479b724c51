"""Pipeline subjects as resources, policies per stage, remediation hints, manifest checks."""

from __future__ import annotations

import pytest

from gate.errors import InvalidArgument
from gate.model import RuleOutcome
from gate.pipeline import (
    SourceTree,
    check_project,
    check_stage,
    image_pod,
    images_of,
    manifest_resources,
    policies_for_stage,
    remediation,
    source_resource,
)
from policies import parse_policies

POLICIES = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: only-publish
  annotations:
    gate.dev/stages: "publish, deploy"
    gate.dev/remediation: "push the image to registry.example"
    gate.dev/remediation.latest: "pin a tag"
spec:
  validationFailureAction: Enforce
  rules:
  - name: latest
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: "no latest"
      pattern:
        spec:
          containers:
          - image: "!*:latest"
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: everywhere
spec:
  rules:
  - name: r
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: "m"
      pattern:
        metadata:
          name: "?*"
"""


def test_a_policy_applies_to_its_annotated_stages_or_to_all_without_the_annotation() -> None:
    bundle = parse_policies(POLICIES)
    assert policies_for_stage(bundle, "publish") == ["only-publish", "everywhere"]
    assert policies_for_stage(bundle, "build") == ["everywhere"]


def test_remediation_prefers_the_rule_hint_over_the_policy_hint() -> None:
    bundle = parse_policies(POLICIES)
    assert remediation(bundle, "only-publish", "latest") == "pin a tag"
    assert remediation(bundle, "only-publish", "other") == "push the image to registry.example"
    assert remediation(bundle, "everywhere", "r") == ""
    assert remediation(bundle, "missing", "r") == ""


def test_an_image_becomes_the_pod_that_would_run_it_so_pod_rules_apply() -> None:
    bundle = parse_policies(POLICIES)
    pod = image_pod("registry.example/team/app:latest", "team-a")
    assert pod["metadata"]["namespace"] == "team-a"
    assert pod["spec"]["containers"][0]["image"] == "registry.example/team/app:latest"
    responses = bundle.evaluate_resource(pod, operation="CREATE")
    outcome = {(r.policy, r.rule): r.outcome for r in responses}
    assert outcome[("only-publish", "latest")] is RuleOutcome.FAIL
    assert outcome[("everywhere", "r")] is RuleOutcome.PASS


def test_a_source_tree_becomes_a_source_tree_resource() -> None:
    resource = source_resource(
        SourceTree("https://git.example/team/App.git", "a" * 40, "sha256:" + "b" * 64), ""
    )
    assert resource["kind"] == "SourceTree"
    assert resource["metadata"] == {"name": "app", "namespace": "default"}
    assert resource["spec"]["artifact"] == "sha256:" + "b" * 64


def test_manifests_are_split_into_objects_and_lists_expanded() -> None:
    manifest = b"""
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec: {containers: [{name: c, image: "r/a:1"}], initContainers: [{name: i, image: "r/init:1"}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers: [{name: c, image: "r/a:1"}, {name: s, image: "r/side:2"}]
"""
    resources = manifest_resources(manifest)
    assert [r["kind"] for r in resources] == ["Pod", "Deployment"]
    assert images_of(resources) == ["r/init:1", "r/a:1", "r/side:2"]


@pytest.mark.parametrize(
    ("manifest", "field", "problem"),
    [
        (b"\xff\xfe", "manifest", "UTF-8"),
        (b"a: [", "manifest", "malformed YAML"),
        (b"- 1\n- 2\n", "manifest[0]", "mapping"),
        (b"kind: Pod\n", "manifest[0].apiVersion", "non-empty string"),
        (b"apiVersion: v1\nkind: List\nitems: 3\n", "manifest[0].items", "list"),
        (b"", "manifest", "at least one"),
        (b"a: " + b"[" * 100 + b"]" * 100, "manifest", "nesting deeper than 64"),
    ],
)
def test_bad_manifests_are_invalid_arguments_naming_the_document(
    manifest: bytes, field: str, problem: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        manifest_resources(manifest)
    assert caught.value.field == field
    assert problem in caught.value.problem


@pytest.mark.parametrize("stage", ["", "Publish", "a b", "x" * 64, "-x", "build\n"])
def test_stage_names_are_checked(stage: str) -> None:
    with pytest.raises(InvalidArgument, match="stage"):
        check_stage(stage)
    assert check_stage("deploy-prod") == "deploy-prod"


@pytest.mark.parametrize("project", ["Team", "team_a", "team-", "-team", "a.b", "t" * 64, "team\n"])
def test_project_names_that_are_not_dns_labels_are_refused(project: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_project(project)
    assert caught.value.field == "project"
    assert "expected a DNS label" in caught.value.problem


def test_an_empty_project_or_a_dns_label_is_kept_as_the_namespace() -> None:
    assert check_project("") == ""
    assert check_project("payments-eu1") == "payments-eu1"
    assert image_pod("registry.example/app:1", "payments-eu1")["metadata"]["namespace"] == "payments-eu1"
    assert image_pod("registry.example/app:1", "")["metadata"]["namespace"] == "default"
