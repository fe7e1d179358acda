"""Hedged attempts against a tail-heavy predict: p50/p99 latency with and without a hedge.

The predict answers in about 1 ms, but 10% of its calls (an independent draw per call,
seeded) take 30 ms: the long tail a hedge is for. The same seeded sequence of calls runs
without a hedge and with ``pw.Hedge(after=0.004)``, sync and async, interleaved run by run;
the table shows latency percentiles and their ratios (no hedge / hedge). The cost is the
extra attempts: shown as attempts per call. With one extra attempt a call is slow only when
both are (1% of calls): the p95 falls, the p99 sits on that 1%; two extras move the p99 too.

    .venv/bin/python benchmarks/hedge.py            # 400 calls per case (about 30 s)
    .venv/bin/python benchmarks/hedge.py --quick    # 100 calls per case
"""

from __future__ import annotations

import argparse
import asyncio
import random
import threading
import time
from time import perf_counter

import prodwrap as pw

FAST, SLOW, SLOW_SHARE = 0.001, 0.030, 0.10


class Tail:
    """A predict whose every call draws its own latency (thread-safe, seeded)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.calls = 0

    def seconds(self) -> float:
        with self.lock:
            self.calls += 1
            return SLOW if self.rng.random() < SLOW_SHARE else FAST

    def __call__(self, x: int) -> int:
        time.sleep(self.seconds())
        return x

    async def acall(self, x: int) -> int:
        await asyncio.sleep(self.seconds())
        return x


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return at(0.50), at(0.95), at(0.99)


def run_sync(hedge: pw.Hedge | None, n: int, seed: int) -> tuple[list[float], float]:
    tail = Tail(seed)
    model = pw.ProductionModel(tail, hedge=hedge)
    out = []
    for i in range(n):
        start = perf_counter()
        assert model(i) == i
        out.append(perf_counter() - start)
    return out, tail.calls / n


async def run_async(hedge: pw.Hedge | None, n: int, seed: int) -> tuple[list[float], float]:
    tail = Tail(seed)
    model = pw.ProductionModel(tail.acall, hedge=hedge)
    out = []
    for i in range(n):
        start = perf_counter()
        assert await model(i) == i
        out.append(perf_counter() - start)
    return out, tail.calls / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    n = 150 if parser.parse_args().quick else 1000
    cases: list[tuple[str, pw.Hedge | None]] = [
        ("no hedge", None),
        ("Hedge(after=0.004)", pw.Hedge(after=0.004)),
        ("Hedge(after=0.004, max_extra=2)", pw.Hedge(after=0.004, max_extra=2)),
    ]
    share, slow, fast = f"{SLOW_SHARE:.0%}", f"{SLOW * 1e3:.0f} ms", f"{FAST * 1e3:.0f} ms"
    print(f"hedge: {n} calls per case; {share} of attempts take {slow}, the rest {fast}")
    print()
    print("| driver | policy | p50 | p95 | p99 | attempts/call | p95 ratio | p99 ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in ("sync", "async"):
        base: tuple[float, float] | None = None
        for label, policy in cases:
            if kind == "sync":
                samples, per_call = run_sync(policy, n, seed=7)
            else:
                samples, per_call = asyncio.run(run_async(policy, n, seed=7))
            p50, p95, p99 = percentiles(samples)
            base = (p95, p99) if base is None else base
            print(
                f"| {kind} | {label} | {p50 * 1e3:.2f} ms | {p95 * 1e3:.2f} ms | {p99 * 1e3:.2f} ms"
                f" | {per_call:.2f} | {base[0] / p95:.1f}x | {base[1] / p99:.1f}x |"
            )


if __name__ == "__main__":
    main()
