"""The decision writer in a process of its own (``decisions.writer: process``).

Sealing decisions (the canonical JSON of each statement; one ECDSA signature per batch since
seals, one per decision before) and storing them (the rows, the insert, the commit) held the
GIL for ~250 us per decision. With the writer a thread of the serving process, that time came
out of the same GIL the event loop answers on: about a third of a review's CPU at saturation
(``benchmarks/README.md``, "The decision writer in a process of its own"). :class:`WriterProcess`
is a :class:`~gate.decisions.DecisionSink` that hands each batch to a child process instead, which
seals and stores it on another core and says when the transaction has committed. What stays
in the serving process is turning each decision into a tuple of plain values, pickling the
batch through a socket and waking the waiters: ~40-50 us per decision.

A child costs ~70 MB and its share of the CPU is only worth it under load. With
``until_busy`` (``decisions.writer: auto``) batches are sealed and stored in this process, as by
the writer thread, until decisions come at :data:`BUSY_RATE` a second; the child is then started
in the background and takes every batch once it is ready.

The recorder in front of it is unchanged (queue, group commit, retries, acknowledgements);
it is built with ``sealed_by_sink=True``. Failures keep the recorder's meaning:

* the child answers each batch with "stored" and the seals (request digest and seal
  document) of the decisions whose caller answers with the signed record, "a record is bad" (an
  :class:`~gate.errors.EvidenceError`: the recorder then stores the batch one by one) or
  "the store is unavailable" (an :class:`~gate.errors.InfrastructureError`: it retries);
* a child that exits (killed, crashed) or does not answer within ``reply_timeout`` fails the
  batch in flight as unavailable; the next call starts a new child. The dead child may have
  committed that batch before it died, so the resent batch carries a flag on which the new
  child skips the decisions already stored instead of refusing them as duplicates;
* the child ignores SIGINT and SIGTERM: a Ctrl-C or a signal to the whole process group must
  not stop it before the parent has drained its queue through it. It stops when told to, or
  when the parent's end of the pipe closes (the parent is gone).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import orjson

from gate.decisions._recorder import Seal, seal_or_unsigned
from gate.decisions._statement import DecisionSigner
from gate.errors import (
    ConfigError,
    EvidenceError,
    GateError,
    InfrastructureError,
    InvalidArgument,
    StoreUnavailable,
)
from gate.model import (
    ACTION_TEXT,
    OUTCOME_TEXT,
    Decision,
    DecisionTimings,
    DecodedJson,
    EnforcementAction,
    RuleOutcome,
    RuleResult,
)

if TYPE_CHECKING:
    from gate.config import Config
    from gate.store import EvidenceStore

log = logging.getLogger("gate.decisions")

# Seconds the child gets to import gate, open the store and load the signing key.
START_TIMEOUT = 60.0
# Seconds a batch may take in the child before the child counts as stuck and is replaced. The
# store gives up sooner on its own (its connect and lock timeouts), so this is a last resort.
REPLY_TIMEOUT = 120.0
# Seconds the child gets to finish after it is told to stop.
_STOP_TIMEOUT = 10.0
# With ``until_busy``: decisions within one second that start the child (a pipeline gate's few
# decisions a minute never do; an admission webhook under load does within its first second).
BUSY_RATE = 100
# Seconds before a child that failed to start in the background is tried again.
_RETRY_START = 60.0


@dataclass(frozen=True, slots=True)
class LocalWriter:
    """Where :class:`WriterProcess` stores until it is busy: this process's store and signer."""

    store: Callable[[Sequence[Decision]], None]
    signer: DecisionSigner | None


_OUTCOMES = {outcome.value: outcome for outcome in RuleOutcome}
_ACTIONS = {action.value: action for action in EnforcementAction}


def to_wire(decision: Decision) -> tuple[Any, ...]:
    """A decision as plain values: pickling a tuple of strings is C work, a dataclass is not."""
    request = decision.request
    # JSON text when the request was decoded from JSON (exact, ~3 us for a 3 KB review);
    # anything else travels as it is, and the child's store checks it as it checks any request.
    body: bytes | dict[str, Any] = request.canonical_json() if type(request) is DecodedJson else dict(request)
    timings = decision.timings
    return (
        decision.id,
        decision.allowed,
        decision.message,
        decision.stage,
        decision.decided_at,
        tuple(
            (
                r.policy,
                r.rule,
                OUTCOME_TEXT[r.outcome],
                ACTION_TEXT[r.action],
                r.message,
                r.remediation,
                r.resource,
            )
            for r in decision.results
        ),
        decision.policy_bundle_digest,
        decision.evidence_ids,
        decision.caller,
        decision.artifact_digests,
        (timings.total, timings.policy, timings.evidence),
        body,
        decision.signature,
        decision.subject,
        decision.request_digest,
    )


