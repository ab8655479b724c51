"""Process and probe helpers shared by the benchmark scripts.

Every benchmark here starts servers as child processes, so the same few
chores recur: pick free loopback ports, build the environment of a
``gate serve`` that touches nothing outside its temp dir, wait for a gRPC
health check to say SERVING, read a process tree's RSS and always stop the
children again. Nothing in here imports gate: the scripts must keep working
(and report a clear error) while gate itself is half written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

LOOPBACK = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
# gate may not be installed in the venv: its children run from the checkout.
REPO_ROOT = BENCH_DIR.parent

# Options for the throw-away probe channels: a private subchannel pool, so a
# probe never reuses another channel's connection (or its reconnect backoff,
# which starts at 1 s and would swamp a 10 ms polling interval).
_PROBE_OPTIONS = (
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 10),
    ("grpc.min_reconnect_backoff_ms", 10),
    ("grpc.max_reconnect_backoff_ms", 10),
)


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


# A directory holding a compiled copy of gate and its policy engine (build_compiled_source):
# import_checkout() puts it first on sys.path when this variable names one.
SOURCE_ENV = "GATE_BENCH_SOURCE"


def gate_command(source: Path | None = None) -> list[str]:
    """How to run ``gate serve`` with the interpreter running this script (the venv's).

    ``-c`` puts the working directory first on sys.path, and :func:`spawn`
    starts children in :data:`REPO_ROOT`: this checkout's gate is the one
    measured, whether or not (or whichever) gate is installed. With ``source``
    (see :func:`build_compiled_source`), the compiled copy there runs instead.
    """
    first = f"import sys; sys.path.insert(0, {str(source)!r}); " if source is not None else ""
    return [sys.executable, "-c", first + "from gate.cli import main; raise SystemExit(main(['serve']))"]


def import_checkout() -> None:
    """Make this checkout's gate importable here too (for its generated protobuf messages).

    When :data:`SOURCE_ENV` names a compiled copy, that copy comes first.
    """
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    source = os.environ.get(SOURCE_ENV)
    if source and source not in sys.path:
        sys.path.insert(0, source)


def compiled_source(work: Path) -> Path:
    """The compiled copy ``$GATE_BENCH_SOURCE`` names (an earlier run's), else a new one under ``work``."""
    named = os.environ.get(SOURCE_ENV)
    return Path(named) if named else build_compiled_source(work)


def build_compiled_source(work: Path) -> Path:
    """Compile the policy engine as the wheel's mypyc hook does, into a copy under ``work`` (~40 s).

    Raises:
        RuntimeError: mypyc failed, or the copy does not load its compiled modules.
    """
    import_checkout()
    from policies._native import compile_copy

    target = work / "compiled"
    target.mkdir()
    print(
        "compiling the policy engine with mypyc (pyproject.toml's hook list) ...", file=sys.stderr, flush=True
    )
    compile_copy(REPO_ROOT, target)
    check = subprocess.run(
        [sys.executable, "-c", "from policies import engine_compiled; print(engine_compiled())"],
        cwd=target,
        capture_output=True,
        text=True,
        check=False,
    )
    if check.stdout.strip() != "True":
        raise RuntimeError(f"the compiled copy in {target} runs interpreted: {check.stdout}{check.stderr}")
    return target


@dataclass(frozen=True, slots=True)
class GatePorts:
    """The three listeners of one ``gate serve``."""

    grpc: int
    webhook: int
    metrics: int

    @classmethod
    def pick(cls) -> GatePorts:
        """Three distinct free loopback ports."""
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        grpc_port, webhook, metrics = sorted(ports)
        return cls(grpc_port, webhook, metrics)

    @property
    def grpc_target(self) -> str:
        """The gRPC address to dial."""
        return f"{LOOPBACK}:{self.grpc}"


def add_decision_options(parser: argparse.ArgumentParser) -> None:
    """``--writer`` and ``--acknowledge``: gate's ``decisions.writer`` and ``decisions.acknowledge``.

    Pass ``args.writer`` and ``args.acknowledge`` to :func:`gate_env`.
    """
    parser.add_argument(
        "--writer",
        choices=("auto", "loop", "process", "thread"),
        default="auto",
        help="gate's decisions.writer: decisions signed and stored by a child process, a thread or the "
        "event loop (loop); auto (gate's default): the event loop on SQLite with --acknowledge stored, "
        "else a process while the serving processes leave a CPU free, else a thread",
    )
    parser.add_argument(
        "--acknowledge",
        choices=("stored", "queued"),
        default="stored",
        help="gate's decisions.acknowledge: answer once the decision is committed (gate's default) "
        "or once the writer has it",
    )


def gate_env(
    data_dir: Path,
    ports: GatePorts,
    database_url: str = "",
    writer: str = "auto",
    acknowledge: str = "stored",
) -> dict[str, str]:
    """The environment of a ``gate serve`` isolated in ``data_dir`` on loopback ports.

    Inherited ``GATE_*`` variables are dropped: a developer's ``GATE_CONFIG``
    or ``GATE_SERVER`` must not change what the benchmark measures.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("GATE_")}
    env.update(
        GATE_DATA_DIR=str(data_dir),
        GATE_GRPC_LISTEN=f"{LOOPBACK}:{ports.grpc}",
        GATE_WEBHOOK_LISTEN=f"{LOOPBACK}:{ports.webhook}",
        GATE_METRICS_LISTEN=f"{LOOPBACK}:{ports.metrics}",
        GATE_LOG_FORMAT="json",
        GATE_DECISIONS_WRITER=writer,
        GATE_DECISIONS_ACKNOWLEDGE=acknowledge,
    )
    if database_url:
        env["GATE_DATABASE_URL"] = database_url
    return env


def spawn(command: Sequence[str], env: Mapping[str, str] | None, log_path: Path) -> subprocess.Popen[bytes]:
    """Start a child in its own process group with stdout and stderr going to ``log_path``.

    A file rather than a pipe: nobody has to drain it, so a chatty server can
    never block on a full pipe in the middle of a measurement.
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,
        )


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The child leads its own session (start_new_session), so its group id is
    # its pid; signalling the group also reaches any grandchildren.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> int | None:
    """SIGTERM the child's process group, SIGKILL it after ``grace`` seconds; return the exit code."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    else:
        # The leader is gone; make sure nothing it started lingers.
        _signal_group(proc, signal.SIGKILL)
    return proc.returncode


class Children:
    """Every child a benchmark starts, stopped on exit whatever happens."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def add(self, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        """Track ``proc`` so that :meth:`stop_all` stops it."""
        self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """Stop the tracked children, newest first."""
        while self._procs:
            stop(self._procs.pop())


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so that ``finally`` blocks stop the children."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def health_status(target: str, timeout: float, service: str = "") -> int | None:
    """One ``grpc.health.v1.Health/Check`` on a fresh connection; None when it did not answer."""
    with grpc.insecure_channel(target, options=_PROBE_OPTIONS) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError:
            return None
        return int(reply.status)


def unary_answers(
    target: str,
    method: str,
    payload: bytes,
    ok_codes: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.OK}),
    timeout: float = 0.25,
) -> bool:
    """One raw-bytes unary call on a fresh connection; true when it ends with one of ``ok_codes``."""
    with grpc.insecure_channel(target, options=_PROBE_OPTIONS) as channel:
        # No serializers: bytes in, bytes out.
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        try:
            call(payload, timeout=timeout)
        except grpc.RpcError as error:
            return error.code() in ok_codes
        return grpc.StatusCode.OK in ok_codes


def serving_probe(target: str, call_timeout: float = 0.25) -> Callable[[], bool]:
    """A probe that is true once the server's overall Health/Check status is SERVING."""
    serving = health_pb2.HealthCheckResponse.SERVING
    return lambda: health_status(target, call_timeout) == serving


def wait_until(
    probe: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    *,
    started: float,
    limit: float,
    interval: float = 0.010,
) -> float:
    """Call ``probe`` every ``interval`` s until true; return seconds since ``started`` (perf_counter).

    Raises:
        RuntimeError: when the process exits or ``limit`` seconds pass first.
    """
    while True:
        if probe():
            return time.perf_counter() - started
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} before it was ready")
        if time.perf_counter() - started > limit:
            raise RuntimeError(f"not ready after {limit:.0f} s")
        time.sleep(interval)


