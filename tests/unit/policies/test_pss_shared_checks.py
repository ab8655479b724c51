"""podSecurity checks shared by the rules of one request (policies._pss.PodChecks)."""

from __future__ import annotations

import copy
from typing import Any

from policies import parse_policies
from policies._pss import PodChecks, check_pod


def _pod(**security: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "securityContext": security}]},
    }


def test_shared_checks_give_what_check_pod_gives_and_reuse_it_for_the_same_pod() -> None:
    pod = _pod(privileged=True, runAsNonRoot=False)
    checks = PodChecks()
    first = checks.check(pod, level="restricted", version="latest")
    again = checks.check(pod, level="restricted", version="latest")
    assert first == check_pod(pod, level="restricted", version="latest")
    assert first
    assert again == first
    assert again is not first  # a new list each time: callers may edit theirs
    assert all(a is b for a, b in zip(first, again, strict=True))  # the same checks, not redone


def test_shared_checks_tell_pods_levels_and_versions_apart() -> None:
    pod = _pod(privileged=True)
    equal_copy = copy.deepcopy(pod)
    checks = PodChecks()
    restricted = checks.check(pod, level="restricted", version="latest")
    baseline = checks.check(pod, level="baseline", version="latest")
    old = checks.check(pod, level="baseline", version="v1.0")
    assert restricted == check_pod(pod, level="restricted", version="latest")
    assert baseline == check_pod(pod, level="baseline", version="latest")
    assert old == check_pod(pod, level="baseline", version="v1.0")
    assert len(restricted) > len(baseline)
    copied = checks.check(equal_copy, level="restricted", version="latest")
    assert copied == restricted
    assert not any(a is b for a, b in zip(copied, restricted, strict=True))  # checked on its own


_HEAD = """\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: pss}
spec:
  validationFailureAction: Enforce
  rules:
"""
_RESTRICTED = """\
  - name: restricted
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      podSecurity: {level: restricted, version: latest}
"""
_EXCLUDING = """\
  - name: restricted-but-privileged
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      podSecurity:
        level: restricted
        version: latest
        exclude:
        - controlName: Privileged Containers
          images: ["nginx*"]
          restrictedField: spec.containers[*].securityContext.privileged
          values: ["true"]
"""


def test_rules_sharing_the_checks_still_apply_their_own_exclusions() -> None:
    pod = _pod(privileged=True)
    together = {r.rule: r for r in parse_policies(_HEAD + _RESTRICTED + _EXCLUDING).evaluate_resource(pod)}
    assert "Privileged Containers" in together["restricted"].message
    assert "Privileged Containers" not in together["restricted-but-privileged"].message
    # Each rule gives what it gives when it is the only podSecurity rule evaluated.
    for name, rule in (("restricted", _RESTRICTED), ("restricted-but-privileged", _EXCLUDING)):
        (alone,) = parse_policies(_HEAD + rule).evaluate_resource(pod)
        assert (alone.outcome, alone.message) == (together[name].outcome, together[name].message)
