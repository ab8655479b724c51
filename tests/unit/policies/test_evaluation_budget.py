"""Expressions that multiply their work or share parts stop at a bound instead of running for minutes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from policies import PolicyBundle, _budget, _jmes, _operators
from policies._errors import EvaluationError
from policies._functions import KyvernoFunctions
from policies._jmes import search, substitute_text, to_text

from .conftest import pod, policy

# Seconds of this thread's CPU a refused expression may take (the bound's own work is ~0.3 s
# interpreted on these machines; before the bound such cases took from seconds to hours).
REFUSED_WITHIN = 3.0


def chained(levels: int, step: str, *, name: str = "v") -> str:
    """Context entries ``<name>0`` = the pod's name, ``<name>N`` = ``step`` applied to ``<name>N-1``."""
    entries = [f"  - name: {name}0\n    variable:\n      jmesPath: request.object.metadata.name\n"]
    for level in range(1, levels + 1):
        expression = step.format(previous=f"{name}{level - 1}")
        entries.append(f"  - name: {name}{level}\n    variable:\n      jmesPath: '{expression}'\n")
    return "".join(entries)


def deny_rule(context: str, key: str, value: str = "0", operator: str = "Equals") -> PolicyBundle:
    return policy(
        f"""
- name: r
  match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}
  context:
{context}
  validate:
    message: m
    deny:
      conditions:
        any:
        - key: "{key}"
          operator: {operator}
          value: {value}
"""
    )


def evaluated(bundle: PolicyBundle) -> tuple[str, str]:
    started = time.thread_time()
    [response] = bundle.evaluate_resource(pod())
    assert time.thread_time() - started < REFUSED_WITHIN
    return response.outcome.value, response.message


DOUBLED = "@" + " | [@, @]" * 40
"""An expression whose value is 40 small lists in memory and 2**40 leaves when walked."""


def test_a_chain_of_context_variables_that_share_their_parts_stops_at_the_bound() -> None:
    # v40 would be 40 small lists in memory and 2**40 names once written out.
    bundle = deny_rule(chained(40, "[{previous}, {previous}]"), "{{ length(to_string(v40)) }}")
    outcome, message = evaluated(bundle)
    assert outcome == "error"
    assert f"the result: the value holds more than {_budget.MAX_BUILT} values and characters" in message


def test_a_chain_of_flattened_doublings_stops_at_the_bound() -> None:
    # Each step builds a list twice as long as the one before it.
    bundle = deny_rule(chained(40, "[{previous}, {previous}][]"), "{{ length(v40) }}")
    outcome, message = evaluated(bundle)
    assert outcome == "error"
    assert f"builds more than {_budget.MAX_BUILT} values and characters" in message


def test_serialising_a_value_that_shares_its_parts_stops_at_the_bound() -> None:
    with pytest.raises(EvaluationError, match="to_string: the value holds more than"):
        search(f"length(to_string({DOUBLED}))", "x")


def test_comparing_two_values_that_share_their_parts_stops_at_the_bound() -> None:
    # Equal, but == walks both trees in full.
    with pytest.raises(EvaluationError, match="comparing values: the value holds more than"):
        search(f"({DOUBLED}) == ({DOUBLED})", "x")


def test_contains_of_a_value_that_shares_its_parts_stops_at_the_bound() -> None:
    with pytest.raises(EvaluationError, match="contains: the value holds more than"):
        search(f"contains([{DOUBLED}], {DOUBLED})", "x")


