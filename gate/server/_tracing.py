"""OpenTelemetry traces of ``gate serve`` (optional: the ``otel`` extra, ``tracing.enabled``).

One server span per gRPC call, named after the method, with its status code,
request id and the caller's identity name (never a credential), joined to the
caller's trace when the call carries W3C ``traceparent`` metadata. Recorded
decisions add two child spans, evidence lookup and policy evaluation, placed from
the decision's own timings (measuring again would cost the hot path).

Off (the default), nothing of this runs: :data:`TRACER` stays None, the gRPC
layer wraps no handler, and :func:`review_span` hands back one shared no-op.
OpenTelemetry is imported only by :func:`enable`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

import gate
from gate.auth import current_caller
from gate.errors import ConfigError

if TYPE_CHECKING:
    from google.protobuf.message import Message
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from gate.config import TracingSettings
    from gate.model import Decision

OTEL_EXTRA_HINT = "tracing needs the otel extra: pip install 'gate[otel]'"

# The tracer while tracing is on; None otherwise. Checked once per handler at start-up, and
# once per review by review_span: the whole cost of tracing when it is off.
TRACER: Tracer | None = None
_PROPAGATOR: TraceContextTextMapPropagator | None = None

# Seconds one export may take, retries included: an unreachable collector loses spans but
# never holds gate's shutdown (which flushes them) for long.
_EXPORT_TIMEOUT = 3.0

# Metadata and headers the W3C trace context travels in.
_TRACE_KEYS = frozenset({"traceparent", "tracestate"})


@dataclass(frozen=True, slots=True)
class Tracing:
    """Tracing while it is on; :meth:`shutdown` flushes what is buffered and turns it off."""

    provider: TracerProvider

    def shutdown(self) -> None:
        """Export the spans still buffered, then stop tracing."""
        global TRACER, _PROPAGATOR  # noqa: PLW0603 (the hot path reads one module attribute)
        TRACER = None
        _PROPAGATOR = None
        self.provider.shutdown()


def enable(settings: TracingSettings, *, exporter: SpanExporter | None = None) -> Tracing | None:
    """Start tracing as ``settings`` say (None when ``tracing.enabled`` is false).

    Args:
        settings: the ``tracing`` section.
        exporter: where spans go, each as it ends (tests pass an in-memory one);
            default: OTLP/gRPC to ``settings.endpoint``, in batches.

    Raises:
        ConfigError: tracing is enabled but the ``otel`` extra is not installed.
    """
    global TRACER, _PROPAGATOR  # noqa: PLW0603 (the hot path reads one module attribute)
    if not settings.enabled:
        return None
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        raise ConfigError("configuration", "tracing.enabled", OTEL_EXTRA_HINT) from None
    resource = Resource.create({"service.name": settings.service_name, "service.version": gate.__version__})
    # A caller's sampling decision is followed; only new traces are sampled at sample_ratio.
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio))
    )
    if exporter is None:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ConfigError("configuration", "tracing.enabled", OTEL_EXTRA_HINT) from None
        otlp = OTLPSpanExporter(
            endpoint=settings.endpoint or None, insecure=settings.insecure, timeout=_EXPORT_TIMEOUT
        )
        provider.add_span_processor(BatchSpanProcessor(otlp))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    # gate's own provider, not the process-wide one: a library sharing the process keeps its own.
    TRACER = provider.get_tracer("gate", gate.__version__)
    _PROPAGATOR = TraceContextTextMapPropagator()
    return Tracing(provider)


def _parent(pairs: Iterable[tuple[str, Any]]) -> Context | None:
    """The caller's trace context from metadata or headers (names lower case), if it sent one."""
    assert _PROPAGATOR is not None
    carrier = {key: value for key, value in pairs if key in _TRACE_KEYS and isinstance(value, str)}
    return _PROPAGATOR.extract(carrier) if carrier else None


def trace_unary(
    full: str,
    wrap: Callable[
        [Callable[[Any], Message]], Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Message]]
    ],
    implementation: Callable[[Any], Message],
) -> Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Message]]:
    """The unary handler ``wrap`` makes of ``implementation``, in a call span that names the caller.

    The caller's identity is known where the implementation runs (after authentication,
    in the call's context): it is put on the span there.
    """
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    assert TRACER is not None
    tracer = TRACER

    def named(request: object) -> Message:
        caller = current_caller()
        if caller:
            trace.get_current_span().set_attribute("gate.caller", caller)
        return implementation(request)

    behavior = wrap(named)

    async def traced(request: object, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
        span, token = _server_span(tracer, full, context)
        try:
            return await behavior(request, context)
        finally:
            _end(span, context)
            otel_context.detach(token)

    return traced


def trace_stream(
    full: str,
    behavior: Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Message]],
) -> Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Message]]:
    """Wrap a server-streaming handler in a span that lasts as long as the stream."""
    from opentelemetry import context as otel_context

    assert TRACER is not None
    tracer = TRACER

    async def traced(request: object, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Message]:
        span, token = _server_span(tracer, full, context)
        try:
            async for item in behavior(request, context):
                yield item
        finally:
            _end(span, context)
            otel_context.detach(token)

    return traced


