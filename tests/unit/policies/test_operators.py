"""Condition operators (deny/preconditions) with Kyverno's type rules."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies._errors import EvaluationError
from policies._operators import evaluate


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
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 0.0, -0.0, 2**53, 2**53 + 1, float(2**53), 1e308, -1e-308, 5e-324]),
)


@settings(max_examples=400, deadline=None)
@given(key=_NUMBERS, value=_NUMBERS)
def test_numeric_operators_on_two_numbers_answer_as_exact_rational_comparison(key: Any, value: Any) -> None:
    # The engine compares two JSON numbers directly; the answers must be those of the exact
    # (Fraction) comparison that quantities go through.
    exact = (Fraction(key) > Fraction(value)) - (Fraction(key) < Fraction(value))
    assert evaluate("GreaterThan", key, value) is (exact > 0)
    assert evaluate("GreaterThanOrEquals", key, value) is (exact >= 0)
    assert evaluate("LessThan", key, value) is (exact < 0)
    assert evaluate("LessThanOrEquals", key, value) is (exact <= 0)


@pytest.mark.parametrize("odd", [float("nan"), float("inf"), float("-inf")])
def test_numeric_operators_on_non_finite_numbers_behave_as_before_the_shortcut(odd: float) -> None:
    # NaN and infinities (YAML allows them in a policy) take the quantity path, which has no
    # exact value for them: the comparison fails the same way it always did.
    with pytest.raises((ValueError, OverflowError)):
        evaluate("GreaterThan", odd, 1)
    with pytest.raises((ValueError, OverflowError)):
        evaluate("LessThan", 1, odd)
