"""gate's own work per pipeline Decide, in process and by stage (run by ``grpc_floor.py --rpc decide``).

Opens the data directory a ``grpc_floor.py`` gate left behind (the images' imported scans, the
decision key) with the same policies, and answers the benchmark's Decide requests one after the
other in this thread, as ``Api`` does behind gRPC, timing three stages apart:

- ``decide``: the protobuf request parsed, ``Api``'s Decide (subject, evidence, the stage's
  policies, the decision, its request digest) and the protobuf answer;
- ``seal``: the records' in-toto statements and their seals, one signature per batch of 32 (as the
  decision writer seals the batches it stores);
- ``store``: the insert, in transactions of 32 as the decision writer commits them.

No gRPC, no threads and no writer process: what a Decide costs at the least, beside the echo
floor's cost per call. Ends with ``stages us: decide D seal S store T`` (medians over rounds).

    python benchmarks/_decide_stages.py DATA_DIR [--database-url URL] [--requests N] [--rounds N]
        [--by-digest]

The policy sources come from ``$GATE_POLICY_SOURCES``, as for the gate that made ``DATA_DIR``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from _harness import import_checkout, median

import_checkout()

from grpc_floor import _gate_requests  # noqa: E402

from gate._api import Api  # noqa: E402
from gate._signature_service import SignatureService  # noqa: E402
from gate.config import load_config  # noqa: E402
from gate.core import Gate  # noqa: E402
from gate.decisions import seal_all  # noqa: E402
from gate.model import Decision  # noqa: E402
from gate.store import open_store  # noqa: E402
from gate.v1 import decision_pb2  # noqa: E402

BATCH = 32


def _stages(api: Api, core: Gate, store: Any, signer: Any, requests: list[bytes]) -> dict[str, float]:
    """CPU seconds per Decide of each stage, one after the other in this thread."""
    made: list[Decision] = []
    # Collected here, then sealed and stored as the decision writer does, each stage timed.
    core.record_decision = lambda decision, **_: made.append(decision)  # type: ignore[method-assign]
    spent = {"decide": 0.0, "seal": 0.0, "store": 0.0}
    for index, data in enumerate(requests):
        started = time.process_time()
        api._decide(decision_pb2.DecideRequest.FromString(data))
        decided = time.process_time()
        spent["decide"] += decided - started
        if len(made) >= BATCH or index == len(requests) - 1:
            sealed = seal_all(made, signer)
            signed = time.process_time()
            store.add_decisions(sealed)
            spent["seal"] += signed - decided
            spent["store"] += time.process_time() - signed
            made.clear()
    return {stage: seconds / len(requests) for stage, seconds in spent.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--by-digest", action="store_true", help="the images by artifact.digest")
    args = parser.parse_args()
    settings = {
        "GATE_DATA_DIR": str(args.data_dir),
        "GATE_POLICY_SOURCES": os.environ.get("GATE_POLICY_SOURCES", ""),
        "GATE_METRICS_ENABLED": "false",
    }
    if args.database_url:
        settings["GATE_DATABASE_URL"] = args.database_url
    config = load_config(None, settings)
    store = open_store(config.effective_database_url)
    signatures = SignatureService(config.signatures, config.registry)
    signer = signatures.decision_signer(config.data_dir)
    core = Gate.from_config(config, store, None, signatures=signatures, decision_signer=signer)
    # Decide then only sets the request digest; the signature is the seal stage's.
    core.decision_signer = None
    api = Api(core)
    requests = _gate_requests(args.requests, "decide", by_digest=args.by_digest)
    try:
        _stages(api, core, store, signer, requests[:200])  # warm-up: imports, caches, first pages
        # What these requests are answered here (recorded nowhere), to compare with the served answers.
        sample = api._decide(decision_pb2.DecideRequest.FromString(requests[0]))
        print(f"answer to the first request: allowed={sample.allowed}, {len(sample.results)} rule results")
        rounds = [_stages(api, core, store, signer, requests) for _ in range(args.rounds)]
    finally:
        store.close()
    for number, stages in enumerate(rounds, start=1):
        parts = "  ".join(f"{stage} {seconds * 1e6:.0f}" for stage, seconds in stages.items())
        print(f"round {number}: {parts} us CPU per Decide")
    medians = " ".join(f"{stage} {median([r[stage] for r in rounds]) * 1e6:.1f}" for stage in rounds[0])
    print(f"stages us: {medians}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
