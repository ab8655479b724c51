"""Worker processes (``webhook.processes``, ``grpc.processes``): requests on more than one core.

A review or a Decide is CPU-bound Python: one process, whatever its threads, uses
about one core. With N = max(``webhook.processes``, ``grpc.processes``) > 1 the
main process starts N - 1 workers (spawned, not forked: gRPC and the store's
pools are not fork-safe); worker i serves the webhook when i < ``webhook.processes``
and gRPC when i < ``grpc.processes``.

* The webhook: a worker inherits the listening socket, so the kernel hands every
  new connection to whichever process accepts first (a busy one accepts later).
* gRPC: grpc.aio cannot serve on an inherited socket, so every process binds
  the main process's address with SO_REUSEPORT and the kernel spreads new
  connections over them by their address hash. A worker then runs scans it is
  asked for, as another gate sharing the store would (leases, watch by polling).

Each worker runs its own core over the same configuration: store, decision
signer (the same key file), certificate reload, notifications of its denials.
The main process keeps the probe listener, ``/metrics``, the policy watch and
the waiver announcements.

The main process talks to each worker over a pipe: the worker says ``ready``
(or why it failed) once it accepts connections; later the main process asks it
for its metrics at scrape time, has it reload the policies when it has, and
tells it to stop. A worker that exits unexpectedly is started again; one whose
main process is gone stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from gate._cpus import usable_cpus
from gate.config import Config, TlsFiles
from gate.errors import InfrastructureError
from gate.server._metrics import WORKER_RESTARTS

if TYPE_CHECKING:
    from policies import PolicyBundle
    from policies._loader import SourcesSnapshot

log = logging.getLogger("gate.serve")

# Seconds a worker gets to import gate, open the store and load the policies.
START_TIMEOUT = 120.0
# Seconds a scrape waits for one worker's metrics; a worker that is late is left out of it.
SCRAPE_TIMEOUT = 2.0
# Seconds a worker gets to load the policy sources when the main process has reloaded them.
RELOAD_TIMEOUT = 60.0
# A worker that exits sooner than this after it became ready counts as crash-looping: the next
# start waits (doubling up to the cap) instead of spawning a process per supervision tick.
_QUICK_EXIT = 30.0
_BACKOFF_CAP = 30.0
_SUPERVISE_EVERY = 0.5


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """What a worker process gets from the main process."""

    index: int
    control: Connection
    # The webhook's listening socket and certificate files, when this worker serves the webhook.
    webhook: tuple[socket.socket, TlsFiles] | None = None
    # The main process's gRPC address (bound with SO_REUSEPORT), when this worker answers gRPC.
    grpc_listen: str | None = None
    # Where a gRPC worker asks the main process to reload the pod's policies (a ReloadPolicies
    # it answered), so that every process changes bundles, not only the one the caller reached.
    requests: Connection | None = None
    # The policy files as the main process last compiled them: the worker compiles these bytes
    # when it starts rather than reading the sources again (which may have changed, or broken).
    policies: SourcesSnapshot | None = None


@dataclass(slots=True)
class _Slot:
    index: int
    process: BaseProcess
    control: Connection
    ready_at: float = 0.0
    # Scrape requests and replies are numbered, so that a reply that came too late for one
    # scrape is not taken for the next one's.
    asked: Iterator[int] = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Workers:
    """The main process's side: starts, supervises, scrapes and stops the workers."""

    def __init__(
        self,
        config: Config,
        webhook: tuple[socket.socket, TlsFiles] | None,
        grpc_listen: str | None,
        reload_pod: Callable[[], object] | None = None,
    ) -> None:
        """``webhook``: the socket and certificate of the webhook; ``grpc_listen``: the bound gRPC address.

        ``reload_pod`` loads the policies in this process (and so, through :meth:`reload`, in
        every worker) when a gRPC worker asks for it.
        """
        self._config = config
        self._webhook = webhook
        self._grpc_listen = grpc_listen
        self._reload_pod = reload_pod
        self._context = multiprocessing.get_context("spawn")
        self._slots: dict[int, _Slot] = {}
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._failures: dict[int, int] = {}
        # The policy files of the bundle in force here (what this process's last load read: made
        # while it started, as this object is), handed to the workers that start and reload.
        self._policies = _policy_files_read(config)

    @property
    def count(self) -> int:
        """Worker processes (the main process not counted)."""
        return self._config.serving_processes - 1

    def role(self, index: int, control: Connection, requests: Connection | None = None) -> WorkerRole:
        """What worker ``index`` serves: the webhook and gRPC up to their ``processes`` each."""
        config = self._config
        return WorkerRole(
            index,
            control,
            webhook=self._webhook if index < config.webhook.processes else None,
            grpc_listen=self._grpc_listen if self._serves_grpc(index) else None,
            requests=requests,
            policies=self._policies,
        )

    def _serves_grpc(self, index: int) -> bool:
        return self._grpc_listen is not None and index < self._config.grpc.processes

    async def start(self) -> None:
        """Start every worker and wait until each accepts connections.

        Raises:
            InfrastructureError: a worker failed to start (its reason is given) or took too long.
        """
        advice = processes_advice(self._config.serving_processes, usable_cpus())
        if advice:
            log.warning("%s", advice)
        try:
            await asyncio.gather(*(self._start(index) for index in range(1, self.count + 1)))
        except BaseException:
            await self.stop(0.0)
            raise
        self._supervisor = asyncio.create_task(self._supervise())

    async def _start(self, index: int) -> None:
        ours, theirs = self._context.Pipe()
        asks = their_asks = None
        if self._reload_pod is not None and self._serves_grpc(index):
            # A pipe of its own to ask for reloads on (see WorkerRole.requests).
            asks, their_asks = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker_main,
            args=(self._config, self.role(index, theirs, their_asks)),
            name=f"gate-worker-{index}",
            # A worker must not outlive a main process that exits without stopping it.
            daemon=True,
        )
        process.start()
        theirs.close()
        if their_asks is not None:
            their_asks.close()
            threading.Thread(
                target=self._follow, args=(index, asks), name=f"gate-worker-{index}-asks", daemon=True
            ).start()
        slot = self._slots[index] = _Slot(index, process, ours)
        answered = await asyncio.to_thread(ours.poll, START_TIMEOUT)
        message: Any = None
        with contextlib.suppress(EOFError, OSError):
            message = ours.recv() if answered else None
        if not (isinstance(message, tuple) and message[:1] == ("ready",)):
            # Already gone when stop() ended it meanwhile (a sibling failed to start).
            self._slots.pop(index, None)
            ours.close()
            _end(process, 0.0)
            if isinstance(message, tuple) and message[:1] == ("failed",):
                reason = str(message[1])
            elif answered:
                reason = f"it exited with code {process.exitcode}; its log lines above say why"
            else:
                reason = f"it was not serving after {START_TIMEOUT:.0f} s"
            raise InfrastructureError(f"worker {index} did not start: {reason}")
        slot.ready_at = time.monotonic()

    async def _supervise(self) -> None:
        not_before: dict[int, float] = {}
        while not self._stopping:
            await asyncio.sleep(_SUPERVISE_EVERY)
            for index in range(1, self.count + 1):
                slot = self._slots.get(index)
                if slot is not None:
                    if slot.process.is_alive():
                        continue
                    quick = time.monotonic() - slot.ready_at < _QUICK_EXIT
                    delay = self._backoff(index) if quick else 0.0
                    if not quick:
                        self._failures[index] = 0
                    log.error(
                        "worker %d exited unexpectedly (exit code %s); starting it again in %.0f s",
                        index,
                        slot.process.exitcode,
                        delay,
                    )
                    WORKER_RESTARTS.inc()
                    slot.control.close()
                    del self._slots[index]
                    not_before[index] = time.monotonic() + delay
                if time.monotonic() < not_before.get(index, 0.0):
                    continue
                try:
                    await self._start(index)
                except InfrastructureError as error:
                    delay = self._backoff(index)
                    not_before[index] = time.monotonic() + delay
                    log.error("%s; trying again in %.0f s", error.message, delay)

    def _follow(self, index: int, asks: Connection) -> None:
        """Reload the pod's policies whenever worker ``index`` asks, until its pipe closes."""
        with asks:
            while True:
                try:
                    message = asks.recv()
                except (EOFError, OSError):
                    return  # the worker exited; a new one gets a new pipe
                if message != ("reload",) or self._reload_pod is None or self._stopping:
                    continue
                log.info("worker %d answered ReloadPolicies: reloading the policies of every process", index)
                try:
                    self._reload_pod()
                except Exception:
                    log.exception("the policy reload worker %d asked for failed", index)

    def _backoff(self, index: int) -> float:
        failures = self._failures[index] = self._failures.get(index, 0) + 1
        return min(_BACKOFF_CAP, 2.0 ** (failures - 1))

    def expositions(self) -> list[tuple[str, bytes]]:
        """Each serving worker's metrics in the text format, by worker index (for a scrape)."""
        found = []
        for index, slot in sorted(self._slots.items()):
            text = self._ask(slot, "metrics", SCRAPE_TIMEOUT)
            if isinstance(text, bytes):
                found.append((str(index), text))
        return found

    def reload(self, bundle: PolicyBundle) -> None:
        """Have every serving worker load the policy sources again, now that this process has.

        Only the main process watches the sources: the workers follow it, so that the processes
        of one pod change bundles together. Each worker compiles the bytes this process compiled
        (called right after the load, on its thread, :func:`policies._loader.last_read` has them),
        so a file changed or broken since cannot leave a worker on another bundle. A worker that
        is starting compiles them too.
        """
        snapshot = _policy_files_read(self._config)
        if snapshot is not None:
            self._policies = snapshot
        for index, slot in sorted(self._slots.items()):
            answer = self._ask(slot, "reload", RELOAD_TIMEOUT, snapshot)
            if answer is None:
                continue
            loaded, detail = answer
            if not loaded:
                log.error("worker %d kept its previous policies: %s", index, detail)
            elif detail != bundle.digest:
                log.warning(
                    "worker %d loaded bundle %s, this process %s: the sources changed in between",
                    index,
                    detail,
                    bundle.digest,
                )

    def _ask(self, slot: _Slot, request: str, timeout: float, payload: object = None) -> Any:
        """``slot``'s answer to ``request``; None when it is starting, gone or late (logged)."""
        if not slot.ready_at:
            return None  # still starting: its pipe carries the "ready" that _start waits for
        with slot.lock:
            number = next(slot.asked)
            try:
                slot.control.send((request, number, payload))
                deadline = time.monotonic() + timeout
                while slot.control.poll(max(0.0, deadline - time.monotonic())):
                    answer = slot.control.recv()
                    if isinstance(answer, tuple) and len(answer) == 2 and answer[0] == number:
                        return answer[1]
            except (EOFError, OSError):
                return None  # exited: the supervisor starts it again
        log.warning("worker %d did not answer %r within %.0f s", slot.index, request, timeout)
        return None

    async def stop(self, timeout: float) -> None:
        """Ask each worker to finish its requests and store its decisions; kill any left after ``timeout``."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        slots = list(self._slots.values())
        self._slots.clear()
        await asyncio.to_thread(_stop_all, slots, timeout)


def writer_in_process(setting: str, processes: int, cpus: int) -> bool:
    """Whether decisions get a writer process (``decisions.writer``) rather than a thread.

    ``auto``: while the serving processes leave a CPU free. A writer process takes ~150-250 us per
    decision off the serving process's GIL but costs ~60-110 us more CPU in all (the batch
    pickled, sent and rebuilt), so on CPUs the serving processes already fill it loses: on two
    cores, one serving process answered 20-46 % more reviews with it, two answered 17 % fewer
    (``benchmarks/README.md``, "The decision writer in a process of its own"). Asked only where
    the event loop does not commit decisions itself (``gate.server._run._loop_committer``).
    """
    if setting == "auto":
        return processes < cpus
    return setting == "process"


def processes_advice(processes: int, cpus: int) -> str | None:
    """A warning when the serving processes exceed the CPUs this process may run on, else None."""
    if processes <= cpus:
        return None
    return (
        f"gate serves from {processes} processes (the larger of webhook.processes and grpc.processes) "
        f"but may run on {cpus} CPU(s): processes beyond the CPUs add memory and contention, not throughput"
    )


def _stop_all(slots: list[_Slot], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for slot in slots:
        # Under the slot's lock: a scrape or reload may be writing to the same pipe.
        with slot.lock, contextlib.suppress(OSError, ValueError):
            slot.control.send(("stop",))
    for slot in slots:
        _end(slot.process, max(0.0, deadline - time.monotonic()))
        slot.control.close()


def _end(process: BaseProcess, timeout: float) -> None:
    process.join(timeout)
    if process.is_alive():
        log.warning("worker %s did not stop within its grace period; killing it", process.name)
        process.kill()
        process.join()


def metrics_app(workers: Workers) -> Callable[..., Awaitable[None]]:
    """The ``/metrics`` ASGI app of a main process with workers (see :func:`merged_registry`).

    Not prometheus_client's ``make_asgi_app``: that one encodes on the event loop, and asking
    the workers for their metrics waits on pipes (up to ``SCRAPE_TIMEOUT`` for a stuck worker),
    which must not hold up the gRPC and webhook requests this loop also serves.
    """
    registry = merged_registry(workers)

    async def app(
        scope: dict[str, Any], receive: Any, send: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            return
        accept = next((value for key, value in scope.get("headers", ()) if key == b"accept"), b"")
        encoder, content_type = choose_encoder(accept.decode("latin-1"))
        output = await asyncio.to_thread(encoder, registry)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(output)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": output})

    return app


def merged_registry(workers: Workers) -> CollectorRegistry:
    """A registry whose exposition is this process's metrics and every worker's, labelled ``worker``.

    Each process counts its own requests; the series of process N carry ``worker="N"`` (0 is
    the main process), so ``sum without (worker)`` gives the pod's totals, as for any
    multi-process exporter. prometheus_client's own multiprocess mode is not used: it must be
    chosen before the first import, reports gauges differently, and cannot run gate's
    scrape-time collectors (the caches).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(workers))
    return registry


