"""Statuses that quote a huge or odd field still reach the caller as that status, never as a
client-side RESOURCE_EXHAUSTED, and out-of-range Timestamps are INVALID_ARGUMENT, never INTERNAL."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gate._api import Api
from gate.core import Gate
from gate.server._grpc import MAX_DETAILS_BYTES, GrpcApi, RequestLimits, status_details
from gate.v1 import audit_pb2, decision_pb2
from tests.integration.grpc_support import ThreadedGrpc


class NoStore:
    """A store port that must not be reached: every request here is refused before."""

    inline_reads = False

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"store.{name} called")


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    server = ThreadedGrpc(
        lambda: GrpcApi(
            Api(Gate(NoStore())),  # type: ignore[arg-type]
            ThreadPoolExecutor(2),
            RequestLimits(4 << 20, 4 << 20),
        )
    )
    # The client's default metadata limits, as every caller has them.
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as opened:
        yield opened
    server.stop()


def error_of(channel: grpc.Channel, method: str, request: Message, response: type[Message]) -> grpc.RpcError:
    stub = channel.unary_unary(
        f"/{method}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=response.FromString,
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub(request, timeout=10)
    return caught.value


@pytest.mark.parametrize(
    "stage",
    [
        pytest.param("s" * (1 << 20), id="1-MiB-ascii"),
        # Two UTF-8 bytes each, six once percent-encoded in the grpc-message trailer.
        pytest.param("e" + "\u0301" * 4000, id="combining-marks"),
    ],
)
def test_a_huge_value_quoted_back_still_arrives_as_invalid_argument(
    channel: grpc.Channel, stage: str
) -> None:
    request = decision_pb2.DecideRequest(manifest=b"apiVersion: v1\nkind: Pod\n", stage=stage)
    error = error_of(channel, "gate.v1.DecisionService/Decide", request, decision_pb2.Decision)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    details = error.details() or ""
    assert details.startswith("stage: expected a lowercase stage name")
    assert len(details.encode()) <= MAX_DETAILS_BYTES
    assert details.endswith("bytes in all)")


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        (Timestamp(seconds=253_402_300_800), "since.seconds: expected -62135596800"),
        (Timestamp(seconds=0, nanos=-1), "since.nanos: expected 0 to 999999999, got -1"),
    ],
)
def test_an_out_of_range_timestamp_is_invalid_argument_not_internal(
    channel: grpc.Channel, stamp: Timestamp, expected: str
) -> None:
    error = error_of(
        channel,
        "gate.v1.AuditService/ListDecisions",
        audit_pb2.ListDecisionsRequest(since=stamp),
        audit_pb2.ListDecisionsResponse,
    )
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith(expected)


def test_status_details_keep_short_messages_and_cut_long_ones_at_a_character_boundary() -> None:
    assert status_details("id: required") == "id: required"
    cut = status_details("\u00e9" * 5000)
    assert len(cut.encode()) <= MAX_DETAILS_BYTES
    assert cut.endswith("... (10000 bytes in all)")
    assert set(cut.removesuffix("... (10000 bytes in all)")) == {"\u00e9"}
