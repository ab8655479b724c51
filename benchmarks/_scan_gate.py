"""The gate side of the scan benchmark: a configured ``gate serve``, its scan RPCs, a throwaway database.

Calls go through one plain (synchronous) gRPC channel with gate's generated
messages, the way a pipeline step or ``gate scan`` calls a running gate.
Server timestamps (a scan's created/started/finished times, each event's time)
come from the same machine's clock as the client's ``time.time()``, so they can
be subtracted from each other to split the client's wall time.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
from _harness import (
    Children,
    GatePorts,
    gate_command,
    gate_env,
    import_checkout,
    log_tail,
    serving_probe,
    spawn,
    wait_until,
)

READY_LIMIT = 90.0  # s for gate to say SERVING (a new PostgreSQL database runs migrations)
# scanners._process sends a "running" heartbeat this often while a tool runs.
HEARTBEAT_S = 1.0
CALL_TIMEOUT = 900.0  # s for one scan or import, far above anything measured
# The scanned tree stands for one commit of a repository.
ARTIFACT = "git:" + "c" * 40

_STREAM_OPTIONS = (("grpc.max_receive_message_length", 64 * 1024 * 1024),)


def _messages() -> Any:
    # Imported late: a half-written gate must make the benchmark fail in one line.
    import_checkout()
    try:
        from gate.v1 import common_pb2, scan_pb2
    except ImportError as exc:
        raise RuntimeError(f"cannot import gate's generated messages: {exc}") from None
    return common_pb2, scan_pb2


def cpu_with_reaped_children(pid: int) -> float:
    """User+system CPU seconds of ``pid`` plus those of the children it has waited for.

    gate waits for every scanner process it starts, so the tool's CPU ends up in
    gate's ``cutime``/``cstime`` once the scan is over.
    """
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name (which may contain spaces) start at ")";
    # utime, stime, cutime and cstime are fields 14 to 17 of the whole line.
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _seconds(stamp: Any) -> float:
    """A protobuf Timestamp as seconds since the epoch; NaN when unset."""
    if stamp.seconds == 0 and stamp.nanos == 0:
        return math.nan
    return float(stamp.seconds) + stamp.nanos / 1e9


def scanner_config(gitleaks: Path, trivy: Path, trivy_cache: Path, timeout: int) -> str:
    """gate's configuration: both real scanners, Trivy looking for secrets only, a private cache."""
    return (
        "scanners:\n"
        f"  gitleaks:\n    binary: '{gitleaks}'\n    timeout: {timeout}\n"
        f"  trivy:\n    binary: '{trivy}'\n    timeout: {timeout}\n"
        f"    options:\n      scanners: secret\n      cache_dir: '{trivy_cache}'\n"
    )


@dataclass
class GateServer:
    """One running ``gate serve`` and a channel to it."""

    name: str
    proc: subprocess.Popen[bytes]
    target: str
    log: Path
    channel: grpc.Channel = field(init=False)

    def __post_init__(self) -> None:
        self.channel = grpc.insecure_channel(self.target, options=_STREAM_OPTIONS)

    def close(self) -> None:
        """Close the client channel (the process is stopped by its Children)."""
        self.channel.close()


def start_gate(
    name: str, workdir: Path, children: Children, config_text: str, database_url: str = ""
) -> GateServer:
    """Start ``gate serve`` with ``config_text`` on a fresh data dir; wait until it is SERVING."""
    ports = GatePorts.pick()
    config = workdir / f"{name}.yaml"
    config.write_text(config_text)
    env = gate_env(workdir / f"{name}-data", ports, database_url)
    env["GATE_CONFIG"] = str(config)
    log = workdir / f"{name}.log"
    proc = children.add(spawn(gate_command(), env, log))
    try:
        wait_until(serving_probe(ports.grpc_target), proc, started=time.perf_counter(), limit=READY_LIMIT)
    except RuntimeError as exc:
        raise RuntimeError(f"gate ({name}): {exc}\n--- gate log ---\n{log_tail(log)}") from None
    return GateServer(name, proc, ports.grpc_target, log)


@dataclass(slots=True)
class ScanTiming:
    """One scan through gate, timed by the client, with the server's timestamps (epoch seconds)."""

    wall_s: float
    sent: float  # client clock when StartScan was sent
    received: float  # client clock when the event carrying the completed scan arrived
    created: float = math.nan
    started: float = math.nan
    spawned: float = math.nan  # the provider's "tool running" event (right after the process started)
    tool_done: float = math.nan  # the provider's "finished" event (the tool exited, its report read)
    finished: float = math.nan  # the scan's finished_at (parsed, about to be stored)
    final_event: float = math.nan  # the last event's time (stored)
    state: str = ""
    error: str = ""
    findings: int = 0
    cpu_s: float = math.nan  # gate's CPU plus the tool's over the scan

    def split(self) -> dict[str, float]:
        """Where the wall time went, in seconds (NaN where an event was not seen)."""
        return {
            "request": self.created - self.sent,
            "queue": self.started - self.created,
            "prepare": self.spawned - self.started,
            "tool": self.tool_done - self.spawned,
            "parse": self.finished - self.tool_done,
            "store": self.final_event - self.finished,
            "deliver": self.received - self.final_event,
        }


