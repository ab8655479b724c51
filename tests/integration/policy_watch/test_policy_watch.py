"""``gate serve`` follows its policy files: changes apply within the poll interval, bad files are refused."""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gate.config import Config
from gate.v1 import decision_pb2, policy_pb2
from tests.conftest import RunningGate, loopback_config

POLL = 0.3
# The poll interval, plus a reload (parsing the bundle) on a busy 2-core machine.
WITHIN = POLL + 2.0

POLICY = """\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: image-tags
spec:
  validationFailureAction: Enforce
  background: false
  rules:
  - name: forbidden-tag
    match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}
    validate:
      message: "the :{tag} tag is not allowed"
      pattern:
        spec:
          containers:
          - image: "!*:{tag}"
"""

# Valid YAML, but a field the engine refuses (line 6).
BROKEN = POLICY.format(tag="edge").replace(
    "validationFailureAction: Enforce", "validationFailureAction: Sometimes"
)


def review_body(image: str) -> bytes:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "default", "uid": "0d6c4a1e-5b7f-4e2a-9c3d-1f2e3d4c5b6a"},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    request = {
        # A new uid per review, as the API server gives them (a uid seen before is a retry or a replay).
        "uid": str(uuid.uuid4()),
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "namespace": "default",
        "name": "app",
        "operation": "CREATE",
        "userInfo": {"username": "alice"},
        "object": pod,
    }
    return json.dumps(
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    ).encode()


def allowed(gate: RunningGate, image: str = "registry.example/app:latest") -> bool:
    reply: Any = gate.call(
        "gate.v1.DecisionService/Review",
        decision_pb2.ReviewRequest(admission_review=review_body(image)),
        decision_pb2.ReviewResponse,
    )
    return bool(reply.decision.allowed)


def listing(gate: RunningGate) -> Any:
    return gate.call(
        "gate.v1.PolicyService/ListPolicies",
        policy_pb2.ListPoliciesRequest(),
        policy_pb2.ListPoliciesResponse,
    )


def wait_for(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``condition`` held; fails after ``seconds``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"not within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - start


def metric(gate: RunningGate, name: str) -> float:
    with urllib.request.urlopen(f"http://{gate.addresses.metrics}/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def watching(tmp_path: Path, source: Path) -> Config:
    config = loopback_config(tmp_path / "data")
    policies = config.policies.model_copy(update={"sources": (source,), "poll_interval": POLL})
    return config.model_copy(update={"policies": policies})


def test_a_rewritten_policy_is_in_force_within_the_poll_interval_and_a_broken_one_is_refused(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    directory = tmp_path / "policies"
    directory.mkdir()
    policy = directory / "tags.yaml"
    policy.write_text(POLICY.format(tag="latest"))
    gate = serve_gate(watching(tmp_path, directory))
    assert allowed(gate) is False
    first = listing(gate).bundle_digest

    policy.write_text(POLICY.format(tag="edge"))
    took = wait_for(lambda: allowed(gate), WITHIN)
    assert took < WITHIN
    second = listing(gate)
    assert second.bundle_digest != first
    assert second.reload_error == ""
    assert allowed(gate, "registry.example/app:edge") is False

    errors_before = metric(gate, "gate_policy_reload_errors_total")
    policy.write_text(BROKEN)
    wait_for(lambda: listing(gate).reload_error != "", WITHIN)
    answer = listing(gate)
    assert str(policy) in answer.reload_error
    assert "validationFailureAction" in answer.reload_error
    assert answer.reload_error_time.seconds > 0
    # The previous bundle is still in force.
    assert answer.bundle_digest == second.bundle_digest
    assert allowed(gate) is True
    assert allowed(gate, "registry.example/app:edge") is False
    assert metric(gate, "gate_policy_reload_errors_total") == errors_before + 1

    policy.write_text(POLICY.format(tag="latest"))
    wait_for(lambda: not allowed(gate), WITHIN)
    assert listing(gate).reload_error == ""
    # Every recorded decision was counted, by stage and result.
    assert metric(gate, 'gate_decisions_total{result="denied",stage="admission"}') >= 3
    assert metric(gate, 'gate_decisions_total{result="allowed",stage="admission"}') >= 2
    assert metric(gate, 'gate_decision_duration_seconds_count{stage="admission"}') >= 5


def test_a_kubelet_configmap_update_swapping_the_data_symlink_is_seen(
    tmp_path: Path, serve_gate: Callable[..., RunningGate]
) -> None:
    # The layout kubelet gives a ConfigMap volume: visible names link through ..data to a
    # timestamped directory; an update writes a new directory and renames a new ..data over the old.
    mount = tmp_path / "mount"
    mount.mkdir()
    old = mount / "..2026_11_27_10_00_00.000000001"
    old.mkdir()
    (old / "tags.yaml").write_text(POLICY.format(tag="latest"))
    os.symlink(old.name, mount / "..data")
    os.symlink("..data/tags.yaml", mount / "tags.yaml")
    gate = serve_gate(watching(tmp_path, mount))
    assert allowed(gate) is False

    new = mount / "..2026_11_27_10_05_00.000000002"
    new.mkdir()
    # Same size and modification time as the old file: only the inode tells them apart.
    content = POLICY.format(tag="edge01")
    assert len(content) == len(POLICY.format(tag="latest"))
    (new / "tags.yaml").write_text(content)
    stat = (old / "tags.yaml").stat()
    os.utime(new / "tags.yaml", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.symlink(new.name, mount / "..data_tmp")
    os.rename(mount / "..data_tmp", mount / "..data")
    for child in old.iterdir():
        child.unlink()
    old.rmdir()

    wait_for(lambda: allowed(gate), WITHIN)
    assert allowed(gate, "registry.example/app:edge01") is False
