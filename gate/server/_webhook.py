"""The admission webhook listener (ASGI).

A bare ASGI callable rather than a framework: the admission path is latency
critical and a framework's routing adds measurable cost per request for three
fixed paths.

``POST /validate`` reads the body under a size limit and a deadline, parses
and checks the AdmissionReview on the event loop (microseconds for the usual
few KB; large bodies go to a worker thread), then evaluates it.

A small review is evaluated on the event loop, inside
:func:`gate._nonblocking.nonblocking`, when everything it needs is in memory (the
evidence and waiver caches, room in the decision queue): the hand-offs to a review
thread and back cost more CPU than the evaluation (``benchmarks/review_path.py``).
When something would have to be waited for, the ports raise ``WouldBlock`` before
anything is recorded, and the review runs again on a review thread under the time
budget. There, when the budget runs out first, the answer is the failure mode's,
built on the loop at once; the evaluation still running in its thread is then not
recorded (see :meth:`Gate.review`'s ``claim``). Either way the answer waits for
the decision's commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import queue
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import Any

import orjson

from gate._logging import REQUEST_ID, request_id
from gate._nonblocking import WouldBlock, nonblocking
from gate.auth import Identity
from gate.core import Gate
from gate.decisions import (
    MAX_REVIEW_BYTES,
    AdmissionReview,
    Failure,
    ReviewOutcome,
    deferred_acknowledgements,
    parse_review,
)
from gate.errors import GateError, InvalidArgument, PayloadTooLarge, RequestTimeout, ResourceExhausted
from gate.evidence import EVIDENCE_PATH, request_image
from gate.server._authz import audit_refusal
from gate.server._metrics import (
    ADMISSION_DECISIONS,
    ADMISSION_EVALUATIONS,
    ADMISSION_SECONDS,
    HTTP_REQUESTS,
    STORE_UP,
)
from gate.server._ratelimit import RateLimiter
from gate.server._status import HTTP_STATUS, status_for
from gate.server._tracing import review_span
from gate.store._budget import answering_within

log = logging.getLogger("gate.webhook")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# An AdmissionReview is a few KB; a large object with annotations may reach
# the API server's own 3 MiB request limit.
MAX_BODY = MAX_REVIEW_BYTES
# Bodies up to this size are parsed on the event loop (~20 us for 3 KB, a few ms
# at worst); larger ones in a worker thread, so that one big review cannot stall the others.
INLINE_PARSE_BYTES = 64 * 1024

_JSON_HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True, slots=True)
class WebhookLimits:
    """Size and time limits of one webhook request."""

    max_body: int = MAX_BODY
    body_timeout: float = 10.0


class _Claim:
    """Decides once who answers a review: the evaluation, or the budget's timeout."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def take(self) -> bool:
        return self._lock.acquire(blocking=False)


# A finished review: its future, and its result or error.
_Done = tuple[asyncio.Future[Any], Any, BaseException | None]


