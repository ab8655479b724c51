"""The compiled fast paths: reused pattern checks, lenient JMESPath fields, plain-kind filters,
values derived once per policy and rule, and results that depend only on each request."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from policies import AdmissionRequest
from policies._errors import EvaluationError
from policies._jmes import search
from policies._match import Filter, Selection, Target
from policies._pattern import compile_pattern, compiled, run, validate
from tests.unit.policies.conftest import load, pod, policy


def _target(kind: str = "Pod", subresource: str = "") -> Target:
    return Target(
        group="",
        version="v1",
        kind=kind,
        subresource=subresource,
        name="n",
        namespace="default",
        labels={},
        annotations={},
        operation="CREATE",
        namespace_labels=None,
        user=None,
    )


def test_compiled_check_is_built_once_per_pattern_object_and_judges_each_resource() -> None:
    pattern = {"spec": {"=(containers)": [{"securityContext": {"runAsUser": ">0"}}]}}
    check = compiled(pattern)
    assert compiled(pattern) is check
    # An equal but distinct pattern (e.g. after variable substitution) is compiled afresh.
    assert compiled(copy.deepcopy(pattern)) is not check
    good = {"spec": {"containers": [{"securityContext": {"runAsUser": 1000}}]}}
    bad = {"spec": {"containers": [{"securityContext": {"runAsUser": 1000}}, {"securityContext": {}}]}}
    assert run(check, good).status == "pass"
    result = run(check, bad)
    assert (result.status, result.path) == ("fail", "/spec/containers/1/securityContext/runAsUser/")
    assert run(check, good).status == "pass"


def test_compiled_and_one_off_validation_give_identical_results() -> None:
    pattern = load(
        """
        spec:
          =(volumes):
            - X(hostPath): "null"
          ^(containers):
            - name: "app-*"
          (hostNetwork): false
        """
    )
    resources = [
        {"spec": {"hostNetwork": False, "containers": [{"name": "app-1"}]}},
        {"spec": {"hostNetwork": False, "containers": [{"name": "db"}]}},
        {"spec": {"hostNetwork": True, "containers": [{"name": "db"}]}},
        {"spec": {"hostNetwork": False, "volumes": [{"hostPath": {}}], "containers": [{"name": "app"}]}},
        {"spec": []},
    ]
    check = compile_pattern(pattern)
    for resource in resources:
        assert run(check, resource) == validate(resource, pattern)


def test_wildcard_metadata_keys_follow_each_resource_through_one_compiled_check() -> None:
    pattern = {"=(metadata)": {"=(labels)": {"=(team-*)": "a | b"}}}
    check = compiled(pattern)
    first = {"metadata": {"labels": {"team-x": "a"}}}
    second = {"metadata": {"labels": {"team-y": "c"}}}
    third = {"metadata": {"labels": {"team-x": "c", "team-y": "a"}}}
    assert run(check, first).status == "pass"
    result = run(check, second)
    assert (result.status, result.path) == ("fail", "/metadata/labels/team-y/")
    # The first matching key is the one checked, as Kyverno expands a wildcard key.
    assert run(check, third).status == "fail"
    assert run(check, first).status == "pass"
    assert run(check, {"metadata": {}}).status == "pass"


def test_pattern_with_variables_is_substituted_for_every_request() -> None:
    bundle = policy(
        """
        - name: label-matches-name
          match:
            any:
            - resources:
                kinds: [Pod]
          validate:
            message: the app label must equal the name
            pattern:
              metadata:
                labels:
                  app: "{{ request.object.metadata.name }}"
        """
    )
    matching = pod(name="web")
    other = pod(name="db")
    assert [r.outcome.value for r in bundle.evaluate_resource(matching)] == ["pass"]
    responses = bundle.evaluate_resource(other)
    assert [r.outcome.value for r in responses] == ["fail"]
    assert "/metadata/labels/app/" in responses[0].message
    assert [r.outcome.value for r in bundle.evaluate_resource(matching)] == ["pass"]


@pytest.mark.parametrize(
    ("expression", "data", "expected"),
    [
        ("items[].spec.name", {"items": [{"spec": {"name": "a"}}, {"spec": {}}, {"x": 1}, 5]}, ["a"]),
        ("a.b.c || 'default'", {"a": {}}, "default"),
        ("[a.b, c]", {"c": 1}, [None, 1]),
        ("{x: a.b.c, y: c}", {"a": {"b": 3}, "c": 2}, {"x": None, "y": 2}),
        ("items[?spec.on].name", {"items": [{"spec": {"on": True}, "name": "k"}, {"name": "m"}]}, ["k"]),
        ("a.b && c", {"c": 1}, None),
    ],
)
def test_lenient_field_paths_yield_null_for_missing_keys(expression: str, data: Any, expected: Any) -> None:
    assert search(expression, data) == expected


def test_a_missing_key_outside_lenient_contexts_is_still_an_error() -> None:
    with pytest.raises(EvaluationError, match="Unknown key"):
        search("a.b.c", {"a": {}})


def test_plain_kind_filter_matches_by_name_and_keeps_the_subresource_rule() -> None:
    only_pods = Filter.parse({"resources": {"kinds": ["Pod"]}})
    assert only_pods.plain_kinds_only == frozenset({"Pod"})
    assert only_pods.matches(_target("Pod"), excluding=False)
    assert only_pods.matches(_target("Pod", "ephemeralcontainers"), excluding=False)
    assert not only_pods.matches(_target("Pod", "status"), excluding=False)
    assert not only_pods.matches(_target("Deployment"), excluding=False)
    # Anything beyond plain kinds takes the full check.
    for raw, target in (
        ({"resources": {"kinds": ["v1/Pod"]}}, _target("Pod")),
        ({"resources": {"kinds": ["Pod"], "namespaces": ["default"]}}, _target("Pod")),
        ({"resources": {"kinds": ["P*"]}}, _target("Pod")),
        ({"resources": {"kinds": ["Pod/status"]}}, _target("Pod", "status")),
    ):
        filt = Filter.parse(raw)
        assert filt.plain_kinds_only is None
        assert filt.matches(target, excluding=False)


def test_empty_filters_and_selections_never_exclude() -> None:
    assert Filter().is_empty
    assert not Filter.parse({"resources": {"kinds": ["Pod"]}}).is_empty
    assert not Filter.parse({"roles": ["admin"]}).is_empty
    assert not Selection().excludes(_target())
    assert not Selection.parse({"any": [{}]}).excludes(_target())
    assert Selection.parse({"any": [{"resources": {"kinds": ["Pod"]}}]}).excludes(_target())


def test_policy_and_rule_values_are_derived_once_and_survive_copies() -> None:
    bundle = policy(
        """
        - name: deny-all
          match:
            any:
            - resources:
                kinds: [Pod]
          validate:
            anyPattern:
            - spec: {}
        """,
        annotations="""
        policies.kyverno.io/category: Pod Security
        policies.kyverno.io/severity: high
        policies.kyverno.io/scored: "false"
        """,
    )
    compiled_policy = bundle.policies[0]
    assert (compiled_policy.key, compiled_policy.scored) == ("p", False)
    assert (compiled_policy.category, compiled_policy.severity) == ("Pod Security", "high")
    renamed = dataclasses.replace(compiled_policy, namespace="team")
    assert renamed.key == "team/p"
    assert all(rule.validate_kind == "pattern" for rule in compiled_policy.rules)
    autogen = [rule for rule in compiled_policy.rules if rule.autogen_of]
    assert autogen
    assert all(rule.autogen_of == "deny-all" for rule in autogen)
    response = bundle.evaluate(AdmissionRequest(object=pod()))[0]
    assert (response.category, response.severity, response.scored) == ("Pod Security", "high", False)


def _through_the_library(expression: str, data: Any) -> tuple[str, Any]:
    """What the library's own validated call answers (the interpreter path), or its error."""
    from policies import _jmes

    try:
        return "value", _jmes._INTERPRETER.visit(_jmes.compile_expression(expression).parsed, data)
    except Exception as error:  # the error itself is what is compared
        return "error", _jmes._reason(error)


