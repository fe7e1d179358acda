from __future__ import annotations

import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

import prodwrap as pw
from prodwrap.policies.retry import retry_state


def _state(attempt: int) -> tenacity.RetryCallState:
    return retry_state(start=0.0, attempt=attempt, exc=ConnectionError(), now=1.0, idle_for=0.0)


@given(initial=st.floats(0, 10), maximum=st.floats(0, 60), multiplier=st.floats(1, 5), attempt=st.integers(1, 200))
def test_backoff_without_jitter_is_exponential_and_capped(
    initial: float, maximum: float, multiplier: float, attempt: int
) -> None:
    wait = pw.backoff(initial=initial, maximum=maximum, multiplier=multiplier, jitter=False)
    delay = wait(_state(attempt))
    try:
        expected = min(maximum, initial * multiplier ** (attempt - 1))
    except OverflowError:
        expected = maximum
    assert delay == pytest.approx(expected, rel=1e-9, abs=1e-12)


@given(initial=st.floats(0.001, 1), maximum=st.floats(0.001, 10), attempt=st.integers(1, 50))
def test_backoff_with_full_jitter_stays_in_range(initial: float, maximum: float, attempt: int) -> None:
    delay = pw.backoff(initial=initial, maximum=maximum)(_state(attempt))
    assert 0 <= delay <= min(maximum, initial * 2 ** (attempt - 1)) + 1e-12


def test_backoff_combines_with_tenacity_waits() -> None:
    combined = pw.backoff(initial=1, jitter=False) + tenacity.wait_fixed(0.5)
    assert combined(_state(1)) == 1.5


@pytest.mark.parametrize(
    "kwargs", [{"initial": -1}, {"maximum": -1}, {"multiplier": 0.5}, {"initial": float("inf")}, {"initial": True}]
)
def test_backoff_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(pw.ConfigurationError):
        pw.backoff(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"attempts": -2},
        {"attempts": 1.5},
        {"attempts": True},
        {"attempts": 10_000},
        {"attempts": None},
        {"on": 42},
        {"on": (ValueError, 3)},
        {"on": str},
        {"wait": 1.0},
        {"stop": 3},
    ],
)
def test_retry_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(pw.ConfigurationError):
        pw.Retry(**kwargs)  # type: ignore[arg-type]


def test_retry_defaults_are_bounded() -> None:
    policy = pw.Retry()
    assert policy.attempts == 3 and isinstance(policy.wait, pw.Backoff)
    assert pw.Retry.coerce(5) == pw.Retry(attempts=5, wait=policy.wait)


def test_retries_predicate_rules() -> None:
    policy = pw.Retry(on=(ConnectionError,))
    assert policy.retries(ConnectionError()) and not policy.retries(ValueError())
    assert not pw.Retry(on=Exception).retries(pw.OutputValidationError([]))
    assert pw.Retry(on=(pw.OutputValidationError,)).retries(pw.OutputValidationError([]))
    assert not pw.Retry(on=lambda e: True).retries(pw.CircuitOpenError())
