"""The rollout policies' numeric settings: the policies' one validation (numpy's scalars in, bools out)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import prodwrap as pw


def _model(x: Any) -> Any:
    return x


GUARD = pw.Guard(max_error_rate=0.1)

# (owner, setting, build(value) -> the policy, read(policy) -> the kept value)
COUNTS: list[tuple[str, str, Callable[[Any], Any], Callable[[Any], Any]]] = [
    ("Guard", "min_calls", lambda v: pw.Guard(0.1, min_calls=v), lambda p: p.min_calls),
    (
        "Guard",
        "max_consecutive_failures",
        lambda v: pw.Guard(0.1, max_consecutive_failures=v),
        lambda p: p.max_consecutive_failures,
    ),
    ("Shadow", "max_pending", lambda v: pw.Shadow(_model, max_pending=v), lambda p: p.max_pending),
    ("Shadow", "workers", lambda v: pw.Shadow(_model, workers=v), lambda p: p.workers),
    ("Escalate", "max_pending", lambda v: pw.Escalate(bool, _model, max_pending=v), lambda p: p.max_pending),
    ("compare.top_k", "k", pw.compare.top_k, lambda p: p.k),
]
# (owner, setting, the interval's words, build, read)
FRACTIONS: list[tuple[str, str, str, Callable[[Any], Any], Callable[[Any], Any]]] = [
    ("Canary", "fraction", "(0, 1]", lambda v: pw.Canary(_model, v), lambda p: p.fraction),
    ("Canary", "steps", "(0, 1]", lambda v: pw.Canary(_model, 0.9, guard=GUARD, steps=[v]), lambda p: p.steps[0]),
    ("Guard", "max_error_rate", "[0, 1)", pw.Guard, lambda p: p.max_error_rate),
    ("Shadow", "sample", "[0, 1]", lambda v: pw.Shadow(_model, sample=v), lambda p: p.sample),
]
REALS: list[tuple[str, str, str, Callable[[Any], Any]]] = [
    ("Guard", "max_p95_latency", "a finite number of seconds > 0", lambda v: pw.Guard(0.1, max_p95_latency=v)),
    ("Shadow", "timeout", "a number of seconds > 0 (math.inf: no limit)", lambda v: pw.Shadow(_model, timeout=v)),
    ("compare.close", "rtol", "a finite number >= 0", lambda v: pw.compare.close(rtol=v)),
    ("compare.close", "atol", "a finite number >= 0", lambda v: pw.compare.close(atol=v)),
]
REFUSED = [True, False, np.True_, "1", None]


def _ids(rows: list[Any]) -> list[str]:
    return [f"{row[0]}.{row[1]}" for row in rows]


@pytest.mark.parametrize(("owner", "name", "build", "read"), COUNTS, ids=_ids(COUNTS))
@pytest.mark.parametrize("value", [np.int64(4), np.int32(4), np.uint8(4), 4])
def test_a_count_takes_numpy_integers_and_keeps_an_int(
    owner: str, name: str, build: Callable[[Any], Any], read: Callable[[Any], Any], value: Any
) -> None:
    kept = read(build(value))
    assert kept == 4 and type(kept) is int


@pytest.mark.parametrize(("owner", "name", "build", "read"), COUNTS, ids=_ids(COUNTS))
@pytest.mark.parametrize("value", [True, np.True_, 4.0, np.float64(4.0), "4", 0, np.int64(-1)])
def test_a_count_refuses_bools_and_non_integers_in_the_shared_words(
    owner: str, name: str, build: Callable[[Any], Any], read: Callable[[Any], Any], value: Any
) -> None:
    with pytest.raises(pw.ConfigurationError) as caught:
        build(value)
    assert str(caught.value) == f"{owner}.{name} must be an int >= 1, got {value!r}"


@pytest.mark.parametrize(("owner", "name", "interval", "build", "read"), FRACTIONS, ids=_ids(FRACTIONS))
@pytest.mark.parametrize("value", [np.float64(0.25), np.float32(0.25), Fraction(1, 4)])
def test_a_fraction_takes_numpy_floats_and_keeps_a_float(
    owner: str, name: str, interval: str, build: Callable[[Any], Any], read: Callable[[Any], Any], value: Any
) -> None:
    kept = read(build(value))
    assert kept == 0.25 and type(kept) is float


@pytest.mark.parametrize(("owner", "name", "interval", "build", "read"), FRACTIONS, ids=_ids(FRACTIONS))
@pytest.mark.parametrize("value", [*REFUSED, np.float64(1.5), np.int64(-1)])
def test_a_fraction_refuses_bools_and_values_outside_its_interval_in_the_shared_words(
    owner: str, name: str, interval: str, build: Callable[[Any], Any], read: Callable[[Any], Any], value: Any
) -> None:
    if value is None and (owner, name) == ("Canary", "steps"):
        value = "x"  # (steps=[None] is a step of None, refused as any non-number is)
    with pytest.raises(pw.ConfigurationError) as caught:
        build(value)
    assert str(caught.value) == f"{owner}.{name} must be a fraction in {interval}, got {value!r}"


def test_each_fraction_keeps_its_own_interval() -> None:
    assert pw.Shadow(_model, sample=np.int64(0)).sample == 0.0 and pw.Shadow(_model, sample=1).sample == 1.0
    assert pw.Guard(np.int64(0)).max_error_rate == 0.0 and pw.Canary(_model, np.int64(1)).fraction == 1.0
    for refused in (lambda: pw.Guard(1), lambda: pw.Canary(_model, 0)):
        with pytest.raises(pw.ConfigurationError, match="must be a fraction in"):
            refused()


@pytest.mark.parametrize(("owner", "name", "words", "build"), REALS, ids=_ids(REALS))
@pytest.mark.parametrize("value", [np.float64(0.5), np.float32(0.5), np.int64(2), Fraction(1, 2)])
def test_seconds_and_tolerances_take_numpy_scalars(
    owner: str, name: str, words: str, build: Callable[[Any], Any], value: Any
) -> None:
    kept = getattr(build(value), name)
    assert kept == float(value) and type(kept) is float


@pytest.mark.parametrize(("owner", "name", "words", "build"), REALS, ids=_ids(REALS))
@pytest.mark.parametrize("value", [True, np.True_, "1", np.float64(-1.0), np.float64("nan")])
def test_seconds_and_tolerances_refuse_bools_in_the_shared_words(
    owner: str, name: str, words: str, build: Callable[[Any], Any], value: Any
) -> None:
    with pytest.raises(pw.ConfigurationError) as caught:
        build(value)
    assert str(caught.value) == f"{owner}.{name} must be {words}, got {value!r}"


def test_shadow_report_wait_takes_numpy_seconds_and_refuses_a_bool() -> None:
    with pw.ProductionModel(_model, shadow=pw.Shadow(_model)) as model:
        model(1)
        assert model.shadow_report(wait=np.float64(5.0)).n == 1
        with pytest.raises(pw.ConfigurationError, match=r"^shadow_report\.wait must be a number of seconds >= 0"):
            model.shadow_report(wait=True)
