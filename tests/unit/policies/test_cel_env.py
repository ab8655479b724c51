"""The CEL source rewrites and bounds that close the gap between cel-cpp and Kyverno's cel-go."""

from __future__ import annotations

import pytest

from policies import _cel_env
from policies._cel_libs import RequestData


def run(
    text: str, inputs: dict[str, object] | None = None, variables: dict[str, str] | None = None
) -> object:
    environment = _cel_env.kyverno_environment()
    program = _cel_env.compile_expression(environment, text, "x", variables)
    converted = {k: _cel_env.to_cel_input(v) for k, v in (inputs or {}).items()}
    return _cel_env.evaluate(program, _cel_env.activation(environment, converted, RequestData()))


def test_variables_are_inlined_recursively_but_never_inside_string_literals() -> None:
    variables = {"a": "1", "b": "variables.a + 1"}
    assert run("variables.b * 10", variables=variables) == 20
    assert run("'variables.a' + \"variables.b\"", variables=variables) == "variables.avariables.b"


def test_cyclic_and_unknown_variables_are_compile_errors() -> None:
    with pytest.raises(_cel_env.CelCompileError, match="cycle"):
        run("variables.a", variables={"a": "variables.b", "b": "variables.a"})
    with pytest.raises(_cel_env.CelCompileError, match=r"variables\.nope"):
        run("variables.nope")


def test_or_value_is_dropped_only_on_receivers_that_cannot_be_optional() -> None:
    assert _cel_env.drop_plain_or_value("c.volumeMounts.orValue([]).size()") == "c.volumeMounts.size()"
    kept = "c.?volumeMounts.orValue([]).size()"
    assert _cel_env.drop_plain_or_value(kept) == kept
    assert _cel_env.drop_plain_or_value("'x.orValue(1)'") == "'x.orValue(1)'"
    assert run("object.list.orValue([]).size()", {"object": {"list": [1, 2]}}) == 2


def test_null_map_values_read_as_absent() -> None:
    assert run("has(object.a.b)", {"object": {"a": None}}) is False
    assert run("object.a.?b.orValue('d')", {"object": {"a": None}}) == "d"


def test_expression_length_is_bounded() -> None:
    with pytest.raises(_cel_env.CelCompileError, match="characters long"):
        run("1 + " * 3000 + "1")


def test_variable_fan_out_is_bounded_once_inlined() -> None:
    variables = {"v0": "'x'"}
    for level in range(1, 40):
        variables[f"v{level}"] = f"variables.v{level - 1} + variables.v{level - 1}"
    with pytest.raises(_cel_env.CelCompileError, match="once variables are inlined"):
        run("size(variables.v39) > 0", variables=variables)


def test_list_range_needs_a_small_literal() -> None:
    assert run("lists.range(3).size()") == 3
    with pytest.raises(_cel_env.CelCompileError, match="integer literal"):
        run("lists.range(object.n).size()", {"object": {"n": 5}})


def test_comprehensions_stop_at_the_iteration_budget() -> None:
    with pytest.raises(_cel_env.EvalError, match="iteration budget"):
        run("lists.range(10000).all(i, lists.range(10).all(j, true))")
