"""Every policy's numeric settings: one validation, the same types accepted, the same messages."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import prodwrap as pw
from prodwrap.policies._numbers import amount, as_float, count, fraction, seconds

# (owner, setting, build(value) -> the policy): counts, then seconds / amounts
COUNTS: list[tuple[str, str, Callable[[Any], Any]]] = [
    ("CircuitBreaker", "window", lambda v: pw.CircuitBreaker(window=v)),
    ("CircuitBreaker", "min_calls", lambda v: pw.CircuitBreaker(min_calls=v)),
    ("CircuitBreaker", "half_open_calls", lambda v: pw.CircuitBreaker(half_open_calls=v)),
    ("Bulkhead", "max_concurrent", pw.Bulkhead),
    ("Cache", "maxsize", lambda v: pw.Cache(maxsize=v)),
    ("Hedge", "max_extra", lambda v: pw.Hedge(after=0.1, max_extra=v)),
    ("Hedge", "min_samples", lambda v: pw.Hedge(after="p95", min_samples=v)),
    ("Retry", "attempts", lambda v: pw.Retry(attempts=v)),
]
REALS: list[tuple[str, str, Callable[[Any], Any]]] = [
    ("CircuitBreaker", "open_for", lambda v: pw.CircuitBreaker(open_for=v)),
    ("CircuitBreaker", "slow_call", lambda v: pw.CircuitBreaker(slow_call=v)),
    ("CircuitBreaker", "failure_rate", lambda v: pw.CircuitBreaker(failure_rate=v)),
    ("Bulkhead", "max_wait", lambda v: pw.Bulkhead(1, max_wait=v)),
    ("Cache", "ttl", lambda v: pw.Cache(ttl=v)),
    ("Hedge", "after", lambda v: pw.Hedge(after=v)),
    ("Retry", "max_retry_after", lambda v: pw.Retry(max_retry_after=v)),
    ("backoff", "initial", lambda v: pw.backoff(initial=v)),
    ("RateLimit", "calls", lambda v: pw.RateLimit(calls=v)),
    ("RateLimit", "tokens", lambda v: pw.RateLimit(tokens=v)),
    ("RateLimit", "per", lambda v: pw.RateLimit(calls=5, per=v)),
    ("RateLimit", "max_wait", lambda v: pw.RateLimit(calls=5, max_wait=v)),
    ("RetryBudget", "ratio", lambda v: pw.RetryBudget(ratio=v)),
    ("RetryBudget", "min_per_second", lambda v: pw.RetryBudget(min_per_second=v)),
    ("RetryBudget", "window", lambda v: pw.RetryBudget(window=v)),
    ("Timeout", "attempt", lambda v: pw.Timeout(attempt=v)),
]


@pytest.mark.parametrize(("owner", "name", "build"), COUNTS, ids=[f"{o}.{n}" for o, n, _ in COUNTS])
@pytest.mark.parametrize("value", [np.int64(4), np.int32(4), np.uint8(4), 4])
def test_a_count_takes_any_int_like_value_and_keeps_an_int(
    owner: str, name: str, build: Callable[[Any], Any], value: Any
) -> None:
    kept = getattr(build(value), name)
    assert kept == 4 and type(kept) is int


@pytest.mark.parametrize(("owner", "name", "build"), COUNTS, ids=[f"{o}.{n}" for o, n, _ in COUNTS])
@pytest.mark.parametrize("value", [True, np.True_, 4.0, np.float64(4.0), Fraction(4), "4", 0, np.int64(-1)])
def test_a_count_refuses_bools_non_integers_and_too_small_values_in_one_words(
    owner: str, name: str, build: Callable[[Any], Any], value: Any
) -> None:
    with pytest.raises(pw.ConfigurationError) as caught:
        build(value)
    assert str(caught.value) == f"{owner}.{name} must be an int >= 1, got {value!r}"


@pytest.mark.parametrize(("owner", "name", "build"), REALS, ids=[f"{o}.{n}" for o, n, _ in REALS])
@pytest.mark.parametrize("value", [Fraction(1, 2), Decimal("0.5"), np.float64(0.5), np.float32(0.5)])
def test_seconds_and_amounts_take_any_real_number_and_keep_a_float(
    owner: str, name: str, build: Callable[[Any], Any], value: Any
) -> None:
    if name in {"calls", "tokens", "window"}:  # (a bucket holds at least one; a retry budget's window is >= 1 s)
        value = value * 4
    kept = getattr(build(value), name)
    assert kept == float(value) and type(kept) is float


@pytest.mark.parametrize(("owner", "name", "build"), REALS, ids=[f"{o}.{n}" for o, n, _ in REALS])
@pytest.mark.parametrize(
    "value",
    [True, np.True_, "0.5", None, math.nan, Decimal("sNaN"), -1, 10**400],
    ids=["True", "np.True_", "str", "None", "nan", "sNaN", "-1", "10**400"],
)
def test_seconds_and_amounts_refuse_bools_non_numbers_and_nonsense_naming_the_setting(
    owner: str, name: str, build: Callable[[Any], Any], value: Any
) -> None:
    optional = {("CircuitBreaker", "slow_call"), ("Cache", "ttl"), ("RateLimit", "calls"), ("RateLimit", "tokens")}
    if value is None and (owner, name) in optional | {("Timeout", "attempt")}:
        return  # None means "none" there
    if type(value) is int and value > 0 and (owner, name) == ("Bulkhead", "max_wait"):
        return  # infinity (past a float's range): no limit
    with pytest.raises(pw.ConfigurationError, match=rf"^{owner}\.{name} must be a "):
        build(value)


def test_the_helpers_say_what_was_wanted() -> None:
    assert count("X", "n", np.int16(3)) == 3 and seconds("X", "s", Decimal("1.5")) == 1.5
    assert amount("X", "a", 0, zero=True) == 0.0 and fraction("X", "f", Fraction(1, 3)) == pytest.approx(1 / 3)
    with pytest.raises(pw.ConfigurationError, match=r"^X\.n must be at most 10 attempts, got 11$"):
        count("X", "n", 11, most=10, unit=" attempts")
    with pytest.raises(pw.ConfigurationError, match=r"^X\.s must be a number of seconds >= 0 \(math\.inf: no limit\)"):
        seconds("X", "s", -1, zero=True, infinite=True)
    with pytest.raises(pw.ConfigurationError, match=r"^X\.s must be a finite number of seconds >= 0.01, got 0.001$"):
        seconds("X", "s", 0.001, least=0.01)
    with pytest.raises(pw.ConfigurationError, match=r"^X\.a must be a finite number >= 1, got 0.5$"):
        amount("X", "a", 0.5, least=1)
    assert as_float(10**400) == math.inf and as_float(-(10**400)) == -math.inf
    assert math.isnan(as_float(Decimal("sNaN")))  # type: ignore[arg-type]
    assert as_float(True) is None and as_float("1") is None
