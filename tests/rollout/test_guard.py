"""The guard's statistics (checked against scipy) and its verdicts."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import prodwrap as pw
from prodwrap.rollout._guard import ALPHA, binomial_greater, fisher_greater, judge, level


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"max_error_rate": 1.0}, "max_error_rate"),
        ({"max_error_rate": -0.1}, "max_error_rate"),
        ({"max_error_rate": True}, "max_error_rate"),
        ({"max_error_rate": "0.1"}, "max_error_rate"),
        ({"max_error_rate": 0.1, "max_p95_latency": 0}, "max_p95_latency"),
        ({"max_error_rate": 0.1, "max_p95_latency": math.inf}, "max_p95_latency"),
        ({"max_error_rate": 0.1, "max_mismatch_rate": 1.5}, "max_mismatch_rate"),
        ({"max_error_rate": 0.1, "min_calls": 0}, "min_calls"),
        ({"max_error_rate": 0.1, "min_calls": 2.5}, "min_calls"),
        ({"max_error_rate": 0.1, "max_consecutive_failures": 0}, "max_consecutive_failures"),
    ],
)
def test_nonsense_settings_are_refused_by_name(options: dict[str, object], setting: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=f"Guard.{setting}"):
        pw.Guard(**options)  # type: ignore[arg-type]


def test_defaults_and_describe_are_json_able() -> None:
    guard = pw.Guard(0.05)
    assert (guard.min_calls, guard.max_p95_latency, guard.max_consecutive_failures) == (100, None, None)
    assert guard.look_every == 10 and pw.Guard(0.05, min_calls=5).look_every == 1
    described = json.loads(json.dumps(guard.describe()))
    assert described["max_error_rate"] == 0.05 and "Fisher" in described["test"]


@settings(max_examples=300, deadline=None)
@given(
    calls=st.integers(1, 400),
    other_calls=st.integers(0, 2000),
    data=st.data(),
)
def test_fisher_greater_is_scipys_one_sided_fisher_exact(calls: int, other_calls: int, data: st.DataObject) -> None:
    ours, theirs = _fisher_both(calls, other_calls, data)
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-300)


def _fisher_both(calls: int, other_calls: int, data: st.DataObject) -> tuple[float, float]:
    """Our one-sided Fisher p-value and scipy's, for error counts drawn from ``data``."""
    errors = data.draw(st.integers(0, calls))
    other_errors = data.draw(st.integers(0, other_calls))
    table = [[errors, calls - errors], [other_errors, other_calls - other_errors]]
    theirs = sps.fisher_exact(table, alternative="greater").pvalue
    return fisher_greater(errors, calls, other_errors, other_calls), float(theirs)


@settings(max_examples=300, deadline=None)
@given(calls=st.integers(1, 6000), other_calls=st.integers(0, 8000), data=st.data())
def test_fisher_greater_is_scipys_on_large_tables_far_from_the_mean(
    calls: int, other_calls: int, data: st.DataObject
) -> None:
    """Where P(X = errors) underflows (errors far below or above what the other group's rate
    gives), the p-value is still scipy's: near 1 below, near 0 above."""
    ours, theirs = _fisher_both(calls, other_calls, data)
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def test_a_candidate_far_better_than_a_degraded_primary_is_not_significantly_worse() -> None:
    """10% of 2460 failed against the primary's 60% of 2536: P(X = 246) underflows."""
    assert fisher_greater(246, 2460, 1524, 2536) == pytest.approx(1.0)
    assert fisher_greater(25, 1028, 3751, 5027) == pytest.approx(1.0)
    guard = pw.Guard(max_error_rate=0.05, min_calls=100)
    assert judge(guard, 50, 2460, 246, 2536, 1524, None).state != "rolled_back"


@settings(max_examples=200, deadline=None)
@given(calls=st.integers(1, 500), rate=st.floats(0.001, 0.999), data=st.data())
def test_binomial_greater_is_the_binomial_upper_tail(calls: int, rate: float, data: st.DataObject) -> None:
    errors = data.draw(st.integers(0, calls))
    assert binomial_greater(errors, calls, rate) == pytest.approx(sps.binom.sf(errors - 1, calls, rate), abs=1e-9)


def test_the_looks_spend_at_most_alpha_and_the_first_is_stricter_than_95_percent() -> None:
    assert sum(level(k) for k in range(1, 100_000)) < ALPHA
    assert level(1) == pytest.approx(0.0304, abs=1e-4)
    assert level(2) == level(1) / 4


def test_fisher_is_not_fooled_where_the_z_test_is() -> None:
    """3 errors in 100 against 9 in 900: the pooled z-test says z = 1.74 (p = 0.04)."""
    pooled = 12 / 1000
    z = (3 / 100 - 9 / 900) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 900))
    assert z > 1.645
    assert fisher_greater(3, 100, 9, 900) > 0.05


def test_verdicts() -> None:
    guard = pw.Guard(max_error_rate=0.05, min_calls=100)
    assert judge(guard, 1, 99, 99, 1000, 0, None).state == "inconclusive"  # no verdict below min_calls
    assert judge(guard, 1, 100, 5, 1000, 0, None).state == "running"  # at the threshold: holds
    breach = judge(guard, 1, 100, 20, 900, 9, None)
    assert breach.state == "rolled_back" and breach.p_value is not None and breach.p_value < 1e-6
    assert "error rate 20.0% (20 of 100)" in (breach.reason or "")
    # above the threshold, but the primary fails as often: not significant, no verdict
    same = judge(guard, 1, 100, 10, 900, 90, None)
    assert same.state == "inconclusive" and same.p_value is not None and same.p_value > 0.4
    # no primary calls at all: tested against max_error_rate itself
    alone = judge(guard, 1, 100, 20, 0, 0, None)
    assert alone.state == "rolled_back" and "no primary calls" in (alone.reason or "")
    # the same counts at a late look need more evidence
    assert judge(guard, 1, 100, 9, 1000, 20, None).state == "rolled_back"  # p = 0.0006
    assert judge(guard, 50, 100, 9, 1000, 20, None).state == "inconclusive"  # level 1.2e-5


def test_the_p95_limit_applies_once_min_calls_are_in() -> None:
    guard = pw.Guard(max_error_rate=0.5, max_p95_latency=0.2, min_calls=10)
    assert judge(guard, 1, 9, 0, 10, 0, 0.5).state == "inconclusive"
    slow = judge(guard, 1, 10, 0, 10, 0, 0.5)
    assert slow.state == "rolled_back" and "p95 latency 0.5 s" in (slow.reason or "")
    assert judge(guard, 1, 10, 0, 10, 0, 0.2).state == "running"
