"""Quickstart: a numpy credit scorer made production-ready with prodwrap.

A logistic-regression scorer with fixed weights needs a feature from a remote service that
misbehaves (5% connection errors, 1% hangs, 1% corrupt values). One ``pw.ProductionModel``
adds input validation (malformed requests raise ``pw.InputValidationError`` listing every
problem), output validation (``output=`` and ``check=``: a NaN probability never escapes), a
250 ms attempt timeout inside a 1 s deadline, retries with backoff, and fallbacks (a
rule-based baseline, then a constant).

It makes 3000 calls from 16 threads with ``pw.context`` tags, a third via ``predict_detailed``,
and prints ``model.stats()`` and ``model.report()``. Run: ``.venv/bin/python examples/quickstart.py``
(add ``--telemetry`` for OpenTelemetry metrics on the console: ``pw.telemetry.configure``).

Everything but the times repeats from run to run: each attempt's fault is drawn from an RNG
seeded by the applicant and the attempt's number for that applicant (every applicant is
distinct), never from a shared RNG consumed in thread order. A hang lasts until the run ends,
far beyond the timeout, and a healthy attempt takes about 1 ms, far within it (a machine that
stalls a thread for 250 ms would still change the counts).
"""

import argparse
import math
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

import prodwrap as pw

SEED, N_CALLS, THREADS = 7, 3000, 16
ATTEMPT_TIMEOUT, DEADLINE = 0.25, 1.0  # seconds


class Applicant(BaseModel):
    age: int = Field(ge=18, le=120)
    income: float = Field(gt=0, allow_inf_nan=False)  # yearly, USD
    debt: float = Field(ge=0, allow_inf_nan=False)
    region: Literal["north", "south", "east", "west"]


class Score(BaseModel):
    probability: float  # of default within 12 months


def probability_in_unit_interval(score: Score) -> bool:
    return 0.0 <= score.probability <= 1.0  # False for NaN as well


LOOKUPS, LOOKUPS_LOCK = Counter[str](), threading.Lock()
HANGS_END = threading.Event()  # set when the run is over: hung lookups then return


def fetch_delinquencies(a: Applicant) -> float:
    """A simulated remote feature store (the flaky dependency of the primary model)."""
    key = f"{SEED}/{a.age}/{a.income}/{a.debt}/{a.region}"
    with LOOKUPS_LOCK:
        LOOKUPS[key] += 1
        roll = random.Random(f"{key}/{LOOKUPS[key]}").random()  # one seeded draw per attempt
    if roll < 0.05:
        raise ConnectionError("feature service: connection reset by peer")
    if roll < 0.06:  # 1%: a hang, released only when the run is over
        HANGS_END.wait(timeout=60.0)
    else:
        time.sleep(0.0005 + roll * 0.001)  # a healthy lookup: 0.5 to 1.5 ms
    if roll < 0.07:
        return math.nan  # 1%: a corrupt cache entry
    return float(random.Random(key).randint(0, 4))


WEIGHTS = np.array([-0.02, 1.6, -0.5, 0.45])  # age - 40, debt / income, log(income / 50k), delinquencies
REGION_OFFSET = {"north": 0.0, "south": 0.15, "east": -0.1, "west": 0.25}


def logistic_scorer(a: Applicant) -> Score:
    x = np.array([a.age - 40, a.debt / a.income, math.log(a.income / 50_000), fetch_delinquencies(a)])
    z = float(WEIGHTS @ x) - 2.0 + REGION_OFFSET[a.region]
    return Score(probability=1.0 / (1.0 + math.exp(-z)))


def rule_baseline(a: Applicant) -> Score:
    base_rate = {"north": 0.08, "south": 0.10, "east": 0.07}  # the rulebook predates "west": KeyError
    return Score(probability=min(0.95, base_rate[a.region] + 0.1 * min(a.debt / a.income, 5.0)))


model = pw.ProductionModel(
    logistic_scorer,
    name="credit-risk",
    version="1.4.0",
    input=Applicant,
    output=Score,
    check=probability_in_unit_interval,
    timeout=pw.Timeout(attempt=ATTEMPT_TIMEOUT, total=DEADLINE),
    retry=pw.Retry(attempts=3, on=(ConnectionError, TimeoutError), wait=pw.backoff(initial=0.001, maximum=0.01)),
    fallback=[rule_baseline, pw.Constant(Score(probability=0.5))],
)

