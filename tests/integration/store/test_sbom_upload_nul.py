"""Uploads holding a NUL, on both backends: the same InvalidArgument, nothing stored.

Before, SQLite stored such an SBOM and PostgreSQL failed inside the store with
StoreUnavailable (UNAVAILABLE, retry-after): a client retried a bad document forever.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from gate.core import ArtifactSelector, Gate
from gate.errors import InvalidArgument
from gate.store import EvidenceStore
from gate.v1 import common_pb2, sbom_pb2
from tests.conftest import RunningGate, loopback_config

DIGEST = "sha256:" + "4" * 64


def cyclonedx(**component: str) -> bytes:
    entry = {"type": "library", "name": "requests", "version": "2.31.0", **component}
    return json.dumps(
        {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [entry]}
    ).encode()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            cyclonedx(name="req\0uests"),
            "document/components/0/name: got a NUL character (\\u0000), expected text without NUL",
        ),
        (
            cyclonedx(purl="pkg:pypi/requests@2.31.0\0"),
            "document/components/0/purl: got a NUL character (\\u0000), expected text without NUL",
        ),
        (
            cyclonedx(purl="pkg:pypi/re%00quests@2.31.0"),
            "document/components/0/purl: got a percent-encoded control character (%00), "
            "expected a package URL without control characters",
        ),
    ],
)
def test_an_upload_holding_a_nul_is_refused_alike_on_every_backend(
    store: EvidenceStore, document: bytes, message: str
) -> None:
    gate = Gate(store)
    with pytest.raises(InvalidArgument) as caught:
        gate.upload_sbom(ArtifactSelector(digest=DIGEST), document)
    assert str(caught.value) == message
    assert store.list_sboms("", 10, "").items == ()
    stored = gate.upload_sbom(ArtifactSelector(digest=DIGEST), cyclonedx())
    assert [c.name for c in store.sbom_components(stored.id)] == ["requests"]


@pytest.mark.postgres
def test_a_nul_upload_to_a_postgresql_gate_is_invalid_argument_not_unavailable(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], postgres_url: str
) -> None:
    gate = serve_gate(loopback_config(tmp_path, GATE_DATABASE_URL=postgres_url))
    request = sbom_pb2.UploadSbomRequest(
        artifact=common_pb2.ArtifactRef(digest=DIGEST), document=cyclonedx(version="2.31\0")
    )
    with pytest.raises(grpc.RpcError) as caught:
        gate.call("gate.v1.SbomService/UploadSbom", request, sbom_pb2.Sbom)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "document/components/0/version: got a NUL character (\\u0000)" in caught.value.details()