def test_a_condition_naming_a_large_value_many_times_stops_at_the_bound() -> None:
    # The annotation is within the bound; a key list naming it three times is not.
    bundle = policy(
        """
- name: r
  match: {any: [{resources: {kinds: [Pod]}}]}
  context:
  - name: v
    variable:
      jmesPath: request.object.metadata.annotations.big
  validate:
    message: m
    deny:
      conditions:
        any:
        - key: ["{{ v }}", "{{ v }}", "{{ v }}"]
          operator: AnyIn
          value: ["x"]
"""
    )
    resource = pod()
    resource["metadata"]["annotations"] = {"big": "y" * (_budget.MAX_BUILT // 3 + 1)}
    [response] = bundle.evaluate_resource(resource)
    assert response.outcome.value == "error"
    assert "substituting variables: the value holds more than" in response.message
    resource["metadata"]["annotations"] = {"big": "y" * 1000}
    [response] = bundle.evaluate_resource(resource)
    assert response.outcome.value == "pass"


def test_projections_nested_inside_multi_selects_stop_at_the_bound() -> None:
    # [@, @][*].[ ... ] evaluates what is inside the brackets twice per level: 2**30 evaluations.
    expression = "@"
    for _ in range(30):
        expression = f"[@, @][*].[{expression}]"
    started = time.thread_time()
    with pytest.raises(EvaluationError, match="builds more than"):
        search(expression, 1)
    assert time.thread_time() - started < REFUSED_WITHIN


def test_flattening_doublings_piped_within_one_expression_stop_at_the_bound() -> None:
    expression = "@" + " | [@, @][]" * 40
    with pytest.raises(EvaluationError, match=r"failed to evaluate '@ \| \[@, @\]\[\].*builds more than"):
        search(expression, ["x"])


def test_functions_building_long_strings_stop_at_the_bound() -> None:
    # join doubles the text at every step.
    expression = "'ab'" + "".join(" | join('', [@, @])" for _ in range(40))
    with pytest.raises(EvaluationError, match="builds more than"):
        search(expression, {})


def test_expression_references_evaluated_by_the_interpreter_are_counted_too() -> None:
    # map's &expression runs through the tree interpreter, not the compiled closures.
    expression = "@" + " | map(&[@, @][], [@])[]" * 40
    with pytest.raises(EvaluationError, match="builds more than"):
        search(expression, ["x"])


def test_every_search_starts_with_a_fresh_allowance() -> None:
    # Many evaluations that each build a lot stay allowed: the bound is per expression.
    data = {"items": list(range(_budget.MAX_BUILT // 3))}
    for _ in range(5):
        assert len(search("items[*]", data)) == len(data["items"])


def test_an_expression_over_a_large_real_resource_is_within_the_bound() -> None:
    # A ConfigMap of ~1 MiB, about the largest object etcd stores.
    data = {"request": {"object": {"data": {f"key-{i}": "v" * 1000 for i in range(1000)}}}}
    text = search("to_string(request.object)", data)
    assert len(text) > 1_000_000
    assert search("length(values(request.object.data)[*])", data) == 1000


def test_shared_parts_within_the_bound_still_serialise_compare_and_substitute() -> None:
    value = ["a"]
    for _ in range(10):
        value = [value, value]
    other: Any = ["a"]
    for _ in range(10):
        other = [other, other]
    data = {"v": value, "w": other}
    assert search("v == w", data) is True
    assert len(search("to_string(v)", data)) > 2**10
    assert substitute_text("x{{ v }}", lambda e: search(e, data)).startswith("x[[[[")
    assert to_text(value).count('"a"') == 2**10
    assert _operators.evaluate("Equals", value, other) is True
    assert _operators.evaluate("AnyIn", [value, other], [value]) is True  # printed, then compared
    assert KyvernoFunctions()._func_contains([other], value) is True


def test_the_expansion_check_counts_shared_parts_each_time_they_appear() -> None:
    value: Any = "x" * 1000
    for _ in range(13):
        value = [value, value]  # 8192 strings of 1,000 characters: 8.2 million characters
    with pytest.raises(EvaluationError, match="holds more than"):
        _budget.check_expanded(value, "walking")
    _budget.check_expanded(value[0][0][0], "walking")  # 1,024 of them: within


def test_context_variables_built_by_substitution_that_share_their_parts_stop_at_the_bound() -> None:
    # No JMESPath builds these: each value is a list literal naming the variable before it twice.
    entries = ["  - name: v0\n    variable:\n      value: [a]\n"]
    for level in range(1, 41):
        previous = f"{{{{ v{level - 1} }}}}"
        entries.append(f"  - name: v{level}\n    variable:\n      value: ['{previous}', '{previous}']\n")
    bundle = deny_rule("".join(entries), "{{ length(v40) }}")
    outcome, message = evaluated(bundle)
    assert outcome == "error"
    assert "substituting variables: the value holds more than" in message


def test_a_result_that_shares_its_parts_does_not_leave_the_expression() -> None:
    expression = "@" + " | [@, @]" * 40
    with pytest.raises(EvaluationError, match="the result: the value holds more than"):
        search(expression, "x")


def test_expressions_that_only_read_their_input_are_not_counted() -> None:
    # Reading is bounded by the input: the allowance is neither started nor charged.
    data = {"items": [{"name": str(i)} for i in range(10)]}
    _budget.charge(_budget.MAX_BUILT)  # spent: a counted expression would fail now
    assert search("items[*].name", data) == [str(i) for i in range(10)]
    assert search("items[?name == '3'] | [0].name", data) == "3"
    # Pod Security's idioms: distinct fields selected together, and functions that only read.
    spec = {"spec": {"initContainers": [{"name": "i"}], "containers": [{"name": "c"}]}}
    assert search("spec.[initContainers, containers][].name", spec) == ["i", "c"]
    assert search("spec.containers[].keys(@)[]", spec) == ["name"]
    assert search("length(spec.containers)", spec) == 1


def test_selecting_the_same_part_twice_is_counted() -> None:
    # [a, a] and [@, @] share their parts; distinct fields do not.
    assert _jmes._compiled("[a, a]")[1] is True
    assert _jmes._compiled("[@, a]")[1] is True
    assert _jmes._compiled("[a, b]")[1] is False
    assert _jmes._compiled("join(',', a)")[1] is True
    assert _jmes._compiled("length(a)")[1] is False
