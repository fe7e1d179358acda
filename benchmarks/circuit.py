"""The circuit breaker's cost, against the same model in the same process (DESIGN §4).

Two questions, each answered by ratios of cases run interleaved, repeat by repeat, with
``overhead.py``'s timing loop (one statement compiled into a ``perf_counter_ns`` loop, GC
paused):

- What does a call cost while the circuit is open (the dependency is not called), served by a
  ``pw.Constant`` fallback or raising ``CircuitOpenError``, against a successful call of the same
  model while it is closed?
- What does the breaker add to the success path: the same model with and without
  ``circuit=``, bare and in ``overhead.py``'s benchmark pipeline (validation + retry + fallback)?
  And does that pipeline with the breaker, a bulkhead and a cache still meet DESIGN §4's
  success-path rows (overhead <= 2x the validation, >= 10x faster than by hand)?

    .venv/bin/python benchmarks/circuit.py           # full run (about 20 s)
    .venv/bin/python benchmarks/circuit.py --quick   # smoke run (a few seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overhead  # the timing loop, the Applicant model and its predict
from overhead import RAW, Applicant, Case, X, hand_written, measure, predict

import prodwrap as pw

BREAKER = pw.CircuitBreaker(failure_rate=0.5, window=100, open_for=3600.0)
CLOSED = pw.ProductionModel(predict, circuit=BREAKER)
OPEN_FALLBACK = pw.ProductionModel(predict, circuit=BREAKER, fallback=pw.Constant(0.0))
OPEN_RAISING = pw.ProductionModel(predict, circuit=BREAKER)
PLAIN = pw.ProductionModel(predict)
RETRY = pw.Retry(attempts=3, on=(ConnectionError,))
PIPELINE = pw.ProductionModel(predict, input=Applicant, retry=RETRY, fallback=pw.Constant(0.0))
PIPELINE_GUARDED = pw.ProductionModel(predict, input=Applicant, retry=RETRY, fallback=pw.Constant(0.0), circuit=BREAKER)

GUARDED_BULKHEAD = PIPELINE_GUARDED.with_options(bulkhead=pw.Bulkhead(max_concurrent=64))
GUARDED_RESILIENT = GUARDED_BULKHEAD.with_options(cache=pw.Cache(maxsize=1024))  # the same input: hits


def raising() -> None:
    try:  # noqa: SIM105 (contextlib.suppress would add its own cost to the row)
        OPEN_RAISING(X)
    except pw.CircuitOpenError:
        pass


# The cases' statements run in overhead.py's namespace: these names join it.
vars(overhead).update(
    CLOSED=CLOSED,
    OPEN_FALLBACK=OPEN_FALLBACK,
    PLAIN=PLAIN,
    PIPELINE=PIPELINE,
    PIPELINE_GUARDED=PIPELINE_GUARDED,
    GUARDED_BULKHEAD=GUARDED_BULKHEAD,
    GUARDED_RESILIENT=GUARDED_RESILIENT,
    raising=raising,
)


def check_cases() -> None:
    """Each case does what its label says (a benchmark of a broken path is useless)."""
    for model in (OPEN_FALLBACK, OPEN_RAISING):
        assert model.circuit is not None
        model.circuit.open()
    want = predict(X)
    assert CLOSED(X) == PLAIN(X) == PIPELINE(RAW) == PIPELINE_GUARDED(RAW) == want
    assert GUARDED_BULKHEAD(RAW) == GUARDED_RESILIENT(RAW) == hand_written(RAW) == want
    assert OPEN_FALLBACK(X) == 0.0
    raising()
    for model in (CLOSED, PLAIN, PIPELINE, PIPELINE_GUARDED, GUARDED_BULKHEAD, GUARDED_RESILIENT):
        assert model._engine.fast is not None  # the compiled success path, breaker or not
    assert OPEN_FALLBACK.stats().circuit.refused == OPEN_RAISING.stats().circuit.refused == 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (fewer, shorter repeats)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    repeats, target_ns = (3, 2_000_000) if args.quick else (15, 40_000_000)
    check_cases()
    open_cases = [
        Case("closed", "1  closed: a successful call, circuit=", "CLOSED(X)"),
        Case("open_fallback", "2  open: served by pw.Constant", "OPEN_FALLBACK(X)"),
        Case("open_raising", "3  open: raises CircuitOpenError", "raising()"),
    ]
    success_cases = [
        Case("bare", "4  bare call: predict(x)", "predict(X)"),
        Case("plain", "5  model(x), no policy", "PLAIN(X)"),
        Case("guarded", "6  model(x), circuit=", "CLOSED(X)"),
        Case("pipeline", "7  model(dict): valid.+retry+fallback", "PIPELINE(RAW)"),
        Case("pipeline_guarded", "8  the same + circuit=", "PIPELINE_GUARDED(RAW)"),
        Case("bulkhead", "9  row 8 + bulkhead=Bulkhead(64)", "GUARDED_BULKHEAD(RAW)"),
        Case("resilient", "10 row 9 + cache=Cache(1024), every call a hit", "GUARDED_RESILIENT(RAW)"),
        Case("validate", "11 pydantic validate_python(dict)", "VALIDATE(RAW)"),
        Case("hand", "12 hand-written tenacity + pydantic", "hand_written(RAW)"),
    ]
    with asyncio.Runner() as runner:
        for group in (open_cases, success_cases):
            measure(group, runner, repeats, target_ns)
    assert CLOSED.circuit is not None and CLOSED.circuit.state == "closed"
    assert OPEN_FALLBACK.stats().circuit.refused > 1

    cases = {c.key: c for c in (*open_cases, *success_cases)}
    med = {key: c.median for key, c in cases.items()}
    machine = f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f} before the run"
    print(f"prodwrap circuit breaker  ({machine}, {repeats} repeats)")
    print(f"\n{'case':<50}{'median µs/call':>15}  {'min..max':>17}{'calls/repeat':>14}")
    for c in cases.values():
        print(f"{c.label:<50}{c.median:>15.3f}  {c.spread:>17}{c.n:>14}")
    print(f"\n{'ratio':<50}{'measured':>15}")
    rows = (
        ("2 / 1   open (fallback) / successful call", f"{med['open_fallback'] / med['closed']:.2f}x"),
        ("3 / 1   open (raises) / successful call", f"{med['open_raising'] / med['closed']:.2f}x"),
        ("6 / 5   success path, breaker / none", f"{med['guarded'] / med['plain']:.2f}x"),
        ("6 - 5   the breaker on the success path (µs)", f"{med['guarded'] - med['plain']:.3f}"),
        ("8 / 7   pipeline, breaker / none", f"{med['pipeline_guarded'] / med['pipeline']:.2f}x"),
        ("8 - 7   the breaker in the pipeline (µs)", f"{med['pipeline_guarded'] - med['pipeline']:.3f}"),
    )
    for name, value in rows:
        print(f"{name:<50}{value:>15}")
    print(f"\n{'DESIGN §4, success path':<50}{'measured':>15}  {'target':>17}  result")
    for key, label in (("pipeline_guarded", "8"), ("bulkhead", "9"), ("resilient", "10")):
        over = (med[key] - med["bare"]) / med["validate"]
        name = f"({label} - 4) / 11   overhead / validation"
        print(f"{name:<50}{over:>14.2f}x  {'<= 2x':>17}  {_verdict(over <= 2)}")
        speedup = med["hand"] / med[key]
        name = f"12 / {label}   hand-written / prodwrap"
        print(f"{name:<50}{speedup:>14.1f}x  {'>= 10x':>17}  {_verdict(speedup >= 10)}")
    print(
        "\nnote: an open call never reaches the dependency, so next to a real remote call (ms) its"
        "\n      cost is nothing; rows 2 and 3 compare it with a successful call of a predict that"
        "\n      costs almost nothing, the harshest baseline there is."
    )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


if __name__ == "__main__":
    main()
