"""Condition operators (deny/preconditions) with Kyverno's type rules."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gate.model import RuleOutcome
from policies import AdmissionRequest, parse_policies
from policies._errors import EvaluationError, PolicyLoadError
from policies._operators import OPERATORS, evaluate, go_text


@pytest.mark.parametrize(
    ("operator", "key", "value", "expected"),
    [
        ("Equals", "nginx:1.0", "nginx:*", True),
        ("Equals", "nginx:1.0", "busybox*", False),
        ("Equals", "1Gi", "1024Mi", True),
        ("Equals", "1h", "60m", True),
        ("Equals", 5, "5", True),
        ("Equals", 5.0, 5, True),
        ("Equals", True, True, True),
        ("Equals", True, "true", False),
        ("Equals", {"a": 1}, {"a": 1}, True),
        ("Equals", [1, 2], [1, 2], True),
        ("Equal", "a", "a", True),
        ("NotEquals", "a", "b", True),
        ("NotEquals", "a", "a", False),
        ("NotEqual", "a", "a", False),
        ("AnyIn", "CREATE", ["CREATE", "UPDATE"], True),
        ("AnyIn", "DELETE", ["CREATE", "UPDATE"], False),
        ("AnyIn", ["a", "z"], ["a", "b"], True),
        ("AnyIn", "nginx", ["ngi*"], True),
        ("AnyIn", "ngi*", ["nginx"], True),
        ("AnyIn", "b", '["a", "b"]', True),
        ("AnyIn", 5, "1-10", True),
        ("AnyIn", 15, "1-10", False),
        ("AllIn", ["a", "b"], ["a", "b", "c"], True),
        ("AllIn", ["a", "d"], ["a", "b", "c"], False),
        ("AllIn", [], ["a"], True),
        ("AnyNotIn", ["a", "d"], ["a", "b"], True),
        ("AnyNotIn", ["a"], ["a", "b"], False),
        ("AnyNotIn", "X=1", "all", True),
        ("AllNotIn", ["x", "y"], ["a", "b"], True),
        ("AllNotIn", ["x", "a"], ["a", "b"], False),
        ("In", "a", ["a", "b"], True),
        ("In", ["a", "b"], ["a", "b", "c"], True),
        ("In", ["a", "d"], ["a", "b", "c"], False),
        ("NotIn", "d", ["a", "b"], True),
        ("NotIn", ["a", "d"], ["a", "b"], True),
        ("NotIn", ["a"], ["a", "b"], False),
        ("GreaterThan", 5, 3, True),
        ("GreaterThan", "2Gi", "1Gi", True),
        ("GreaterThan", "2h", "90m", True),
        ("GreaterThan", "1.10.0", "1.9.3", True),
        ("GreaterThan", "abc", 1, False),
        ("GreaterThan", [5], 3, False),
        ("GreaterThanOrEquals", 3, 3, True),
        ("LessThan", "500m", "1", True),
        ("LessThan", "500m", 1, False),  # duration first: 500 minutes vs 1 second
        ("LessThanOrEquals", 3, 3, True),
        ("LessThanOrEquals", 4, 3, False),
        ("DurationGreaterThan", "2h", "1h", True),
        ("DurationGreaterThan", 3600, "2h", False),
        ("DurationGreaterThanOrEquals", "1h", 3600, True),
        ("DurationLessThan", "30s", "1m", True),
        ("DurationLessThanOrEquals", "1m", "60s", True),
        ("anyin", "a", ["a"], True),
    ],
)
def test_operator_semantics(operator: str, key: Any, value: Any, expected: bool) -> None:
    assert evaluate(operator, key, value) is expected


def test_unknown_operator_is_an_evaluation_error() -> None:
    with pytest.raises(EvaluationError, match="unknown condition operator"):
        evaluate("Matches", "a", "b")


_NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False),
    st.sampled_from([0, 0.0, -0.0, 2**53, 2**53 + 1, float(2**53), 1e308, -1e-308, 5e-324, float("inf")]),
)


@settings(max_examples=400, deadline=None)
@given(key=_NUMBERS, value=_NUMBERS)
def test_numeric_operators_on_two_numbers_answer_as_exact_comparison(key: Any, value: Any) -> None:
    # Finite numbers: the exact rational comparison quantities go through; infinities in order.
    if math.isfinite(key) and math.isfinite(value):
        order = (Fraction(key) > Fraction(value)) - (Fraction(key) < Fraction(value))
    else:
        order = (key > value) - (key < value)
    assert evaluate("GreaterThan", key, value) is (order > 0)
    assert evaluate("GreaterThanOrEquals", key, value) is (order >= 0)
    assert evaluate("LessThan", key, value) is (order < 0)
    assert evaluate("LessThanOrEquals", key, value) is (order <= 0)


@pytest.mark.parametrize("other", [1, 0.5, float("inf"), float("nan"), "1Gi", "2h", "1.2.3"])
@pytest.mark.parametrize(
    "operator",
    [
        "GreaterThan",
        "GreaterThanOrEquals",
        "LessThan",
        "LessThanOrEquals",
        "DurationGreaterThan",
        "DurationLessThanOrEquals",
    ],
)
def test_nan_compares_with_nothing_either_side(operator: str, other: Any) -> None:
    # A policy may carry YAML's .nan: Kyverno's float64 comparisons are then all false; none fails.
    nan = float("nan")
    assert evaluate(operator, nan, other) is False
    assert evaluate(operator, other, nan) is False


@pytest.mark.parametrize(
    ("operator", "key", "value", "expected"),
    [
        ("GreaterThan", float("inf"), "1Gi", False),  # no quantity: incomparable
        ("LessThan", "1Gi", float("-inf"), False),
        ("DurationGreaterThan", float("inf"), "1h", False),  # no duration
        ("Equals", float("inf"), float("inf"), True),
        ("Equals", float("nan"), float("nan"), False),
    ],
)
def test_infinities_are_neither_quantities_nor_durations(
    operator: str, key: Any, value: Any, expected: bool
) -> None:
    assert evaluate(operator, key, value) is expected


@pytest.mark.parametrize(
    ("value", "printed"), [(float("nan"), "NaN"), (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (2.0, "2")]
)
def test_non_finite_numbers_print_as_go_prints_them(value: float, printed: str) -> None:
    assert go_text(value) == printed


_ODD_POLICY = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: odd-numbers}
spec:
  validationFailureAction: Enforce
  rules:
    - name: odd
      match: {any: [{resources: {kinds: [Pod]}}]}
      validate:
        message: "priority {{ request.object.spec.priority }} against a huge product"
        deny:
          conditions:
            any:
              - {key: "{{ request.object.spec.priority }}", operator: GreaterThan, value: VALUE}
"""


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "+.INF", "!!float .NaN"])
def test_yaml_nan_or_infinity_in_a_policy_is_refused_at_load_naming_the_field(value: str) -> None:
    # JSON has neither: kubectl and Kyverno refuse such a file, and gate keeps bundles as JSON.
    with pytest.raises(
        PolicyLoadError, match=r"policy.yaml:15: spec\.rules\[0\].*\.value: expected a JSON number"
    ):
        parse_policies(_ODD_POLICY.replace("VALUE", value), "policy.yaml")