def _child_pids(pid: int) -> list[int]:
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children.extend(int(part) for part in (task / "children").read_text().split())
    return children


def _tree_pids(pid: int) -> list[int]:
    pids: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        pending.extend(_child_pids(current))
    return pids


def tree_rss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` plus that of all its descendants, in bytes."""
    total = 0
    for current in _tree_pids(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024  # the kernel reports kB
                    break
    return total


def tree_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` and its descendants so far, in seconds."""
    return sum(process_cpu_seconds(pid).values())


def process_cpu_seconds(pid: int) -> dict[int, float]:
    """User plus system CPU time so far of ``pid`` and of each of its descendants apart (all threads)."""
    spent: dict[int, float] = {}
    for current in _tree_pids(pid):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{current}/stat").read_text()
            # Fields after the command name (which may contain spaces) start at ")";
            # utime and stime are fields 14 and 15 of the whole line.
            fields = stat[stat.rindex(")") + 2 :].split()
            spent[current] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return spent


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a child's log, for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def log_problems(path: Path) -> list[str]:
    """JSON log lines at warning level or above (gate logs one object per line)."""
    problems: list[str] = []
    with contextlib.suppress(OSError):
        for line in path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in {"warning", "error", "critical"}:
                problems.append(str(entry.get("message", line)))
    return problems


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (``fraction`` in 0..1); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    """The median, NaN when there is nothing to take it of."""
    return statistics.median(values) if values else float("nan")


def fmt_num(value: float, spec: str) -> str:
    """``format(value, spec)``, with NaN (a step never reached) as a "-" of the same width."""
    if math.isnan(value):
        return format("-", ">" + spec.split(".", maxsplit=1)[0])
    return format(value, spec)
