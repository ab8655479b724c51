"""Instructions per pipeline Decide of a whole ``gate serve``, counted by callgrind.

``instructions.py`` counts a review's instructions in process; this counts everything a serving
gate executes for a gRPC Decide: grpc's C core and its poller thread, the asyncio loop, the
servicer, the policies, the seal and the commit. Timed runs of ``grpc_floor.py --rpc decide``
move by 5-10 % between runs on these shared machines; these counts repeat within ~0.2 %, so a
change worth 1-2 % of a call can be seen and kept or dropped before it is timed.

How: ``gate serve`` (one process, SQLite, the policies and images of ``grpc_floor.py --rpc
decide``, evidence imported as there) runs under ``valgrind --tool=callgrind``. This process
makes ``--warmup`` Decide calls, has callgrind dump its counts (``callgrind_control --dump``,
which also zeroes them), makes ``--calls`` more and dumps again: the second dump holds exactly
the measured calls (and whatever the server's timers did meanwhile, which is little next to them).

Calls are made one at a time, so that each takes the same path: each commit then holds one
decision, and the batch's signature and transaction are paid by every call, where under load
~5-30 decisions share them. The count is for comparing copies of gate (``--baseline DIR``, run at
the same time on the other core), not for predicting a timed figure.

    python benchmarks/server_instructions.py [--compiled] [--baseline DIR] [--warmup 200] [--calls 400]
        [--keep DIR]

``--keep DIR`` leaves the measured calls' dumps there (``measured.out``, ``baseline.out``):
``callgrind_annotate --inclusive=yes DIR/measured.out`` then shows where the instructions went, by
C function (the interpreter's, grpc's, OpenSSL's, SQLite's and the compiled engine's).

Needs valgrind (Debian package valgrind). A copy takes ~1-2 minutes (gate starts in ~50 s under
valgrind).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from _harness import (
    GatePorts,
    compiled_source,
    gate_command,
    gate_env,
    log_tail,
    serving_probe,
    spawn,
    wait_until,
)
from grpc_floor import DECIDE_METHOD, _gate_requests, _import_evidence, decide_policy_sources

# gate starts 30-60 times slower under valgrind.
READY_LIMIT = 900.0
_TOTALS = re.compile(r"^(?:totals|summary): (\d+)", re.MULTILINE)


def _dump(pid: int) -> None:
    done = subprocess.run(
        ["callgrind_control", "--dump", str(pid)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"callgrind_control --dump {pid} failed:\n{done.stdout}{done.stderr}")


def _calls(target: str, requests: list[bytes], count: int) -> None:
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(DECIDE_METHOD)
        for index in range(count):
            call(requests[index % len(requests)], timeout=120)


def per_call(source: Path | None, warmup: int, calls: int, keep: Path | None = None) -> float:
    """Instructions per Decide of one ``gate serve`` (``source``: a copy of gate, else the checkout).

    ``keep``: copy the measured calls' callgrind dump there (for ``callgrind_annotate``).
    """
    with tempfile.TemporaryDirectory(prefix="gate-bench-server-instructions-") as tmp:
        work = Path(tmp)
        ports = GatePorts.pick()
        env = gate_env(work / "gate-data", ports)
        env["GATE_GRPC_PROCESSES"] = "1"
        env["GATE_POLICY_SOURCES"] = decide_policy_sources()
        # Hash randomisation changes dict layouts, hence a few instructions, from run to run.
        env["PYTHONHASHSEED"] = "0"
        # Wall-clock lifetimes, which callgrind stretches 30-60 times: at the default 10 s, each
        # image's evidence and the waivers expired once or twice in the measured window and the
        # call that found them gone was answered again on a worker thread, ~16 of 400 calls where
        # a timed run at full rate meets ~16 in 20,000. The policy watcher's 2 s polls likewise.
        config = work / "gate.yaml"
        config.write_text("policies:\n  evidence_ttl: 3600\n  waiver_ttl: 3600\n  poll_interval: 60\n")
        env["GATE_CONFIG"] = str(config)
        out = work / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *gate_command(source)]
        log = work / "gate.log"
        proc = spawn(command, env, log)
        try:
            try:
                wait_until(
                    serving_probe(ports.grpc_target),
                    proc,
                    started=time.perf_counter(),
                    limit=READY_LIMIT,
                    interval=1.0,
                )
            except RuntimeError as error:
                raise RuntimeError(f"gate under callgrind: {error}\n{log_tail(log)}") from None
            _import_evidence(ports.grpc_target)
            requests = _gate_requests(64, "decide")
            _calls(ports.grpc_target, requests, warmup)
            _dump(proc.pid)
            _calls(ports.grpc_target, requests, calls)
            _dump(proc.pid)
        finally:
            proc.terminate()
            proc.wait(300)
        # The first dump ends the warm-up; the second holds the measured calls.
        measured = Path(f"{out}.2")
        if not measured.is_file():
            raise RuntimeError(f"callgrind wrote no second dump in {work}:\n{log_tail(log)}")
        found = _TOTALS.search(measured.read_text(errors="replace"))
        if found is None:
            raise RuntimeError(f"no totals in {measured}")
        if keep is not None:
            shutil.copyfile(measured, keep)
        return int(found.group(1)) / calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--compiled", action="store_true", help="a compiled copy ($GATE_BENCH_SOURCE, or a new one)"
    )
    parser.add_argument("--baseline", type=Path, help="a second copy of gate to measure and compare with")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument(
        "--keep",
        type=Path,
        help="a directory to keep the measured calls' callgrind dumps in (measured.out, baseline.out)",
    )
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not on PATH (Debian package valgrind)")
    if args.calls <= 0 or args.warmup < 0:
        parser.error("--calls must be positive and --warmup not negative")
    if args.keep is not None and not args.keep.is_dir():
        parser.error(f"--keep: {args.keep} is not a directory")
    with tempfile.TemporaryDirectory(prefix="gate-bench-") as tmp:
        source = compiled_source(Path(tmp)) if args.compiled else None
        copies = [source] + ([args.baseline.resolve()] if args.baseline is not None else [])
        # One copy per core, at the same time: the counts barely depend on the load (the server's
        # timers fire a little more often per call when it runs slower), so compare within a run.
        with concurrent.futures.ThreadPoolExecutor(len(copies)) as pool:
            counts = list(
                pool.map(
                    lambda copy, name: per_call(
                        copy, args.warmup, args.calls, None if args.keep is None else args.keep / name
                    ),
                    copies,
                    ("measured.out", "baseline.out"),
                )
            )
        label = f"compiled copy {source}" if source else "the checkout"
        print(f"decide: {counts[0]:,.0f} instructions per call ({label})")
        if args.baseline is not None:
            print(f"decide: {counts[1]:,.0f} instructions per call (baseline {args.baseline})")
            print(f"ratio measured/baseline: {counts[0] / counts[1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