def _through_search(expression: str, data: Any) -> tuple[str, Any]:
    try:
        return "value", search(expression, data)
    except EvaluationError as error:
        return "error", str(error).removeprefix(f"failed to evaluate {expression!r}: ")


@pytest.mark.parametrize(
    ("expression", "data"),
    [
        ("keys(@)", {"a": 1, "b": 2}),
        ("keys(@)", [1]),  # an array where an object is expected
        ("length(@)", "abc"),
        ("length(@)", 5),  # a number where a string, array or object is expected
        ("abs(@)", -3),
        ("abs(@)", True),  # JMESPath booleans are not numbers, though Python's are
        ("to_upper(@)", "abc"),
        ("to_upper(@)", 1),
        ("starts_with(a, b)", {"a": "abc", "b": "ab"}),
        ("starts_with(a, b)", {"a": "abc", "b": None}),
        ("length(@, @)", [1]),  # arity
        ("sum(@)", [1, 2]),  # array-number: element types, the library's path
        ("sum(@)", [1, "a"]),
        ("merge(@, @)", {"a": 1}),  # variadic: the library's path
        ("sort_by(@, &n)", [{"n": 2}, {"n": 1}]),  # an expression reference
        ("not_a_function(@)", 1),
        ("to_string(@)", {"a": [1, 2]}),  # any type
    ],
)
def test_function_calls_answer_and_fail_as_the_librarys_validated_call(expression: str, data: Any) -> None:
    assert _through_search(expression, data) == _through_the_library(expression, data)
