"""gate's gRPC throughput against the floor of a bare grpc.aio echo server.

Two servers run as separate processes for the whole benchmark:

* echo: ``_echo_server.py``, one generic unary handler returning its request
  bytes (256 bytes), no protobuf, no executor: what Python plus grpc.aio cost;
* gate: ``gate serve`` on a fresh temp data dir (SQLite unless
  ``--database-url``), answering ``gate.v1.ScanService/GetScan`` for random
  unknown ids with NOT_FOUND from its store; or, with ``--rpc decide``,
  ``gate.v1.DecisionService/Decide`` for an image at stage ``publish`` with the
  repository's own policies (deployments/policies/kyverno: Pod Security
  baseline, allowed registries, no secrets, no fixable criticals), every answer
  recorded and signed, evidence read through the per-replica cache. The images
  are 8 pinned digests, each with a real Trivy report imported before the runs
  (``ImportReport``), as a pipeline's scan stage leaves them; ``--unknown-images``
  asks for 8 tags gate holds no evidence for instead (each Decide then asks the
  store, since a tag not found is not cached: one recorded a moment later must
  count at once). The two verifyImages policies are left out: they need a
  registry holding signed images (benchmarks/verify.py measures that path: ~11 us
  per cached lookup).

The same client (``_load_client.py``, or h2load with ``--client h2load``) drives
each in turn with the same channels and calls in flight; rounds alternate the
order (echo first, then gate first) so that drift on a noisy machine hits both.
The figure that matters is the per-round ratio gate/echo: absolute RPC/s mean
little on a shared 2-core machine. Exit status is 0 whatever the ratio: this is
a report, not a test.

Two bounds follow the ratio. The cost's bound: the highest ratio at the CPU gate
spent per call (all of its processes) plus the client's, were every core busy;
below it, gate left CPU unused. With ``--rpc decide`` (pinned images) also the
work's bound: once gate has stopped, ``_decide_stages.py`` answers the same
Decide requests in process over the data gate left, one after the other, and
times gate's own stages (the request parsed, the decision and its protobuf
answer; the signature; the insert). Echo's CPU per call plus those stages plus
the client's cheapest CPU per call, over every core, is the most any server
doing this work could answer on this machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from _echo_server import FULL_METHOD as ECHO_METHOD
from _harness import (
    BENCH_DIR,
    LOOPBACK,
    REPO_ROOT,
    SOURCE_ENV,
    Children,
    GatePorts,
    add_decision_options,
    compiled_source,
    fmt_num,
    free_port,
    gate_command,
    gate_env,
    import_checkout,
    log_problems,
    log_tail,
    median,
    percentile,
    process_cpu_seconds,
    serving_probe,
    sigterm_as_exit,
    spawn,
    stop,
    unary_answers,
    wait_until,
)
from _load_client import read_payloads, write_payloads

GATE_METHOD = "/gate.v1.ScanService/GetScan"
TARGET_RATIO = 0.60
ECHO_PAYLOAD_BYTES = 256
# Distinct GetScan ids per run: enough that no cache could hold "the" id.
GATE_REQUESTS = 4096
READY_LIMIT = 60.0  # s for a server to come up (gate's first start runs migrations)
# Above this share of one core the client, not the server, probably sets the pace.
CLIENT_BOUND_SHARE = 0.90


@dataclass(slots=True)
class Figures:
    """One measurement of one server (latencies in ms, NaN when nothing completed)."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    codes: dict[str, int]
    completed_total: int  # calls completed including the warm-up
    client_cpu_share: float = math.nan  # of one core, over the client's run
    server_cpu_us_per_rpc: float = math.nan
    # Of one core, over the run: the server's busiest process. Near 1 it caps the server alone,
    # whatever the other processes have spare (the kernel spreads connections by address hash).
    busiest_core_share: float = math.nan

    @classmethod
    def from_client(cls, data: dict[str, Any]) -> Figures:
        """Parse what ``_load_client.py`` prints."""
        return cls(
            rps=float(data["rps"]),
            p50_ms=float(data["p50_ms"]),
            p99_ms=float(data["p99_ms"]),
            errors=int(data["errors"]),
            codes={str(k): int(v) for k, v in data["codes"].items()},
            completed_total=int(data["completed_total"]),
            client_cpu_share=float(data["client_cpu_share"]),
        )


