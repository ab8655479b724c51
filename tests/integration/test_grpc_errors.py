"""Failures inside gate reach gRPC callers as a status, never as a traceback or SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from gate._api import Api
from gate.core import Gate
from gate.errors import StoreUnavailable
from gate.server._grpc import GrpcApi, RequestLimits
from gate.v1 import scan_pb2
from tests.integration.grpc_support import ThreadedGrpc


class BrokenStore:
    """A store port whose scan lookup fails the way a given backend failure would."""

    def __init__(self, failure: BaseException, inline_reads: bool) -> None:
        self.failure = failure
        self.inline_reads = inline_reads

    def get_scan(self, scan_id: str) -> None:
        raise self.failure


@pytest.fixture
def call_with_store() -> Iterator:
    servers: list[ThreadedGrpc] = []

    def start(store: object) -> grpc.RpcError:
        server = ThreadedGrpc(
            lambda: GrpcApi(Api(Gate(store)), ThreadPoolExecutor(2), RequestLimits(1 << 20, 1 << 20))  # type: ignore[arg-type]
        )
        servers.append(server)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = channel.unary_unary(
                "/gate.v1.ScanService/GetScan",
                request_serializer=scan_pb2.GetScanRequest.SerializeToString,
                response_deserializer=scan_pb2.Scan.FromString,
            )
            with pytest.raises(grpc.RpcError) as caught:
                stub(scan_pb2.GetScanRequest(id=str(uuid.uuid4())), timeout=5)
        return caught.value

    yield start
    for server in servers:
        server.stop()


INLINE = pytest.mark.parametrize("inline", [False, True], ids=["worker-thread", "inline"])


@INLINE
def test_store_outage_is_unavailable_with_the_store_message(call_with_store, inline: bool) -> None:
    error = call_with_store(
        BrokenStore(StoreUnavailable("evidence store unavailable: connection refused"), inline)
    )
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert error.details() == "evidence store unavailable: connection refused"


@INLINE
def test_unexpected_errors_are_internal_with_a_reference_and_no_details(
    call_with_store, inline: bool
) -> None:
    error = call_with_store(
        BrokenStore(RuntimeError("SELECT secret FROM scans WHERE password='hunter2'"), inline)
    )
    assert error.code() is grpc.StatusCode.INTERNAL
    assert error.details().startswith("internal error (reference ")
    assert "SELECT" not in error.details()
    assert "hunter2" not in error.details()
    assert "Traceback" not in error.details()
