"""Overlay patterns: every anchor, wildcards, operators, ranges, quantities, durations, lists."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies._pattern import matches_scalar, validate
from policies._wildcard import match


def status(resource: Any, pattern: Any) -> str:
    return validate(resource, pattern).status


def test_plain_keys_must_exist_and_match() -> None:
    assert status({"a": {"b": "x"}}, {"a": {"b": "x"}}) == "pass"
    result = validate({"a": {"b": "y"}}, {"a": {"b": "x"}})
    assert (result.status, result.path) == ("fail", "/a/b/")


def test_star_requires_a_present_non_null_value() -> None:
    assert status({"a": 1}, {"a": "*"}) == "pass"
    assert status({}, {"a": "*"}) == "fail"
    assert status({"a": None}, {"a": "*"}) == "fail"


def test_conditional_anchor_missing_key_skips() -> None:
    assert status({"spec": {}}, {"spec": {"(hostNetwork)": True, "x": 1}}) == "skip"


def test_conditional_anchor_mismatch_skips_and_match_checks_then_part() -> None:
    pattern = {"(image)": "*:latest", "imagePullPolicy": "Always"}
    assert status({"image": "nginx:1.0", "imagePullPolicy": "Never"}, pattern) == "skip"
    assert status({"image": "nginx:latest", "imagePullPolicy": "Never"}, pattern) == "fail"
    assert status({"image": "nginx:latest", "imagePullPolicy": "Always"}, pattern) == "pass"


def test_conditional_skips_in_lists_ignore_skipped_elements_and_propagate_when_all_skip() -> None:
    pattern = {"containers": [{"(name)": "nginx*", "image": "!*:latest"}]}
    mixed = {"containers": [{"name": "other", "image": "x:latest"}, {"name": "nginx", "image": "n:1"}]}
    assert status(mixed, pattern) == "pass"
    bad = {"containers": [{"name": "other", "image": "x:latest"}, {"name": "nginx", "image": "n:latest"}]}
    assert status(bad, pattern) == "fail"
    none = {"containers": [{"name": "other", "image": "x:latest"}]}
    assert status(none, pattern) == "skip"


def test_equality_anchor_checks_only_when_present() -> None:
    pattern = {"=(hostPath)": {"path": "!/var/run/docker.sock"}}
    assert status({}, pattern) == "pass"
    assert status({"hostPath": {"path": "/data"}}, pattern) == "pass"
    assert status({"hostPath": {"path": "/var/run/docker.sock"}}, pattern) == "fail"


def test_existence_anchor_needs_one_matching_element() -> None:
    pattern = {"^(containers)": [{"image": "nginx:*"}]}
    assert status({"containers": [{"image": "busybox"}, {"image": "nginx:1"}]}, pattern) == "pass"
    assert status({"containers": [{"image": "busybox"}]}, pattern) == "fail"
    assert status({}, pattern) == "pass"
    assert status({"containers": "nginx"}, pattern) == "fail"


def test_negation_anchor_fails_on_presence_whatever_the_value() -> None:
    pattern = {"X(hostPath)": "null"}
    assert status({}, pattern) == "pass"
    assert status({"hostPath": False}, pattern) == "fail"


def test_global_anchor_mismatch_skips_the_whole_pattern() -> None:
    pattern = {"spec": {"containers": [{"<(image)": "corp.io/*"}], "imagePullSecrets": [{"name": "*"}]}}
    assert status({"spec": {"containers": [{"image": "docker.io/x"}]}}, pattern) == "skip"
    assert status({"spec": {"containers": [{"image": "corp.io/x"}]}}, pattern) == "fail"
    ok = {"spec": {"containers": [{"image": "corp.io/x"}], "imagePullSecrets": [{"name": "s"}]}}
    assert status(ok, pattern) == "pass"


def test_add_anchor_is_an_error_in_validate() -> None:
    assert status({"a": 1}, {"+(a)": 1}) == "error"


def test_first_pattern_map_applies_to_every_list_element() -> None:
    pattern = {"containers": [{"name": "*", "image": "corp/*"}]}
    assert status(
        {"containers": [{"name": "a", "image": "corp/a"}, {"name": "b", "image": "x/b"}]}, pattern
    ) == ("fail")


def test_scalar_pattern_against_list_checks_every_element() -> None:
    assert status({"args": ["a", "b"]}, {"args": "?"}) == "pass"
    assert status({"args": ["a", "bc"]}, {"args": "?"}) == "fail"


def test_empty_pattern_list_is_an_error() -> None:
    assert status({"a": [1]}, {"a": []}) == "error"


def test_structure_mismatch_fails_with_path() -> None:
    result = validate({"a": "text"}, {"a": {"b": 1}})
    assert (result.status, result.path) == ("fail", "/a/")


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        ("nginx:1.2", "nginx:*", True),
        ("nginx", "nginx?", False),
        ("a/b.c", "*", True),
        ("", "?*", False),
        ("x", "!x", False),
        ("y", "!x", True),
        ("a", "a | b", True),
        ("c", "a | b", False),
        (5, ">3 & <10", True),
        (12, ">3 & <10", False),
        ("5", 5, True),
        (5, "5", True),
        (True, True, True),
        ("true", True, False),
        (1, True, False),
        (None, None, True),
        ("", None, True),
        (0, None, True),
        ({"a": 1}, None, False),
        ("2Gi", ">1Gi", True),
        ("1024Mi", "1Gi", True),
        ("500m", "<1", True),
        ("90s", ">1m", True),
        ("30s", "<=30s", True),
        (5, "1-10", True),
        (11, "1-10", False),
        (11, "1!-10", True),
        ("2Gi", "1Gi-4Gi", True),
        ("abc", ">1", False),
        (1.5, "1.5", True),
        (None, "!privileged", True),
    ],
)
def test_scalar_patterns_follow_kyverno_rules(value: Any, pattern: Any, expected: bool) -> None:
    assert matches_scalar(value, pattern) is expected


def test_wildcard_label_keys_in_metadata_expand_to_the_matching_resource_key() -> None:
    pattern = {"metadata": {"=(annotations)": {"=(container.apparmor.io/*)": "runtime/default"}}}
    good = {"metadata": {"annotations": {"container.apparmor.io/app": "runtime/default"}}}
    bad = {"metadata": {"annotations": {"container.apparmor.io/app": "unconfined"}}}
    assert status(good, pattern) == "pass"
    assert status(bad, pattern) == "fail"


@pytest.mark.parametrize(
    ("value", "pattern", "expected"),
    [
        (float("inf"), ">1", "fail"),  # no quantity: not comparable, and its text is not a number
        (float("nan"), "<1", "fail"),
        (float("nan"), "1-10", "fail"),
        (float("-inf"), "5!-7", "fail"),
        (float("inf"), "+Inf", "pass"),  # as text, Go's form
        (float("nan"), "NaN", "pass"),
        (float("inf"), "", "fail"),
        (float("inf"), "*", "pass"),
    ],
)
def test_non_finite_resource_values_are_compared_as_go_prints_them(
    value: float, pattern: str, expected: str
) -> None:
    # YAML and JSON loaders refuse .inf and .nan, but resources built in process can hold them.
    assert status({"spec": {"replicas": value}}, {"spec": {"replicas": pattern}}) == expected


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(
        [">1Gi", "<=500m", ">=2h", "!*", "1-10", "5!-7", "*", "a*|b", ">1 & <5", "!0", "NaN", ">inf"]
    ),
)
_KEYS = st.sampled_from(["a", "b", "=(a)", "+(b)", "^(c)", "X(a)", "<(a)"]) | st.text(max_size=3)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=2000, deadline=None)
@given(resource=_VALUES, pattern=_VALUES)
def test_any_resource_against_any_pattern_gives_a_result_or_an_evaluation_error(
    resource: Any, pattern: Any
) -> None:
    assert validate(resource, pattern).status in ("pass", "fail", "skip", "error")


def test_a_hostile_wildcard_pattern_against_a_long_value_is_matched_in_linear_time() -> None:
    # Backtracking to the last star took O(len(pattern) * len(text)): 8 s for these sizes.
    started = time.thread_time()
    assert status({"image": "a" * 20_000}, {"image": "*" + "a?" * 1000 + "c*"}) == "fail"
    assert status({"image": "a" * 20_000 + "c"}, {"image": "*?a" * 600 + "*c"}) == "pass"
    assert time.thread_time() - started < 1.0


def _as_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S)


@settings(max_examples=1000, deadline=None)
@given(pattern=st.text(alphabet="?*ab/", max_size=8), text=st.text(alphabet="ab/", max_size=10))
def test_wildcards_match_exactly_what_the_equivalent_regular_expression_matches(
    pattern: str, text: str
) -> None:
    # Kyverno's glob: `*` any run of characters, `?` exactly one, the whole text.
    assert match(pattern, text) == bool(_as_regex(pattern).fullmatch(text))