@dataclass(frozen=True, slots=True)
class Server:
    """One server under test and how to call it."""

    name: str
    target: str
    method: str
    payloads: Path
    ok_codes: tuple[str, ...]
    proc: subprocess.Popen[bytes]
    log: Path


DECIDE_METHOD = "/gate.v1.DecisionService/Decide"
DECIDE_TARGET_RATIO = 0.50
POLICY_DIR = REPO_ROOT / "deployments" / "policies" / "kyverno"
# A real Trivy image report (3 KB, no critical finding with a fix) imported as each image's scan.
TRIVY_REPORT = REPO_ROOT.parent / "shared" / "fixtures" / "scanners" / "trivy" / "issue_9092.json"
DECIDE_IMAGES = 8


def _image_digest(index: int) -> str:
    return "sha256:" + hashlib.sha256(f"gate-benchmark-image-{index}".encode()).hexdigest()


def _gate_requests(
    count: int, rpc: str = "getscan", *, unknown_images: bool = False, by_digest: bool = False
) -> list[bytes]:
    # Imported here, not at the top: while gate's package is broken or half
    # written the benchmark should say so in one line, not with a traceback.
    import_checkout()
    try:
        from gate.v1 import common_pb2, decision_pb2, scan_pb2
    except ImportError as exc:
        raise RuntimeError(f"cannot import gate.v1 stubs from {REPO_ROOT}: {exc}") from None

    if rpc == "decide":
        # A handful of images, so that the evidence cache serves them as in a busy pipeline.
        def reference(i: int) -> str:
            n = i % DECIDE_IMAGES
            repository = f"registry.example.com/shop/app-{n}"
            return f"{repository}:1.{n}" if unknown_images else f"{repository}@{_image_digest(n)}"

        def artifact(i: int) -> Any:
            if by_digest:  # as `gate decide sha256:...` sends it: gate names the image itself
                return common_pb2.ArtifactRef(digest=_image_digest(i % DECIDE_IMAGES))
            return common_pb2.ArtifactRef(reference=reference(i))

        return [
            decision_pb2.DecideRequest(
                artifact=artifact(i), stage="publish", project="shop"
            ).SerializeToString()
            for i in range(count)
        ]
    return [scan_pb2.GetScanRequest(id=str(uuid.uuid4())).SerializeToString() for _ in range(count)]


def start_echo(workdir: Path, children: Children, processes: int = 1) -> Server:
    """Start the echo floor (``processes`` on one port) and wait until it answers."""
    port = free_port()
    log = workdir / "echo.log"
    script = str(BENCH_DIR / "_echo_server.py")
    command = [sys.executable, script, f"--port={port}", f"--processes={processes}"]
    proc = children.add(spawn(command, None, log))
    payloads = workdir / "echo.payloads"
    payload = os.urandom(ECHO_PAYLOAD_BYTES)
    write_payloads(payloads, [payload])
    target = f"{LOOPBACK}:{port}"
    _wait_ready("echo", proc, log, lambda: unary_answers(target, ECHO_METHOD, payload))
    return Server("echo", target, ECHO_METHOD, payloads, ("OK",), proc, log)


def _import_evidence(target: str) -> None:
    """One Trivy report per benchmark image, imported as a pipeline's scan stage would."""
    from gate.v1 import common_pb2, scan_pb2

    report = TRIVY_REPORT.read_bytes()
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            "/gate.v1.ScanService/ImportReport",
            request_serializer=scan_pb2.ImportReportRequest.SerializeToString,
            response_deserializer=scan_pb2.Scan.FromString,
        )
        for index in range(DECIDE_IMAGES):
            call(
                scan_pb2.ImportReportRequest(
                    artifact=common_pb2.ArtifactRef(digest=_image_digest(index)),
                    artifact_kind=common_pb2.ARTIFACT_KIND_IMAGE,
                    artifact_name=f"registry.example.com/shop/app-{index}",
                    scanner="trivy",
                    report=report,
                    project="shop",
                ),
                timeout=30,
            )


