"""The gRPC transport: thin adapters from gate.v1 messages to the core.

Handlers are built from the service descriptors rather than the generated
``add_*Servicer_to_server`` helpers so that every method gets the same
wrapping in one place: a per-method request size limit checked before
parsing, error-to-status mapping from one table, metrics, a request id (the
caller's ``x-request-id`` or a new one) in every log line of the call and in
the response's trailing metadata, an answer budget for the store (a stalled
database costs the caller UNAVAILABLE before its deadline, not
DEADLINE_EXCEEDED; see :mod:`gate.store._budget`), a span per call when
tracing is on, and an UNIMPLEMENTED answer naming the feature for RPCs whose
feature has not landed.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import DecodeError, Message

from gate._api import METHODS, UPLOAD_METHODS, Api, unavailable
from gate._logging import REQUEST_ID, request_id
from gate._nonblocking import WouldBlock, nonblocking
from gate.auth import Identity, reset_identity, set_identity
from gate.decisions import deferred_acknowledgements
from gate.errors import GateError, InfrastructureError, ResourceExhausted, StoreUnavailable
from gate.server import _tracing
from gate.server._authz import Guard
from gate.server._metrics import GRPC_EVALUATIONS, GRPC_LATENCY, GRPC_REQUESTS, labelled
from gate.server._status import GRPC_STATUS, status_for
from gate.store._budget import BUDGET, AnswerBudget, call_deadline

log = logging.getLogger("gate.grpc")

REQUEST_ID_KEY = "x-request-id"


def _begin(context: grpc.aio.ServicerContext[Any, Any]) -> contextvars.Token[str]:
    """Take the call's request id (the caller's, or a new one) and echo it in the trailers."""
    supplied = next((v for k, v in context.invocation_metadata() or () if k == REQUEST_ID_KEY), None)
    rid = request_id(supplied)
    context.set_trailing_metadata(((REQUEST_ID_KEY, rid),))
    return REQUEST_ID.set(rid)


# Seconds an UNAVAILABLE caller is told to wait: a store or dependency outage lasts seconds at least.
UNAVAILABLE_RETRY_AFTER = 1.0


def _retry_hint(context: grpc.aio.ServicerContext[Any, Any], error: GateError) -> None:
    """For a rate-limit refusal or an outage, tell the caller when to retry (gRPC's own pushback key too)."""
    if isinstance(error, ResourceExhausted):
        retry_after = error.retry_after
    elif (
        isinstance(error, InfrastructureError)
        and status_for(GRPC_STATUS, error) is grpc.StatusCode.UNAVAILABLE
    ):
        retry_after = UNAVAILABLE_RETRY_AFTER
    else:
        return
    context.set_trailing_metadata(
        (
            (REQUEST_ID_KEY, REQUEST_ID.get()),
            ("retry-after", f"{retry_after:.3f}"),
            ("grpc-retry-pushback-ms", str(max(1, round(retry_after * 1000)))),
        )
    )


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """Largest accepted serialized request, in bytes."""

    default: int
    upload: int

    def for_method(self, method: str) -> int:
        """The limit of one method (``package.Service/Method``)."""
        return self.upload if method in UPLOAD_METHODS else self.default


@dataclass(frozen=True, slots=True)
class _Rejected:
    """Stands in for a request that failed the size check or did not parse."""

    message: str


def _deserializer(message_class: type[Message], limit: int, method: str) -> Callable[[bytes], object]:
    parse = message_class.FromString

    def deserialize(data: bytes) -> object:
        if len(data) > limit:
            return _Rejected(f"request: {len(data)} bytes exceeds the {limit}-byte limit of {method}")
        try:
            return parse(data)
        except DecodeError:
            return _Rejected(f"request: not a valid {message_class.DESCRIPTOR.full_name} message")

    return deserialize


async def _answered(
    implementation: Callable[[Any], Message],
    request: object,
    executor: Executor | None,
    budget: AnswerBudget,
    *,
    inline_first: bool = False,
    method: str = "",
) -> Message:
    """Run a unary implementation (in ``executor``, or on the loop when None) and await its records.

    Decisions the call records are acknowledged here once committed, so that the worker
    thread is free meanwhile (gate.decisions.deferred_acknowledgements); one not committed
    by the caller's deadline makes the call UNAVAILABLE, not DEADLINE_EXCEEDED.
    ``inline_first`` tries the call on the loop first, where it may not wait for anything
    (gate._nonblocking); it runs in ``executor`` only when it would have had to. Where such
    a call ran is counted under ``method`` (``gate_grpc_evaluations_total``): a call that keeps
    moving to a worker pays a thread hand-off each time, which the count makes visible.
    """
    loop = asyncio.get_running_loop()
    if inline_first and executor is not None:
        try:
            with nonblocking(), deferred_acknowledgements(loop) as stored:
                answer = implementation(request)
        except WouldBlock as reason:
            # Nothing was recorded: the call runs again in a worker, where it may wait.
            log.debug("%s goes to a worker thread: %s", method, reason)
            labelled(GRPC_EVALUATIONS, method, "thread").inc()
        else:
            labelled(GRPC_EVALUATIONS, method, "loop").inc()
            await stored.wait(budget.deadline)
            return answer
    with deferred_acknowledgements(loop) as stored:
        if executor is None:
            answer = implementation(request)
        else:
            # The implementation blocks on the store: keep it off the event loop (with the
            # caller's identity: executors do not carry context variables by themselves).
            answer = await _in_worker(loop, executor, budget, implementation, request)
    await stored.wait(budget.deadline)
    return answer


class GrpcApi:
    """Binds gate.v1 RPCs to :class:`gate._api.Api`; one instance per server."""

    def __init__(
        self,
        api: Api,
        executor: Executor,
        limits: RequestLimits,
        *,
        max_streams: int = 64,
        guard: Guard | None = None,
        answer_timeout: float = 3.0,
    ) -> None:
        """Serve ``api``; with a ``guard`` every call is authenticated and authorised first.

        ``answer_timeout`` bounds each store round trip of a call (see gate.store._budget).
        """
        self._api = api
        self._answer_timeout = answer_timeout
        self._guard = guard
        self._executor = executor
        self._limits = limits
        # Streams wait on events in threads of their own, so that watchers can
        # never starve unary RPCs of workers; the pool size caps open streams.
        self._streams = ThreadPoolExecutor(max_streams, thread_name_prefix="gate-stream")
        self._open_streams = 0
        self._max_streams = max_streams

    def handlers(self) -> Sequence[grpc.GenericRpcHandler]:
        """One generic handler per gate.v1 service."""
        by_service: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = {}
        for full, method in METHODS.items():
            by_service.setdefault(method.containing_service.full_name, {})[method.name] = self._handler(
                full, method
            )
        return [grpc.method_handlers_generic_handler(name, methods) for name, methods in by_service.items()]

    def _handler(self, full: str, method: MethodDescriptor) -> grpc.RpcMethodHandler[Any, Any]:
        request_class = message_factory.GetMessageClass(method.input_type)
        deserialize = _deserializer(request_class, self._limits.for_method(full), full)
        stream = self._api.streams.get(full)
        if stream is not None:
            streamed = self._wrap_stream(full, stream)
            # Tracing is set up before the server is built: off, no handler carries any of it.
            if _tracing.TRACER is not None:
                streamed = _tracing.trace_stream(full, streamed)
            return grpc.unary_stream_rpc_method_handler(
                streamed,
                request_deserializer=deserialize,
                response_serializer=_serialize,
            )
        implementation = self._api.unary.get(full)
        if implementation is not None:
            unary = (
                self._wrap_unary(full, implementation)
                if _tracing.TRACER is None
                else _tracing.trace_unary(full, partial(self._wrap_unary, full), implementation)
            )
            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=deserialize,
                response_serializer=_serialize,
            )
        behavior = self._pending(full, self._admit)
        if method.server_streaming:
            return grpc.unary_stream_rpc_method_handler(
                self._pending_stream(behavior),
                request_deserializer=deserialize,
                response_serializer=_serialize,
            )
        return grpc.unary_unary_rpc_method_handler(
            behavior, request_deserializer=deserialize, response_serializer=_serialize
        )

    def _wrap_unary(
        self, full: str, implementation: Callable[[Any], Message]
    ) -> Callable[[object, grpc.aio.ServicerContext[Any, Any]], Awaitable[Message]]:
        latency = GRPC_LATENCY.labels(full)
        counters: dict[grpc.StatusCode, Any] = {}
        executor = self._executor
        inline = full in self._api.inline
        inline_first = full in self._api.inline_first
        guard = self._guard

        def count(code: grpc.StatusCode) -> None:
            counter = counters.get(code)
            if counter is None:
                counter = counters[code] = GRPC_REQUESTS.labels(full, code.name)
            counter.inc()

        async def behavior(request: object, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
            started = perf_counter()
            code = grpc.StatusCode.OK
            caller = None
            rid = _begin(context)
            try:
                identity = await guard.authenticate(full, context) if guard is not None else None
                if isinstance(request, _Rejected):
                    code = grpc.StatusCode.INVALID_ARGUMENT
                    await context.abort(code, status_details(request.message))
                if identity is not None:
                    assert guard is not None
                    await guard.admit(full, identity, request, context)
                    caller = set_identity(identity)
                return await _answered(
                    implementation,
                    request,
                    None if inline else executor,
                    AnswerBudget(self._answer_timeout, call_deadline(context.time_remaining())),
                    inline_first=inline_first,
                    method=full,
                )
            except GateError as error:
                code = status_for(GRPC_STATUS, error)
                if code is grpc.StatusCode.INTERNAL:
                    log.error("%s failed: %s", full, error.message, exc_info=error)
                _retry_hint(context, error)
                await context.abort(code, status_details(error.message))
            except grpc.aio.AbortError:
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                await context.abort(code, _internal_error(full))
            finally:
                if caller is not None:
                    reset_identity(caller)
                REQUEST_ID.reset(rid)
                count(code)
                latency.observe(perf_counter() - started)

        return behavior

    def _wrap_stream(
        self, full: str, implementation: Callable[[Any], Iterator[Message | None]]
    ) -> Callable[[object, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Message]]:
        latency = GRPC_LATENCY.labels(full)
        streams = self._streams
        answer_timeout = self._answer_timeout

        async def behavior(
            request: object, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Message]:
            started = perf_counter()
            code = grpc.StatusCode.OK
            events: _LockedIterator | None = None
            loop = asyncio.get_running_loop()
            rid = _begin(context)
            try:
                await self._admit(full, request, context)
                if isinstance(request, _Rejected):
                    code = grpc.StatusCode.INVALID_ARGUMENT
                    await context.abort(code, status_details(request.message))
                if self._open_streams >= self._max_streams:
                    code = grpc.StatusCode.RESOURCE_EXHAUSTED
                    await context.abort(code, f"{self._max_streams} streams are open; retry later")
                self._open_streams += 1
                # Each store round trip of the stream is bounded (a stream outlives any deadline of
                # one answer); the generator runs in this context, request id included.
                scope = contextvars.copy_context()
                scope.run(BUDGET.set, AnswerBudget(answer_timeout, started=True))
                events = _LockedIterator(scope.run(implementation, request))
                while True:
                    item = await loop.run_in_executor(streams, scope.run, events.next)
                    if item is _END:
                        break
                    if isinstance(item, Message):
                        yield item
            except GateError as error:
                code = status_for(GRPC_STATUS, error)
                _retry_hint(context, error)
                await context.abort(code, status_details(error.message))
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                await context.abort(code, _internal_error(full))
            finally:
                if events is not None:
                    self._open_streams -= 1
                    # Closing waits for a pending next() (at most one idle tick): do it off the loop.
                    loop.run_in_executor(streams, events.close)
                REQUEST_ID.reset(rid)
                GRPC_REQUESTS.labels(full, code.name).inc()
                latency.observe(perf_counter() - started)

        return behavior

    async def _admit(
        self, full: str, request: object, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Identity | None:
        """Authenticate and authorise (streams and pending RPCs, which need no caller downstream)."""
        if self._guard is None:
            return None
        identity = await self._guard.authenticate(full, context)
        if not isinstance(request, _Rejected):
            await self._guard.admit(full, identity, request, context)
        return identity

    @staticmethod
    def _pending(
        full: str, admit: Callable[[str, object, grpc.aio.ServicerContext[Any, Any]], Awaitable[object]]
    ) -> Callable[[object, grpc.aio.ServicerContext[Any, Any]], Awaitable[Message]]:
        message = unavailable(full).message

        async def behavior(request: object, context: grpc.aio.ServicerContext[Any, Any]) -> Message:
            _begin(context)
            try:
                await admit(full, request, context)
            except GateError as error:
                code = status_for(GRPC_STATUS, error)
                GRPC_REQUESTS.labels(full, code.name).inc()
                _retry_hint(context, error)
                await context.abort(code, status_details(error.message))
            GRPC_REQUESTS.labels(full, grpc.StatusCode.UNIMPLEMENTED.name).inc()
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)
            raise AssertionError("context.abort returned")  # it always raises

        return behavior

    @staticmethod
    def _pending_stream(
        unary: Callable[[object, grpc.aio.ServicerContext[Any, Any]], Awaitable[Message]],
    ) -> Callable[[object, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Message]]:
        async def behavior(
            request: object, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Message]:
            yield await unary(request, context)

        return behavior


# Seconds the handler waits past the budget's deadline for the worker's own StoreUnavailable.
_LATE = 0.1


async def _in_worker(
    loop: asyncio.AbstractEventLoop,
    executor: Executor,
    budget: AnswerBudget,
    implementation: Callable[[Any], Message],
    request: object,
) -> Message:
    """Run ``implementation`` in a worker within ``budget``; past its deadline, answer UNAVAILABLE.

    The worker's store round trips end at the deadline by themselves. What they cannot
    bound (a call still queued for a worker, a connection attempt, which libpq counts in
    whole seconds) is bounded here, so that the caller hears UNAVAILABLE before its own
    deadline instead of DEADLINE_EXCEEDED. A call busy with anything but the store (a
    registry, a scanner) is left to finish: its slowness is not the store's.
    """
    future = loop.run_in_executor(
        executor, contextvars.copy_context().run, _within_budget, budget, implementation, request
    )
    if budget.deadline is None:
        return await future
    # One timer, not asyncio.wait(): an answer in time, the common case, costs nothing more.
    abandoned: list[GateError] = []
    timer = loop.call_later(
        max(0.0, budget.deadline + _LATE - time.monotonic()), _abandon, future, budget, abandoned
    )
    try:
        return await future
    except asyncio.CancelledError:
        if abandoned:
            raise abandoned[0] from None
        raise
    finally:
        timer.cancel()


def _abandon(future: asyncio.Future[Message], budget: AnswerBudget, abandoned: list[GateError]) -> None:
    """At the budget's deadline: stop waiting for a call that is queued or waiting for the store."""
    if future.done() or not budget.in_store():
        return
    # Never started (then it never will), or waiting for the database (then its wait is about
    # to end with an error nobody reads).
    if budget.started:
        reason = budget.failure or "no answer within the deadline"
        abandoned.append(StoreUnavailable(f"evidence store unavailable: {reason}"))
    else:
        abandoned.append(InfrastructureError("gate is overloaded: no worker was free within the deadline"))
    future.cancel()


def _within_budget(
    budget: AnswerBudget, implementation: Callable[[Any], Message], request: object
) -> Message:
    # Runs in a copy of the caller's context: setting the budget here does not outlive the call.
    budget.started = True
    BUDGET.set(budget)
    return implementation(request)


# Largest status message sent, in UTF-8 bytes. Messages quote what the caller sent (got/expected),
# and the status travels as the grpc-message trailer, percent-encoded (up to 3 bytes per byte):
# past the client's metadata limit (8 KiB by default) the caller gets RESOURCE_EXHAUSTED from its
# own library instead of our status.
MAX_DETAILS_BYTES = 1024


def status_details(message: str) -> str:
    """``message``, cut to at most MAX_DETAILS_BYTES of UTF-8 (at a character boundary) with a mark."""
    encoded = message.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_DETAILS_BYTES:
        return message
    suffix = f"... ({len(encoded)} bytes in all)"
    kept = encoded[: MAX_DETAILS_BYTES - len(suffix)].decode("utf-8", "ignore")
    return kept + suffix


def _internal_error(method: str) -> str:
    """Log the exception being handled; return the caller's message (no details: they may hold data)."""
    reference = uuid.uuid4().hex[:12]
    log.exception("%s failed unexpectedly (reference %s)", method, reference)
    return f"internal error (reference {reference}); the gate log has details"


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


_END = object()


class _LockedIterator:
    """A generator advanced and closed from pool threads, one call at a time."""

    def __init__(self, iterator: Iterator[Message | None]) -> None:
        self._iterator = iterator
        self._lock = threading.Lock()

    def next(self) -> object:
        with self._lock:
            return next(self._iterator, _END)

    def close(self) -> None:
        with self._lock:
            close = getattr(self._iterator, "close", None)
            if close is not None:
                close()
