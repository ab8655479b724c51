"""UNAVAILABLE answers tell the caller when to retry; answers about the request itself do not."""

from __future__ import annotations

import grpc

from gate.errors import NotFound, StoreUnavailable
from tests.integration.test_grpc_errors import BrokenStore, call_with_store

__all__ = ["call_with_store"]  # the fixture, shared with the gRPC error tests


def _trailers(error: grpc.RpcError) -> dict[str, str]:
    return dict(error.trailing_metadata() or ())


def test_a_store_outage_carries_a_retry_hint(call_with_store) -> None:
    error = call_with_store(BrokenStore(StoreUnavailable("evidence store unavailable: no answer"), False))
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    trailers = _trailers(error)
    assert trailers["retry-after"] == "1.000"
    assert trailers["grpc-retry-pushback-ms"] == "1000"
    assert trailers["x-request-id"]


def test_a_missing_record_carries_no_retry_hint(call_with_store) -> None:
    error = call_with_store(BrokenStore(NotFound("scan", "x"), False))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    trailers = _trailers(error)
    assert "retry-after" not in trailers
    assert "grpc-retry-pushback-ms" not in trailers