def decide_policy_sources() -> str:
    """``GATE_POLICY_SOURCES`` for Decide: the repository's policies but the two that need a registry."""
    chosen = [
        path
        for path in sorted(POLICY_DIR.glob("*/*.yaml"))
        if path.parent.name not in ("verify-image-signatures", "require-attestations")
    ]
    return os.pathsep.join(str(path) for path in chosen)


def start_gate(
    workdir: Path,
    children: Children,
    database_url: str,
    rpc: str = "getscan",
    *,
    unknown_images: bool = False,
    by_digest: bool = False,
    source: Path | None = None,
    writer: str = "auto",
    acknowledge: str = "stored",
    processes: int = 1,
) -> Server:
    """Start ``gate serve`` on a fresh data dir and wait until Health/Check says SERVING.

    ``source``: a compiled copy of gate (``_harness.build_compiled_source``) to run instead.
    ``writer``, ``acknowledge``, ``processes``: its ``decisions.writer``,
    ``decisions.acknowledge`` and ``grpc.processes``.
    """
    ports = GatePorts.pick()
    log = workdir / "gate.log"
    env = gate_env(workdir / "gate-data", ports, database_url, writer, acknowledge)
    env["GATE_GRPC_PROCESSES"] = str(processes)
    method = GATE_METHOD
    if rpc == "decide":
        env["GATE_POLICY_SOURCES"] = decide_policy_sources()
        method = DECIDE_METHOD
    proc = children.add(spawn(gate_command(source), env, log))
    payloads = workdir / "gate.payloads"
    write_payloads(
        payloads, _gate_requests(GATE_REQUESTS, rpc, unknown_images=unknown_images, by_digest=by_digest)
    )
    _wait_ready("gate", proc, log, serving_probe(ports.grpc_target))
    if rpc == "decide" and not unknown_images:
        _import_evidence(ports.grpc_target)
    # SERVING alone does not prove the measured RPC works: make one call first.
    answered = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.OK})
    probe = _gate_requests(1, rpc, unknown_images=unknown_images, by_digest=by_digest)[0]
    if not unary_answers(ports.grpc_target, method, probe, answered, timeout=5.0):
        raise RuntimeError(f"gate does not answer {method}\n{log_tail(log)}")
    return Server("gate", ports.grpc_target, method, payloads, ("OK", "NOT_FOUND"), proc, log)


def _wait_ready(name: str, proc: subprocess.Popen[bytes], log: Path, probe: Callable[[], bool]) -> None:
    try:
        wait_until(probe, proc, started=time.perf_counter(), limit=READY_LIMIT, interval=0.05)
    except RuntimeError as exc:
        raise RuntimeError(f"{name}: {exc}\n--- {name} log ---\n{log_tail(log)}") from None