def test_arithmetic_that_overflows_to_infinity_compares_in_order() -> None:
    # A policy can still reach infinity at run time: 1e308 * 10 is +Inf in float64, above 5.
    bundle = parse_policies(
        _ODD_POLICY.replace(
            '"{{ request.object.spec.priority }}", operator', '"{{ multiply(`1e308`, `10`) }}", operator'
        ).replace("VALUE", "5")
    )
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"priority": 5}}
    [response] = bundle.evaluate(AdmissionRequest(operation="CREATE", object=pod))
    assert response.outcome is RuleOutcome.FAIL
    assert response.message.startswith("priority 5 against a huge product")


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and the infinities included: YAML policies can hold them
    st.text(max_size=12),
    # Strings each operator parses: quantities, durations, versions, ranges, wildcards, JSON.
    st.sampled_from(["1Gi", "500m", "2h", "1h30m", "1.2.3", "v1.2.3-rc", "1-10", "5!-7", "-5-5", "1-"]),
    st.sampled_from(["*", "a*", "?", "1e3", "NaN", "inf", "0x10", "", "[1,2]", '["a"]', "{}"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=2000, deadline=None)
@given(operator=st.sampled_from(sorted(OPERATORS)), key=_VALUES, value=_VALUES)
def test_every_operator_answers_a_bool_or_an_evaluation_error_for_any_values(
    operator: str, key: Any, value: Any
) -> None:
    # Keys come from resources and values from policy YAML: whatever they hold, a condition holds
    # or not, or fails as an EvaluationError (the rule's error result), never with another exception.
    try:
        answer = evaluate(operator, key, value)
    except EvaluationError:
        return
    assert isinstance(answer, bool)
