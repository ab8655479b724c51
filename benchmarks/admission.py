"""Admission webhook throughput and latency: gate's /validate vs an allow-all endpoint on the same stack.

Starts ``gate serve`` (SQLite in a temp dir, the Pod Security Standards policies of
``../shared/conformance/kyverno/pod-security`` plus four supply-chain rules written
here, Enforce) and ``_allow_all.py`` (uvicorn + a bare ASGI callable answering
``allowed``, TLS with the same certificate), then drives both with ``wrk``
(Debian package ``wrk``) over HTTPS, HTTP/1.1 keep-alive, POSTing the ~3 KB Pod
AdmissionReview of ``../shared/notes/admission_review.json`` with a fresh uid per
request. Rounds alternate the order; the report gives per-round and median
requests/s and p99, the ratio gate/allow-all, and how many decisions gate stored.

Targets (issue 7): p99 <= 25 ms at 64 connections, throughput >= 50 % of allow-all.

With ``--rate R`` each connection pauses a random (exponential) time between requests
(wrk's ``delay()``), so that together they send about R requests/s as a Poisson stream:
latency below saturation, as an API server with that much admission traffic sees it,
instead of the closed loop's queueing at full load. Both servers then answer the same
rate, so the ratio says nothing; p50 and p99 do.

The report ends with a bound on the ratio (unpaced runs only). Whatever the design, each
review costs at least the floor's own work per request (TLS, HTTP, parsing, the answer) plus
gate's review stage, the record's signature and its insert, and wrk's CPU per request shares
the same cores. The three gate stages are measured in process, one after the other in one
thread, after the wrk rounds (``review_path.py --stages-only``, the same engine as the gate
run); wrk's CPU is read from its rusage (its cheapest figure per request, from the floor's
runs). With every core of this machine busy all the time and nothing else spent, gate could
answer at most ``cores / (floor + review + seal + store + wrk)`` reviews a second: that over
the floor's requests/s is the highest ratio this machine allows gate's current stages,
whatever the server around them. A second line gives the same bound at what gate spent per
review in the wrk runs: below it, gate leaves CPU unused.

    python benchmarks/admission.py [--rounds 3] [--duration 10] [--connections 64] [--rate R] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import (
    LOOPBACK,
    REPO_ROOT,
    SOURCE_ENV,
    Children,
    GatePorts,
    add_decision_options,
    compiled_source,
    free_port,
    gate_command,
    gate_env,
    log_tail,
    median,
    serving_probe,
    sigterm_as_exit,
    spawn,
    tree_cpu_seconds,
    wait_until,
)

SHARED = REPO_ROOT.parent / "shared"
REVIEW = SHARED / "notes" / "admission_review.json"
PSS = SHARED / "conformance" / "kyverno" / "pod-security"

SUPPLY_CHAIN = """\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: supply-chain
  annotations:
    policies.kyverno.io/category: Supply Chain
spec:
  validationFailureAction: Enforce
  background: false
  rules:
  - name: allowed-registries
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "images must come from registry.example.com or docker.io"
      deny:
        conditions:
          any:
          - key: "{{ images.containers.*.registry }}"
            operator: AnyNotIn
            value: [registry.example.com, docker.io]
  - name: no-latest-tag
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "the :latest tag is not allowed"
      pattern:
        spec:
          containers:
          - image: "!*:latest"
  - name: require-team-label
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "the label team is required"
      pattern:
        metadata:
          labels:
            team: "?*"
  - name: require-requests
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "CPU and memory requests are required"
      pattern:
        spec:
          containers:
          - resources:
              requests:
                cpu: "?*"
                memory: "?*"
"""

# A fresh uid per request, as the API server sends them (the run's own prefix: gate answers a
# uid it has seen with the same bytes as a retry, from memory); the body is otherwise the sample.
LUA = """\
local body = [[%s]]
local counter = 0
request = function()
  counter = counter + 1
  local uid = string.format("%s-0000-4000-8000-%%012d", counter)
  local b = string.gsub(body, "705ab4f5%%-6393%%-11e8%%-b7cc%%-42010a800002", uid, 1)
  return wrk.format("POST", "/validate", {["Content-Type"] = "application/json"}, b)
end
"""

# With --rate: each connection waits a random time before its next request, exponential with
# the given mean (ms), so that the connections' requests together arrive as a Poisson stream
# rather than in bursts of one request per connection (a fixed pause keeps them in step).
PACED = """
math.randomseed(os.time())
delay = function()
  return -%.3f * math.log(1 - math.random())