def run_python_client(server: Server, args: argparse.Namespace) -> Figures:
    """Drive ``server`` with the grpc.aio client process."""
    command = [
        sys.executable,
        str(BENCH_DIR / "_load_client.py"),
        f"--target={server.target}",
        f"--method={server.method}",
        f"--payloads={server.payloads}",
        f"--channels={args.channels}",
        f"--concurrency={args.concurrency}",
        f"--warmup={args.warmup}",
        f"--duration={args.duration}",
        "--ok-codes",
        *server.ok_codes,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=args.warmup + args.duration + 120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"load client failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return Figures.from_client(json.loads(done.stdout.strip().splitlines()[-1]))


def _h2load_figures(output: str, log_file: Path, warmup: float, duration: float) -> Figures:
    counts = re.search(
        r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        output,
    )
    if counts is None:
        raise RuntimeError(f"cannot parse h2load output:\n{output[-2000:]}")
    succeeded = int(counts.group(1))
    errors = sum(int(counts.group(i)) for i in (2, 3, 4))
    # One line per request of the measurement: start (µs since epoch), HTTP status, duration (µs).
    latencies = [
        int(f[2]) / 1e6 for f in (line.split() for line in log_file.read_text().splitlines()) if len(f) >= 3
    ]
    return Figures(
        rps=succeeded / duration,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        errors=errors,
        codes={"http_2xx": succeeded},
        # h2load counts the measured window only, while the server's CPU time is
        # taken over warm-up too: assume the warm-up ran at the same rate.
        completed_total=round((succeeded + errors) * (warmup + duration) / duration),
    )


def run_h2load(server: Server, args: argparse.Namespace, workdir: Path) -> Figures:
    """Drive ``server`` with h2load: written in C, so the client is nowhere near the bottleneck.

    h2load sees HTTP statuses only, not grpc-status trailers: a gRPC error
    other than a transport failure counts as success here, and every request
    carries the same payload (the first of the server's payload file).
    """
    message = read_payloads(server.payloads)[0]
    body = workdir / f"{server.name}.grpc-frame"
    # A gRPC length-prefixed message: flag 0 (not compressed), 4-byte big-endian length.
    body.write_bytes(b"\x00" + len(message).to_bytes(4, "big") + message)
    log_file = workdir / f"{server.name}.h2load.log"
    log_file.unlink(missing_ok=True)
    command = [
        "h2load",
        f"--clients={args.channels}",
        f"--max-concurrent-streams={math.ceil(args.concurrency / args.channels)}",
        "--threads=1",
        # h2load takes whole numbers or unit suffixes ("8", "1500ms"), not "8.0".
        f"--duration={round(args.duration * 1000)}ms",
        f"--warm-up-time={round(args.warmup * 1000)}ms",
        f"--data={body}",
        f"--log-file={log_file}",
        "--header=content-type: application/grpc",
        "--header=te: trailers",
        f"http://{server.target}{server.method}",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=args.warmup + args.duration + 120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"h2load failed ({done.returncode}):\n{done.stdout[-1000:]}{done.stderr[-1000:]}")
    return _h2load_figures(done.stdout, log_file, args.warmup, args.duration)


def measure(server: Server, args: argparse.Namespace, workdir: Path) -> Figures:
    """One measurement of ``server``, with the CPU time the server spent per RPC."""
    if server.proc.poll() is not None:
        raise RuntimeError(f"{server.name} exited ({server.proc.returncode})\n{log_tail(server.log)}")
    before = process_cpu_seconds(server.proc.pid)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    if args.client == "h2load":
        figures = run_h2load(server, args, workdir)
        # h2load does not report its own CPU time: take it from the reaped child's usage.
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime - reaped.ru_utime) + (after.ru_stime - reaped.ru_stime)
        figures.client_cpu_share = used / (time.perf_counter() - started)
    else:
        figures = run_python_client(server, args)
    elapsed = time.perf_counter() - started
    after = process_cpu_seconds(server.proc.pid)
    spent = {pid: seconds - before.get(pid, 0.0) for pid, seconds in after.items()}
    server_cpu = sum(spent.values())
    figures.busiest_core_share = max(spent.values(), default=math.nan) / elapsed
    # Over warm-up plus measurement: CPU per call stays meaningful when the
    # client and the server fight over the same two cores, unlike RPC/s.
    if figures.completed_total:
        figures.server_cpu_us_per_rpc = server_cpu / figures.completed_total * 1e6
    return figures


def _header() -> str:
    return (
        f"{'round':<7}{'server':<7}{'RPC/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'srv µs/RPC':>12}{'busiest':>9}{'client CPU':>12}"
    )


def _row(label: str, name: str, f: Figures) -> str:
    return (
        f"{label:<7}{name:<7}{fmt_num(f.rps, '9.0f')}{fmt_num(f.p50_ms, '9.2f')}"
        f"{fmt_num(f.p99_ms, '9.2f')}{f.errors:8d}{fmt_num(f.server_cpu_us_per_rpc, '12.0f')}"
        f"{fmt_num(100 * f.busiest_core_share, '8.0f')}%{fmt_num(100 * f.client_cpu_share, '11.0f')}%"
    )


