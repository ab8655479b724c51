"""What authentication and authorisation add to Decide: p50/p99 with ``auth.mode`` none vs required.

Two ``gate serve`` processes run side by side on fresh temp data dirs (SQLite),
with the same policies (the Pod Security Standards of
``../shared/conformance/kyverno/pod-security``, baseline and restricted):

* open: ``auth.mode: none`` (today's behaviour);
* guarded: ``auth.mode: required`` with a tokens file; every call carries
  ``authorization: Bearer <token>`` of a ``pipeline`` identity for project
  ``payments`` (token hash lookup, role table, project check, caller recorded).

One client thread calls ``gate.v1.DecisionService/Decide`` (stage ``deploy``, the
Pod of ``../shared/notes/admission_review.json`` as the manifest, recorded and
signed, not a dry run) one call at a time, so latency is the server's work, not
queueing, alternating call by call between the two gates so that noise from
other work on the machine lands on both alike. Target (issue 9): guarded p50
at most 10 % above open p50. A report, not a test: exit 0 whatever the figures.

    python benchmarks/auth_overhead.py [--rounds 5] [--calls 300] [--json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import yaml
from _harness import (
    REPO_ROOT,
    Children,
    GatePorts,
    gate_command,
    gate_env,
    import_checkout,
    log_tail,
    median,
    percentile,
    serving_probe,
    sigterm_as_exit,
    spawn,
    wait_until,
)

SHARED = REPO_ROOT.parent / "shared"
REVIEW = SHARED / "notes" / "admission_review.json"
PSS = SHARED / "conformance" / "kyverno" / "pod-security"
TOKEN = "bench-pipeline-token-9f2c4e1a"
METHOD = "/gate.v1.DecisionService/Decide"


def _start(
    children: Children, work: Path, name: str, policies: list[Path], guarded: bool
) -> tuple[str, Path]:
    data_dir = work / name
    data_dir.mkdir()
    ports = GatePorts.pick()
    env = gate_env(data_dir, ports)
    env["GATE_METRICS_ENABLED"] = "false"
    env["GATE_LOG_LEVEL"] = "error"
    env["GATE_POLICY_SOURCES"] = ":".join(str(p) for p in policies)
    if guarded:
        tokens = work / "tokens.yaml"
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        tokens.write_text(
            f"tokens:\n  {digest}: {{identity: bench, roles: [pipeline], projects: [payments]}}\n"
        )
        env["GATE_AUTH_MODE"] = "required"
        env["GATE_AUTH_TOKENS_FILE"] = str(tokens)
    else:
        env["GATE_AUTH_MODE"] = "none"
    log = work / f"{name}.log"
    started = time.perf_counter()
    proc = children.add(spawn(gate_command(), env, log))
    try:
        wait_until(serving_probe(ports.grpc_target), proc, started=started, limit=60)
    except RuntimeError as error:
        raise RuntimeError(f"{name} gate did not start: {error}\n{log_tail(log)}") from None
    return ports.grpc_target, log


def _measure(targets: dict[str, str], request: bytes, calls: int) -> dict[str, list[float]]:
    """Interleave single calls to the two gates so that machine noise hits both alike."""
    channels = {name: grpc.insecure_channel(target) for name, target in targets.items()}
    metadata = {"open": (), "guarded": (("authorization", f"Bearer {TOKEN}"),)}
    try:
        stubs = {
            name: channel.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
            for name, channel in channels.items()
        }
        for name, stub in stubs.items():
            for _ in range(20):  # warm-up: connection, caches, first recordings
                stub(request, timeout=30, metadata=metadata[name])
        seconds: dict[str, list[float]] = {name: [] for name in stubs}
        for index in range(calls):
            order = ("open", "guarded") if index % 2 == 0 else ("guarded", "open")
            for name in order:
                begin = time.perf_counter()
                stubs[name](request, timeout=30, metadata=metadata[name])
                seconds[name].append(time.perf_counter() - begin)
    finally:
        for channel in channels.values():
            channel.close()
    return seconds


def _guard_microseconds(repeat: int = 50_000) -> float:
    """The guard's own work per call in process: header parse, token hash lookup, role and project check."""
    from gate.auth import Authenticator, Credentials, Identity, hash_token
    from gate.server._authz import authorize
    from gate.v1 import decision_pb2

    authenticator = Authenticator(
        tokens={hash_token(TOKEN): Identity.of("token:bench", ["pipeline"], ["payments"])}
    )
    request = decision_pb2.DecideRequest(project="payments")
    metadata = (("authorization", f"Bearer {TOKEN}"), ("user-agent", "grpc-python"))
    begin = time.perf_counter()
    for _ in range(repeat):
        identity = authenticator.identify(Credentials.from_grpc(metadata, {}))
        assert identity is not None
        authorize("gate.v1.DecisionService/Decide", identity, request)
    return (time.perf_counter() - begin) / repeat * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    import_checkout()
    from gate.v1 import decision_pb2

    pod = json.loads(REVIEW.read_text())["request"]["object"]
    pod["metadata"]["name"] = "payments-api"
    request = decision_pb2.DecideRequest(
        manifest=yaml.safe_dump(pod).encode(), stage="deploy", project="payments"
    ).SerializeToString()
    policies = [
        p
        for tier in ("baseline", "restricted")
        for p in sorted((PSS / tier).glob("*/*.yaml"))
        if p.parent.name == p.stem
    ]
    work = Path(tempfile.mkdtemp(prefix="gate-auth-bench-"))
    children = Children()
    rows: list[dict[str, Any]] = []
    try:
        with sigterm_as_exit():
            targets = {
                "open": _start(children, work, "open", policies, guarded=False)[0],
                "guarded": _start(children, work, "guarded", policies, guarded=True)[0],
            }
            for index in range(args.rounds):
                figures: dict[str, Any] = {"round": index + 1}
                for name, seconds in _measure(targets, request, args.calls).items():
                    figures[f"{name}_p50_ms"] = percentile(seconds, 0.50) * 1000
                    figures[f"{name}_p99_ms"] = percentile(seconds, 0.99) * 1000
                figures["p50_added_pct"] = (figures["guarded_p50_ms"] / figures["open_p50_ms"] - 1) * 100
                rows.append(figures)
                print(
                    f"round {index + 1}: open p50 {figures['open_p50_ms']:.2f} ms"
                    f" p99 {figures['open_p99_ms']:.2f} | guarded p50 {figures['guarded_p50_ms']:.2f} ms"
                    f" p99 {figures['guarded_p99_ms']:.2f} | p50 added {figures['p50_added_pct']:+.1f} %",
                    flush=True,
                )
    finally:
        children.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    guard_us = _guard_microseconds()
    summary = {
        "guard_us_per_call": guard_us,
        "open_p50_ms": median([r["open_p50_ms"] for r in rows]),
        "guarded_p50_ms": median([r["guarded_p50_ms"] for r in rows]),
        "p50_added_pct_median": median([r["p50_added_pct"] for r in rows]),
        "calls_per_round": args.calls,
        "rounds": rows,
    }
    print(
        f"median: open p50 {summary['open_p50_ms']:.2f} ms, guarded p50 {summary['guarded_p50_ms']:.2f} ms, "
        f"added {summary['p50_added_pct_median']:+.1f} % (target <= 10 %); "
        f"the guard's own work in process: {guard_us:.1f} µs per call"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