end
"""

_STAGES = re.compile(r"^stages us: parse ([\d.]+) review ([\d.]+) seal ([\d.]+) store ([\d.]+)$", re.M)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_REQUESTS = re.compile(r"(\d+) requests in ")
_P99 = re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_P50 = re.compile(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_ERRORS = re.compile(
    r"Non-2xx or 3xx responses: (\d+)|Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User plus system CPU seconds of each thread of ``pid`` so far (empty once it has gone)."""
    found: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                stat = (task / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                found[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def run_wrk(url: str, script: Path, connections: int, duration: float, server_pid: int = 0) -> dict[str, Any]:
    """One wrk run; requests/s, p99 ms, error count and the server's CPU µs per request.

    Also the split of that CPU between the server's event loop (its main thread) and its
    other threads, largest first: Python names threads only inside the interpreter, so
    the others are told apart by size only (for gate: the two review workers and the
    decision writer, next to the loop).
    """
    cpu_before = tree_cpu_seconds(server_pid) if server_pid else 0.0
    threads_before = thread_cpu_seconds(server_pid) if server_pid else {}
    # wrk is the only child that ends during the run: the children's rusage grows by its CPU.
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (wrk_after.ru_utime - wrk_before.ru_utime) + (wrk_after.ru_stime - wrk_before.ru_stime)
    rps = _RPS.search(out)
    p99 = _P99.search(out)
    if rps is None or p99 is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    errors = 0
    for match in _ERRORS.finditer(out):
        errors += sum(int(g) for g in match.groups() if g)
    cpu = tree_cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
    threads_after = thread_cpu_seconds(server_pid) if server_pid else {}
    requests = float(rps.group(1)) * duration
    per_request = 1e6 / requests if requests else 0.0
    spent = {tid: seconds - threads_before.get(tid, 0.0) for tid, seconds in threads_after.items()}
    others = sorted((s for tid, s in spent.items() if tid != server_pid and s > 0), reverse=True)
    answered = _REQUESTS.search(out)
    return {
        "requests": int(answered.group(1)) if answered else 0,
        "rps": float(rps.group(1)),
        "p99_ms": _ms(p99.group(1), p99.group(2)),
        "p50_ms": _ms(*_P50.search(out).groups()) if _P50.search(out) else 0.0,
        "errors": errors,
        "server_cpu_us_per_request": cpu * per_request,
        "wrk_cpu_us_per_request": wrk_cpu * per_request,
        "loop_cpu_us_per_request": spent.get(server_pid, 0.0) * per_request,
        "other_threads_cpu_us_per_request": [s * per_request for s in others[:6]],
    }


def review_stages(source: Path | None) -> dict[str, float] | None:
    """gate's CPU µs per review by stage, in process (``review_path.py --stages-only``); None if it failed."""
    env = {key: value for key, value in os.environ.items() if key != SOURCE_ENV}
    if source is not None:
        env[SOURCE_ENV] = str(source)
    command = [sys.executable, str(Path(__file__).parent / "review_path.py"), "--stages-only"]
    done = subprocess.run(
        [*command, "--rounds", "3", "--reviews", "1000"], env=env, capture_output=True, text=True, check=False
    )
    found = _STAGES.search(done.stdout)
    if done.returncode != 0 or found is None:
        print(
            f"review_path.py --stages-only failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}",
            file=sys.stderr,
        )
        return None
    return dict(zip(("parse", "review", "seal", "store"), (float(g) for g in found.groups()), strict=True))


def ratio_bound(
    results: dict[str, list[dict[str, Any]]], stages: dict[str, float], cores: int
) -> dict[str, float]:
    """The highest gate/allow-all ratio the measured costs allow on ``cores`` (see the module's text).

    gate's parse stage is left out (the floor parses the review too), so the bound is generous.
    """
    floor_cpu = median([r["server_cpu_us_per_request"] for r in results["allow-all"]])
    # wrk spends less per request the faster it goes (more answers per wake-up): its cheapest
    # figure, driving the floor, keeps the bound generous.
    wrk_cpu = min(median([r["wrk_cpu_us_per_request"] for r in runs]) for runs in results.values())
    needed = floor_cpu + stages["review"] + stages["seal"] + stages["store"] + wrk_cpu
    most = cores * 1e6 / needed
    floor_rps = median([r["rps"] for r in results["allow-all"]])
    gate_cpu = median([r["server_cpu_us_per_request"] for r in results["gate"]])
    return {
        "floor_cpu_us": floor_cpu,
        "wrk_cpu_us": wrk_cpu,
        **{f"{stage}_cpu_us": stages[stage] for stage in ("review", "seal", "store")},
        "needed_cpu_us": needed,
        "cores": cores,
        "max_rps": most,
        "max_ratio": most / floor_rps,
        # The same bound at what gate spent per review in the wrk runs, all of its processes.
        "gate_cpu_us": gate_cpu,
        "max_ratio_at_gate_cost": cores * 1e6 / (gate_cpu + wrk_cpu) / floor_rps,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="requests/s over all connections (default: unpaced)"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="gate's webhook.processes, and as many allow-all processes on one socket (default 1)",
    )
    add_decision_options(parser)
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="gate with its policy engine compiled by mypyc, as the image builds it (the floor is "
        f"unchanged); ${SOURCE_ENV} may name the compiled copy of an earlier run",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1

    children = Children()
    work = Path(tempfile.mkdtemp(prefix="gate-bench-admission-"))
    try:
        with sigterm_as_exit():
            return _run(args, children, work)
    finally:
        children.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def policy_sources(work: Path) -> tuple[list[Path], Path]:
    """The Pod Security Standards policy files, and the supply-chain policy written under ``work``."""
    pss = [
        p
        for tier in ("baseline", "restricted")
        for p in sorted((PSS / tier).glob("*/*.yaml"))
        if p.parent.name == p.stem
    ]
    supply = work / "supply-chain.yaml"
    supply.write_text(SUPPLY_CHAIN)
    return pss, supply


def _run(args: argparse.Namespace, children: Children, work: Path) -> int:
    pss, supply = policy_sources(work)
    data_dir = work / "data"
    ports = GatePorts.pick()
    env = gate_env(data_dir, ports, writer=args.writer, acknowledge=args.acknowledge)
    env["GATE_METRICS_ENABLED"] = "false"
    env["GATE_LOG_LEVEL"] = "warning"
    env["GATE_WEBHOOK_PROCESSES"] = str(args.processes)
    env["GATE_POLICY_SOURCES"] = ":".join(str(p) for p in [*pss, supply])
    gate_log = work / "gate.log"
    started = time.perf_counter()
    source = compiled_source(work) if args.compiled else None
    gate = children.add(spawn(gate_command(source), env, gate_log))
    try:
        wait_until(serving_probe(ports.grpc_target), gate, started=started, limit=60)
    except RuntimeError as error:
        print(f"gate did not start: {error}\n{log_tail(gate_log)}", file=sys.stderr)
        return 1
    cert, key = data_dir / "tls" / "webhook.crt", data_dir / "tls" / "webhook.key"
    floor_port = free_port()
    floor = children.add(
        spawn(
            [
                sys.executable,
                str(Path(__file__).parent / "_allow_all.py"),
                str(floor_port),
                str(cert),
                str(key),
                str(args.processes),
            ],
            None,
            work / "allow_all.log",
        )
    )
    deadline = time.time() + 20
    while (
        subprocess.run(
            ["curl", "-sk", "-o", "/dev/null", f"https://{LOOPBACK}:{floor_port}/"], check=False
        ).returncode
        != 0
    ):
        if time.time() > deadline or floor.poll() is not None:
            print(f"the allow-all server did not start\n{log_tail(work / 'allow_all.log')}", file=sys.stderr)
            return 1
        time.sleep(0.1)

    review = REVIEW.read_text().strip()
    runs = itertools.count()

    def script() -> Path:
        # One script per wrk run: each numbers its uids under a prefix of its own.
        path = work / f"post-{next(runs)}.lua"
        paced = PACED % (1000.0 * args.connections / args.rate) if args.rate > 0 else ""
        path.write_text(LUA % (review, secrets.token_hex(4)) + paced)
        return path

    targets = {
        "gate": f"https://{LOOPBACK}:{ports.webhook}/validate",
        "allow-all": f"https://{LOOPBACK}:{floor_port}/validate",
    }
    check = subprocess.run(
        [
            "curl",
            "-sk",
            "--data-binary",
            f"@{REVIEW}",
            "-H",
            "Content-Type: application/json",
            targets["gate"],
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    print(f"gate's answer to the sample: {check}")
    print(
        f"policies: {len(pss)} Pod Security Standards files + 1 supply-chain policy (4 rules, Enforce); "
        f"{args.connections} connections, wrk 1 thread, {args.duration:g} s per run, {args.rounds} rounds, "
        f"{args.processes} server process(es) each; decision writer: {args.writer}, acknowledged once "
        f"{args.acknowledge}; gate's policy engine {'compiled (mypyc)' if args.compiled else 'interpreted'}"
    )
    results: dict[str, list[dict[str, Any]]] = {"gate": [], "allow-all": []}
    gate_answered = 0
    for name, url in targets.items():
        warm = run_wrk(url, script(), args.connections, args.warmup)
        gate_answered += warm["requests"] if name == "gate" else 0
    for index in range(args.rounds):
        order = list(targets) if index % 2 == 0 else list(reversed(targets))
        for name in order:
            pid = gate.pid if name == "gate" else floor.pid
            figures = run_wrk(targets[name], script(), args.connections, args.duration, pid)
            results[name].append(figures)
            gate_answered += figures["requests"] if name == "gate" else 0
            others = ", ".join(f"{us:.0f}" for us in figures["other_threads_cpu_us_per_request"])
            print(
                f"round {index + 1} {name:9} {figures['rps']:9.0f} req/s  p50 {figures['p50_ms']:6.2f} ms  "
                f"p99 {figures['p99_ms']:7.2f} ms  "
                f"errors {figures['errors']:.0f}  "
                f"server CPU {figures['server_cpu_us_per_request']:6.0f} us/request "
                f"(event loop {figures['loop_cpu_us_per_request']:.0f}; other threads: {others or '-'})"
            )
    ratios = [g["rps"] / a["rps"] for g, a in zip(results["gate"], results["allow-all"], strict=True)]
    summary = {
        name: {
            "rps_median": median([r["rps"] for r in runs]),
            "p99_ms_median": median([r["p99_ms"] for r in runs]),
            "errors": sum(r["errors"] for r in runs),
            "server_cpu_us_per_request_median": median([r["server_cpu_us_per_request"] for r in runs]),
        }
        for name, runs in results.items()
    }
    summary["ratio_median"] = {"gate_over_allow_all": median(ratios)}
    gate_rps = summary["gate"]["rps_median"]
    gate_p99 = summary["gate"]["p99_ms_median"]
    gate_p50 = median([r["p50_ms"] for r in results["gate"]])
    floor = summary["allow-all"]
    if args.rate > 0:
        print(
            f"median, paced at {args.rate:g} req/s over {args.connections} connections: "
            f"gate {gate_rps:.0f} req/s p50 {gate_p50:.2f} ms p99 {gate_p99:.2f} ms; "
            f"allow-all p99 {floor['p99_ms_median']:.2f} ms"
        )
    else:
        print(
            f"median: gate {gate_rps:.0f} req/s p99 {gate_p99:.2f} ms; allow-all "
            f"{floor['rps_median']:.0f} req/s p99 {floor['p99_ms_median']:.2f} ms; "
            f"ratio {median(ratios):.2f} (target >= 0.50); p99 target <= 25 ms: "
            f"{'met' if gate_p99 <= 25 else 'NOT met'}"
        )
    # Stop gate gracefully first: the recorder flushes on stop, so every answered review is stored.
    children.stop_all()
    with sqlite3.connect(data_dir / "gate.db") as db:
        stored = db.execute("select count(*) from decisions").fetchone()[0]
        failures = db.execute(
            "select count(*) from decisions where message like 'gate could not decide%'"
        ).fetchone()[0]
    print(
        f"reviews gate answered: {gate_answered}; decisions stored after a graceful stop: {stored}; "
        f"answered by the failure mode: {failures}"
    )
    summary["stored_decisions"] = {"answered": gate_answered, "count": stored, "failure_mode": failures}
    if args.rate <= 0:
        stages = review_stages(source)
        if stages is not None:
            bound = ratio_bound(results, stages, len(os.sched_getaffinity(0)))
            summary["ratio_bound"] = bound
            print(
                f"bound: per review the floor's {bound['floor_cpu_us']:.0f} us + gate's review "
                f"{bound['review_cpu_us']:.0f}, seal {bound['seal_cpu_us']:.0f} and store "
                f"{bound['store_cpu_us']:.0f} us (in process, review_path.py --stages-only) + wrk's "
                f"{bound['wrk_cpu_us']:.0f} us = {bound['needed_cpu_us']:.0f} us of CPU; with all "
                f"{bound['cores']} cores busy, at most {bound['max_rps']:.0f} req/s: a ratio of at most "
                f"{bound['max_ratio']:.2f} on this machine"
            )
            print(
                f"bound at gate's measured cost ({bound['gate_cpu_us']:.0f} us per review, all processes): "
                f"a ratio of at most {bound['max_ratio_at_gate_cost']:.2f} with all cores busy"
            )
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
