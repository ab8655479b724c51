"""JMESPath as Kyverno evaluates it and {{ }} variable substitution."""

from __future__ import annotations

import time
from typing import Any

import pytest

from policies import _jmes
from policies._errors import EvaluationError
from policies._jmes import search, substitute

from .conftest import pod, policy

DATA: dict[str, Any] = {
    "request": {
        "object": {
            "metadata": {"name": "p", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c"}]},
        },
    },
    "n": 3,
}


def resolve(expression: str) -> Any:
    return search(expression, DATA)


def test_missing_key_on_an_object_is_an_error_naming_the_expression() -> None:
    with pytest.raises(EvaluationError, match=r"request.object.metadata.labels.team.*Unknown key"):
        search("request.object.metadata.labels.team", DATA)


def test_or_default_swallows_a_missing_key() -> None:
    assert search("request.object.metadata.labels.team || ''", DATA) == ""


def test_projections_comparisons_and_functions_swallow_missing_keys() -> None:
    assert search("request.object.spec.containers[].securityContext", DATA) == []
    assert search("request.object.spec.[initContainers, containers][]", DATA) == [{"name": "c"}]
    assert search("request.object.spec.foo == null", DATA) is True
    assert search("length(request.object.spec.containers)", DATA) == 1
    assert search("not_null(request.object.spec.foo, 'd')", DATA) == "d"


def test_field_of_null_is_null_not_an_error() -> None:
    assert search("request.oldObject.metadata", {"request": {"oldObject": None}}) is None


def test_invalid_expression_is_an_evaluation_error() -> None:
    with pytest.raises(EvaluationError, match="invalid JMESPath"):
        search("request.[", DATA)


def test_lone_variable_keeps_its_json_type() -> None:
    assert substitute("{{ n }}", resolve) == 3
    assert substitute("{{ request.object.spec.containers }}", resolve) == [{"name": "c"}]


def test_embedded_variables_are_stringified() -> None:
    assert substitute("name={{request.object.metadata.name}} n={{n}}", resolve) == "name=p n=3"
    assert substitute("c={{ request.object.spec.containers[0] }}", resolve) == 'c={"name":"c"}'


def test_substitution_walks_maps_and_lists() -> None:
    assert substitute({"a": ["{{ n }}", "x"]}, resolve) == {"a": [3, "x"]}


def test_escaped_variables_are_left_literal() -> None:
    assert substitute(r"\{{ n }}", resolve) == "{{ n }}"


def test_shallow_substitution_marker_is_accepted() -> None:
    assert substitute("{{- n }}", resolve) == 3


def test_a_resource_value_holding_an_over_nested_expression_is_an_evaluation_error() -> None:
    # A nested round evaluates text the resource chose; jmespath's parser recursed past the limit.
    data = {"image": "{{ " + "!" * 3000 + "a }}"}
    with pytest.raises(EvaluationError, match="nested too deeply"):
        substitute("{{ image }}", lambda expression: search(expression, data))


def test_nested_variables_that_multiply_each_round_stop_at_the_size_limit() -> None:
    # Four containers whose image lists the images grew a message to 50 MB in 14 s (five ran out of memory).
    image = "{{ containers[].image }}"
    data = {"containers": [{"image": image} for _ in range(6)]}
    started = time.thread_time()
    with pytest.raises(EvaluationError, match="longer than"):
        substitute("images: {{ containers[].image }}", lambda expression: search(expression, data))
    # ~0.4 s here; the bound leaves room for a slow machine and still fails the old 14 s.
    assert time.thread_time() - started < 5.0


def test_text_made_by_nested_rounds_is_not_kept_in_the_template_cache() -> None:
    # Each round's text comes from the resource: caching it pinned megabytes per request.
    data = {"a": "{{ b }} " + "x" * 100_000, "b": "y"}
    _jmes._template.cache_clear()
    substitute("value {{ a }}", lambda expression: search(expression, data))
    assert _jmes._template.cache_info().currsize == 1


def test_context_variables_that_double_each_other_stop_at_the_size_limit() -> None:
    # Each variable is the one before it twice: 24 of them needed 16 GB (MemoryError escaped).
    context = "".join(
        f"  - name: v{i}\n    variable:\n      value: '{{{{ v{i - 1} }}}}{{{{ v{i - 1} }}}}'\n"
        for i in range(1, 25)
    )
    bundle = policy(
        f"""
- name: r
  match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}
  context:
  - name: v0
    variable:
      value: '{"x" * 1000}'
{context}
  validate:
    message: m
    deny:
      conditions:
        any:
        - key: "{{{{ length(v24) }}}}"
          operator: Equals
          value: 0
"""
    )
    started = time.thread_time()
    [response] = bundle.evaluate_resource(pod())
    assert time.thread_time() - started < 2.0
    assert response.outcome.value == "error"
    assert "longer than 4194304 characters" in response.message
