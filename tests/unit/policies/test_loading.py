"""Loading: documents, files and directories, errors naming file/line/field, limits, digest."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gate.errors import InvalidArgument
from policies import (
    AdmissionRequest,
    PolicyLoadError,
    ResourceLimitError,
    _yaml,
    load_policies,
    parse_policies,
)

GOOD = """\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: require-labels
spec:
  validationFailureAction: Enforce
  rules:
  - name: check
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: label app is required
      pattern:
        metadata:
          labels:
            app: "?*"
"""


def error_of(text: str) -> PolicyLoadError:
    with pytest.raises(PolicyLoadError) as caught:
        parse_policies(text, "policy.yaml")
    return caught.value


def test_multi_document_text_loads_every_policy_with_autogen_rules() -> None:
    bundle = parse_policies(GOOD + "---\n" + GOOD.replace("require-labels", "second"))
    assert [p.name for p in bundle.policies] == ["require-labels", "second"]
    assert [r.name for r in bundle.policies[0].rules] == ["check", "autogen-check", "autogen-cronjob-check"]


def test_v2beta1_and_namespaced_policies_load() -> None:
    text = GOOD.replace("kyverno.io/v1", "kyverno.io/v2beta1").replace("ClusterPolicy", "Policy")
    [policy] = parse_policies(text).policies
    assert policy.key == "default/require-labels"


def test_directories_are_read_recursively_and_skip_other_documents(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "p.yaml").write_text(GOOD)
    (tmp_path / "pod.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")
    assert [p.name for p in load_policies([tmp_path]).policies] == ["require-labels"]


def test_missing_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="no such file"):
        load_policies([tmp_path / "nope.yaml"])


def test_malformed_yaml_names_the_line() -> None:
    error = error_of(GOOD.replace("  rules:\n", "  rules: [\n"))
    assert error.source == "policy.yaml"
    assert error.line is not None
    assert "malformed YAML" in error.message


def test_unknown_field_names_the_path_and_line() -> None:
    error = error_of(GOOD.replace("      message:", "      mesage:"))
    assert error.field == "spec.rules[0].validate.mesage"
    assert error.line == 14
    assert "unknown field" in error.problem


def test_wrong_type_says_got_and_expected() -> None:
    error = error_of(GOOD.replace("kinds: [Pod]", "kinds: Pod"))
    assert error.field == "spec.rules[0].match.any[0].resources.kinds"
    assert error.problem == "expected a list, got string"


def test_invalid_jmespath_is_a_load_error_at_its_field() -> None:
    text = GOOD.replace('app: "?*"', 'app: "{{ request.object.[ }}"')
    error = error_of(text)
    assert error.field == "spec.rules[0].validate.pattern.metadata.labels.app"
    assert "invalid JMESPath" in error.problem


def test_unknown_operator_is_a_load_error() -> None:
    text = GOOD.replace(
        "    validate:\n",
        "    preconditions:\n      all:\n      - {key: a, operator: Matches, value: b}\n    validate:\n",
    )
    error = error_of(text)
    assert error.field == "spec.rules[0].preconditions.all[0].operator"
    assert "unknown operator 'Matches'" in error.problem


def test_bad_failure_action_and_duplicate_rule_names_are_load_errors() -> None:
    assert "expected Enforce or Audit" in error_of(GOOD.replace("Enforce", "Block")).problem
    duplicate = GOOD + GOOD[GOOD.index("  - name: check") :]
    assert "duplicate" in error_of(duplicate).problem


def test_duplicate_keys_and_non_policies_are_rejected() -> None:
    assert (
        "duplicate key"
        in error_of(GOOD.replace("  name: require-labels\n", "  name: a\n  name: b\n")).problem
    )
    assert "not a Kyverno" in error_of("apiVersion: v1\nkind: Pod\n").problem


def test_deeply_nested_documents_are_rejected_not_crashing() -> None:
    deep = "a: " + "[" * 200 + "]" * 200 + "\n"
    with pytest.raises(PolicyLoadError, match="nesting deeper than"):
        parse_policies(deep)


def test_alias_bombs_are_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    with pytest.raises(PolicyLoadError, match="exceeds"):
        parse_policies("\n".join(lines) + "\n")


def test_over_deep_resources_are_rejected_at_evaluation() -> None:
    bundle = parse_policies(GOOD)
    resource: dict = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}
    node = resource
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ResourceLimitError, match="nesting deeper"):
        bundle.evaluate(AdmissionRequest(object=resource))


def test_digest_is_stable_across_formatting_and_order() -> None:
    other = GOOD.replace("require-labels", "second")
    first = parse_policies(GOOD + "---\n" + other).digest
    reordered = parse_policies(
        other + "---\n" + GOOD.replace("kinds: [Pod]", "kinds:\n          - Pod")
    ).digest
    assert first == reordered
    assert first.startswith("sha256:")
    assert parse_policies(GOOD.replace("Enforce", "Audit")).digest != parse_policies(GOOD).digest


def test_invalid_literal_regular_expression_is_a_load_error() -> None:
    text = GOOD.replace('app: "?*"', "app: \"{{ regex_match('([a-z', request.object.metadata.name) }}\"")
    error = error_of(text)
    assert error.field == "spec.rules[0].validate.pattern.metadata.labels.app"
    assert "invalid regular expression '([a-z'" in error.problem


@pytest.mark.parametrize(
    ("obj", "field", "problem"),
    [
        (
            {"apiVersion": "v1", "kind": "Pod", "metadata": ["a"]},
            "object.metadata",
            "expected a mapping, got list",
        ),
        ({"apiVersion": 5, "kind": "Pod"}, "object.apiVersion", "expected a string, got int"),
        (
            {"kind": "Pod", "metadata": {"labels": "x"}},
            "object.metadata.labels",
            "expected a mapping, got str",
        ),
    ],
)
def test_malformed_object_envelopes_are_invalid_arguments(obj: dict, field: str, problem: str) -> None:
    bundle = parse_policies(GOOD)
    with pytest.raises(InvalidArgument) as caught:
        bundle.evaluate(AdmissionRequest(object=obj))
    assert (caught.value.field, caught.value.problem) == (field, problem)


def test_a_configmap_mount_loads_each_policy_once(tmp_path: Path) -> None:
    # The layout kubelet gives a ConfigMap volume: files are symlinks into a hidden timestamped
    # directory through ``..data``; walking it naively sees every policy twice.
    text = (
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: one\nspec:\n  rules:\n"
        "  - name: r\n    match:\n      any:\n      - resources:\n          kinds: [Pod]\n"
        "    validate:\n      message: m\n      pattern:\n        metadata:\n          name: '?*'\n"
    )
    stamped = tmp_path / "..2026_11_27_12_00_00.000000001"
    stamped.mkdir()
    (stamped / "one.yaml").write_text(text)
    (tmp_path / "..data").symlink_to(stamped.name)
    (tmp_path / "one.yaml").symlink_to("..data/one.yaml")
    bundle = load_policies([tmp_path])
    assert [p.name for p in bundle.policies] == ["one"]


def _with_regex(pattern: str) -> str:
    return GOOD.replace(
        'app: "?*"', f"app: \"{{{{ regex_match('{pattern}', request.object.metadata.name) }}}}\""
    )


def test_literal_regular_expressions_are_checked_with_go_syntax_not_pythons() -> None:
    # RE2 (Go's syntax, used at evaluation) has Unicode classes that Python's re refuses.
    bundle = parse_policies(_with_regex(r"^\\p{Ll}+$"))
    [response] = bundle.evaluate_resource(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "labels": {"app": True}}}
    )
    assert response.outcome.value == "pass"


def test_a_literal_regular_expression_python_would_overflow_or_recurse_on_is_not_a_crash() -> None:
    # Python's re raised OverflowError and RecursionError here, escaping the loader.
    error = error_of(_with_regex("a{99999999999}"))  # refused as Go refuses it
    assert error.field == "spec.rules[0].validate.pattern.metadata.labels.app"
    assert "invalid repeat count: `{99999999999}`" in error.problem
    parse_policies(_with_regex("(" * 3000 + ")" * 3000))


def test_a_literal_regular_expression_go_refuses_is_a_load_error_naming_the_field() -> None:
    error = error_of(_with_regex("(?=x)"))
    assert error.field == "spec.rules[0].validate.pattern.metadata.labels.app"
    assert "invalid perl operator" in error.problem


@pytest.mark.parametrize(
    "expression", ["!" * 3000 + "a", "(" * 600 + "a" + ")" * 600, "[" * 400 + "a" + "]" * 400]
)
def test_an_over_nested_jmespath_expression_is_a_load_error_not_a_recursion_error(expression: str) -> None:
    error = error_of(GOOD.replace("message: label app is required", f'message: "{{{{ {expression} }}}}"'))
    assert error.field == "spec.rules[0].validate.message"
    assert "nested too deeply" in error.problem
    assert len(error.problem) < 200


_SURROGATE_ESCAPES = [
    ('message: "label \\udfff"', "spec.rules[0].validate.message"),
    ('message: "pair \\ud83d\\ude00"', "spec.rules[0].validate.message"),
    ('"\\ud800": x', "spec.rules[0].validate"),
]


@pytest.mark.parametrize("escaped", [escaped for escaped, _ in _SURROGATE_ESCAPES])
def test_a_lone_surrogate_escape_is_a_load_error_naming_its_line(escaped: str) -> None:
    # go-yaml refuses surrogate escapes; here they reached the digest as a UnicodeEncodeError.
    error = error_of(GOOD.replace("message: label app is required", escaped))
    assert error.line == 14
    assert "invalid Unicode" in error.problem
    str(error).encode("utf-8")


@pytest.mark.parametrize(("escaped", "field"), _SURROGATE_ESCAPES)
def test_without_libyaml_a_lone_surrogate_escape_is_a_load_error_naming_line_and_field(
    monkeypatch: pytest.MonkeyPatch, escaped: str, field: str
) -> None:
    # PyYAML's own scanner decodes the escape; the builder refuses it.
    monkeypatch.setattr(_yaml, "_FAST_LOADER", None)
    error = error_of(GOOD.replace("message: label app is required", escaped))
    assert (error.line, error.field) == (14, field)
    assert "lone surrogate" in error.problem
    str(error).encode("utf-8")


def test_an_over_large_document_is_refused_before_the_rest_of_the_file_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The count ran after the whole document was composed (16 s of CPU for an 8 MB file), so
    # the scanner reached the broken last line first; now it stops once the count is past.
    monkeypatch.setattr(_yaml, "MAX_NODES", 1000)
    error = error_of("k:\n" + "- a\n" * 5000 + "bad: [unclosed\n")
    assert error.problem == "document exceeds 1000 values"


def test_manifests_are_parsed_by_libyaml_several_times_faster_than_by_pyyamls_own_scanner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PyYAML's Python scanner read ~0.5 MB a second: a 4 MB pipeline manifest cost 10 s of CPU.
    # Both readings are timed here, one after the other, so a loaded machine slows both; in this
    # thread's CPU time, which the suite's background threads (servers of earlier tests) do not add to.
    from policies._yaml import parse_documents

    assert _yaml._FAST_LOADER is not None, "PyYAML without libyaml: manifests parse ~10 times slower"
    document = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n" + "".join(
        f"  k{i}: v\n" for i in range(700)
    )
    text = document * 40

    def seconds() -> float:
        started = time.thread_time()
        assert len(list(parse_documents(text, "manifest.yaml"))) == 40
        return time.thread_time() - started

    fast = min(seconds() for _ in range(3))
    monkeypatch.setattr(_yaml, "_FAST_LOADER", None)
    slow = min(seconds() for _ in range(2))
    assert fast * 3 < slow, f"libyaml {fast:.3f} s, PyYAML's scanner {slow:.3f} s for {len(text)} bytes"


def test_a_policy_name_with_a_trailing_newline_is_refused() -> None:
    # A pattern anchored with ``$`` let "require-labels\n" through as a DNS-1123 name.
    error = error_of(GOOD.replace("name: require-labels", 'name: "require-labels\\n"'))
    assert error.field == "metadata.name"
    assert "expected a DNS-1123 name, got 'require-labels\\n'" in error.problem
