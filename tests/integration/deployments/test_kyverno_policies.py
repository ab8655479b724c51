"""The Kyverno policies in deployments/policies/kyverno: their kyverno tests pass in gate's engine,
one copy serves Kyverno and gate, and the evidence they ask gate for is addressed to gate's Service."""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tests.integration.deployments._support import BIN, DEPLOYMENTS, find, render, run

KYVERNO = DEPLOYMENTS / "policies" / "kyverno"
EVIDENCE_URL = "https://gate.gate-system.svc:8443/v1/evidence"


def _policy_files() -> list[Path]:
    return sorted(p for p in KYVERNO.glob("*/*.yaml"))


def _walk(node: Any) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_walk(value))
    return found


def test_every_policy_has_a_kyverno_test_and_the_tests_pass_in_gates_engine() -> None:
    for policy in _policy_files():
        assert (policy.parent / ".kyverno-test" / "kyverno-test.yaml").is_file(), f"{policy.name} has no test"
    rows = resources = 0
    for test_file in KYVERNO.rglob("kyverno-test.yaml"):
        for expected in yaml.safe_load(test_file.read_text())["results"]:
            rows += 1
            resources += len(expected["resources"])
    result = run(str(BIN / "gate"), "policy", "test", str(KYVERNO), "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    counted_rows = re.search(r"expected rows: (\d+) passed, (\d+) failed", result.stdout)
    assert counted_rows, result.stdout
    assert (int(counted_rows[1]), int(counted_rows[2])) == (rows, 0), result.stdout
    assert result.stdout.rstrip().endswith(f"{resources} passed, 0 failed"), result.stdout


def test_skip_results_are_expected_only_for_verify_images_rules() -> None:
    for test_file in KYVERNO.rglob("kyverno-test.yaml"):
        test = yaml.safe_load(test_file.read_text())
        policies = [yaml.safe_load((test_file.parent / p).read_text()) for p in test["policies"]]
        rules = {(p["metadata"]["name"], r["name"]): r for p in policies for r in p["spec"]["rules"]}
        for result in test["results"]:
            if result["result"] == "skip":
                rule = rules[(result["policy"], result["rule"])]
                assert "verifyImages" in rule, f"{test_file}: {result['rule']} is expected to skip"


def test_kyverno_and_gate_load_the_same_policy_files() -> None:
    kyverno_docs = render("deployments/policies/kyverno")
    gate_files = find(render("deployments/policies"), "ConfigMap", "gate-policies")["data"]
    on_disk = {p.name: yaml.safe_load(p.read_text()) for p in _policy_files()}
    assert sorted(gate_files) == sorted(on_disk)
    for name, text in gate_files.items():
        assert yaml.safe_load(text) == on_disk[name], f"gate's copy of {name} differs"
    assert sorted(d["metadata"]["name"] for d in kyverno_docs) == sorted(
        doc["metadata"]["name"] for doc in on_disk.values()
    )


def test_evidence_calls_go_to_gates_webhook_service() -> None:
    service = find(render("deployments/overlays/production"), "Service", "gate")
    webhook_port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "webhook")
    assert (
        f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc:{webhook_port}" in EVIDENCE_URL
    )
    calls = 0
    for path in _policy_files():
        for node in _walk(yaml.safe_load(path.read_text())):
            call = node.get("apiCall")
            if isinstance(call, dict):
                calls += 1
                assert call["service"]["url"] == EVIDENCE_URL, path.name
                assert call["method"] == "POST"
                assert call["data"] == [{"key": "image", "value": "{{ element.image }}"}]
    assert calls == 2


def test_signature_and_attestation_policies_use_one_valid_p256_example_key() -> None:
    keys = set()
    for path in _policy_files():
        for node in _walk(yaml.safe_load(path.read_text())):
            if "publicKeys" in node:
                keys.add(node["publicKeys"].strip())
    assert len(keys) == 1
    key = load_pem_public_key(keys.pop().encode())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"


def test_readme_key_replacement_gives_policies_with_the_new_key_that_still_pass(tmp_path: Path) -> None:
    # deployments/README.md, step 2, run on a copy of the policies with a fresh key.
    readme = (DEPLOYMENTS / "README.md").read_text()
    (snippet,) = re.findall(r"python3 - <<'PY'\n(.*?)\n\s*PY\n", readme, flags=re.S)
    snippet = "\n".join(line.removeprefix("   ") for line in snippet.splitlines())
    shutil.copytree(KYVERNO, tmp_path / "deployments" / "policies" / "kyverno")
    new_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = new_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "cosign.pub").write_bytes(pem)
    result = run(sys.executable, "-c", snippet, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    copied = tmp_path / "deployments" / "policies" / "kyverno"
    keys = set()
    for path in copied.glob("*/*.yaml"):
        for node in _walk(yaml.safe_load(path.read_text())):
            if "publicKeys" in node:
                keys.add(node["publicKeys"].strip())
    assert keys == {pem.decode().strip()}
    tested = run(str(BIN / "gate"), "policy", "test", str(copied), "--strict")
    assert tested.returncode == 0, tested.stdout + tested.stderr
