"""``gate serve``: the gRPC API, the webhook and the metrics listener in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import grpc
import httptools
import orjson
import uvicorn
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from prometheus_client import make_asgi_app
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

import gate
from gate._api import SERVICE_NAMES, Api
from gate._cpus import usable_cpus
from gate._kube import require_extra
from gate._signature_service import DecisionSigner as KeySigner
from gate._signature_service import SignatureService
from gate.auth import authenticator_from_config
from gate.config import Config, ListenAddress, TlsFiles, parse_listen
from gate.core import Gate, utc_now
from gate.credentials import credentials_from_settings
from gate.decisions import (
    AcknowledgedRecorder,
    DecisionRecorder,
    DecisionSigner,
    DecisionSink,
    LocalWriter,
    NoWaitSink,
    SealingSink,
    WriterProcess,
)
from gate.errors import InfrastructureError
from gate.notifications import NotificationHub
from gate.scan_jobs import ScanJobs
from gate.server import _tracing
from gate.server._authz import Guard
from gate.server._grpc import GrpcApi, RequestLimits
from gate.server._heap import settle_after_startup
from gate.server._metrics import CACHES, DECISION_BATCHES, DECISION_WRITER_RESTARTS, STORE_UP, labelled
from gate.server._observe import DecisionMetrics, NotificationMetrics, StatementMetrics, count_scan_failure
from gate.server._policy_watch import PolicyWatch, sources_stamp
from gate.server._probe_paths import PathAllowList
from gate.server._ratelimit import RateLimiter
from gate.server._tls import ReloadingCertificate, ensure_self_signed
from gate.server._tls_accept import tls_accepting
from gate.server._webhook import WebhookApp, WebhookLimits
from gate.server._workers import (
    WorkerRole,
    Workers,
    listen_to_main_process,
    metrics_app,
    writer_in_process,
)
from gate.store import EvidenceStore, SqlStore, open_store, shared_between_processes
from policies import engine_compiled

if TYPE_CHECKING:
    from gate._cache import CacheStats
    from policies import PolicyBundle

log = logging.getLogger("gate.serve")
# Requests the HTTP listeners refuse before the app sees them (malformed, oversized, upgrades).
http_log = logging.getLogger("gate.webhook")

# A queued decision is retried for about a minute (5 s apart once the store stays down): a
# database restart or failover must not cost the audit trail the decisions answered meanwhile.
_OUTAGE_RETRIES = (0.1, 0.5, 1.0, 2.0, *(5.0,) * 12)
# Decisions per transaction at most, with the writer process and with the writer thread.
_PROCESS_BATCH = 32
_THREAD_BATCH = 256


@dataclass(frozen=True, slots=True)
class BoundAddresses:
    """Where the listeners actually listen (ports resolved when 0 was asked)."""

    grpc: str
    webhook: str
    metrics: str | None
    # The probe listener (webhook.probe_listen), when configured.
    probes: str | None = None


# Connections the kernel queues on a listening socket until a process accepts them.
_LISTEN_BACKLOG = 2048


class _QuietServer(uvicorn.Server):
    # Set when uvicorn's backlog was lowered to bound the accepts per wake-up (see _http_server).
    restore_backlog: int | None = None

    # gate owns signal handling for all three listeners; uvicorn must not
    # install its own handlers (it would swallow SIGTERM meant for gRPC).
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.restore_backlog is not None:
            for sock in sockets or ():
                sock.listen(self.restore_backlog)


def _bind(address: ListenAddress, what: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio disables Nagle's algorithm only on sockets whose
    # proto says TCP, and uvicorn writes a response's head and body separately. With Nagle on,
    # the body waited for the client's delayed ACK of the head: ~40 ms added to every answer.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address.host, address.port))
    except OSError as exc:
        sock.close()
        raise InfrastructureError(f"{what}: cannot listen on {address}: {exc.strerror}") from exc
    sock.listen(_LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


async def _report_serving(health: HealthServicer) -> None:
    """Health says SERVING for the server as a whole and for each gate service."""
    for name in ("", *SERVICE_NAMES):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)


def _check_free(address: ListenAddress, what: str) -> None:
    """Raise unless ``address`` can be bound (nothing listens on it); port 0 always can."""
    if address.port == 0:
        return
    try:
        found = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise InfrastructureError(f"{what}: cannot listen on {address}: {exc.strerror}") from exc
    for family, kind, proto, _, where in found:
        with socket.socket(family, kind, proto) as probe:
            # SO_REUSEADDR and not SO_REUSEPORT: a connection of a previous gate in TIME_WAIT
            # does not count, a listening socket does.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(where)
            except OSError as exc:
                raise InfrastructureError(
                    f"{what}: cannot listen on {address}: {exc.strerror} (another process listens there)"
                ) from exc


# Seconds an idle webhook connection stays open (uvicorn's default is 5).
WEBHOOK_KEEP_ALIVE = 120
# Seconds a metrics client gets to send its request line and headers (the metrics listener
# had no deadline at all: a client that connected and sent nothing kept its socket forever).
METRICS_HEADER_TIMEOUT = 10.0
# Bytes of one request's line and headers at most: the API server sends well under 2 KB, and
# uvicorn (httptools) buffers a request's head without a limit of its own.
MAX_HEAD_BYTES = 64 * 1024
# Requests read ahead on one connection while an earlier one is answered (HTTP/1.1 pipelining).
# Each costs ~3 KB before it runs: unbounded, 256 KB of tiny requests per read grew the server
# by 18 MB, per connection, for as long as the client kept sending. The API server does not
# pipeline; a client that does is answered up to here, then the connection is closed.
MAX_PIPELINED = 16
# Seconds a refused connection stays open, its input dropped, so that the client reads the answer.
REFUSAL_LINGER = 1.0


class _TooManyPipelined(Exception):
    """Raised from the parser's callback to stop reading a connection's requests."""


class _BoundedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines and bounds for untrusted clients.

    * The request line and headers must arrive within ``header_timeout`` seconds after the
      connection opened or the request began (uvicorn times out idle keep-alive connections
      but not a client that sends its headers slowly: slowloris), and hold at most
      :data:`MAX_HEAD_BYTES`: past it, 431.
    * The keep-alive timer runs until a request begins. uvicorn stopped it at any bytes
      received, so bytes that begin no request (the rest of a body answered early, as 413 and
      408 are, or blank lines between requests) kept a connection open with no timer at all.
    * At most :data:`MAX_PIPELINED` requests wait behind the one being answered.
    * A request that cannot be parsed, and a protocol upgrade (which gate does not speak), are
      answered with the JSON error the API server shows, not uvicorn's plain text, and the
      connection is closed.
    """

    header_timeout = 10.0
    max_head_bytes = MAX_HEAD_BYTES
    # The listener's name in log lines (webhook, webhook.probe_listen, metrics).
    listener = "webhook"
    # Set once the connection is refused: what arrives after is not read.
    _refused = False
    # Bytes of the current request's head read so far, counted only while it spans reads.
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.header_timeout, self._headers_too_slow
        )

    def _disarm(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        # uvicorn's, except that bytes alone no longer stop the keep-alive timer (on_message_begin
        # does), the head is bounded, and refusals are JSON.
        if self._refused:
            return
        awaited = self._header_timer
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, f"{self._upgrade()} is not supported: the webhook speaks HTTP/1.1 only")
            return
        except httptools.HttpParserError as error:
            self._refuse(*self._diagnose(error))
            return
        pending = self._header_timer
        if pending is not None:
            # A head still incomplete after this read (never so for a request read at once).
            # The same timer: the read continued that head, and counts whole. A new one: a
            # request began inside this read, and is counted from the next (at most one read
            # of its head uncounted; what ended the previous request never held against it).
            self._head_bytes = self._head_bytes + len(data) if pending is awaited else 0
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, f"the request line and headers exceed {self.max_head_bytes} bytes")

    def on_message_begin(self) -> None:
        # (Tested inline: a method call here costs more than the test, on every request.)
        if self.timeout_keep_alive_task is not None:
            self._unset_keepalive_if_required()
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        # A request that began while the previous one was answered: the keep-alive timer armed
        # by that answer must not run into this one.
        if self.timeout_keep_alive_task is not None:
            self._unset_keepalive_if_required()
        if self.pipeline and len(self.pipeline) >= MAX_PIPELINED:
            raise _TooManyPipelined
        super().on_headers_complete()
        if self.expect_100_continue and self.cycle.scope is self.scope:
            _close_if_answered_before_continue(self.cycle)

    def _should_upgrade(self) -> bool:
        # Called only for an upgrade request (or CONNECT): no WebSocket here, and the request's
        # body would be lost to the parser. True keeps uvicorn from running the app for it;
        # data_received then refuses it.
        return True

    def _upgrade(self) -> str:
        # Asked after the upgrade request's headers were parsed: its scope and headers are set.
        if self.scope["method"] == "CONNECT":
            return "CONNECT"
        offered = next((value for name, value in self.headers if name == b"upgrade"), b"")
        return f"upgrading to {offered[:40].decode('latin-1')!r}"

    def _diagnose(self, error: httptools.HttpParserError) -> tuple[int, str]:
        """The status and message that refuse a request the parser stopped at."""
        cause = error.__context__  # what a callback raised (HttpParserCallbackError)
        if isinstance(cause, _TooManyPipelined):
            return 400, f"more than {MAX_PIPELINED} pipelined requests waiting for answers"
        if cause is not None and not isinstance(cause, httptools.HttpParserError):
            http_log.error("%s: parsing a request failed unexpectedly", self.listener, exc_info=cause)
            return 500, "internal error; the gate log has details"
        reason = _parser_reason(cause if isinstance(cause, httptools.HttpParserError) else error)
        if isinstance(cause, httptools.HttpParserInvalidURLError) and "too long" in reason:
            return 414, reason
        if "PRI" in reason:  # an HTTP/2 client with prior knowledge (gate offers http/1.1 by ALPN)
            return 400, "HTTP/2 is not supported: the webhook speaks HTTP/1.1 only"
        return 400, f"malformed HTTP request: {reason}"

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` and close; after the answers still owed, if any."""
        self._refused = True
        self._disarm()
        peer = self.client
        http_log.warning(
            "%s connection refused: %s",
            self.listener,
            message,
            extra={"peer": f"{peer[0]}:{peer[1]}" if peer else "", "status": status},
        )
        # None until the connection's first request (uvicorn's annotation says otherwise).
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is not None and not cycle.response_complete:
            if self.pipeline or cycle.response_started:
                # Earlier requests are still being answered: the connection closes after the
                # last of them (a refusal written now would land inside their answers).
                cycle.keep_alive = False
                self.flow.pause_reading()
                return
            # The request being read is the one refused: its handler sees a disconnect.
            cycle.disconnected = True
            cycle.message_event.set()
        body = orjson.dumps({"error": {"code": status, "message": message}})
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(b"".join(head) + body)
        # Closed a moment later, not at once: a client still sending (an oversized head) would
        # get a reset instead of the answer. What it sends meanwhile is read and dropped.
        self.flow.resume_reading()
        self.loop.call_later(REFUSAL_LINGER, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def _close_if_answered_before_continue(cycle: RequestResponseCycle) -> None:
    """Close the connection after ``cycle``'s answer if it comes before its body was asked for.

    A client that sent ``Expect: 100-continue`` holds its body back until told to send it. The
    webhook answers some requests without asking (413 from the Content-Length alone, 429, a
    wrong method): the connection then stayed open while the parser still waited for the body,
    and the client's next request on it was read as that body, never answered. RFC 9110 10.1.1
    has the server say whether it will close; with ``keep_alive`` off uvicorn says so and does.
    """
    send = cycle.send

    async def answer(message: ASGISendEvent) -> None:
        if cycle.waiting_for_100_continue and message["type"] == "http.response.start":
            cycle.keep_alive = False
        await send(message)

    # Read by run_asgi when the request's task starts, which is after this (the instance's
    # attribute is found before the method): only requests with the header pay for it.
    cycle.send = answer  # type: ignore[method-assign]


def _parser_reason(error: httptools.HttpParserError) -> str:
    # llhttp's reasons read as sentences ("Invalid header value char"); the class says the rest.
    reason = str(error.args[0]) if error.args else type(error).__name__
    return reason[:1].lower() + reason[1:]


def _http_server(
    app: Any,
    tls: TlsFiles | None,
    grace: float,
    *,
    ssl_context: ssl.SSLContext | None = None,
    header_timeout: float | None = None,
    what: str = "webhook",
    shared: bool = False,
    keep_alive: int = 5,
) -> _QuietServer:
    http: Any = "auto"
    if header_timeout is not None:
        http = type("BoundedHttp", (_BoundedHttp,), {"header_timeout": header_timeout, "listener": what})
        if ssl_context is not None:
            # The handshake is done (and a refused one audited) by the protocol, not by uvicorn.
            http = tls_accepting(http, ssl_context, what)
            ssl_context = None
            tls = None
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_config=None,
        access_log=False,
        http=http,
        ssl_certfile=str(tls.cert_file) if tls and ssl_context is None else None,
        ssl_keyfile=str(tls.key_file) if tls and ssl_context is None else None,
        ssl_context_factory=(lambda _config, _default: ssl_context) if ssl_context is not None else None,
        timeout_graceful_shutdown=max(1, round(grace)),
        timeout_keep_alive=keep_alive,
        server_header=False,
        # asyncio accepts up to ``backlog`` connections each time the socket is ready: on a socket
        # shared by processes (webhook.processes), whichever woke first took a whole burst (all 64
        # of a load test, or of an API server's restart) and served them alone. One per wake-up
        # lets every woken process take its share; a busy process wakes later and takes fewer.
        # asyncio also passes ``backlog`` to listen(): startup() gives the kernel queue its length back.
        backlog=1 if shared else _LISTEN_BACKLOG,
    )
    server = _QuietServer(config)
    if shared:
        server.restore_backlog = _LISTEN_BACKLOG
    return server


def _grpc_credentials(tls: TlsFiles, *, require_client_cert: bool = True) -> grpc.ServerCredentials:
    try:
        key = tls.key_file.read_bytes()
        cert = tls.cert_file.read_bytes()
        client_ca = tls.client_ca_file.read_bytes() if tls.client_ca_file else None
    except OSError as exc:
        raise InfrastructureError(f"grpc.tls: cannot read {exc.filename}: {exc.strerror}") from exc
    return grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None and require_client_cert,
    )


class GateServer:
    """Runs the three listeners over one core until stopped."""

    def __init__(
        self,
        config: Config,
        *,
        store: EvidenceStore | None = None,
        signer: DecisionSigner | None = None,
        worker: WorkerRole | None = None,
        own_process: bool = False,
    ) -> None:
        """Serve ``config``; with ``store`` given, use it (the caller closes it) instead of opening one.

        ``signer`` signs every recorded decision; without one, decisions are signed with the
        configured key. With ``webhook.processes`` or ``grpc.processes`` > 1 the worker processes
        open the store of ``config`` and sign with its key, whatever ``store`` and ``signer`` are
        given here.
        With ``decisions.writer`` ``process`` (or ``auto`` under load), decisions are signed and
        stored by a child process (:class:`~gate.decisions.WriterProcess`), except when ``store``
        or ``signer`` is given (they live in this process) or the database is in memory: a
        thread does it then.
        ``worker`` makes this a worker process (:mod:`gate.server._workers`): it serves the
        webhook on the main process's socket, gRPC on its port, or both. ``own_process`` says that
        nothing else runs in this process (``gate serve``, a worker): the garbage collector
        is then set for a server once start-up is over (:mod:`gate.server._heap`).

        Raises:
            ConfigError: a setting needs an extra that is not installed.
        """
        if config.registry.pull_secrets or config.registry.project_pull_secrets:
            # Pull secrets are read on the first registry login: say now that they cannot be.
            require_extra("registry.pull_secrets")
        self.config = config
        self._store = store
        self._signer = signer
        self._worker = worker
        self._own_process = own_process
        self._workers: Workers | None = None
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http_servers: list[_QuietServer] = []
        self._http_tasks: list[asyncio.Task[None]] = []
        self._grpc_server: grpc.aio.Server | None = None
        self._tls_watch: asyncio.Task[None] | None = None
        self._policy_watch: asyncio.Task[None] | None = None
        # Called after the listeners stop (the webhook's evaluation threads).
        self._closers: list[Callable[[], None]] = []
        # The decision writer process, when there is one (see _writer_process).
        self._writer: WriterProcess | None = None
        # The store that commits on the event loop (decisions.writer: loop), when it does.
        self._on_loop: NoWaitSink | None = None

    def request_stop(self) -> None:
        """Begin a graceful shutdown (what SIGTERM does); callable from any thread once running."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._stop.set()
        else:
            loop.call_soon_threadsafe(self._stop.set)

    def _writer_process(self, store: EvidenceStore, signer: DecisionSigner) -> WriterProcess | None:
        """The decision writer process (``decisions.writer``), unless a thread is to write.

        With ``auto`` it starts at the first busy second; until then this process writes.
        """
        config = self.config
        if self._store is not None or self._signer is not None:
            return None  # a store or signer handed in lives in this process only
        setting = config.decisions.writer
        if not writer_in_process(setting, config.serving_processes, usable_cpus()):
            return None
        if not shared_between_processes(config.effective_database_url):
            log.info("the database is in memory, private to this process: decisions are written by a thread")
            return None
        local = LocalWriter(store.add_decisions, signer) if setting == "auto" else None
        return WriterProcess(
            config, observe=StatementMetrics(), on_restart=DECISION_WRITER_RESTARTS.inc, until_busy=local
        )

    def _begin_writer(self, writer: WriterProcess | None, own_signer: KeySigner) -> None:
        if writer is None:
            return
        # The key is loaded here first, so that a bad one is reported once and a new one is
        # created by this process. With decisions.writer: process the child starts now (waited
        # for before serving: it opens the store and loads the key while this process loads the
        # policies); with auto, at the first busy second.
        own_signer.key()
        if not writer.starts_when_busy:
            writer.start()

    async def _writer_ready(self, writer: WriterProcess | None) -> None:
        if writer is not None and not writer.starts_when_busy:
            await asyncio.to_thread(writer.wait_ready)

    async def run(self, on_ready: Callable[[BoundAddresses], None] | None = None) -> None:
        """Start, report SERVING, wait for a stop request, then shut down gracefully."""
        config = self.config
        self._loop = asyncio.get_running_loop()
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = self._store
        if store is None:
            # One pooled connection per worker thread, so that a busy server never
            # opens and closes overflow connections per request.
            store = open_store(config.effective_database_url, pool_size=config.grpc.workers, max_overflow=4)
        STORE_UP.set(1)
        scans: ScanJobs | None = None
        executor = ThreadPoolExecutor(config.grpc.workers, thread_name_prefix="gate-worker")
        # Every recorded decision is signed: with signatures.signing_key_file, else with a key
        # gate keeps in its data directory.
        signatures = SignatureService(config.signatures, config.registry, kubernetes=config.kubernetes)
        own_signer = signatures.decision_signer(config.data_dir)
        signer = self._signer or own_signer
        on_loop = self._on_loop = _loop_committer(config, store)
        writer = self._writer = None if on_loop is not None else self._writer_process(store, signer)
        recorder = _recorder(
            config, store if writer is None else writer, signer, sealed=writer is not None, on_loop=on_loop
        )
        hub: NotificationHub | None = None
        try:
            self._begin_writer(writer, own_signer)
            if on_loop is not None and signer is own_signer:
                # Loaded now, not by the first commit on the event loop: a bad key is reported
                # once, at start, and a new one is created off the loop.
                own_signer.key()
            # Scan jobs run in the processes that answer gRPC; a webhook-only worker's core only
            # reads their results.
            answers_grpc = self._worker is None or self._worker.grpc_listen is not None
            scans = ScanJobs.from_config(config, store, utc_now, serving=answers_grpc)
            watched = bool(config.policies.sources) and config.policies.poll_interval > 0
            # Stamped before the first load, so that a change made during it is not missed.
            stamp = sources_stamp(config.policies.sources) if watched else None
            core = Gate.from_config(
                config, store, scans, recorder=recorder, signatures=signatures, decision_signer=own_signer
            )
            hub = _observe(config, core, scans, store, self._closers, main=self._worker is None)
            if stamp is not None and self._worker is None:
                # Workers do not watch: the main process has them reload with it (Workers.reload).
                watch = PolicyWatch(core, config.policies.poll_interval, initial=stamp)
                self._policy_watch = asyncio.create_task(watch.run())
            await self._writer_ready(writer)
            if self._worker is not None:
                await self._serve_as_worker(core, executor, self._worker)
            else:
                await self._serve_as_main(core, executor, scans, on_ready)
        finally:
            await self._stop_listeners()
            executor.shutdown(wait=True, cancel_futures=True)
            for close in self._closers:
                close()
            # After the listeners and workers: every decision made so far is queued; store them all.
            recorder.close()
            if writer is not None:
                writer.close()
            if scans is not None:
                scans.close()
            # Last: the decisions and scans just finished may still have something to announce.
            if hub is not None:
                hub.close()
            if self._store is None:
                store.close()
            log.info("gate stopped")

    async def _serve_as_main(
        self,
        core: Gate,
        executor: ThreadPoolExecutor,
        scans: ScanJobs,
        on_ready: Callable[[BoundAddresses], None] | None,
    ) -> None:
        config = self.config
        # Before the listeners and workers start: a SIGTERM meanwhile then stops them all
        # gracefully once started, instead of killing this process under its workers.
        self._install_signals()
        addresses, health = await self._start(core, executor)
        if self._own_process:
            settle_after_startup()
        log.info(
            "gate serving",
            extra={
                "version": gate.__version__,
                "policy_engine": "compiled" if engine_compiled() else "interpreted",
                "grpc": addresses.grpc,
                "webhook": f"https://{addresses.webhook}",
                "webhook_processes": config.webhook.processes,
                "grpc_processes": config.grpc.processes,
                "decision_writer": _writer_mode(self._writer, self._on_loop),
                "probes": f"https://{addresses.probes}" if addresses.probes else "disabled",
                "metrics": f"http://{addresses.metrics}/metrics" if addresses.metrics else "disabled",
                "database": _redact_url(config.effective_database_url),
                "scanners": sorted(scans.providers),
            },
        )
        if on_ready is not None:
            on_ready(addresses)
        await self._stop.wait()
        log.info("shutting down: no new requests; finishing in-flight ones")
        await health.enter_graceful_shutdown()

    async def _start(self, core: Gate, executor: ThreadPoolExecutor) -> tuple[BoundAddresses, HealthServicer]:
        config = self.config
        # Before the gRPC handlers are built: only with tracing on do they carry spans.
        self._enable_tracing(core)
        shared_grpc = config.grpc.processes > 1
        self._grpc_server, health, bound_grpc = self._build_grpc(
            core, executor, config.grpc.listen, shared=shared_grpc
        )
        webhook = config.webhook
        webhook_tls = webhook.tls
        if webhook_tls is None:
            cert, key = ensure_self_signed(config.data_dir / "tls")
            webhook_tls = TlsFiles(cert_file=cert, key_file=key)
        webhook_sock = _bind(parse_listen(webhook.listen), "webhook")
        webhook_app, certificate = self._serve_webhook(core, executor, webhook_sock, webhook_tls)
        bound_webhook = _sock_name(webhook_sock)
        if config.serving_processes > 1:
            self._workers = Workers(
                config,
                (webhook_sock, webhook_tls) if webhook.processes > 1 else None,
                bound_grpc if shared_grpc else None,
                # A failed load is logged and the bundle in force stays, as for a change of the sources.
                reload_pod=PolicyWatch(core, config.policies.poll_interval).reload,
            )
            await self._workers.start()
            core.policy_listeners.append(self._workers.reload)
        bound_probes = None
        if webhook.probe_listen is not None:
            bound_probes = self._start_http(
                PathAllowList(webhook_app),
                webhook.probe_listen,
                "webhook.probe_listen",
                webhook_tls,
                webhook.grace_period,
                ssl_context=certificate.probe_context(),
                header_timeout=webhook.header_timeout,
                keep_alive=WEBHOOK_KEEP_ALIVE,
            )
        bound_metrics = None
        if config.metrics.enabled:
            metrics = make_asgi_app() if self._workers is None else metrics_app(self._workers)
            bound_metrics = self._start_http(
                metrics, config.metrics.listen, "metrics", None, 1.0, header_timeout=METRICS_HEADER_TIMEOUT
            )
        await self._grpc_server.start()
        await self._http_started()
        await _report_serving(health)
        return BoundAddresses(bound_grpc, bound_webhook, bound_metrics, bound_probes), health

    def _enable_tracing(self, core: Gate) -> None:
        tracing = _tracing.enable(self.config.tracing)
        if tracing is not None:
            core.decision_listeners.append(_tracing.record_decision_spans)
            self._closers.append(tracing.shutdown)

    async def _http_started(self) -> None:
        while not all(server.started for server in self._http_servers):
            if any(task.done() for task in self._http_tasks):
                raise InfrastructureError("an HTTP listener failed to start; see the log above")
            await asyncio.sleep(0.005)

    def _serve_webhook(
        self, core: Gate, executor: ThreadPoolExecutor, sock: socket.socket, tls: TlsFiles
    ) -> tuple[WebhookApp, ReloadingCertificate]:
        webhook = self.config.webhook
        client_ca = webhook.client_ca_file or tls.client_ca_file
        certificate = ReloadingCertificate(tls.cert_file, tls.key_file, client_ca_file=client_ca)
        self._tls_watch = asyncio.create_task(certificate.watch())
        rates = self.config.auth.rate_limits
        webhook_app = WebhookApp(
            core,
            executor,
            WebhookLimits(webhook.max_body_bytes, webhook.body_timeout),
            RateLimiter(rates) if "admission" in rates else None,
        )
        self._closers.append(webhook_app.close)
        self._start_http(
            webhook_app,
            sock,
            "webhook",
            tls,
            webhook.grace_period,
            ssl_context=certificate.context,
            header_timeout=webhook.header_timeout,
            shared=webhook.processes > 1,
            # The API server keeps idle webhook connections for 90 s and does not retry a POST
            # whose connection the server closed under it: close idle connections later than it.
            keep_alive=WEBHOOK_KEEP_ALIVE,
        )
        return webhook_app, certificate

    async def _serve_as_worker(self, core: Gate, executor: ThreadPoolExecutor, role: WorkerRole) -> None:
        self._enable_tracing(core)
        if role.webhook is not None:
            self._serve_webhook(core, executor, *role.webhook)
        if role.grpc_listen is not None:
            self._grpc_server, health, _ = self._build_grpc(core, executor, role.grpc_listen, shared=True)
            await self._grpc_server.start()
            await _report_serving(health)
        await self._http_started()
        # Ctrl-C reaches the whole process group; the main process then stops the workers itself
        # (and a worker whose main process is gone stops when its pipe closes).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.request_stop)
        if self._own_process:
            settle_after_startup()
        try:
            role.control.send(("ready",))
        except OSError:
            # The main process ended while this one started (killed before it could stop us).
            log.info("worker %d: the main process is gone; stopping", role.index)
            return
        watch = PolicyWatch(core, self.config.policies.poll_interval)
        # Set while the main process has this worker reload: that reload must not be passed back.
        following = threading.local()

        def reload() -> tuple[bool, str]:
            following.main = True
            try:
                loaded = watch.reload()
            finally:
                following.main = False
            if loaded:
                return True, core.policies.digest
            error = core.policy_reload_error
            return False, error[0] if error else "the policy sources did not load"

        requests = role.requests
        if requests is not None:
            sending = threading.Lock()  # two ReloadPolicies at once must not interleave their bytes

            def ask_main_process(_bundle: PolicyBundle) -> None:
                # This worker answered ReloadPolicies: the main process reloads every process.
                if not getattr(following, "main", False):
                    with sending, contextlib.suppress(OSError, ValueError):
                        requests.send(("reload",))

            core.policy_listeners.append(ask_main_process)

        threading.Thread(
            target=listen_to_main_process,
            args=(role.control, self.request_stop, reload),
            name="gate-main-process",
            daemon=True,
        ).start()
        log.info(
            "worker %d serving: %s",
            role.index,
            " and ".join(name for name, on in (("webhook", role.webhook), ("gRPC", role.grpc_listen)) if on),
        )
        await self._stop.wait()

    async def _stop_listeners(self) -> None:
        if self._tls_watch is not None:
            self._tls_watch.cancel()
        if self._policy_watch is not None:
            self._policy_watch.cancel()
        for server in self._http_servers:
            server.should_exit = True
        workers = self._workers
        # The workers drain their requests and recorded decisions while this process drains its own.
        stopping = (
            asyncio.create_task(
                workers.stop(self.config.webhook.grace_period + self.config.decisions.store_timeout + 30)
            )
            if workers is not None
            else None
        )
        if self._grpc_server is not None:
            await self._grpc_server.stop(self.config.grpc.grace_period)
        if self._http_tasks:
            await asyncio.wait(self._http_tasks, timeout=self.config.webhook.grace_period + 2)
        if stopping is not None:
            await stopping

    def _build_grpc(
        self, core: Gate, executor: ThreadPoolExecutor, listen: str, *, shared: bool
    ) -> tuple[grpc.aio.Server, HealthServicer, str]:
        """The gRPC server on ``listen``; ``shared``: every process of ``grpc.processes`` binds the port."""
        settings = self.config.grpc
        address = parse_listen(listen)
        if shared and self._worker is None:
            # SO_REUSEPORT would let a second gate join this port unnoticed: first make sure
            # that nothing listens on it (the workers, binding after this process, join it).
            _check_free(address, "grpc")
        limits = RequestLimits(settings.max_request_bytes, settings.max_upload_bytes)
        largest = max(limits.default, limits.upload)
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", largest),
                ("grpc.max_send_message_length", largest),
                # Without this a second gate could silently share the port; with several
                # processes it is how they share it (checked free above).
                ("grpc.so_reuseport", 1 if shared else 0),
            ],
        )
        api = Api(core, credentials=credentials_from_settings(self.config.kubernetes))
        guard = _guard(self.config, executor)
        if guard is not None:
            guard.scope_artifacts(core.store, utc_now)
        answer_timeout = self.config.store.answer_timeout
        server.add_generic_rpc_handlers(
            GrpcApi(api, executor, limits, guard=guard, answer_timeout=answer_timeout).handlers()
        )
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        reflection.enable_server_reflection((*SERVICE_NAMES, health_name, reflection.SERVICE_NAME), server)
        try:
            if settings.tls:
                credentials = _grpc_credentials(
                    settings.tls, require_client_cert=settings.client_certificates == "required"
                )
                port = server.add_secure_port(str(address), credentials)
            else:
                port = server.add_insecure_port(str(address))
        except RuntimeError as exc:
            raise InfrastructureError(
                f"grpc: cannot listen on {address}: address in use or not available"
            ) from exc
        return server, health, str(ListenAddress(address.host, port))

    def _start_http(
        self,
        app: Any,
        listen: str | socket.socket,
        what: str,
        tls: TlsFiles | None,
        grace: float,
        *,
        ssl_context: ssl.SSLContext | None = None,
        header_timeout: float | None = None,
        shared: bool = False,
        keep_alive: int = 5,
    ) -> str:
        sock = _bind(parse_listen(listen), what) if isinstance(listen, str) else listen
        server = _http_server(
            app,
            tls,
            grace,
            ssl_context=ssl_context,
            header_timeout=header_timeout,
            what=what,
            shared=shared,
            keep_alive=keep_alive,
        )
        self._http_servers.append(server)
        self._http_tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        return _sock_name(sock)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.request_stop)


def _guard(config: Config, executor: ThreadPoolExecutor) -> Guard | None:
    """The gRPC guard ``auth`` asks for, or None (with a warning) for ``auth.mode: none``."""
    if config.auth.mode == "none":
        log.warning(
            "auth.mode is none: every gRPC caller is accepted with every role; "
            "set auth.mode: required outside local try-outs"
        )
        return None
    if config.grpc.tls is None:
        log.warning("auth.mode is required but grpc.tls is not set: bearer tokens travel in clear text")
    limiter = RateLimiter(config.auth.rate_limits) if config.auth.rate_limits else None
    return Guard(authenticator_from_config(config), executor, limiter)


def _loop_committer(config: Config, store: EvidenceStore) -> NoWaitSink | None:
    """The store, where the event loop commits decisions itself (``decisions.writer``), else None.

    ``loop``, and ``auto`` with ``acknowledge: stored``, on a SQLite file: no hand-over to a
    writer thread or process and back per batch. On two cores one process answered 43 % more
    Decide calls than with the writer process, two 11 % more than with writer threads
    (benchmarks/README.md, "Decisions committed on the event loop"). A PostgreSQL commit is a
    network round trip, which no event loop may wait for.
    """
    setting = config.decisions.writer
    if setting not in ("auto", "loop") or config.decisions.acknowledge != "stored":
        return None
    if isinstance(store, SqlStore) and store.commits_without_waiting:
        return store
    if setting == "loop":
        log.info(
            "decisions.writer is loop, but only a SQLite file commits without waiting: "
            "decisions are written by a thread"
        )
    return None


def _writer_mode(writer: WriterProcess | None, on_loop: NoWaitSink | None = None) -> str:
    """How decisions are written, as the "gate serving" line says it."""
    if writer is None:
        return "thread" if on_loop is None else "event loop"
    return "process once busy" if writer.starts_when_busy else "process"


def _recorder(
    config: Config,
    sink: DecisionSink | SealingSink,
    signer: DecisionSigner,
    *,
    sealed: bool,
    on_loop: NoWaitSink | None = None,
) -> DecisionRecorder:
    """The decision recorder ``decisions.acknowledge`` asks for; ``sealed``: the sink signs."""
    # The writer process answers for a batch once all of it is committed (~0.25 ms per decision
    # there): bounded at 32, answers come back to the event loop in a steadier flow than in
    # batches of up to 256, and gate answered ~14 % more reviews (benchmarks/README.md).
    batch = _PROCESS_BATCH if sealed else _THREAD_BATCH
    if config.decisions.acknowledge == "stored":
        return AcknowledgedRecorder(
            sink,
            signer=signer,
            timeout=config.decisions.store_timeout,
            max_batch=batch,
            sealed_by_sink=sealed,
            on_loop=on_loop,
            on_batch=_observe_batch,
        )
    return DecisionRecorder(
        sink,
        signer=signer,
        retry_delays=_OUTAGE_RETRIES,
        max_batch=batch,
        sealed_by_sink=sealed,
        on_batch=_observe_batch,
    )


def _observe_batch(writer: str, size: int) -> None:
    labelled(DECISION_BATCHES, writer).observe(size)


def _observe(
    config: Config,
    core: Gate,
    scans: ScanJobs,
    store: EvidenceStore,
    closers: list[Callable[[], None]],
    *,
    main: bool = True,
) -> NotificationHub | None:
    """Metrics of decisions, scans, the store and the caches; notifications to the configured webhooks.

    Returns the notification hub (None: no webhook). ``closers`` gets what to undo at stop.
    ``main`` False (a worker process): its denials are announced, waivers ending are not (the
    main process announces those, once per pod rather than once per process).
    """
    core.decision_listeners.append(DecisionMetrics())
    scans.finish_listeners.append(count_scan_failure)
    if isinstance(store, SqlStore):
        store.observe_statements(StatementMetrics())
    closers.append(CACHES.add(partial(_cache_stats, core)))
    hub = NotificationHub.from_settings(
        config.notifications, store, clock=utc_now, observer=NotificationMetrics(), check_waivers=main
    )
    if hub is None:
        return None
    core.decision_listeners.append(hub.on_decision)
    scans.finish_listeners.append(hub.on_scan)
    hub.start()
    return hub


def _cache_stats(core: Gate) -> dict[str, CacheStats]:
    stats = core.signatures.cache_stats()
    evidence = getattr(core.evidence, "cache_stats", None)
    if evidence is not None:
        stats.update(evidence())
    return stats


def _sock_name(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return str(ListenAddress(host, port))


def _redact_url(url: str) -> str:
    # Never log a database password.
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}" if ":" in credentials else f"{scheme}{sep}{user}@{host}"
    return url


def serve(config: Config) -> None:
    """Run ``gate serve`` in the foreground until SIGTERM or SIGINT."""
    asyncio.run(GateServer(config, own_process=True).run())
