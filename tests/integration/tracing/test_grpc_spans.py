"""OpenTelemetry spans of gRPC calls, read from the SDK's in-memory exporter."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gate._api import Api
from gate.auth import authenticator_from_config
from gate.config import AuthSettings, Config, TracingSettings
from gate.core import Gate
from gate.errors import ConfigError
from gate.server import _tracing
from gate.server._authz import Guard
from gate.server._grpc import GrpcApi, RequestLimits
from gate.store import open_store
from gate.v1 import decision_pb2, scan_pb2
from tests.integration.auth.support import write_tokens
from tests.integration.grpc_support import ThreadedGrpc
from tests.integration.hardening.serve_support import DECISION_ASSETS, review_body

TOKEN = "s3cret-bearer-token-4242"
# A caller's trace: version 00, trace id, parent span id, sampled.
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

Call = Callable[..., Any]


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    tracing = _tracing.enable(TracingSettings(enabled=True, service_name="gate-test"), exporter=memory)
    assert tracing is not None
    try:
        yield memory
    finally:
        tracing.shutdown()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[], Call]]:
    """Start gate's gRPC API in process (as tracing stands when called); return a caller."""
    servers: list[ThreadedGrpc] = []
    channels: list[grpc.Channel] = []

    def start() -> Call:
        tokens = write_tokens(tmp_path / "tokens.yaml", {TOKEN: ("ci-payments", ["admin"], [])})
        config = Config(data_dir=tmp_path, auth=AuthSettings(mode="required", tokens_file=tokens))
        store = open_store("sqlite:///:memory:")
        core = Gate(store, policy_sources=[DECISION_ASSETS / "policies.yaml"])
        core.decision_listeners.append(_tracing.record_decision_spans)
        executor = ThreadPoolExecutor(2)

        def make_api() -> GrpcApi:
            guard = Guard(authenticator_from_config(config), executor)
            return GrpcApi(Api(core), executor, RequestLimits(1 << 20, 1 << 20), guard=guard)

        server = ThreadedGrpc(make_api)
        servers.append(server)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        channels.append(channel)

        def call(
            method: str,
            request: Any,
            reply: Any,
            metadata: tuple[tuple[str, str], ...] = (),
            stream: bool = False,
        ) -> Any:
            make = channel.unary_stream if stream else channel.unary_unary
            stub = make(
                f"/{method}",
                request_serializer=type(request).SerializeToString,
                response_deserializer=reply.FromString,
            )
            answer = stub(request, timeout=10, metadata=(("authorization", f"Bearer {TOKEN}"), *metadata))
            return list(answer) if stream else answer

        return call

    yield start
    for channel in channels:
        channel.close()
    for server in servers:
        server.stop()


