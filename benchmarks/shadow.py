"""What a shadow (and an escalation) adds to the primary's call, in one process.

Each case is a tight ``perf_counter_ns`` loop of calls of one model; the cases run
interleaved, repeat by repeat, against the same model without a shadow, so drift in machine
speed hits every case alike. Numbers are medians over the repeats, in µs per call, and the
ratio against the plain model. The "blocked" case is DESIGN's acceptance case: a candidate
that sleeps 1 s on every call; once ``max_pending`` runs are pending, every further call is
skipped, and the primary's call costs what the skip costs.

    .venv/bin/python benchmarks/shadow.py           # full run (about 15 s)
    .venv/bin/python benchmarks/shadow.py --quick   # smoke run
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from time import perf_counter_ns
from typing import Any

import prodwrap as pw


def predict(x: float) -> float:
    return x * 0.5 + 0.1


def agrees(x: float) -> float:
    return x * 0.5 + 0.1


def sleeps(x: float) -> float:
    time.sleep(1.0)
    return x


def cases() -> dict[str, Any]:
    return {
        "plain (no shadow)": pw.ProductionModel(predict),
        "shadow sample=0 (the draw only)": pw.ProductionModel(predict, shadow=pw.Shadow(agrees, sample=0.0)),
        "shadow sample=0.01": pw.ProductionModel(predict, shadow=pw.Shadow(agrees, sample=0.01)),
        "shadow sample=0.1": pw.ProductionModel(predict, shadow=pw.Shadow(agrees, sample=0.1)),
        "shadow sample=1.0": pw.ProductionModel(predict, shadow=pw.Shadow(agrees, max_pending=100_000)),
        "shadow sample=1.0, candidate sleeps 1 s": pw.ProductionModel(predict, shadow=pw.Shadow(sleeps)),
        "escalate, never matching": pw.ProductionModel(
            predict, escalate=pw.Escalate(when=lambda out: out > 1e9, to=lambda p: None)
        ),
        "escalate, matching 1 in 10": pw.ProductionModel(
            predict, escalate=pw.Escalate(when=lambda out: int(out * 20) % 10 == 0, to=lambda p: None)
        ),
    }


def loop(model: Callable[[float], Any], n: int) -> float:
    """µs per call over ``n`` calls, GC paused."""
    xs = [i / n for i in range(n)]
    gc.disable()
    try:
        begin = perf_counter_ns()
        for x in xs:
            model(x)
        took = perf_counter_ns() - begin
    finally:
        gc.enable()
    return took / n / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few short repeats")
    quick = parser.parse_args().quick
    repeats, n = (3, 2_000) if quick else (11, 20_000)
    models = cases()
    for model in models.values():  # warm up: threads started, caches filled, queues full
        loop(model, 2_000)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            times[name].append(loop(model, n))
    base = statistics.median(times["plain (no shadow)"])
    fastest = min(times["plain (no shadow)"])
    print(f"{'case':<42} {'µs/call':>8} {'min..max':>15} {'x plain':>8} {'added µs':>9} {'added (min)':>12}")
    for name, samples in times.items():
        median = statistics.median(samples)
        spread = f"{min(samples):.2f}..{max(samples):.2f}"
        added = median - base
        print(f"{name:<42} {median:8.2f} {spread:>15} {median / base:8.2f} {added:9.2f} {min(samples) - fastest:12.2f}")
    print(
        "\nA sampled call's dispatch includes the candidate's own run on a thread of the same process"
        " (the GIL is shared): in a loop that keeps the CPU busy, the candidate's CPU time shows here."
    )
    blocked = models["shadow sample=1.0, candidate sleeps 1 s"].shadow_report()
    print(f"\nblocked candidate: {blocked.pending} pending (max_pending=1000), {blocked.skipped} calls skipped")
    for model in models.values():
        model.close()


if __name__ == "__main__":
    main()
