"""``gate serve`` with ``tracing.enabled`` exports its spans over OTLP/gRPC to a collector."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from gate.config import TracingSettings
from gate.server import _tracing
from gate.v1 import scan_pb2
from tests.conftest import RunningGate, loopback_config


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP trace receiver that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.received = threading.Event()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[tuple[str, str]]:
        """(service.name, span name) of every span received."""
        found = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    ),
                    "",
                )
                found += [
                    (service, span.name) for scope in resource_spans.scope_spans for span in scope.spans
                ]
        return found


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    receiver = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield receiver, port
    server.stop(0)


def test_served_calls_reach_the_collector_and_stopping_turns_tracing_off(
    tmp_path: Path, serve_gate: Callable[..., RunningGate], collector: tuple[Collector, int]
) -> None:
    receiver, port = collector
    config = loopback_config(tmp_path / "data").model_copy(
        update={
            "tracing": TracingSettings(
                enabled=True, endpoint=f"http://127.0.0.1:{port}", insecure=True, service_name="gate-e2e"
            )
        }
    )
    running = serve_gate(config)
    with pytest.raises(grpc.RpcError) as raised:
        running.call(
            "gate.v1.ScanService/GetScan", scan_pb2.GetScanRequest(id=str(uuid.uuid4())), scan_pb2.Scan
        )
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    # Stopping flushes the spans still batched.
    running.stop()
    assert receiver.received.wait(10)
    assert ("gate-e2e", "gate.v1.ScanService/GetScan") in receiver.spans()
    assert _tracing.TRACER is None