def from_wire(wire: tuple[Any, ...]) -> Decision:
    """The decision :func:`to_wire` was given."""
    (id_, allowed, message, stage, decided_at, results, bundle, evidence, caller, artifacts) = wire[:10]
    timings, body, signature, subject, digest = wire[10:]
    return Decision(
        id=id_,
        allowed=allowed,
        message=message,
        stage=stage,
        decided_at=decided_at,
        results=tuple(
            RuleResult(
                policy=policy,
                rule=rule,
                outcome=_OUTCOMES[outcome],
                message=text,
                remediation=remediation,
                action=_ACTIONS[action],
                resource=resource,
            )
            for policy, rule, outcome, action, text, remediation, resource in results
        ),
        policy_bundle_digest=bundle,
        evidence_ids=evidence,
        caller=caller,
        artifact_digests=artifacts,
        timings=DecisionTimings(total=timings[0], policy=timings[1], evidence=timings[2]),
        request=DecodedJson(orjson.loads(body)) if isinstance(body, bytes) else body,
        signature=signature,
        subject=subject,
        request_digest=digest,
    )


class WriterProcess:
    """A decision sink that seals and stores in a child process; see the module docstring.

    Args:
        config: gate's configuration: the child opens ``config``'s store and signs with its
            decision key (``signatures.signing_key_file``, else the key in the data directory).
        observe: Called in this process with ``(statement kind, seconds)`` for each of the
            child's database statements (the store's statement metrics).
        on_restart: Called when a child is started to replace one that exited or was stuck.
        reply_timeout: Seconds a batch may take before the child is replaced.
        until_busy: Where batches go, sealed here, until decisions come at ``busy_rate`` a
            second or more: the child is then started in the background and takes every batch
            once ready (``decisions.writer: auto``: an idle gate keeps one process, ~70 MB
            less). Without it, :meth:`start` and :meth:`wait_ready` start the child up front.

    Attributes:
        restarts: children started after the first (one exited or was stuck).
    """

    def __init__(
        self,
        config: Config,
        *,
        observe: Callable[[str, float], None] | None = None,
        on_restart: Callable[[], None] | None = None,
        reply_timeout: float = REPLY_TIMEOUT,
        start_timeout: float = START_TIMEOUT,
        until_busy: LocalWriter | None = None,
        busy_rate: int = BUSY_RATE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._local = until_busy
        self._busy_rate = busy_rate
        self._clock = clock
        self._counting = threading.Lock()
        self._window = (clock(), 0)
        self._starting = False
        self._next_start = 0.0
        self._observe = observe
        self._on_restart = on_restart
        self._reply_timeout = reply_timeout
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._ready = False
        # The last batch was sent to a child that died: the next child may find some of it stored.
        self._resend = False
        self._closed = False
        self._spawned = 0
        self.restarts = 0

    @property
    def starts_when_busy(self) -> bool:
        """Whether the child starts at the first busy second (``until_busy``), not up front."""
        return self._local is not None

    @property
    def ready(self) -> bool:
        """Whether batches go to the child (it has started and opened the store)."""
        return self._ready

    @property
    def pid(self) -> int | None:
        """The child's process id (None before it starts)."""
        process = self._process
        return None if process is None else process.pid

    def start(self) -> None:
        """Start the child without waiting for it (see :meth:`wait_ready`)."""
        with self._lock:
            if self._process is None and not self._closed:
                self._spawn()

    def wait_ready(self) -> None:
        """Return once the child has opened the store and loaded the key.

        Raises:
            ConfigError: the signing key could not be loaded.
            StoreUnavailable: the store could not be opened.
            InfrastructureError: the child exited or did not get ready in time.
        """
        with self._lock:
            self._connection()

    def add_decisions(self, batch: Sequence[Decision], seals_for: Collection[str] = ()) -> dict[str, Seal]:
        """Seal and store ``batch`` in one transaction in the child (all or none).

        Returns the seals of the decisions ``seals_for`` names, by id (the other seals stay
        in the child).

        Raises:
            InvalidArgument: a decision's request cannot be sent (not JSON-compatible).
            EvidenceError: the child's store refused a record (as ``SqlStore.add_decisions``).
            StoreUnavailable: the store failed, or the child exited or was stuck.
        """
        if not batch:
            return {}
        local = self._local
        if local is not None and self._ready and not self._alive():
            # Gone between two batches (nothing in flight): this process writes until a new
            # child, started in the background like the first, is ready.
            with self._lock:
                self._reap()
        if local is not None and not self._ready:
            self._count(len(batch))
            sealed = seal_or_unsigned(batch, local.signer)
            local.store(sealed)
            return _seals(sealed, seals_for)
        try:
            wires = [to_wire(d) for d in batch]
            payload = pickle.dumps(("store", (wires, list(seals_for))), protocol=pickle.HIGHEST_PROTOCOL)
        except (TypeError, ValueError, AttributeError, pickle.PicklingError) as error:
            raise InvalidArgument("request", f"expected JSON-compatible values, got {error}") from None
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the decision writer process has been stopped")
            reply = self._call(payload, len(batch))
        status, detail, timings, seals = reply
        if self._observe is not None:
            for kind, seconds in timings:
                self._observe(kind, seconds)
        if status == "stored":
            return seals
        if status == "bad record":
            raise _RefusedRecord(detail)
        raise StoreUnavailable(detail)

    def _alive(self) -> bool:
        process = self._process
        return process is not None and process.poll() is None

    def _count(self, decisions: int) -> None:
        """Start the child in the background once decisions come at the busy rate."""
        now = self._clock()
        with self._counting:
            began, seen = self._window
            if now - began >= 1.0:
                began, seen = now, 0
            self._window = (began, seen + decisions)
            if self._starting or seen + decisions < self._busy_rate or now < self._next_start:
                return
            self._starting = True
        threading.Thread(target=self._start_when_busy, name="gate-decision-writer-start", daemon=True).start()

    def _start_when_busy(self) -> None:
        try:
            self.start()
            self.wait_ready()
        except GateError as error:
            with self._counting:
                self._next_start = self._clock() + _RETRY_START
            log.error(
                "the decision writer process could not start (%s); decisions are written by a thread "
                "meanwhile, and the process is tried again in %g s",
                error.message,
                _RETRY_START,
            )
        finally:
            with self._counting:
                self._starting = False

    def close(self) -> None:
        """Tell the child to stop once the batch in flight is stored, and wait for it."""
        with self._lock:
            self._closed = True
            conn, process = self._conn, self._process
            if conn is not None and self._ready:
                try:
                    conn.send_bytes(b"N" + pickle.dumps(("stop", None)))
                    conn.poll(_STOP_TIMEOUT)
                except (OSError, ValueError):
                    pass
            if process is not None:
                try:
                    process.wait(_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    log.warning("the decision writer process did not stop within %g s; killed", _STOP_TIMEOUT)
                    process.kill()
                    process.wait()
            if conn is not None:
                conn.close()
            self._conn = self._process = None

    # Called with the lock held.

    def _spawn(self) -> None:
        # A plain subprocess rather than multiprocessing: a worker is a daemonic
        # multiprocessing process, and those may not start multiprocessing children.
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(  # noqa: S603 -- this interpreter, our own code, no shell
                [sys.executable, "-c", _CHILD_BOOT, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except OSError as error:
            ours.close()
            raise InfrastructureError(f"cannot start the decision writer process: {error}") from None
        finally:
            theirs.close()
        conn = Connection(ours.detach())
        # The child imports gate from where this process does (a checkout, a compiled copy).
        conn.send_bytes(pickle.dumps(sys.path))
        conn.send_bytes(pickle.dumps(self._config))
        self._process, self._conn, self._ready = process, conn, False
        self._spawned += 1
        self.restarts = self._spawned - 1
        if self.restarts:
            log.warning("decision writer process started again (restart %d)", self.restarts)
            if self._on_restart is not None:
                self._on_restart()

    def _connection(self) -> Connection:
        if self._process is not None and self._ready and self._process.poll() is not None:
            self._reap()
        if self._process is None:
            self._spawn()
        conn = self._conn
        assert conn is not None
        if not self._ready:
            self._await_ready(conn)
        return conn

    def _await_ready(self, conn: Connection) -> None:
        try:
            message = conn.recv() if conn.poll(self._start_timeout) else None
        except (EOFError, OSError):
            message = None
        if isinstance(message, tuple) and message and message[0] == "ready":
            self._ready = True
            log.info("decision writer process started", extra={"pid": self.pid})
            return
        late = message is None and self._process is not None and self._process.poll() is None
        code = self._reap()
        if isinstance(message, tuple) and len(message) == 4 and message[0] == "failed":
            _, kind, where, problem = message
            if kind == "config":
                source, key = where
                raise ConfigError(source, key, problem)
            raise StoreUnavailable(f"the decision writer process could not start: {problem}")
        why = f"was not ready within {self._start_timeout:g} s" if late else f"exited with code {code}"
        raise InfrastructureError(f"the decision writer process {why}; its log has details")

    def _call(self, payload: bytes, count: int) -> _Reply:
        conn = self._connection()
        resend, self._resend = self._resend, True
        try:
            # The flag travels in front of the pickled batch: one byte, no second pickle.
            conn.send_bytes(b"R" + payload if resend else b"N" + payload)
            if not conn.poll(self._reply_timeout):
                self._reap()
                raise StoreUnavailable(
                    f"the decision writer process did not store {count} decisions within "
                    f"{self._reply_timeout:g} s; it was stopped and a new one takes the batch"
                )
            # S301: the pipe joins this process and the child it spawned, nothing else.
            reply: _Reply = pickle.loads(conn.recv_bytes())  # noqa: S301
        except (EOFError, OSError):
            code = self._reap()
            raise StoreUnavailable(
                f"the decision writer process exited (code {code}) while storing {count} decisions; "
                "a new one takes the batch"
            ) from None
        self._resend = False
        return reply

    def _reap(self) -> int | None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        self._ready = False
        if conn is not None:
            conn.close()
        if process is None:
            return None
        if process.poll() is None:
            process.kill()
        try:
            return process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return None


def _seals(sealed: Sequence[Decision], wanted: Collection[str]) -> dict[str, Seal]:
    """The seals of the sealed decisions ``wanted`` names, by id (here or in the child)."""
    return {d.id: (d.request_digest, d.signature) for d in sealed if d.id in wanted}


# status, detail, the child's statement timings, the seals asked for (when stored)
_Reply = tuple[str, str, list[tuple[str, float]], dict[str, Seal]]


class _RefusedRecord(EvidenceError):
    """The child's store refused a record of the batch (its message says which and why)."""


# Run by ``python -c`` with the socket's descriptor: take the parent's sys.path, then serve.
_CHILD_BOOT = (
    "import pickle, sys\n"
    "from multiprocessing.connection import Connection\n"
    "conn = Connection(int(sys.argv[1]))\n"
    "sys.path[:] = pickle.loads(conn.recv_bytes())\n"
    "from gate.decisions._writer_process import child_main\n"
    "child_main(conn)\n"
)


def child_main(conn: Connection) -> None:
    """The writer process: open the store, load the key, then store batches until told to stop."""
    # The parent drains its queue through this process at shutdown: only it may stop us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    config: Config = pickle.loads(conn.recv_bytes())  # noqa: S301 (from the parent that started us)
    # Imported here: only the child needs the store and the key (the parent has its own).
    from gate import _logging
    from gate._signature_service import SignatureService
    from gate.store import SqlStore, open_store

    _logging.configure(config.log.level, config.log.format, fields={"process": "decision-writer"})
    try:
        store = open_store(config.effective_database_url, pool_size=1, max_overflow=1)
    except GateError as error:
        conn.send(("failed", "store", ("", ""), error.message))
        return
    try:
        signer = SignatureService(config.signatures, config.registry).decision_signer(config.data_dir)
        signer.key()
    except ConfigError as error:
        conn.send(("failed", "config", (error.source, error.key), error.problem))
        store.close()
        return
    timings: list[tuple[str, float]] = []
    if isinstance(store, SqlStore):
        store.observe_statements(lambda kind, seconds: timings.append((kind, seconds)))
    conn.send(("ready", os.getpid()))
    try:
        _serve(conn, store, signer, timings)
    finally:
        store.close()


def _serve(
    conn: Connection, store: EvidenceStore, signer: DecisionSigner, timings: list[tuple[str, float]]
) -> None:
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent is gone
        command, batch = pickle.loads(message[1:])  # noqa: S301 (from the parent that spawned us)
        if command == "stop":
            conn.send_bytes(pickle.dumps(("stopped", "", [], {})))
            return
        timings.clear()
        wires, wanted = batch
        status, detail, seals = _store(store, signer, wires, set(wanted), resend=message[:1] == b"R")
        try:
            conn.send_bytes(pickle.dumps((status, detail, timings, seals), protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, ValueError):
            return


def _store(
    store: EvidenceStore,
    signer: DecisionSigner,
    wires: list[tuple[Any, ...]],
    wanted: set[str],
    *,
    resend: bool,
) -> tuple[str, str, dict[str, Seal]]:
    try:
        decisions = [from_wire(wire) for wire in wires]
        stored: dict[str, Decision] = {}
        if resend:
            # The child before this one may have committed the batch and died before it said so.
            for decision in decisions:
                earlier = store.get_decision(decision.id)
                if earlier is not None:
                    stored[decision.id] = earlier
        fresh = seal_or_unsigned([d for d in decisions if d.id not in stored], signer)
        if fresh:
            store.add_decisions(fresh)
        sealed = [*stored.values(), *fresh]
    except EvidenceError as error:
        return "bad record", error.message, {}
    except GateError as error:
        return "unavailable", error.message, {}
    except Exception as error:  # the writer must answer whatever happens, or the parent waits
        log.exception("storing %d decisions failed", len(wires))
        return (
            "unavailable",
            f"unexpected {type(error).__name__} in the decision writer process; its log has details",
            {},
        )
    return "stored", "", _seals(sealed, wanted)
