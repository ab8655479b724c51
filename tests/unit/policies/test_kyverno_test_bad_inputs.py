"""Malformed ``kyverno test`` suites (as uploaded through TestPolicies) are reported, never raised.

Each case is Kyverno's ``disallow-latest-tag`` conformance test with one field given a wrong
shape or an unusable file name; the suite must end as one error naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from policies._errors import PolicyLoadError
from policies._kyverno_test import _TestCase, run_tests

ROOT = Path(__file__).resolve().parents[3]
FOLDER = ROOT / ".." / "shared" / "conformance" / "kyverno" / "best-practices" / "disallow-latest-tag"
TEST = "kyverno-test.yaml"


def _suite(tmp_path: Path, changes: dict[str, Any], extra: dict[str, str]) -> Path:
    """The conformance suite under ``tmp_path/suite`` with ``changes`` made to its test file.

    ``extra`` maps file names (next to the test file) to their YAML text.
    """
    root = tmp_path / "suite"
    tests = root / ".kyverno-test"
    tests.mkdir(parents=True)
    (root / "disallow-latest-tag.yaml").write_text((FOLDER / "disallow-latest-tag.yaml").read_text())
    (tests / "resource.yaml").write_text((FOLDER / ".kyverno-test" / "resource.yaml").read_text())
    document = yaml.safe_load((FOLDER / ".kyverno-test" / TEST).read_text())
    document.update(changes)
    (tests / TEST).write_text(yaml.safe_dump(document))
    for name, text in extra.items():
        (tests / name).write_text(text)
    return root


POD = "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: c, image: nginx}]\n"

# (changes to kyverno-test.yaml, extra files, the file named, the field path and problem named)
CASES: dict[str, tuple[dict[str, Any], dict[str, str], str, str]] = {
    "policy-name-with-nul": ({"policies": ["a\0b"]}, {}, TEST, "policies[0]: expected a file path"),
    "resource-name-with-nul": ({"resources": ["a\0b"]}, {}, TEST, "resources[0]: expected a file path"),
    "second-resource-name-with-nul": (
        {"resources": ["resource.yaml", "a\0b"]},
        {},
        TEST,
        "resources[1]: expected a file path",
    ),
    "exception-name-with-nul": ({"exceptions": ["a\0b"]}, {}, TEST, "exceptions[0]: expected a file path"),
    "variables-name-with-nul": ({"variables": "a\0b"}, {}, TEST, "variables: expected a file path"),
    # The YAML reader refuses the escape itself now, as go-yaml does.
    "policy-name-with-lone-surrogate": (
        {"policies": ["\udfff"]},
        {},
        TEST,
        ":6: malformed YAML: found invalid Unicode",
    ),
    "policy-name-too-long": ({"policies": ["a" * 300]}, {}, TEST, "policies[0]: cannot read"),
    "variables-not-a-string": ({"variables": ["v.yaml"]}, {}, TEST, "variables: expected a file name"),
    "global-values-list": (
        {"values": {"globalValues": [1]}},
        {},
        TEST,
        "values.globalValues: expected a mapping, got list",
    ),
    "global-values-string": (
        {"values": {"globalValues": "ab"}},
        {},
        TEST,
        "values.globalValues: expected a mapping, got string",
    ),
    "values-policies-integer": (
        {"values": {"policies": 5}},
        {},
        TEST,
        "values.policies: expected a list, got integer",
    ),
    "values-policy-string": (
        {"values": {"policies": ["x"]}},
        {},
        TEST,
        "values.policies[0]: expected a mapping, got string",
    ),
    "variables-file-policy-string": (
        {"variables": "values.yaml"},
        {"values.yaml": "kind: Values\npolicies: [x]\n"},
        "values.yaml",
        "policies[0]: expected a mapping, got string",
    ),
    "values-rule-string": (
        {"values": {"policies": [{"name": "p", "rules": ["x"]}]}},
        {},
        TEST,
        "values.policies[0].rules[0]: expected a mapping, got string",
    ),
    "values-rule-values-list": (
        {"values": {"policies": [{"name": "p", "rules": [{"name": "r", "values": [1, 2]}]}]}},
        {},
        TEST,
        "values.policies[0].rules[0].values: expected a mapping, got list",
    ),
    "values-foreach-values-list": (
        {"values": {"policies": [{"name": "p", "rules": [{"name": "r", "foreachValues": [1]}]}]}},
        {},
        TEST,
        "values.policies[0].rules[0].foreachValues: expected a mapping, got list",
    ),
    "values-foreach-value-integer": (
        {"values": {"policies": [{"name": "p", "rules": [{"name": "r", "foreachValues": {"a": 1}}]}]}},
        {},
        TEST,
        "values.policies[0].rules[0].foreachValues.a: expected a list, got integer",
    ),
    "values-resource-values-string": (
        {"values": {"policies": [{"name": "p", "resources": [{"name": "x", "values": "v"}]}]}},
        {},
        TEST,
        "values.policies[0].resources[0].values: expected a mapping, got string",
    ),
    "values-namespace-selector-string": (
        {"values": {"namespaceSelector": ["x"]}},
        {},
        TEST,
        "values.namespaceSelector[0]: expected a mapping, got string",
    ),
    "values-namespace-integer": (
        {"values": {"namespaces": [1]}},
        {},
        TEST,
        "values.namespaces[0]: expected a mapping, got integer",
    ),
    "values-namespace-metadata-string": (
        {"values": {"namespaces": [{"metadata": "x"}]}},
        {},
        TEST,
        "values.namespaces[0].metadata: expected a mapping, got string",
    ),
    "values-list": ({"values": [1]}, {}, TEST, "values: expected a mapping, got list"),
    "user-info-list": (
        {"userinfo": "user.yaml"},
        {"user.yaml": "userInfo: [1]\n"},
        "user.yaml",
        "userInfo: expected a mapping, got list",
    ),
    "user-groups-integer": (
        {"userinfo": "user.yaml"},
        {"user.yaml": "userInfo: {groups: 5}\n"},
        "user.yaml",
        "userInfo.groups: expected a list, got integer",
    ),
    "user-roles-integer": (
        {"userinfo": "user.yaml"},
        {"user.yaml": "roles: 5\n"},
        "user.yaml",
        "roles: expected a list, got integer",
    ),
    "context-resources-integer": (
        {"context": "context.yaml"},
        {"context.yaml": "spec: {resources: 5}\n"},
        "context.yaml",
        "spec.resources: expected a list, got integer",
    ),
    "context-image-without-reference": (
        {"context": "context.yaml"},
        {"context.yaml": "spec: {images: [{image: [1]}]}\n"},
        "context.yaml",
        "spec.images[0].image: expected an image reference (a string), got list",
    ),
    "resource-namespace-list": (
        {"resources": ["pod.yaml"]},
        {"pod.yaml": POD + "metadata: {name: a, namespace: [1]}\n"},
        "pod.yaml",
        "metadata.namespace: expected a string, got list",
    ),
    "resource-labels-list": (
        {"resources": ["pod.yaml"]},
        {"pod.yaml": POD + "metadata: {name: a, labels: [1]}\n"},
        "pod.yaml",
        "metadata.labels: expected a mapping, got list",
    ),
}


@pytest.mark.parametrize(("changes", "extra", "file", "problem"), CASES.values(), ids=CASES.keys())
def test_a_malformed_suite_is_reported_as_an_error_naming_the_file_and_field(
    tmp_path: Path, changes: dict[str, Any], extra: dict[str, str], file: str, problem: str
) -> None:
    root = _suite(tmp_path, changes, extra)
    report = run_tests(root, confine=True)
    assert report.rows == []
    assert len(report.errors) == 1, report.errors
    error = report.errors[0]
    assert error.startswith(".kyverno-test/kyverno-test.yaml: "), error
    assert file in error, error
    assert problem in error, error


@pytest.mark.parametrize(("changes", "extra", "file", "problem"), CASES.values(), ids=CASES.keys())
def test_outside_the_rpc_a_malformed_suite_raises_a_load_error_naming_the_field(
    tmp_path: Path, changes: dict[str, Any], extra: dict[str, str], file: str, problem: str
) -> None:
    # ``gate policy test`` runs suites unconfined: the same shapes must be refused there too.
    root = _suite(tmp_path, changes, extra)
    with pytest.raises(PolicyLoadError) as caught:
        _TestCase(root / ".kyverno-test" / TEST)
    assert caught.value.source.endswith(file)
    assert problem in str(caught.value)


def test_the_unchanged_suite_still_passes(tmp_path: Path) -> None:
    report = run_tests(_suite(tmp_path, {}, {}), confine=True)
    assert report.errors == []
    assert report.failed(strict=True) == 0
    assert len(report.rows) == 10


def test_a_file_outside_the_upload_is_refused_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text(POD + "metadata: {name: secret-pod}\n")
    root = _suite(tmp_path, {"resources": ["resource.yaml", "../../outside.yaml"]}, {})
    report = run_tests(root, confine=True)
    assert report.rows == []
    assert len(report.errors) == 1, report.errors
    assert (
        "resources[1]: '../../outside.yaml' refers to a file outside the uploaded test files"
        in (report.errors[0])
    )
