"""Instructions per admission review, counted by callgrind: a figure the machine's load does not move.

Timed runs on these shared two-core machines move by 20 % and more from one minute to the next
(the allow-all floor alone answered 6,900-13,300 requests a second within the same hour), so a
change worth 5 % cannot be seen in them. callgrind counts the instructions the CPU executes: the
same count, within ~0.5 %, whatever else the machine is doing. The count per review depends on
the numbers of reviews, so two copies are compared at the same settings (``--baseline``). It
says nothing of cache misses, system calls or waits, so it complements the timed benchmarks; it
does not replace them. Libraries that choose their code by the CPU's features see the CPU valgrind
emulates (no SHA extensions, no AVX-512, which this machine's has): OpenSSL's SHA-256, for one,
runs a longer path under callgrind than on the host. Compare copies with it, not stages across
libraries.

Each measurement runs a child of this script under callgrind twice, at once on the two cores:
the same set-up as ``review_path.py`` (SQLite in a temp dir, the Pod Security Standards policies
plus the supply-chain rules, decisions signed), ``--warmup`` reviews, then ``--few`` or
``--many`` more. The difference of the two counts over ``many - few`` reviews is the count per
review, free of start-up and imports. What a review covers (``--what``):

- ``review``: what the webhook does for a review in process, as ``review_path.py``'s
  one-thread rounds do: parse the AdmissionReview, review it (policies, decision, answer), then
  seal and store the decisions in batches of 32;
- ``answer``: the same without the seal and the store: the AdmissionReview parsed and
  reviewed, the decision and the answer built (the decision is then dropped);
- ``parse``: the AdmissionReview parsed and checked alone (``parse_review``);
- ``engine``: ``PolicyBundle.evaluate`` alone, on the parsed request.

The copy measured is the checkout, or with ``--compiled`` a compiled copy (``$GATE_BENCH_SOURCE``
or a new one). ``--baseline DIR`` measures a second copy of gate in the same run (a directory
holding ``gate/`` and ``policies/``, such as a compiled copy of an earlier commit, or a
``git worktree`` of one) and prints the ratio of the two.

    python benchmarks/instructions.py [--what review|answer|parse|engine] [--compiled] [--baseline DIR]
        [--warmup 50] [--few 20] [--many 420]

Needs valgrind (Debian package valgrind). Each copy measured takes one to two minutes.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import SOURCE_ENV, compiled_source, import_checkout

BENCH_DIR = Path(__file__).resolve().parent
_COLLECTED = re.compile(r"Collected : (\d+)")


def _child(what: str, warmup: int, count: int) -> None:
    """Set up, then answer ``warmup + count`` reviews (run under callgrind by the parent)."""
    import_checkout()
    import gc
    import json

    from admission import REVIEW, policy_sources
    from review_path import _bodies, one_thread, open_review_gate

    from gate.core import Gate
    from gate.decisions import parse_review
    from policies import AdmissionRequest, load_policies

    # The collector runs when allocations add up, at points that differ between the two
    # counts; off, each review's instructions are its own.
    gc.disable()
    work = Path(tempfile.mkdtemp(prefix="gate-bench-instructions-"))
    try:
        review = REVIEW.read_bytes().strip()
        if what == "engine":
            pss, supply = policy_sources(work)
            bundle = load_policies([*pss, supply])
            body = json.loads(review)["request"]
            request = AdmissionRequest(
                operation="CREATE", object=body["object"], namespace=body.get("namespace", "")
            )
            for _ in range(warmup + count):
                bundle.evaluate(request, depth_checked=True)
            return
        _, config, store, signatures, signer = open_review_gate(work)
        core = Gate.from_config(config, store, None, signatures=signatures, decision_signer=signer)
        uids = itertools.count()
        if what == "parse":
            for body in _bodies(review, uids, warmup + count):
                parse_review(body)
        elif what == "answer":
            made: list[Any] = []
            core.record_decision = made.append  # type: ignore[method-assign]  # kept, neither sealed nor stored
            for body in _bodies(review, uids, warmup + count):
                core.review(parse_review(body), started=time.perf_counter())
                made.clear()
        else:
            # Batches of 32 in both counts: the warm-up and the measured reviews are whole batches.
            one_thread(core, store, signer, _bodies(review, uids, warmup))
            if count:
                one_thread(core, store, signer, _bodies(review, uids, count))
        store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _count(source: Path | None, what: str, warmup: int, counts: tuple[int, int]) -> tuple[int, int]:
    """Instructions of the two children (``counts`` reviews after the warm-up), run at once."""
    env = dict(os.environ)
    env.pop(SOURCE_ENV, None)
    if source is not None:
        env[SOURCE_ENV] = str(source)
    # Hash randomisation changes dict layouts, hence a few instructions, from run to run.
    env["PYTHONHASHSEED"] = "0"
    children = [
        subprocess.Popen(  # valgrind on this interpreter and this script
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                str(count),
                "--what",
                what,
                "--warmup",
                str(warmup),
            ],
            cwd=BENCH_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for count in counts
    ]
    found: list[int] = []
    for child in children:
        out, err = child.communicate()
        match = _COLLECTED.search(err)
        if child.returncode != 0 or match is None:
            raise RuntimeError(f"callgrind child failed ({child.returncode}):\n{out[-1500:]}{err[-2500:]}")
        found.append(int(match.group(1)))
    return found[0], found[1]


def _per_review(source: Path | None, args: argparse.Namespace) -> float:
    few, many = _count(source, args.what, args.warmup, (args.few, args.many))
    return (many - few) / (args.many - args.few)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=("review", "answer", "parse", "engine"), default="review")
    parser.add_argument(
        "--compiled", action="store_true", help="a compiled copy ($GATE_BENCH_SOURCE, or a new one)"
    )
    parser.add_argument("--baseline", type=Path, help="a second copy of gate to measure and compare with")
    parser.add_argument("--warmup", type=int, default=64)
    parser.add_argument("--few", type=int, default=32)
    parser.add_argument("--many", type=int, default=416)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.what, args.warmup, args.child)
        return 0
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not on PATH (Debian package valgrind)")
    if args.many <= args.few:
        parser.error(f"--many ({args.many}) must exceed --few ({args.few})")
    with tempfile.TemporaryDirectory(prefix="gate-bench-") as tmp:
        source = compiled_source(Path(tmp)) if args.compiled else None
        measured = _per_review(source, args)
        label = f"{'compiled copy ' + str(source) if source else 'the checkout'}"
        print(f"{args.what}: {measured:,.0f} instructions per review ({label})")
        if args.baseline is not None:
            base = _per_review(args.baseline.resolve(), args)
            print(f"{args.what}: {base:,.0f} instructions per review (baseline {args.baseline})")
            print(f"ratio measured/baseline: {measured / base:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