MALFORMED: list[tuple[str, Any]] = [
    ("missing field", {"age": 30, "income": 40_000.0, "region": "north"}),
    ("wrong types", {"age": "forty", "income": "lots", "debt": 1.0, "region": "east"}),
    ("NaN income", {"age": 30, "income": math.nan, "debt": 1.0, "region": "south"}),
    ("unknown region", {"age": 30, "income": 40_000.0, "debt": 1.0, "region": "mars"}),
    ("huge string", {"age": 30, "income": 40_000.0, "debt": 1.0, "region": "n" * 1_000_000}),
    ("not a record", [30, 40_000.0, 1.0, "west"]),
]


def make_input(i: int, rng: random.Random) -> tuple[str, Any]:
    if rng.random() < 0.05:
        return rng.choice(MALFORMED)
    income = round(rng.lognormvariate(math.log(50_000), 0.5), 2)
    debt = round(rng.uniform(0, income), 2)
    record = {"age": rng.randint(18, 80), "income": income, "debt": debt, "region": rng.choice(list(REGION_OFFSET))}
    if i % 40 == 0:
        return "valid", Applicant.model_validate(record).model_dump_json()  # JSON text works too
    return "valid", record


def call(i: int, kind: str, x: Any) -> tuple[str, str, pw.Prediction | None, Exception | None]:
    with pw.context(customer=f"bank-{i % 7}", request_id=f"r-{i}"):
        try:
            if i % 3:
                model(x)
                return kind, "served", None, None
            p = model.predict_detailed(x)
            return kind, p.outcome, p, None
        except pw.InputValidationError as exc:
            return kind, "rejected", None, exc


def main() -> None:
    parser = argparse.ArgumentParser(description="prodwrap's quickstart")
    parser.add_argument("--telemetry", action="store_true", help="print OpenTelemetry metrics on the console")
    args = parser.parse_args()
    # Off by default: with the flag off this installs nothing, and the models create no spans.
    telemetry = pw.telemetry.configure(console=args.telemetry, tracing=False, service_name="quickstart")
    rng = random.Random(SEED)
    inputs = [make_input(i, rng) for i in range(N_CALLS)]
    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(call, range(N_CALLS), *zip(*inputs, strict=True)))
    elapsed = time.perf_counter() - start
    HANGS_END.set()
    stats = model.stats()
    rejected = Counter(kind for kind, result, _, _ in results if result == "rejected")
    # misjudged: valid inputs rejected or malformed ones served (should be 0)
    wrongly = sum(1 for kind, result, _, _ in results if (kind == "valid") == (result == "rejected"))
    example = next(exc for kind, _, _, exc in results if kind == "wrong types")
    detailed = [p for _, _, p, _ in results if p is not None]
    served = N_CALLS - rejected.total()
    print(f"{N_CALLS} calls from {THREADS} threads in {elapsed:.2f} s")
    same = "all of them" if stats.outcomes.get("error", 0) == rejected.total() else "NOT all of them"
    print(f"  calls by outcome     {stats.outcomes}  ('error': {same} rejected inputs)")
    print(f"  calls by server      {stats.served_by}")
    print(f"  failures by reason   {stats.failures}  (one per failed attempt or rejected input)")
    print(f"  rejected inputs      {rejected.total()} {dict(sorted(rejected.items()))}; misjudged: {wrongly}")
    print("  example error        " + f"{type(example).__name__}: {example}".replace("\n", "\n" + " " * 23))
    timeouts = stats.failures.get("timeout", 0)
    limit = f"{ATTEMPT_TIMEOUT * 1000:.0f} ms"
    print(
        f"  timeouts             {timeouts} attempts ran out of their {limit}; {stats.abandoned} abandoned "
        "(left to end on their worker thread, late results discarded)"
    )
    lat = (stats.latency_p50 or 0, stats.latency_p95 or 0, stats.latency_p99 or 0)
    print("  latency p50/95/99    " + " / ".join(f"{s * 1000:.2f} ms" for s in lat))
    print(f"  fallback rate        {stats.outcomes.get('fallback', 0) / served:.2%} of {served} served calls")
    attempts = dict(sorted(Counter(p.attempts for p in detailed).items()))
    print(f"  predict_detailed     {len(detailed)} calls; primary attempts per call {attempts}")
    fb = next(p for p in detailed if p.outcome == "fallback")
    errors = [type(e).__name__ for e in fb.errors]
    print(f"  e.g. {dict(fb.tags)}: {errors} -> {fb.served_by} {fb.value.probability:.3f}")
    print("\nmodel.report():\n" + model.report())
    print("\nmodel.describe()['stages']:", model.describe()["stages"])
    telemetry.shutdown()  # (with --telemetry: the metrics summary)


if __name__ == "__main__":
    main()
