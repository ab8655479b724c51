"""CPU per admission review in process: the stages run in one thread vs the webhook's threaded path.

No HTTP, TLS or load generator, so the figures are free of wrk's share of the two cores.
Builds gate's core as ``gate serve`` does (SQLite in a temp dir, the Pod Security Standards
policies of ``../shared/conformance/kyverno/pod-security`` plus the supply-chain rules of
``admission.py``, decisions signed) and answers the ~3 KB Pod AdmissionReview of
``../shared/notes/admission_review.json`` with a fresh uid each time, two ways per round:

- ``one thread`` (the baseline): parse, review, then seal and store in batches of 32, in a
  plain loop. The CPU each stage takes is printed.
- ``webhook``: ``WebhookApp`` called as uvicorn calls it (ASGI, ``--concurrency`` reviews in
  flight), as in production: each review evaluated on the event loop when everything it needs
  is in memory (else on a review thread), recorded by the decision writer thread and answered
  once stored.

The ratio webhook/one-thread is what the event loop's own work and the hand-offs to the
writer thread cost. Rounds alternate the order; medians are printed, with the share of
reviews evaluated on the loop.

After the warm-up the garbage collector is set as ``gate serve`` sets it once started
(``gate.server._heap``: start-up objects frozen, young objects collected every 10,000
allocations); ``--default-gc`` keeps CPython's defaults instead. The collector's time per
review is printed for each run (``gc.callbacks``), with its longest single pause.

The webhook runs also print the event loop thread's share of the CPU. ``--writer process`` records
through the decision writer process (``decisions.writer: process``, what ``gate serve`` runs) and
splits the CPU between this process and the writer; ``--writer real`` (the default here) uses the
writer thread, as ``decisions.writer: thread``. ``--writer null``
records into a sink that keeps nothing, unsigned: what the loop costs when no writer
competes with it for the GIL (a diagnostic, not a configuration of gate).

``--stages-only`` runs the one-thread rounds alone and ends with a line of medians per stage
(``stages us: parse P review R seal S store T``): what ``admission.py`` reads to bound the
ratio any webhook doing this work could reach on this machine.

``--compare-compiled`` compiles the policy engine as the image's wheel is built (mypyc, the
modules pyproject.toml's hook lists) into a temp copy, then runs this script once per round in
a child process with each engine, alternating, and prints the compiled/interpreted ratios.

    python benchmarks/review_path.py [--reviews 2000] [--rounds 3] [--concurrency 16] [--default-gc]
        [--writer real|process|null] [--compare-compiled] [--stages-only]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _harness import SOURCE_ENV, build_compiled_source, import_checkout, median, tree_cpu_seconds

import_checkout()

from admission import REVIEW, policy_sources  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402

from gate._signature_service import SignatureService  # noqa: E402
from gate.config import Config, load_config  # noqa: E402
from gate.core import Gate  # noqa: E402
from gate.decisions import AcknowledgedRecorder, WriterProcess, parse_review, seal_all  # noqa: E402
from gate.model import Decision  # noqa: E402
from gate.server._heap import settle_after_startup  # noqa: E402
from gate.server._webhook import WebhookApp  # noqa: E402
from gate.store import open_store  # noqa: E402
from policies import engine_compiled  # noqa: E402

SAMPLE_UID = b"705ab4f5-6393-11e8-b7cc-42010a800002"


class _NullSink:
    """A decision sink that keeps nothing (``--writer null``)."""

    def add_decisions(self, batch: Sequence[Decision]) -> None:
        del batch


class _CollectorClock:
    """Wall time the garbage collector spends (a gc.callbacks entry), read and reset per run."""

    def __init__(self) -> None:
        self._began = 0.0
        self.total = 0.0
        self.longest = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        spent = time.perf_counter() - self._began
        self.total += spent
        self.longest = max(self.longest, spent)

    def report(self, reviews: int) -> str:
        per_review = self.total / reviews * 1e6
        text = f"; collector {per_review:.0f} us/review, longest pause {self.longest * 1e3:.1f} ms"
        self.total = self.longest = 0.0
        return text


def _evaluations(where: str) -> float:
    return REGISTRY.get_sample_value("gate_admission_evaluations_total", {"where": where}) or 0.0


def _cpu() -> float:
    # CLOCK_PROCESS_CPUTIME_ID: user and system time of every thread, in nanoseconds.
    return time.process_time()


def _bodies(review: bytes, uids: Iterator[int], count: int) -> list[bytes]:
    return [
        review.replace(SAMPLE_UID, f"{next(uids):08x}-0000-4000-8000-000000000000".encode(), 1)
        for _ in range(count)
    ]


def open_review_gate(work: Path) -> tuple[list[Path], Config, Any, SignatureService, Any]:
    """The reviews' gate under ``work``: policy files, configuration, store, signatures, decision signer.

    SQLite in ``work/data``, the Pod Security Standards files plus the supply-chain policy.
    """
    pss, supply = policy_sources(work)
    config = load_config(
        None,
        {
            "GATE_DATA_DIR": str(work / "data"),
            "GATE_POLICY_SOURCES": ":".join(str(p) for p in [*pss, supply]),
            "GATE_METRICS_ENABLED": "false",
        },
    )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.effective_database_url)
    signatures = SignatureService(config.signatures, config.registry)
    return pss, config, store, signatures, signatures.decision_signer(config.data_dir)


def one_thread(core: Gate, store: Any, signer: Any, bodies: list[bytes]) -> dict[str, float]:
    """CPU seconds per review of each stage, run one after the other in this thread."""
    made: list[Decision] = []
    core.record_decision = made.append  # type: ignore[method-assign]  # collected, sealed below
    spent = {"parse": 0.0, "review": 0.0, "seal": 0.0, "store": 0.0}
    for body in bodies:
        started = _cpu()
        review = parse_review(body)
        parsed = _cpu()
        core.review(review, started=time.perf_counter())
        reviewed = _cpu()
        spent["parse"] += parsed - started
        spent["review"] += reviewed - parsed
        if len(made) >= 32 or body is bodies[-1]:
            sealed = seal_all(made, signer)
            signed = _cpu()
            store.add_decisions(sealed)
            spent["seal"] += signed - reviewed
            spent["store"] += _cpu() - signed
            made.clear()
    del core.record_decision
    return {stage: seconds / len(bodies) for stage, seconds in spent.items()}


async def _webhook(app: WebhookApp, bodies: list[bytes], concurrency: int) -> None:
    slots = asyncio.Semaphore(concurrency)

    async def one(body: bytes) -> None:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "path": "/validate",
            "method": "POST",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 40000),
        }
        async with slots:
            await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"the webhook answered {sent[0]['status']}: {sent[1]['body'][:200]!r}")

    await asyncio.gather(*(one(body) for body in bodies))


_MEDIANS = re.compile(r"median CPU per review: one thread (\d+) us, webhook (\d+) us")


def compare_compiled(args: argparse.Namespace) -> int:
    """Rounds of one child per engine, in alternating order; the ratios compiled/interpreted."""
    with tempfile.TemporaryDirectory(prefix="gate-bench-compiled-") as tmp:
        try:
            source = build_compiled_source(Path(tmp))
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 1
        child = [sys.executable, __file__, "--rounds", "1", "--reviews", str(args.reviews)]
        child += ["--concurrency", str(args.concurrency), "--writer", args.writer]
        child += ["--default-gc"] if args.default_gc else []
        plain = {k: v for k, v in os.environ.items() if k != SOURCE_ENV}
        environments = {"interpreted": plain, "compiled": {**plain, SOURCE_ENV: str(source)}}
        figures: dict[str, list[tuple[float, float]]] = {"interpreted": [], "compiled": []}
        for index in range(args.rounds):
            order = ("interpreted", "compiled") if index % 2 == 0 else ("compiled", "interpreted")
            for engine in order:
                done = subprocess.run(
                    child, env=environments[engine], capture_output=True, text=True, check=False
                )
                found = _MEDIANS.search(done.stdout)
                if done.returncode != 0 or found is None or engine not in done.stdout.splitlines()[0]:
                    print(
                        f"the {engine} run failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}",
                        file=sys.stderr,
                    )
                    return 1
                single, webhook = float(found.group(1)), float(found.group(2))
                figures[engine].append((single, webhook))
                print(f"round {index + 1} {engine:11s} one thread {single:5.0f} webhook {webhook:5.0f} us")
    for name, column in (("one thread", 0), ("webhook", 1)):
        interpreted = median([f[column] for f in figures["interpreted"]])
        compiled = median([f[column] for f in figures["compiled"]])
        print(
            f"median {name}: interpreted {interpreted:.0f} us, compiled {compiled:.0f} us per review; "
            f"ratio compiled/interpreted {compiled / interpreted:.2f}"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--default-gc", action="store_true", help="keep CPython's collector settings")
    parser.add_argument(
        "--writer",
        choices=("real", "process", "null"),
        default="real",
        help="real: the decision writer thread; process: the writer process (decisions.writer: process); "
        "null: decisions unsigned, into a sink that keeps nothing",
    )
    parser.add_argument(
        "--compare-compiled",
        action="store_true",
        help="each round twice, in child processes: the interpreted engine and the mypyc-compiled one",
    )
    parser.add_argument(
        "--stages-only",
        action="store_true",
        help="only the one-thread rounds, then the median CPU of each stage (read by admission.py)",
    )
    args = parser.parse_args()
    if args.compare_compiled:
        return compare_compiled(args)

    work = Path(tempfile.mkdtemp(prefix="gate-bench-review-path-"))
    pss, config, store, signatures, signer = open_review_gate(work)
    writer = WriterProcess(config) if args.writer == "process" else None
    if writer is not None:
        writer.start()
        writer.wait_ready()
        recorder = AcknowledgedRecorder(writer, timeout=config.decisions.store_timeout, sealed_by_sink=True)
    elif args.writer == "real":
        recorder = AcknowledgedRecorder(store, signer=signer, timeout=config.decisions.store_timeout)
    else:
        recorder = AcknowledgedRecorder(_NullSink(), timeout=config.decisions.store_timeout)
    core = Gate.from_config(
        config, store, None, recorder=recorder, signatures=signatures, decision_signer=signer
    )
    executor = ThreadPoolExecutor(4)
    app = WebhookApp(core, executor)
    review = REVIEW.read_bytes().strip()
    uids = itertools.count()
    loop = asyncio.new_event_loop()
    print(
        f"{len(pss)} Pod Security Standards files + 4 supply-chain rules; {args.reviews} reviews per run, "
        f"webhook concurrency {args.concurrency}, {args.rounds} rounds; policy engine "
        f"{'compiled (mypyc)' if engine_compiled() else 'interpreted'}"
    )
    try:
        # Warm-up: imports, compiled patterns, the first store pages.
        one_thread(core, store, signer, _bodies(review, uids, 200))
        loop.run_until_complete(_webhook(app, _bodies(review, uids, 200), args.concurrency))
        if not args.default_gc:
            settle_after_startup()
        collector = _CollectorClock()
        gc.callbacks.append(collector)
        print(f"garbage collector: {'CPython defaults' if args.default_gc else 'as gate serve sets it'}")
        single: list[float] = []
        threaded: list[float] = []
        per_stage: dict[str, list[float]] = {}
        for index in range(args.rounds):
            order = ("one thread", "webhook") if index % 2 == 0 else ("webhook", "one thread")
            for name in ("one thread",) if args.stages_only else order:
                bodies = _bodies(review, uids, args.reviews)
                if name == "one thread":
                    stages = one_thread(core, store, signer, bodies)
                    total = sum(stages.values())
                    single.append(total)
                    for stage, seconds in stages.items():
                        per_stage.setdefault(stage, []).append(seconds)
                    parts = "  ".join(f"{stage} {seconds * 1e6:.0f}" for stage, seconds in stages.items())
                    print(
                        f"round {index + 1} one thread {total * 1e6:6.0f} us CPU/review ({parts})"
                        f"{collector.report(len(bodies))}"
                    )
                else:
                    started, loop_started = _cpu(), time.thread_time()
                    child_started = tree_cpu_seconds(os.getpid())
                    loop.run_until_complete(_webhook(app, bodies, args.concurrency))
                    loop_cpu = (time.thread_time() - loop_started) / len(bodies)
                    recorder.flush()
                    own = (_cpu() - started) / len(bodies)
                    # The writer process's CPU: the process tree's, less this process's.
                    child = (tree_cpu_seconds(os.getpid()) - child_started) / len(bodies) - own
                    total = own + max(child, 0.0) if writer is not None else own
                    threaded.append(total)
                    split = (
                        f"; this process {own * 1e6:.0f}, writer process {child * 1e6:.0f}" if writer else ""
                    )
                    print(
                        f"round {index + 1} webhook    {total * 1e6:6.0f} us CPU/review "
                        f"(event loop {loop_cpu * 1e6:.0f}{split}){collector.report(len(bodies))}"
                    )
        if args.stages_only:
            parts = " ".join(f"{stage} {median(values) * 1e6:.1f}" for stage, values in per_stage.items())
            print(f"stages us: {parts}")
            return 0
        on_loop, on_threads = (_evaluations(where) for where in ("loop", "thread"))
        print(f"webhook reviews evaluated on the event loop: {on_loop:.0f}, on a thread: {on_threads:.0f}")
        print(
            f"median CPU per review: one thread {median(single) * 1e6:.0f} us, "
            f"webhook {median(threaded) * 1e6:.0f} us; ratio webhook/one thread "
            f"{median(threaded) / median(single):.2f}"
        )
    finally:
        app.close()
        executor.shutdown()
        recorder.close()
        if writer is not None:
            writer.close()
        store.close()
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