def _median_figures(runs: list[Figures]) -> Figures:
    def mid(values: list[float]) -> float:
        return median([v for v in values if not math.isnan(v)])

    return Figures(
        rps=mid([f.rps for f in runs]),
        p50_ms=mid([f.p50_ms for f in runs]),
        p99_ms=mid([f.p99_ms for f in runs]),
        errors=sum(f.errors for f in runs),  # a total: any error matters
        codes={},
        completed_total=sum(f.completed_total for f in runs),
        client_cpu_share=mid([f.client_cpu_share for f in runs]),
        server_cpu_us_per_rpc=mid([f.server_cpu_us_per_rpc for f in runs]),
        busiest_core_share=mid([f.busiest_core_share for f in runs]),
    )


@dataclass(slots=True)
class Result:
    """Every round, the medians and the headline ratio."""

    rounds: list[dict[str, Any]]
    echo: Figures
    gate: Figures
    ratio: float  # median of the per-round ratios gate/echo of RPC/s


def run_rounds(servers: dict[str, Server], args: argparse.Namespace, workdir: Path) -> Result:
    """Measure echo and gate ``args.rounds`` times, alternating which goes first; print as we go."""
    print(_header())
    rounds: list[dict[str, Any]] = []
    runs: dict[str, list[Figures]] = {"echo": [], "gate": []}
    ratios: list[float] = []
    for number in range(1, args.rounds + 1):
        order = ("echo", "gate") if number % 2 else ("gate", "echo")
        figures = {name: measure(servers[name], args, workdir) for name in order}
        ratio = figures["gate"].rps / figures["echo"].rps if figures["echo"].rps else math.nan
        for name in ("echo", "gate"):
            print(_row(str(number), name, figures[name]))
            runs[name].append(figures[name])
        print(f"{'':<14}ratio gate/echo {ratio:.2f}")
        ratios.append(ratio)
        rounds.append(
            {"round": number, "order": list(order), "ratio": ratio}
            | {name: asdict(f) for name, f in figures.items()}
        )
    result = Result(rounds, _median_figures(runs["echo"]), _median_figures(runs["gate"]), median(ratios))
    print("-" * len(_header()))
    print(_row("median", "echo", result.echo))
    print(_row("median", "gate", result.gate))
    return result


def cost_bound(result: Result, cores: int) -> float:
    """The highest ratio gate/echo at gate's measured CPU per RPC, were every core busy; NaN if unmeasured.

    The client's CPU per RPC (its share of a core over its run, per RPC answered) shares the cores.
    """
    gate, echo = result.gate, result.echo
    if not (gate.rps > 0 and echo.rps > 0 and gate.server_cpu_us_per_rpc > 0) or math.isnan(
        gate.client_cpu_share
    ):
        return math.nan
    client_us = gate.client_cpu_share * 1e6 / gate.rps
    return cores * 1e6 / (gate.server_cpu_us_per_rpc + client_us) / echo.rps


_STAGES = re.compile(r"^stages us: decide ([\d.]+) seal ([\d.]+) store ([\d.]+)$", re.M)


def decide_stages(
    data_dir: Path, database_url: str, source: Path | None, *, by_digest: bool = False
) -> dict[str, float] | None:
    """gate's CPU µs per Decide by stage, in process over the stopped gate's data (``_decide_stages.py``)."""
    env = {key: value for key, value in os.environ.items() if key != SOURCE_ENV}
    env["GATE_POLICY_SOURCES"] = decide_policy_sources()
    if source is not None:
        env[SOURCE_ENV] = str(source)
    command = [sys.executable, str(BENCH_DIR / "_decide_stages.py"), str(data_dir)]
    command += ["--database-url", database_url] if database_url else []
    command += ["--by-digest"] if by_digest else []
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    found = _STAGES.search(done.stdout)
    sample = next((line for line in done.stdout.splitlines() if line.startswith("answer to the first")), "")
    if sample:
        print(f"in process, {sample}")
    if done.returncode != 0 or found is None:
        print(f"_decide_stages.py failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}", file=sys.stderr)
        return None
    return dict(zip(("decide", "seal", "store"), (float(g) for g in found.groups()), strict=True))