def _get_scan(call: Call, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(
            "gate.v1.ScanService/GetScan",
            scan_pb2.GetScanRequest(id=str(uuid.uuid4())),
            scan_pb2.Scan,
            metadata,
        )
    return raised.value


def _server_spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    # The caller hears an aborted call's status before the server's handler has unwound
    # (and ended its span): give it a moment.
    deadline = time.monotonic() + 5
    while True:
        spans = [span for span in exporter.get_finished_spans() if span.name == name]
        if spans or time.monotonic() > deadline:
            return spans
        time.sleep(0.01)


def test_a_call_is_one_server_span_with_method_status_request_id_and_caller(
    exporter: InMemorySpanExporter, serve: Callable[[], Call]
) -> None:
    error = _get_scan(serve(), (("x-request-id", "req-trace-1"),))
    assert error.code() is grpc.StatusCode.NOT_FOUND
    (span,) = _server_spans(exporter, "gate.v1.ScanService/GetScan")
    assert span.attributes is not None
    assert dict(span.attributes) == {
        "rpc.system": "grpc",
        "rpc.service": "gate.v1.ScanService",
        "rpc.method": "GetScan",
        "rpc.grpc.status_code": grpc.StatusCode.NOT_FOUND.value[0],
        "gate.request_id": "req-trace-1",
        "gate.caller": "token:ci-payments",
    }
    assert span.status.description == "NOT_FOUND"
    assert span.resource.attributes["service.name"] == "gate-test"


def test_the_callers_traceparent_is_the_parent(
    exporter: InMemorySpanExporter, serve: Callable[[], Call]
) -> None:
    _get_scan(serve(), (("traceparent", TRACEPARENT),))
    (span,) = _server_spans(exporter, "gate.v1.ScanService/GetScan")
    assert span.context is not None
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert span.parent.is_remote


def test_a_call_without_traceparent_starts_a_trace(
    exporter: InMemorySpanExporter, serve: Callable[[], Call]
) -> None:
    _get_scan(serve())
    (span,) = _server_spans(exporter, "gate.v1.ScanService/GetScan")
    assert span.parent is None


def test_a_review_has_evidence_and_policy_child_spans(
    exporter: InMemorySpanExporter, serve: Callable[[], Call]
) -> None:
    request = decision_pb2.ReviewRequest(admission_review=review_body(str(uuid.uuid4())))
    reply = serve()("gate.v1.DecisionService/Review", request, decision_pb2.ReviewResponse)
    (call,) = _server_spans(exporter, "gate.v1.DecisionService/Review")
    (policy,) = _server_spans(exporter, "gate.policy")
    assert call.context is not None
    assert policy.parent is not None
    assert policy.parent.span_id == call.context.span_id
    assert policy.attributes is not None
    assert policy.attributes["gate.decision_id"] == reply.decision.id
    assert policy.attributes["gate.allowed"] == reply.decision.allowed
    assert call.start_time is not None
    assert policy.start_time is not None
    assert policy.end_time is not None
    assert call.start_time <= policy.start_time <= policy.end_time


def test_no_attribute_carries_the_token(exporter: InMemorySpanExporter, serve: Callable[[], Call]) -> None:
    call = serve()
    _get_scan(call, (("traceparent", TRACEPARENT),))
    request = decision_pb2.ReviewRequest(admission_review=review_body(str(uuid.uuid4())))
    call("gate.v1.DecisionService/Review", request, decision_pb2.ReviewResponse)
    spans = exporter.get_finished_spans()
    assert spans
    for span in spans:
        texts = [str(value) for value in (span.attributes or {}).values()]
        texts += [span.name, span.status.description or ""]
        assert not [text for text in texts if TOKEN in text or "Bearer" in text], span.name


def test_tracing_off_records_nothing_and_wraps_no_handler(serve: Callable[[], Call]) -> None:
    memory = InMemorySpanExporter()
    tracing = _tracing.enable(TracingSettings(enabled=True), exporter=memory)
    assert tracing is not None
    tracing.shutdown()
    assert _tracing.TRACER is None
    _get_scan(serve(), (("traceparent", TRACEPARENT),))
    assert memory.get_finished_spans() == ()
    assert _tracing.enable(TracingSettings()) is None
    assert _tracing.TRACER is None
    assert _tracing.review_span((), "uid") is _tracing.review_span(
        ((b"traceparent", TRACEPARENT.encode()),), "x"
    )


def test_an_admission_review_span_joins_the_api_servers_trace(exporter: InMemorySpanExporter) -> None:
    headers = ((b"content-type", b"application/json"), (b"Traceparent", TRACEPARENT.encode()))
    with _tracing.review_span(headers, "review-uid-1") as answered:
        answered(False)
    (span,) = _server_spans(exporter, "gate.admission/validate")
    assert span.context is not None
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert dict(span.attributes or {}) == {"k8s.admission.uid": "review-uid-1", "gate.allowed": False}


def test_enabling_tracing_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # An import of a module mapped to None fails as if the package were not installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(ConfigError) as raised:
        _tracing.enable(TracingSettings(enabled=True))
    assert raised.value.message == (
        "configuration: tracing.enabled: tracing needs the otel extra: pip install 'gate[otel]'"
    )
    assert _tracing.TRACER is None


def test_a_stream_is_one_span_until_it_ends(
    exporter: InMemorySpanExporter, serve: Callable[[], Call]
) -> None:
    request = scan_pb2.WatchScanRequest(id=str(uuid.uuid4()))
    metadata = (("traceparent", TRACEPARENT),)
    with pytest.raises(grpc.RpcError) as raised:
        serve()("gate.v1.ScanService/WatchScan", request, scan_pb2.ScanEvent, metadata, stream=True)
    (span,) = _server_spans(exporter, "gate.v1.ScanService/WatchScan")
    assert span.context is not None
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.attributes is not None
    assert span.attributes["rpc.grpc.status_code"] == raised.value.code().value[0]