class _Merged:
    def __init__(self, workers: Workers) -> None:
        self._workers = workers

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        # This process's metrics take the same text round trip as the workers', so that each
        # family has one name and type whichever process it came from.
        for worker, text in [("0", generate_latest(REGISTRY)), *self._workers.expositions()]:
            for family in text_string_to_metric_families(text.decode()):
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                merged.samples.extend(
                    sample._replace(labels={**sample.labels, "worker": worker}) for sample in family.samples
                )
        return families.values()


def listen_to_main_process(
    control: Connection, stop: Callable[[], None], reload: Callable[[], tuple[bool, str]]
) -> None:
    """In a worker: answer the main process until it says stop or is gone, then call ``stop``.

    ``reload`` loads the policy sources and says whether it worked, with the bundle digest or why not.
    """
    while True:
        try:
            message = control.recv()
        except (EOFError, OSError):
            break
        if not isinstance(message, tuple) or len(message) != 3 or message[0] not in ("metrics", "reload"):
            break  # ("stop",), or nothing this version knows
        kind, number, payload = message
        answer: Any
        try:
            if kind == "metrics":
                answer = generate_latest(REGISTRY)
            else:
                # The files the main process compiled, not what the sources hold by now.
                with _pinned(payload):
                    answer = reload()
        except Exception:
            log.exception("answering the main process's %r failed", kind)
            answer = None if kind == "metrics" else (False, "unexpected error; the worker's log has details")
        try:
            control.send((number, answer))
        except (OSError, ValueError):
            break
    stop()


