"""PolicyService over gRPC: list, reload (keeping the old bundle on failure) and test policies."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from gate.cli import main
from gate.v1 import policy_pb2
from tests.conftest import RunningGate, loopback_config

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance" / "kyverno"
FOLDER = CORPUS / "best-practices" / "require-labels"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    if not FOLDER.exists():
        pytest.fail(f"the Kyverno corpus is missing at {FOLDER}", pytrace=False)
    target = tmp_path / "policies"
    target.mkdir()
    shutil.copy(FOLDER / "require-labels.yaml", target / "require-labels.yaml")
    return target


def serve(tmp_path: Path, serve_gate: Callable[..., RunningGate], policy_dir: Path) -> RunningGate:
    return serve_gate(loopback_config(tmp_path / "gate", GATE_POLICY_SOURCES=str(policy_dir)))


def test_loaded_policies_are_listed_with_the_bundle_digest(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], policy_dir: Path
) -> None:
    gate = serve(tmp_path, serve_gate, policy_dir)
    listed = gate.call(
        "gate.v1.PolicyService/ListPolicies",
        policy_pb2.ListPoliciesRequest(),
        policy_pb2.ListPoliciesResponse,
    )
    assert [(p.kind, p.name) for p in listed.policies] == [("ClusterPolicy", "require-labels")]
    assert "check-for-labels" in listed.policies[0].rules
    assert listed.policies[0].source.endswith("require-labels.yaml")
    assert listed.bundle_digest.startswith("sha256:")


def test_a_failed_reload_keeps_the_old_bundle(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], policy_dir: Path
) -> None:
    gate = serve(tmp_path, serve_gate, policy_dir)
    before = gate.call(
        "gate.v1.PolicyService/ListPolicies",
        policy_pb2.ListPoliciesRequest(),
        policy_pb2.ListPoliciesResponse,
    )
    (policy_dir / "broken.yaml").write_text("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: [\n")
    with pytest.raises(grpc.RpcError) as caught:
        gate.call(
            "gate.v1.PolicyService/ReloadPolicies",
            policy_pb2.ReloadPoliciesRequest(),
            policy_pb2.ReloadPoliciesResponse,
        )
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "broken.yaml" in caught.value.details()
    after = gate.call(
        "gate.v1.PolicyService/ListPolicies",
        policy_pb2.ListPoliciesRequest(),
        policy_pb2.ListPoliciesResponse,
    )
    assert after.bundle_digest == before.bundle_digest

    (policy_dir / "broken.yaml").unlink()
    text = (policy_dir / "require-labels.yaml").read_text()
    (policy_dir / "require-labels.yaml").write_text(text.replace("require-labels", "require-app-labels", 1))
    reloaded = gate.call(
        "gate.v1.PolicyService/ReloadPolicies",
        policy_pb2.ReloadPoliciesRequest(),
        policy_pb2.ReloadPoliciesResponse,
    )
    assert reloaded.policy_count == 1
    assert reloaded.bundle_digest != before.bundle_digest


def corpus_files() -> list[policy_pb2.PolicyFile]:
    files = []
    for path in sorted(FOLDER.rglob("*")):
        if path.is_file():
            files.append(policy_pb2.PolicyFile(path=str(path.relative_to(FOLDER)), content=path.read_bytes()))
    return files


def test_kyverno_test_files_sent_with_the_request_are_run(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], policy_dir: Path
) -> None:
    gate = serve(tmp_path, serve_gate, policy_dir)
    request = policy_pb2.TestPoliciesRequest(files=corpus_files(), strict=True)
    answer = gate.call("gate.v1.PolicyService/TestPolicies", request, policy_pb2.TestPoliciesResponse)
    assert answer.passed
    assert answer.errors == []
    assert (answer.passed_count, answer.failed_count) == (4, 0)
    assert {(r.resource.split("/")[-1], r.actual) for r in answer.results} >= {
        ("badpod01", "fail"),
        ("goodpod01", "pass"),
    }


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.yaml", "a/../../b.yaml", ""])
def test_test_files_may_not_escape_their_directory(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], policy_dir: Path, bad: str
) -> None:
    gate = serve(tmp_path, serve_gate, policy_dir)
    request = policy_pb2.TestPoliciesRequest(
        files=[*corpus_files(), policy_pb2.PolicyFile(path=bad, content=b"x")]
    )
    with pytest.raises(grpc.RpcError) as caught:
        gate.call("gate.v1.PolicyService/TestPolicies", request, policy_pb2.TestPoliciesResponse)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "path" in caught.value.details()


def test_a_broken_policy_source_stops_serve_with_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "p.yaml"
    broken.write_text("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nspec:\n  rules: 7\n")
    monkeypatch.setenv("GATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GATE_POLICY_SOURCES", str(broken))
    for name in ("GATE_GRPC_LISTEN", "GATE_WEBHOOK_LISTEN", "GATE_METRICS_LISTEN"):
        monkeypatch.setenv(name, "127.0.0.1:0")
    code = main(["serve"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert last.startswith("gate: configuration error: configuration: policies.sources: ")
    assert last.endswith("p.yaml:4: spec.rules: expected a list, got integer")


@pytest.mark.parametrize("reference", ["../../outside.yaml", "/etc/hostname"])
def test_files_a_test_names_outside_the_upload_are_not_read(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], policy_dir: Path, reference: str
) -> None:
    # A kyverno-test.yaml naming a resource outside the uploaded files: the server must not read
    # its own files for a caller; the test reports the error instead of running.
    outside = tmp_path / "outside.yaml"
    outside.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: secret-pod\n")
    gate = serve(tmp_path, serve_gate, policy_dir)
    test_file = (
        "name: escape\npolicies: [require-labels.yaml]\n"
        f"resources: ['{reference}']\n"
        "results:\n- policy: require-labels\n  rule: check-for-labels\n  resources: [secret-pod]\n"
        "  kind: Pod\n  result: fail\n"
    )
    request = policy_pb2.TestPoliciesRequest(
        files=[
            policy_pb2.PolicyFile(
                path="t/require-labels.yaml", content=(FOLDER / "require-labels.yaml").read_bytes()
            ),
            policy_pb2.PolicyFile(path="t/kyverno-test.yaml", content=test_file.encode()),
        ]
    )
    answer = gate.call("gate.v1.PolicyService/TestPolicies", request, policy_pb2.TestPoliciesResponse)
    assert not answer.passed
    assert [e for e in answer.errors if "outside the uploaded test files" in e]
    assert not any("secret-pod" in r.resource for r in answer.results)