def work_bound(result: Result, stages: dict[str, float], cores: int) -> dict[str, float]:
    """The highest ratio gate/echo the work of a Decide allows on ``cores``, were every core busy.

    Per call: the echo floor's own CPU (gRPC, HTTP/2, the call), gate's stages measured in
    process, and the client's CPU per call against echo (its cheapest, so the bound errs generous).
    """
    echo = result.echo
    client_us = echo.client_cpu_share * 1e6 / echo.rps
    needed = echo.server_cpu_us_per_rpc + stages["decide"] + stages["seal"] + stages["store"] + client_us
    return {
        "echo_cpu_us": echo.server_cpu_us_per_rpc,
        "client_cpu_us": client_us,
        **{f"{stage}_cpu_us": value for stage, value in stages.items()},
        "needed_cpu_us": needed,
        "cores": cores,
        "max_rps": cores * 1e6 / needed,
        "max_ratio": cores * 1e6 / needed / echo.rps,
    }


def report(result: Result, gate_log: Path, target: float = TARGET_RATIO) -> list[str]:
    """Print the caveats and the final ratio line; return gate's logged problems."""
    echo, gate = result.echo, result.gate
    if echo.client_cpu_share >= CLIENT_BOUND_SHARE:
        print(
            f"note: the client used {100 * echo.client_cpu_share:.0f}% of a core against echo: the floor "
            "may be client-bound, which flatters gate's ratio (compare with --client h2load)"
        )
    if echo.server_cpu_us_per_rpc > 0 and gate.server_cpu_us_per_rpc > 0:
        print(
            f"server CPU per RPC: gate {gate.server_cpu_us_per_rpc:.0f} µs, "
            f"echo {echo.server_cpu_us_per_rpc:.0f} µs "
            f"({gate.server_cpu_us_per_rpc / echo.server_cpu_us_per_rpc:.2f}x the floor)"
        )
        cores = len(os.sched_getaffinity(0))
        bound = cost_bound(result, cores)
        if not math.isnan(bound):
            print(
                f"bound at gate's measured cost: with all {cores} cores busy on gate's "
                f"{gate.server_cpu_us_per_rpc:.0f} µs and the client's share per RPC, a ratio of at most "
                f"{bound:.2f}; below it, gate leaves CPU unused (one event loop serves every call)"
            )
    problems = log_problems(gate_log)
    if problems:
        print(f"gate logged {len(problems)} warning/error lines, e.g.: {sorted(set(problems))[:3]}")
    print(f"ratio gate/echo: {result.ratio:.2f} (target >= {target:.2f})")
    return problems


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each server (default 3)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first (default 2)")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight in total (default 32)")
    parser.add_argument("--channels", type=int, default=4, help="client channels/connections (default 4)")
    parser.add_argument(
        "--database-url",
        default="",
        help="gate's database (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test); default SQLite",
    )
    parser.add_argument(
        "--client", choices=("python", "h2load"), default="python", help="load generator (default python)"
    )
    parser.add_argument(
        "--rpc",
        choices=("getscan", "decide"),
        default="getscan",
        help="gate's measured RPC: GetScan of unknown ids (default) or Decide with the repository's policies",
    )
    parser.add_argument(
        "--unknown-images",
        action="store_true",
        help="Decide on 8 tags gate holds no evidence for (default: 8 pinned digests with imported scans)",
    )
    parser.add_argument(
        "--by-digest",
        action="store_true",
        help="Decide on the 8 images by artifact.digest, as `gate decide sha256:...` asks (default: "
        "by reference, repo@digest)",
    )
    add_decision_options(parser)
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="gate's grpc.processes: processes answering on one port (default 1)",
    )
    parser.add_argument(
        "--echo-processes",
        type=int,
        help="echo servers on one port (default: as --processes; 1 is the issue's bare echo server)",
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="gate's policy engine compiled by mypyc, as the image builds it (the echo floor is "
        "unchanged); $GATE_BENCH_SOURCE may name the compiled copy of an earlier run",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.client == "h2load" and shutil.which("h2load") is None:
        parser.error("h2load is not on PATH (Debian package nghttp2-client)")
    if args.concurrency < args.channels:
        parser.error("--concurrency must be at least --channels")
    if args.processes < 1 or (args.echo_processes is not None and args.echo_processes < 1):
        parser.error("--processes and --echo-processes must be at least 1")
    if args.echo_processes is None:
        args.echo_processes = args.processes
    return args


def _write_json(
    path: Path, args: argparse.Namespace, result: Result, problems: list[str], bound: dict[str, float] | None
) -> None:
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    document = {
        "benchmark": "grpc_floor",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "args": settings,
        "target_ratio": TARGET_RATIO,
        "ratio": result.ratio,
        "cost_bound_ratio": cost_bound(result, len(os.sched_getaffinity(0))),
        "work_bound": bound,
        "median": {"echo": asdict(result.echo), "gate": asdict(result.gate)},
        "rounds": result.rounds,
        "gate_log_problems": problems,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Start both servers, measure, report; always stop the children."""
    args = parse_args(argv)
    children = Children()
    with sigterm_as_exit(), tempfile.TemporaryDirectory(prefix="gate-bench-") as tmp:
        workdir = Path(tmp)
        bound: dict[str, float] | None = None
        try:
            source = compiled_source(workdir) if args.compiled else None
            servers = {
                "echo": start_echo(workdir, children, args.echo_processes),
                "gate": start_gate(
                    workdir,
                    children,
                    args.database_url,
                    args.rpc,
                    unknown_images=args.unknown_images,
                    by_digest=args.by_digest,
                    source=source,
                    writer=args.writer,
                    acknowledge=args.acknowledge,
                    processes=args.processes,
                ),
            }
            print(
                f"client={args.client} channels={args.channels} in-flight={args.concurrency} "
                f"warm-up={args.warmup:g}s duration={args.duration:g}s rounds={args.rounds} "
                f"database={'PostgreSQL' if args.database_url else 'SQLite'} rpc={args.rpc} "
                f"cores={os.cpu_count()} engine={'compiled' if args.compiled else 'interpreted'} "
                f"writer={args.writer} acknowledge={args.acknowledge} "
                f"processes: gate {args.processes}, echo {args.echo_processes}"
            )
            result = run_rounds(servers, args, workdir)
            target = DECIDE_TARGET_RATIO if args.rpc == "decide" else TARGET_RATIO
            problems = report(result, servers["gate"].log, target)
            if args.rpc == "decide" and not args.unknown_images:
                # The same work in process, over what the gate left (stopped first: one writer).
                stop(servers["gate"].proc)
                stages = decide_stages(
                    workdir / "gate-data", args.database_url, source, by_digest=args.by_digest
                )
                if stages is not None:
                    bound = work_bound(result, stages, len(os.sched_getaffinity(0)))
                    print(
                        f"bound: per call echo's {bound['echo_cpu_us']:.0f} µs + gate's decide "
                        f"{bound['decide_cpu_us']:.0f}, seal {bound['seal_cpu_us']:.0f} and store "
                        f"{bound['store_cpu_us']:.0f} µs (in process, _decide_stages.py) + the client's "
                        f"{bound['client_cpu_us']:.0f} µs = {bound['needed_cpu_us']:.0f} µs of CPU; with all "
                        f"{bound['cores']} cores busy, at most {bound['max_rps']:.0f} RPC/s: a ratio of at "
                        f"most {bound['max_ratio']:.2f} on this machine"
                    )
        except RuntimeError as exc:
            # Could not measure at all (a server did not start or died): that is a failure.
            sys.stdout.flush()  # keep the table above the error
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
        finally:
            children.stop_all()
        if args.json:
            _write_json(args.json, args, result, problems, bound)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