def _pinned(snapshot: SourcesSnapshot | None) -> contextlib.AbstractContextManager[None]:
    """:func:`policies._loader.pinned` (imported only when there is a snapshot: the engine is big)."""
    if snapshot is None:
        return contextlib.nullcontext()
    from policies._loader import pinned

    return pinned(snapshot)


def _policy_files_read(config: Config) -> SourcesSnapshot | None:
    """The policy files this thread's last load read, when they were the configured sources."""
    if not config.policies.sources:
        return None
    from policies._loader import last_read

    snapshot = last_read()
    if snapshot is None or snapshot.sources != tuple(str(p) for p in config.policies.sources):
        return None
    return snapshot


def _worker_main(config: Config, role: WorkerRole) -> None:
    # Imported here: gate.server._run imports this module.
    from gate import _logging
    from gate.errors import GateError
    from gate.server._run import GateServer

    _logging.configure(config.log.level, config.log.format, fields={"worker": role.index})
    try:
        # The worker's first load compiles the main process's policy files (WorkerRole.policies).
        with _pinned(role.policies):
            asyncio.run(GateServer(config, worker=role, own_process=True).run())
    except GateError as error:
        log.error("worker %d failed: %s", role.index, error.message)
        with contextlib.suppress(OSError, ValueError):
            role.control.send(("failed", error.message))
        raise SystemExit(1) from None
    except Exception as error:
        log.exception("worker %d failed unexpectedly", role.index)
        with contextlib.suppress(OSError, ValueError):
            role.control.send(("failed", f"unexpected {type(error).__name__}; the log has details"))
        raise SystemExit(1) from None
