"""How fast ``gate serve`` becomes SERVING, how much memory it holds idle, how it stops.

Each run spawns a server, polls ``grpc.health.v1.Health/Check`` every 10 ms
(a fresh connection per probe, as a Kubernetes gRPC probe would) until it
answers SERVING, lets it idle for 2 s, reads its RSS (VmRSS of the process and
any children), then sends SIGTERM and times the exit.

gate runs K times on one data dir: the first run creates the SQLite database
(migrations, the webhook's self-signed certificate), the later ones reopen it.
Every gate run is paired with the floor: a minimal grpc.aio server started
with ``python -c`` that only binds a port and answers health SERVING, i.e. the
cost of Python plus grpc that no gate change can remove. On a shared machine
only the comparison with that floor, measured in the same run, means much.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from _harness import (
    Children,
    GatePorts,
    fmt_num,
    free_port,
    gate_command,
    gate_env,
    log_problems,
    log_tail,
    median,
    serving_probe,
    sigterm_as_exit,
    spawn,
    tree_rss_bytes,
    wait_until,
)

TARGET_SERVING_S = 2.0
TARGET_RSS_MB = 150.0
POLL_INTERVAL = 0.010  # s between health probes
PROBE_TIMEOUT = 0.100  # s per probe: short, so that a probe never hides the moment it turns SERVING
SERVING_LIMIT = 60.0  # s before a start counts as failed
SHUTDOWN_LIMIT = 30.0  # s after SIGTERM before the process group is killed
MB = 1024 * 1024

# The floor: what any Python gRPC service pays before its own code runs.
FLOOR_SOURCE = """
import asyncio, signal, sys
import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

async def main():
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port("127.0.0.1:" + sys.argv[1])
    await server.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)

asyncio.run(main())
"""


@dataclass(slots=True)
class Run:
    """One start-to-exit of one server (NaN where the step was not reached)."""

    number: int
    what: str  # "floor" or "gate"
    serving_s: float = math.nan
    idle_rss_mb: float = math.nan
    shutdown_s: float = math.nan
    exit_code: int | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start one server and where it answers."""

    what: str
    command: list[str]
    env: dict[str, str] | None
    target: str
    log: Path


def floor_launch(workdir: Path) -> Launch:
    """The minimal grpc.aio health server on a fresh port."""
    port = free_port()
    command = [sys.executable, "-c", FLOOR_SOURCE, str(port)]
    return Launch("floor", command, None, f"127.0.0.1:{port}", workdir / "floor.log")


def gate_launch(workdir: Path, data_dir: Path, database_url: str) -> Launch:
    """``gate serve`` on ``data_dir`` with fresh loopback ports."""
    ports = GatePorts.pick()
    env = gate_env(data_dir, ports, database_url)
    return Launch("gate", gate_command(), env, ports.grpc_target, workdir / "gate.log")