def scan_once(gate: GateServer, scanner: str, location: Path) -> ScanTiming:
    """StartScan of one scanner on ``location``, then WatchScan until the event with the completed scan."""
    common_pb2, scan_pb2 = _messages()
    start = gate.channel.unary_unary(
        "/gate.v1.ScanService/StartScan",
        request_serializer=scan_pb2.StartScanRequest.SerializeToString,
        response_deserializer=scan_pb2.StartScanResponse.FromString,
    )
    watch = gate.channel.unary_stream(
        "/gate.v1.ScanService/WatchScan",
        request_serializer=scan_pb2.WatchScanRequest.SerializeToString,
        response_deserializer=scan_pb2.ScanEvent.FromString,
    )
    request = scan_pb2.StartScanRequest(
        target=scan_pb2.ScanTarget(kind=scan_pb2.TARGET_KIND_FILESYSTEM, location=str(location)),
        artifact=common_pb2.ArtifactRef(digest=ARTIFACT),
        scanners=[scanner],
    )
    cpu_before = cpu_with_reaped_children(gate.proc.pid)
    sent = time.time()
    began = time.perf_counter()
    (queued,) = start(request, timeout=CALL_TIMEOUT).scans
    events = list(_until_done(watch(scan_pb2.WatchScanRequest(id=queued.id), timeout=CALL_TIMEOUT)))
    wall = time.perf_counter() - began
    timing = ScanTiming(wall_s=wall, sent=sent, received=sent + wall)
    timing.cpu_s = cpu_with_reaped_children(gate.proc.pid) - cpu_before
    done = events[-1].scan
    timing.state = scan_pb2.ScanState.Name(done.state)
    timing.error = done.error
    timing.findings = done.finding_count
    timing.created = _seconds(done.created_at)
    timing.started = _seconds(done.started_at)
    timing.finished = _seconds(done.finished_at)
    timing.final_event = _seconds(events[-1].progress.time)
    _mark_tool_events(timing, events)
    return timing


def _until_done(stream: Iterator[Any]) -> Iterator[Any]:
    for event in stream:
        yield event
        if event.HasField("scan"):
            return
    raise RuntimeError("WatchScan ended without the completed scan")


def _mark_tool_events(timing: ScanTiming, events: list[Any]) -> None:
    # The provider says "starting" (preparing), then "running" once the tool's process
    # exists and again every HEARTBEAT_S, then "finished" when the tool has exited. A
    # watcher that subscribes late gets the latest event first: a "running" event is the
    # spawn if the "starting" before it was seen, or if it came less than one heartbeat
    # after the scan started (no heartbeat can be that early).
    seen_starting = first_running = False
    for event in events[:-1]:
        phase = event.progress.phase
        at = _seconds(event.progress.time)
        if phase == "starting":
            seen_starting = True
        elif phase == "running" and not first_running:
            first_running = True  # the later ones are heartbeats
            if seen_starting or at - timing.started < HEARTBEAT_S:
                timing.spawned = at
        elif phase == "finished":
            timing.tool_done = at


@dataclass(slots=True)
class ImportTiming:
    """One ImportReport, timed by the client, with the stored scan's timestamps (epoch seconds)."""

    wall_s: float
    sent: float
    received: float
    created: float
    finished: float
    findings: int
    counts: tuple[int, ...]
    server_cpu_s: float

    def split(self) -> dict[str, float]:
        """Client wall time cut at the scan's created_at and finished_at (seconds)."""
        return {
            # transfer, deserialising, parsing the report, recording the artifact
            "to_record": self.created - self.sent,
            # adding the running scan, binding and counting the findings
            "record": self.finished - self.created,
            # one transaction: findings, compressed report, terminal state; then the answer
            "store_reply": self.received - self.finished,
        }


def import_request(report: bytes, digest: str) -> Any:
    """An ImportReportRequest of a Trivy report for artifact ``digest``."""
    common_pb2, scan_pb2 = _messages()
    return scan_pb2.ImportReportRequest(
        artifact=common_pb2.ArtifactRef(digest=digest),
        artifact_kind=common_pb2.ARTIFACT_KIND_SOURCE,
        scanner="trivy",
        report=report,
    )


def import_once(gate: GateServer, request: Any, cpu_of_server: Any) -> ImportTiming:
    """One ImportReport call; ``cpu_of_server()`` gives the server's CPU seconds so far."""
    _, scan_pb2 = _messages()
    call = gate.channel.unary_unary(
        "/gate.v1.ScanService/ImportReport",
        request_serializer=scan_pb2.ImportReportRequest.SerializeToString,
        response_deserializer=scan_pb2.Scan.FromString,
    )
    cpu_before = cpu_of_server()
    sent = time.time()
    began = time.perf_counter()
    scan = call(request, timeout=CALL_TIMEOUT)
    wall = time.perf_counter() - began
    counts = scan.counts
    return ImportTiming(
        wall_s=wall,
        sent=sent,
        received=sent + wall,
        created=_seconds(scan.created_at),
        finished=_seconds(scan.finished_at),
        findings=scan.finding_count,
        counts=(counts.critical, counts.high, counts.medium, counts.low, counts.info, counts.unknown),
        server_cpu_s=cpu_of_server() - cpu_before,
    )


def _database_url(admin_url: str, database: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit(("postgresql+psycopg", parts.netloc, f"/{database}", parts.query, ""))


@contextlib.contextmanager
def throwaway_database(admin_url: str, database: str) -> Iterator[str]:
    """Create ``database`` through ``admin_url`` (dropping a leftover first); drop it on exit.

    Yields:
        gate's URL of the new database.
    """
    try:
        import psycopg
    except ImportError:
        raise RuntimeError("psycopg is not installed (pip install -e '.[postgres]')") from None
    if not database.replace("_", "").isalnum():
        raise RuntimeError(f"--postgres-database: expected letters, digits and _, got {database!r}")
    plain = urlunsplit(("postgresql", *urlsplit(admin_url)[1:]))
    try:
        admin = psycopg.connect(plain, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        raise RuntimeError(f"PostgreSQL at {urlsplit(admin_url).netloc} is not reachable: {exc}") from None
    with admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {database}")
        try:
            yield _database_url(admin_url, database)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
