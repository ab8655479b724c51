"""JMESPath as Kyverno evaluates it and {{ }} variable substitution."""

from __future__ import annotations

from typing import Any

import pytest

from policies._errors import EvaluationError
from policies._jmes import search, substitute

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