def _terminate(proc: subprocess.Popen[bytes]) -> tuple[float, int | None]:
    # SIGTERM to the server process alone, as Kubernetes does: gate must stop
    # its own listeners. Kill the whole group only if it does not exit in time.
    started = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(SHUTDOWN_LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return math.nan, None
    return time.perf_counter() - started, code


def one_run(number: int, launch: Launch, idle: float, children: Children) -> Run:
    """Start, time SERVING, idle, read RSS, SIGTERM and time the exit."""
    run = Run(number, launch.what)
    with launch.log.open("ab") as log:
        log.write(f"--- run {number} ---\n".encode())
    started = time.perf_counter()
    proc = children.add(spawn(launch.command, launch.env, launch.log))
    try:
        run.serving_s = wait_until(
            serving_probe(launch.target, PROBE_TIMEOUT),
            proc,
            started=started,
            limit=SERVING_LIMIT,
            interval=POLL_INTERVAL,
        )
        time.sleep(idle)
        run.idle_rss_mb = tree_rss_bytes(proc.pid) / MB
        run.shutdown_s, run.exit_code = _terminate(proc)
        if run.exit_code is None:
            run.error = f"still running {SHUTDOWN_LIMIT:.0f} s after SIGTERM (killed)"
    except RuntimeError as exc:
        run.error = f"{exc}\n{log_tail(launch.log)}"
    finally:
        children.stop_all()
    if run.error:
        run.exit_code = proc.returncode
    return run


def _print_run(run: Run, note: str = "") -> None:
    exit_code = "-" if run.exit_code is None else str(run.exit_code)
    print(
        f"{run.number:<5}{run.what:<7}{fmt_num(run.serving_s, '12.3f')}{fmt_num(run.idle_rss_mb, '13.1f')}"
        f"{fmt_num(run.shutdown_s, '13.3f')}{exit_code:>6}  {note}"
    )
    if run.error:
        print(f"      error: {run.error}")


def _mid(runs: list[Run], field: str) -> float:
    return median([v for r in runs if not math.isnan(v := float(getattr(r, field)))])


@dataclass(frozen=True, slots=True)
class Summary:
    """Medians over the runs (gate's first start, on a new data dir, also on its own)."""

    gate_serving_s: float
    gate_serving_s_first: float
    gate_serving_s_max: float
    floor_serving_s: float
    gate_idle_rss_mb: float
    floor_idle_rss_mb: float
    gate_shutdown_s: float
    floor_shutdown_s: float
    gate_exit_codes: tuple[int | None, ...]

    @classmethod
    def of(cls, runs: list[Run]) -> Summary:
        """Summarize the runs of both servers."""
        floor = [r for r in runs if r.what == "floor"]
        gate = [r for r in runs if r.what == "gate"]
        return cls(
            gate_serving_s=_mid(gate, "serving_s"),
            gate_serving_s_first=gate[0].serving_s if gate else math.nan,
            gate_serving_s_max=max((r.serving_s for r in gate), default=math.nan),
            floor_serving_s=_mid(floor, "serving_s"),
            gate_idle_rss_mb=_mid(gate, "idle_rss_mb"),
            floor_idle_rss_mb=_mid(floor, "idle_rss_mb"),
            gate_shutdown_s=_mid(gate, "shutdown_s"),
            floor_shutdown_s=_mid(floor, "shutdown_s"),
            gate_exit_codes=tuple(r.exit_code for r in gate),
        )


def report(s: Summary) -> None:
    """Print the verdict lines."""
    print("-" * 60)
    print(
        f"first start (new data dir, migrations): {s.gate_serving_s_first:.2f} s; "
        f"slowest start: {s.gate_serving_s_max:.2f} s"
    )
    print(
        f"serving after: {s.gate_serving_s:.2f} s median (target < {TARGET_SERVING_S:g} s; "
        f"floor {s.floor_serving_s:.2f} s, gate = {s.gate_serving_s / s.floor_serving_s:.1f}x floor)"
    )
    print(
        f"idle RSS: {s.gate_idle_rss_mb:.0f} MB (target < {TARGET_RSS_MB:.0f} MB; "
        f"floor {s.floor_idle_rss_mb:.0f} MB)"
    )
    print(
        f"shutdown after SIGTERM: {s.gate_shutdown_s:.2f} s median (floor {s.floor_shutdown_s:.2f} s); "
        f"exit codes {list(s.gate_exit_codes)} (must all be 0)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="starts of each server (default 5)")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds idle before reading RSS (default 2)")
    parser.add_argument(
        "--database-url", default="", help="gate's database (default: SQLite in the fresh data dir)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Alternate floor and gate starts, print each run, then the verdict."""
    args = parse_args(argv)
    children = Children()
    runs: list[Run] = []
    with sigterm_as_exit(), tempfile.TemporaryDirectory(prefix="gate-startup-") as tmp:
        workdir = Path(tmp)
        data_dir = workdir / "gate-data"
        print(f"{'run':<5}{'what':<7}{'serving s':>12}{'idle RSS MB':>13}{'shutdown s':>13}{'exit':>6}")
        try:
            for number in range(1, args.runs + 1):
                # Alternate who goes first so that slow drift on a shared machine hits both.
                pair = ("floor", "gate") if number % 2 else ("gate", "floor")
                for what in pair:
                    launch = (
                        floor_launch(workdir)
                        if what == "floor"
                        else gate_launch(workdir, data_dir, args.database_url)
                    )
                    run = one_run(number, launch, args.idle, children)
                    runs.append(run)
                    _print_run(run, "new data dir" if what == "gate" and number == 1 else "")
        finally:
            children.stop_all()
        failed = any(r.error for r in runs if r.what == "gate")
        if failed:
            sys.stdout.flush()
            print("gate failed to start or stop cleanly; see the errors above", file=sys.stderr)
        summary = Summary.of(runs)
        report(summary)
        problems = log_problems(workdir / "gate.log")
        if problems:
            print(f"gate logged {len(problems)} warning/error lines, e.g.: {sorted(set(problems))[:3]}")
        if args.json:
            document = {
                "benchmark": "serve_startup",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "cores": os.cpu_count(),
                "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "targets": {"serving_s": TARGET_SERVING_S, "idle_rss_mb": TARGET_RSS_MB},
                "summary": asdict(summary),
                "runs": [asdict(r) for r in runs],
                "gate_log_problems": problems,
            }
            args.json.write_text(json.dumps(document, indent=2) + "\n")
    # The figures are a report, not a test: only a gate that could not be measured fails.
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
