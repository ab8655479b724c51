"""The load generator of grpc_floor.py: closed-loop grpc.aio unary calls on raw bytes.

It knows nothing of the server it drives: it sends pre-serialized request
bytes (read from ``--payloads``) to one method with identity serializers, so
the echo floor and gate get exactly the same client work per call. C workers
share N channels (each channel its own HTTP/2 connection); each worker keeps
one call in flight. Calls that complete during the warm-up are not counted.
Prints one JSON object on stdout.

Payload file format: each payload as a 4-byte big-endian length, then its bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from _harness import percentile

CALL_TIMEOUT = 10.0  # s; far above any sane latency, so only a stuck server hits it


def read_payloads(path: Path) -> list[bytes]:
    """The length-prefixed payloads stored in ``path``."""
    data = path.read_bytes()
    payloads: list[bytes] = []
    offset = 0
    while offset < len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        offset += 4
        payloads.append(data[offset : offset + size])
        offset += size
    if not payloads:
        raise SystemExit(f"{path}: no payloads")
    return payloads


def write_payloads(path: Path, payloads: list[bytes]) -> None:
    """Store ``payloads`` in the format :func:`read_payloads` reads."""
    path.write_bytes(b"".join(struct.pack(">I", len(p)) + p for p in payloads))


@dataclass
class Tally:
    """What the workers saw, shared by all of them (one event loop, so no locking)."""

    measure_from: float
    measure_until: float
    latencies: list[float] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    completed_total: int = 0  # including warm-up, for the server's CPU per RPC


async def _worker(
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes], payloads: list[bytes], first: int, tally: Tally
) -> None:
    index = first
    count = len(payloads)
    while (started := time.perf_counter()) < tally.measure_until:
        try:
            await call(payloads[index % count], timeout=CALL_TIMEOUT)
            code = "OK"
        except grpc.aio.AioRpcError as error:
            code = error.code().name
        ended = time.perf_counter()
        index += 1
        tally.completed_total += 1
        # Count what completed inside the window: the rate is then completions per second.
        if tally.measure_from <= ended <= tally.measure_until:
            tally.latencies.append(ended - started)
            tally.codes[code] += 1


async def run(args: argparse.Namespace) -> dict[str, object]:
    """Drive the server for warm-up plus duration and return the figures."""
    payloads = read_payloads(args.payloads)
    channels = [
        # A private subchannel pool and a distinct argument per channel: otherwise
        # grpc may put several channels on one shared TCP connection.
        grpc.aio.insecure_channel(
            args.target, options=[("grpc.use_local_subchannel_pool", 1), ("bench.channel", index)]
        )
        for index in range(args.channels)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(ch.channel_ready() for ch in channels)), timeout=30)
        calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
            ch.unary_unary(args.method) for ch in channels
        ]
        begin = time.perf_counter()
        tally = Tally(measure_from=begin + args.warmup, measure_until=begin + args.warmup + args.duration)
        cpu_begin = time.process_time()
        spread = max(1, len(payloads) // args.concurrency)
        await asyncio.gather(
            *(_worker(calls[i % len(calls)], payloads, i * spread, tally) for i in range(args.concurrency))
        )
        wall = time.perf_counter() - begin
        cpu = time.process_time() - cpu_begin
    finally:
        await asyncio.gather(*(ch.close() for ch in channels))
    return _summary(tally, frozenset(args.ok_codes), args.duration, cpu / wall if wall else 0.0)


def _summary(tally: Tally, ok_codes: frozenset[str], duration: float, cpu_share: float) -> dict[str, object]:
    answered = sum(n for code, n in tally.codes.items() if code in ok_codes)
    return {
        "rpcs": answered,
        "rps": answered / duration,
        "p50_ms": percentile(tally.latencies, 0.50) * 1000,
        "p99_ms": percentile(tally.latencies, 0.99) * 1000,
        "errors": sum(tally.codes.values()) - answered,
        "codes": dict(tally.codes),
        "completed_total": tally.completed_total,
        "client_cpu_share": cpu_share,
    }


def main() -> None:
    """Parse the options, run, print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True, help="host:port")
    parser.add_argument("--method", required=True, help="/package.Service/Method")
    parser.add_argument("--payloads", type=Path, required=True)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument(
        "--ok-codes", nargs="+", default=["OK"], help="status names that count as answers (others: errors)"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
