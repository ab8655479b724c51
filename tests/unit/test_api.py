"""The API table: every RPC of the contract is answered or names the feature it awaits."""

from __future__ import annotations

import pytest

from gate._api import METHODS, PENDING_FEATURES, Api, unavailable
from gate.core import Gate
from gate.errors import InvalidArgument, Unsupported
from gate.v1 import policy_pb2, sbom_pb2, scan_pb2


class NoStore:
    """A store port that must not be reached by these tests."""

    inline_reads = False

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"store.{name} called")


API = Api(Gate(NoStore()))  # type: ignore[arg-type]


def test_every_rpc_is_either_implemented_or_pending_never_both() -> None:
    implemented = set(API.unary) | set(API.streams)
    pending = set(PENDING_FEATURES)
    assert implemented | pending == set(METHODS)
    assert implemented & pending == set()
    assert set(API.unary) & set(API.streams) == set()


def test_scan_rpcs_without_a_scan_runner_say_so() -> None:
    request = scan_pb2.ImportReportRequest(
        artifact={"digest": "sha256:" + "a" * 64}, scanner="trivy", report=b"{}"
    )
    with pytest.raises(Unsupported, match="scanner runs is not available in this gate"):
        API.invoke("gate.v1.ScanService/ImportReport", request)


def test_pending_rpcs_name_their_feature() -> None:
    pending = {"gate.v1.AuditService/ExportPolicyReports": "PolicyReport export (the decisions feature)"}
    error = unavailable("gate.v1.AuditService/ExportPolicyReports", pending)
    assert isinstance(error, Unsupported)
    assert error.message == (
        "gate.v1.AuditService/ExportPolicyReports is not available in this gate: "
        "not implemented yet; it arrives with PolicyReport export (the decisions feature)"
    )


def test_unknown_rpcs_are_invalid() -> None:
    with pytest.raises(InvalidArgument, match=r"no such RPC: gate\.v1\.Nope/Nope"):
        API.invoke("gate.v1.Nope/Nope", scan_pb2.GetScanRequest())


def test_validation_happens_before_the_store_is_touched() -> None:
    with pytest.raises(InvalidArgument, match="id: expected a UUID"):
        API.invoke("gate.v1.ScanService/GetScan", scan_pb2.GetScanRequest(id="../../etc/passwd"))
    with pytest.raises(InvalidArgument, match="version_range: constraint '>=' at character 1"):
        API.invoke(
            "gate.v1.SbomService/SearchComponents",
            sbom_pb2.SearchComponentsRequest(name="x", version_range=">="),
        )
    with pytest.raises(InvalidArgument, match=r"document: invalid JSON at line 1 column 2"):
        API.invoke(
            "gate.v1.SbomService/UploadSbom",
            sbom_pb2.UploadSbomRequest(artifact={"digest": "sha256:" + "a" * 64}, document=b"{x"),
        )


@pytest.mark.parametrize(
    ("paths", "field", "message"),
    [
        (["x" * 256 + "/kyverno-test.yaml"], "files[0].path", "names of at most 255 bytes, got 256"),
        (["a/" * 600 + "kyverno-test.yaml"], "files[0].path", "at most 1024 bytes, got 1217"),
        (["a", "a/kyverno-test.yaml"], "files[1].path", "collides with another file's path"),
        (["a/kyverno-test.yaml", "a"], "files[1].path", "collides with another file's path"),
    ],
)
def test_test_file_paths_that_cannot_be_written_are_the_callers_error(
    paths: list[str], field: str, message: str
) -> None:
    request = policy_pb2.TestPoliciesRequest(
        files=[policy_pb2.PolicyFile(path=p, content=b"x") for p in paths]
    )
    with pytest.raises(InvalidArgument, match=message) as caught:
        API.invoke("gate.v1.PolicyService/TestPolicies", request)
    assert caught.value.field == field