class Evaluator:
    """Worker threads that run reviews off the event loop and hand results back in batches.

    ``run_in_executor`` costs the event loop a wake-up (a self-pipe write, a
    selector round, a GIL hand-over) per result: measured here at ~0.2 ms of
    loop CPU per review, more than parsing it. These workers deliver every result
    finished while the loop was busy in one callback instead, so a loaded
    webhook pays that cost once per batch, not once per review.
    """

    def __init__(self, workers: int = 2, *, name: str = "gate-review") -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{index}", daemon=True)
            for index in range(workers)
        ]
        self._started = False
        self._lock = threading.Lock()

    def submit(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run ``call`` in a worker; the returned future completes on the calling event loop."""
        if not self._started:
            with self._lock:
                if not self._started:
                    for thread in self._threads:
                        thread.start()
                    self._started = True
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        # In the caller's context, so that the review's log lines carry its request id.
        self._jobs.put((partial(contextvars.copy_context().run, call), future))
        return future

    def close(self) -> None:
        """Finish the queued reviews, then stop the workers."""
        if not self._started:
            return
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        done: list[_Done] = []
        while True:
            job = self._jobs.get()
            if job is None:
                return
            call, future = job
            try:
                done.append((future, call(), None))
            except BaseException as error:  # handed to the awaiting coroutine
                done.append((future, None, error))
            if self._jobs.empty() or len(done) >= 64:
                # Nothing else waiting (or a long run): hand over what is finished in one callback.
                by_loop: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
                for item in done:
                    by_loop.setdefault(item[0].get_loop(), []).append(item)
                done = []
                for loop, batch in by_loop.items():
                    # RuntimeError: the loop is closed, and nobody awaits these any more.
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(_deliver, batch)


# What a review's future holds when its budget ran out first (see WebhookApp._decide).
_EXPIRED: Any = object()


def _expire(future: asyncio.Future[Any], claim: _Claim) -> None:
    if not future.done() and claim.take():
        future.set_result(_EXPIRED)


def _deliver(batch: list[_Done]) -> None:
    for future, result, error in batch:
        if future.done():  # cancelled by a caller that stopped waiting
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class WebhookApp:
    """Routes ``/healthz``, ``/readyz``, ``/validate`` and gate's evidence endpoint ``/v1/evidence``."""

    def __init__(
        self,
        gate: Gate,
        executor: Executor,
        limits: WebhookLimits | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._gate = gate
        # Rates per client address under the admission role (auth.rate_limits.admission).
        self._limiter = limiter
        self._executor = executor
        # Evaluation is CPU work under the GIL: more threads add no throughput, only
        # contention (each hand-over of the GIL can cost a switch interval). Two, so that
        # one slow review does not hold up every other until the budget runs out.
        self._evaluator = Evaluator(2)
        self._limits = limits or WebhookLimits()
        self._counters: dict[tuple[str, int], Any] = {}
        self._histograms = tuple(ADMISSION_SECONDS.labels(part) for part in ("total", "policy", "evidence"))
        self._answers: dict[tuple[bool, bool], Any] = {}
        self._inline = ADMISSION_EVALUATIONS.labels("loop")
        self._threaded = ADMISSION_EVALUATIONS.labels("thread")
        # Fire-and-forget recordings of budget failures, kept referenced until done.
        self._background: set[asyncio.Future[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        status = 200
        payload: bytes
        # The request id (the caller's x-request-id, or a new one): in this request's log lines
        # (each ASGI request runs in a task of its own) and echoed in the response headers.
        rid = request_id(next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), None))
        REQUEST_ID.set(rid)
        headers = [*_JSON_HEADERS]
        try:
            if self._limiter is not None and (path in _VALIDATE_PATHS or path == EVIDENCE_PATH):
                self._take(scope, path)
            if path in _VALIDATE_PATHS:
                payload = await self._validate(scope, receive)
            elif path == EVIDENCE_PATH:
                payload = await self._evidence(scope, receive)
            elif path == "/healthz":
                payload = b'{"status":"ok"}'
            elif path == "/readyz":
                status, payload = await self._ready()
            else:
                status, payload = 404, _error(404, f"no such path: {path[:_QUOTED_PATH]}")
        except GateError as error:
            status = status_for(HTTP_STATUS, error)
            if isinstance(error, UnsupportedBody):
                status = 415
                # RFC 9110 15.5.16: the codings that would have been accepted.
                headers.append((b"accept-encoding", b"identity"))
            payload = _error(status, error.message)
            if isinstance(error, ResourceExhausted):
                headers.append((b"retry-after", str(max(1, math.ceil(error.retry_after))).encode()))
        except Exception:
            log.exception("webhook request to %s failed unexpectedly", path[:_QUOTED_PATH])
            status, payload = 500, _error(500, "internal error; the gate log has details")
        self._count(path, status)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    *headers,
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-request-id", rid.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _take(self, scope: Scope, path: str) -> None:
        assert self._limiter is not None
        client = scope.get("client")
        peer = str(client[0]) if client else "unknown"
        identity = _client_identities.get(peer)
        if identity is None:
            if len(_client_identities) > 4096:
                _client_identities.clear()
            identity = _client_identities[peer] = Identity.of(f"webhook:{peer}", ["admission"], [])
        try:
            self._limiter.take(identity)
        except ResourceExhausted as error:
            audit_refusal(path, peer, identity.name, "RESOURCE_EXHAUSTED", error.message)
            raise

    def close(self) -> None:
        """Wait for reviews still being evaluated, then stop the evaluation threads."""
        self._evaluator.close()

    def _count(self, path: str, status: int) -> None:
        key = (path if path in _KNOWN else "other", status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = HTTP_REQUESTS.labels(key[0], str(status))
        counter.inc()

    async def _validate(self, scope: Scope, receive: Receive) -> bytes:
        started = perf_counter()
        if scope["method"] != "POST":
            raise InvalidArgument("method", f"expected POST, got {scope['method']}")
        body = await self._read_body(scope, receive)
        loop = asyncio.get_running_loop()
        small = len(body) <= INLINE_PARSE_BYTES
        try:
            if small:
                review = parse_review(body)
            else:
                review = await loop.run_in_executor(self._executor, parse_review, body)
        except InvalidArgument as error:
            raise _undecodable(scope, body) or error from None
        # Entered before the review is handed to a worker, whose copy of the context carries it.
        with review_span(scope.get("headers", ()), review.uid) as answered:
            outcome = await self._decide(review, started, inline=small)
            answered(outcome.decision.allowed)
        self._observe(outcome)
        return outcome.response

    def _observe(self, outcome: ReviewOutcome) -> None:
        timings = outcome.decision.timings
        total, policy, evidence = self._histograms
        total.observe(timings.total)
        if outcome.failure is None:
            policy.observe(timings.policy)
            evidence.observe(timings.evidence)
        key = (outcome.decision.allowed, outcome.failure is not None)
        counter = self._answers.get(key)
        if counter is None:
            counter = self._answers[key] = ADMISSION_DECISIONS.labels(
                "allowed" if key[0] else "denied", "true" if key[1] else "false"
            )
        counter.inc()

    async def _decide(self, review: AdmissionReview, started: float, *, inline: bool) -> ReviewOutcome:
        gate = self._gate
        budget = gate.admission_settings.budget
        loop = asyncio.get_running_loop()
        remaining = budget - (perf_counter() - started)
        deadline = time.monotonic() + remaining
        # The commit of the review's record is awaited here, not where it was evaluated (see
        # gate.decisions.deferred_acknowledgements): the review workers move on to the next review.
        if inline:
            try:
                with nonblocking(), deferred_acknowledgements(loop) as stored:
                    outcome = gate.review(review, started=started)
            except WouldBlock as reason:
                log.debug("review %s goes to a review thread: %s", review.uid, reason)
            else:
                self._inline.inc()
                await stored.wait(deadline)
                return outcome
        self._threaded.inc()
        claim = _Claim()
        # Store round trips of the evaluation end with the budget (gate.store._budget): a stalled
        # database frees the review worker instead of holding it for the whole stall.
        with (
            deferred_acknowledgements(loop) as stored,
            answering_within(budget, deadline),
        ):
            future: asyncio.Future[ReviewOutcome] = self._evaluator.submit(
                partial(gate.review, review, started=started, claim=claim.take)
            )
        # One timer instead of asyncio.timeout() around asyncio.shield(): those cost the
        # event loop a Timeout, a second future and four callbacks per review. When the
        # budget runs out and the claim is ours, the timer completes the future with
        # _EXPIRED (the worker's late result is then dropped, as for a cancelled future);
        # when the evaluation has claimed first, its answer is on its way and stands.
        timer = loop.call_later(remaining, _expire, future, claim)
        try:
            outcome = await future
        finally:
            timer.cancel()
        if outcome is not _EXPIRED:
            # Unacknowledged within the budget: StoreUnavailable (503; the API server's
            # failurePolicy then decides), never an answer whose record may be lost.
            await stored.wait(deadline)
            return outcome
        elapsed = perf_counter() - started
        detail = f"no answer after {elapsed:.3f} s of a {budget:g} s budget"
        outcome = gate.review_failure(review, Failure.BUDGET, detail, started, record=False)
        log.warning("review %s: %s; answered per the failure mode", review.uid, detail)
        if outcome.decision.id:
            # Recording may block on a full queue: never on the event loop. The review
            # workers run it, and close() waits for them, so a shutdown cannot drop it.
            pending = self._evaluator.submit(partial(gate.record_decision, outcome.decision))
            self._background.add(pending)
            pending.add_done_callback(self._recorded)
        return outcome

    def _recorded(self, future: asyncio.Future[None]) -> None:
        self._background.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("recording a failure-mode decision failed", exc_info=future.exception())

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self._limits.max_body
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                digits = value
                if not digits.isdigit():
                    # Whitespace around a field's value is no part of it (RFC 9110 5.5), and the
                    # parser framed the body by the number: only here is it looked at again.
                    digits = value.strip(b" \t")
                    if not digits.isdigit():
                        raise InvalidArgument("content-length", f"expected a number, got {value[:40]!r}")
                if int(digits) > limit:
                    raise PayloadTooLarge("body", f"{int(digits)} bytes exceeds the {limit}-byte limit")
        chunks: list[bytes] = []
        size = 0
        deadline = self._limits.body_timeout
        try:
            async with asyncio.timeout(deadline):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise InvalidArgument("body", "the client disconnected before sending all of it")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge("body", f"{size}+ bytes exceeds the {limit}-byte limit")
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise RequestTimeout(
                "body", f"not received within {deadline:g} s ({size} bytes arrived)"
            ) from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _evidence(self, scope: Scope, receive: Receive) -> bytes:
        # What Kyverno's apiCall to gate's evidence URL receives: the JSON gate itself
        # uses when it evaluates the same policy (gate.evidence).
        if scope["method"] != "POST":
            raise InvalidArgument("method", f'expected POST with {{"image": ...}}, got {scope["method"]}')
        body = await self._read_body(scope, receive)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise _undecodable(scope, body) or InvalidArgument(
                "body", f"expected a JSON object: {error}"
            ) from None
        if not isinstance(data, dict):
            raise InvalidArgument("body", f"expected a JSON object, got {type(data).__name__}")
        try:
            image = request_image(data)
        except ValueError as error:
            raise InvalidArgument("body.image", str(error)) from None
        loop = asyncio.get_running_loop()
        document = await loop.run_in_executor(self._executor, self._gate.evidence_document, image)
        return orjson.dumps(document)

    async def _ready(self) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._gate.check_ready)
        except GateError as error:
            STORE_UP.set(0)
            return 503, orjson.dumps({"status": "unavailable", "reason": error.message})
        STORE_UP.set(1)
        return 200, b'{"status":"ready"}'


# The identity each webhook client address is rate-limited as (the admission role's bucket).
_client_identities: dict[str, Identity] = {}

_KNOWN = frozenset({"/healthz", "/readyz", "/validate", EVIDENCE_PATH})
_VALIDATE_PATHS = frozenset({"/validate", "/validate/"})


# A hostile client may send a long path: answers and log lines quote only its start.
_QUOTED_PATH = 200


def _error(code: int, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


class UnsupportedBody(InvalidArgument):
    """A body gate cannot read as UTF-8 JSON, for what it is rather than what it says (HTTP 415)."""


# Byte order marks, longest first (UTF-32's begin as UTF-16's do).
_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xef\xbb\xbf", "UTF-8 with a byte order mark"),
)


def _undecodable(scope: Scope, body: bytes) -> UnsupportedBody | None:
    """Why a body that did not parse as JSON cannot be UTF-8 JSON at all, if it cannot.

    Only asked once parsing failed: the answer then says what was sent (compressed, UTF-16,
    another media type) instead of the JSON parser's complaint about its first bytes. None:
    the body is UTF-8 text, and the parser's message says what is wrong with it. The success
    path never looks at these headers: a JSON body is read as JSON whatever its Content-Type.
    """
    headers = {name: value for name, value in scope.get("headers", ()) if name in _BODY_HEADERS}
    coding = headers.get(b"content-encoding", b"").strip().lower()
    if (coding and coding != b"identity") or body[:2] == b"\x1f\x8b":
        shown = coding.decode("latin-1")[:40] if coding else "gzip (by its first bytes)"
        return UnsupportedBody(
            "content-encoding", f"{shown} is not supported; send the AdmissionReview uncompressed"
        )
    for mark, name in _BOMS:
        if body.startswith(mark):
            return UnsupportedBody("body", f"expected UTF-8 JSON without a byte order mark, got {name}")
    # JSON text begins with two ASCII characters: a NUL among the first four bytes is UTF-16 or 32.
    if b"\x00" in body[:4]:
        return UnsupportedBody("body", "expected UTF-8 JSON, got UTF-16 or UTF-32 text")
    media = headers.get(b"content-type", b"").decode("latin-1")
    kind = media.partition(";")[0].strip().lower()
    if kind and kind != "application/json" and not kind.endswith("+json"):
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            return UnsupportedBody("content-type", f"expected application/json, got {media[:80]}")
    return None


_BODY_HEADERS = frozenset({b"content-encoding", b"content-type"})
