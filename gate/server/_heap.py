"""The garbage collector's settings for a server that has finished starting.

Measured in process with the webhook under load (``benchmarks/review_path.py``; figures in
``benchmarks/README.md``, "Evaluating on the event loop, and the garbage collector"): with
CPython's defaults the collector cost 43-102 us per admission review, most of it in full
collections that walked the ~130,000 objects of start-up (imports, policies, the gRPC
and SQL machinery) for 60-103 ms each, a pause every few thousand reviews that lands in
the latency tail. Start-up objects live as long as the process: they are frozen out of
every collection, and the youngest generation is collected every 10,000 net allocations
instead of 700, which leaves 0-4 us per review.
"""

from __future__ import annotations

import gc

# Net allocations of tracked objects between young-generation collections (CPython's default: 700).
YOUNG_THRESHOLD = 10_000


def settle_after_startup() -> None:
    """Collect start-up garbage, exclude what is left from later collections, collect less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