def _end(span: Span, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    from opentelemetry.trace import Status, StatusCode

    code = _status(context.code())
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    span.set_attribute("gate.request_id", _request_id(context))
    if code is not grpc.StatusCode.OK:
        # Only the code: details may quote request data.
        span.set_status(Status(StatusCode.ERROR, code.name))
    span.end()


def _status(raw: object) -> grpc.StatusCode:
    # None until something set a code (a call that returned normally); grpc.aio keeps an
    # aborted call's code as the StatusCode or as its number, depending on the path.
    if raw is None:
        return grpc.StatusCode.OK
    if isinstance(raw, grpc.StatusCode):
        return raw
    return next((c for c in grpc.StatusCode if c.value[0] == raw), grpc.StatusCode.UNKNOWN)


def _request_id(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    from gate._logging import REQUEST_ID

    # The handler has reset its request id by now; the trailers still carry it.
    for key, value in context.trailing_metadata() or ():
        if key == "x-request-id":
            return str(value)
    return REQUEST_ID.get("")


def record_decision_spans(decision: Decision) -> None:
    """Add evidence and policy child spans of a recorded decision to the current span.

    A :attr:`gate.core.Gate.decision_listeners` entry: it runs as the decision is
    recorded, just after policy evaluation, which itself follows the evidence lookup;
    the spans are placed back to back, ending now, with the durations the decision measured.
    """
    from opentelemetry import trace

    tracer = TRACER
    if tracer is None or not trace.get_current_span().is_recording():
        return
    timings = decision.timings
    policy_end = time.time_ns()
    policy_start = policy_end - round(timings.policy * 1e9)
    evidence_start = policy_start - round(timings.evidence * 1e9)
    attributes: dict[str, str | bool] = {"gate.decision_id": decision.id, "gate.allowed": decision.allowed}
    if timings.evidence > 0:
        tracer.start_span("gate.evidence", start_time=evidence_start, attributes=attributes).end(
            end_time=policy_start
        )
    tracer.start_span("gate.policy", start_time=policy_start, attributes=attributes).end(end_time=policy_end)


def _no_answer(allowed: bool) -> None:
    """What :func:`review_span` yields when tracing is off."""


_OFF: AbstractContextManager[Callable[[bool], None]] = contextlib.nullcontext(_no_answer)


def review_span(
    headers: Iterable[tuple[bytes, bytes]], uid: str
) -> AbstractContextManager[Callable[[bool], None]]:
    """A span for one admission review (a shared no-op while tracing is off).

    Enter it around the review's evaluation, before the work is handed to a worker
    (the worker's copy of the context then carries the span, so that the decision's
    evidence and policy spans become its children). It yields a function to call with
    the answer (allowed or not).

    Args:
        headers: the ASGI request headers; an API server with tracing sends ``traceparent``.
        uid: the AdmissionReview's ``request.uid``.
    """
    if TRACER is None:
        return _OFF
    return _review_span(TRACER, headers, uid)


@contextlib.contextmanager
def _review_span(
    tracer: Tracer, headers: Iterable[tuple[bytes, bytes]], uid: str
) -> Iterator[Callable[[bool], None]]:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    pairs = ((key.decode("latin-1").lower(), value.decode("latin-1")) for key, value in headers)
    span = tracer.start_span(
        "gate.admission/validate",
        context=_parent(pairs),
        kind=trace.SpanKind.SERVER,
        attributes={"k8s.admission.uid": uid},
    )
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield lambda allowed: span.set_attribute("gate.allowed", allowed)
    except BaseException as error:
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        raise
    finally:
        otel_context.detach(token)
        span.end()


def _server_span(tracer: Tracer, full: str, context: grpc.aio.ServicerContext[Any, Any]) -> tuple[Any, Any]:
    """Start the span of one gRPC call (child of the caller's ``traceparent``) and make it current.

    Returns the span and the token that :func:`opentelemetry.context.detach` takes.
    """
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    service, _, method = full.rpartition("/")
    span = tracer.start_span(
        full,
        context=_parent(context.invocation_metadata() or ()),
        kind=trace.SpanKind.SERVER,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
    )
    return span, otel_context.attach(trace.set_span_in_context(span))
