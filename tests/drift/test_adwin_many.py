"""ADWIN.update_many: the same change points and end state as update() value by value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prodwrap.drift import _adwin_many
from prodwrap.drift._adwin import ADWIN
from prodwrap.drift._adwin_many import row_counts
from tests.drift.support import ADWIN_PARAMS as PARAMS
from tests.drift.support import ADWIN_STREAMS as STREAMS
from tests.drift.support import flagged_at


def one_by_one(values: list[float], params: dict[str, Any], before: Sequence[float] = ()) -> tuple[list[int], ADWIN]:
    adwin = ADWIN(**params)
    for x in before:
        adwin.update(x)
    return flagged_at(adwin, values), adwin


def assert_same_state(bulk: ADWIN, single: ADWIN) -> None:
    assert bulk.n_detections == single.n_detections
    assert bulk.drift_detected == single.drift_detected
    assert bulk._due - len(bulk._buffer) == single._due - len(single._buffer)  # values to the next check
    assert bulk.width == single.width
    assert [len(row) for row in bulk._row_totals] == [len(row) for row in single._row_totals]
    assert bulk.total == pytest.approx(single.total, rel=1e-9, abs=1e-9)
    assert bulk.variance == pytest.approx(single.variance, rel=1e-7, abs=1e-12)
    for got, want in zip(bulk._row_totals, single._row_totals, strict=True):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9)
    for got, want in zip(bulk._row_variances, single._row_variances, strict=True):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("params", PARAMS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "defaults")
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_same_change_points_and_state_as_update(name: str, params: dict[str, Any]) -> None:
    values = STREAMS[name]
    expected, single = one_by_one(values, params)
    bulk = ADWIN(**params)
    assert bulk.update_many(values).tolist() == expected
    assert_same_state(bulk, single)


@pytest.mark.parametrize("dense_limit", [1 << 22, 0], ids=["positions indexed", "old edges searched"])
@pytest.mark.parametrize("seed", range(6))
def test_stationary_and_shifted_streams(seed: int, dense_limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_adwin_many, "_DENSE_LIMIT", dense_limit)
    rng = np.random.default_rng(seed)
    values = np.concatenate(
        [rng.normal(0, 1, 30_000), rng.normal(rng.choice([0.3, 1.0, 3.0]), 1, 8000), rng.normal(0, 2, 4000)]
    ).tolist()
    expected, single = one_by_one(values, {})
    bulk = ADWIN()
    assert bulk.update_many(values).tolist() == expected
    assert_same_state(bulk, single)


def test_frequent_changes() -> None:
    rng = np.random.default_rng(7)
    values = (rng.normal(0, 1, 20_000) + 6.0 * (np.arange(20_000) // 300 % 2)).tolist()
    expected, single = one_by_one(values, {})
    assert len(expected) > 50
    bulk = ADWIN()
    assert bulk.update_many(values).tolist() == expected
    assert_same_state(bulk, single)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    cuts=st.lists(st.integers(0, 6000), max_size=6),
    before=st.integers(0, 200),
    clock=st.integers(1, 40),
    max_buckets=st.integers(1, 6),
    min_window_length=st.integers(1, 30),
    grace_period=st.integers(0, 300),
    delta=st.sampled_from([0.002, 0.05, 1e-5]),
)
def test_pieces_and_single_updates_mix(
    seed: int,
    cuts: list[int],
    before: int,
    clock: int,
    max_buckets: int,
    min_window_length: int,
    grace_period: int,
    delta: float,
) -> None:
    params = {
        "clock": clock,
        "max_buckets": max_buckets,
        "min_window_length": min_window_length,
        "grace_period": grace_period,
        "delta": delta,
    }
    rng = np.random.default_rng(seed)
    values = (rng.normal(0, 1, 6000) + np.repeat(rng.normal(0, 2, 4), 1500)).tolist()
    head = rng.normal(0, 1, before).tolist()
    expected, single = one_by_one(values, params, head)
    bulk = ADWIN(**params)
    for x in head:
        bulk.update(x)  # leaves values buffered between checks
    found: list[int] = []
    start = 0
    for cut in [*sorted(cuts), len(values)]:
        stop = max(cut, start)
        found += [start + i for i in bulk.update_many(values[start:stop]).tolist()]
        if stop < len(values):  # and one value through update() between the pieces
            if bulk.update(values[stop]):
                found.append(stop)
            stop += 1
        start = stop
    assert found == expected
    assert_same_state(bulk, single)


def test_ends_on_a_detection_like_update() -> None:
    values = [0.0] * 1000 + [1.0] * 1000
    last = one_by_one(values, {})[0][0]
    bulk = ADWIN()
    assert bulk.update_many(values[: last + 1]).tolist() == [last]
    _, single = one_by_one(values[: last + 1], {})
    assert bulk.drift_detected and single.drift_detected
    assert_same_state(bulk, single)  # the oldest buckets were dropped as update() drops them
    assert not bulk.update_many([0.5]).size
    assert bulk.width == 1  # and the next value starts a new window


def test_constant_and_offset_streams() -> None:
    for values in ([0.1] * 5000, [1e9 + 0.5] * 3000 + [1e9 + 1.5] * 3000, [3.0] * 200 + [-3.0] * 200):
        expected, single = one_by_one(values, {})
        bulk = ADWIN()
        assert bulk.update_many(values).tolist() == expected
        assert_same_state(bulk, single)


def test_accepts_arrays_lists_and_nothing() -> None:
    adwin = ADWIN()
    assert adwin.update_many([]).tolist() == []
    assert adwin.update_many(np.array([])).tolist() == []
    assert adwin.width == 0
    assert adwin.update_many(np.arange(10, dtype=np.int32)).tolist() == []
    assert adwin.update_many((1.0, 2.0)).tolist() == []
    assert adwin.width == 12


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1.0, math.nan, 2.0], "NaN or infinite"),
        ([1.0, math.inf], "NaN or infinite"),
        ([[1.0, 2.0], [3.0, 4.0]], "one-dimensional"),
        ([[1.0], [2.0, 3.0]], "sequence of real numbers"),
        ({"a": 1.0}, "one-dimensional"),
        (["1.5", "2.5"], "real numbers"),  # as update("1.5") refuses
        ([1.0, 10**400], "real numbers"),
        (3.0, "one-dimensional"),
        (np.ones((4, 1)), "one-dimensional"),
    ],
)
def test_bad_values_are_rejected_and_nothing_is_added(values: Any, message: str) -> None:
    adwin = ADWIN()
    adwin.update_many([0.5] * 100)
    before = (adwin.width, adwin.total, adwin._due)
    with pytest.raises(ValueError, match=message):
        adwin.update_many(values)
    assert (adwin.width, adwin.total, adwin._due) == before


@pytest.mark.parametrize("max_buckets", [1, 2, 5, 9])
def test_row_counts_follow_the_merges(max_buckets: int) -> None:
    adwin = ADWIN(max_buckets=max_buckets, clock=1, grace_period=10**9)  # never checks
    expected = []
    for _ in range(3000):
        adwin.update(0.0)
        expected.append([len(row) for row in adwin._row_totals])
    got = row_counts(np.arange(1, 3001), max_buckets)
    for width, rows in enumerate(expected, start=1):
        assert got[width - 1, : len(rows)].tolist() == rows
        assert not got[width - 1, len(rows) :].any()


@pytest.mark.parametrize(("every", "params"), [(40, {}), (120, {}), (50, {"clock": 1}), (700, {"clock": 1})])
def test_streams_that_keep_changing(every: int, params: dict[str, Any]) -> None:
    rng = np.random.default_rng(every)
    values = (rng.normal(0, 1, 12_000) + 8.0 * (np.arange(12_000) // every % 2)).tolist()
    expected, single = one_by_one(values, params)
    assert len(expected) > 12_000 // every // 2
    bulk = ADWIN(**params)
    assert bulk.update_many(values).tolist() == expected
    assert_same_state(bulk, single)


@pytest.mark.parametrize(("max_buckets", "clock"), [(200, 1), (1000, 3)])
def test_many_buckets_per_row(max_buckets: int, clock: int) -> None:
    # chunks shrink so that a chunk's cut matrix stays small
    rng = np.random.default_rng(max_buckets)
    values = np.concatenate([rng.normal(0, 1, 6000), rng.normal(1.0, 1, 3000)]).tolist()
    expected, single = one_by_one(values, {"max_buckets": max_buckets, "clock": clock})
    bulk = ADWIN(max_buckets=max_buckets, clock=clock)
    assert bulk.update_many(values).tolist() == expected
    assert_same_state(bulk, single)


@pytest.mark.parametrize("scale", [1e150, 1e-150])
def test_extreme_scales_raise_no_warning(scale: float) -> None:
    rng = np.random.default_rng(1)
    values = (np.concatenate([rng.normal(0, 1, 10_000), rng.normal(3, 1, 2_000)]) * scale).tolist()
    expected, _ = one_by_one(values, {})
    # tests run with -W error: an overflow or underflow warning would fail here
    assert ADWIN().update_many(values).tolist() == expected
    # eps has a term in absolute units (ADWIN assumes values of order 1): found at 1e150 only
    assert bool(expected) == (scale > 1)


def test_offset_streams_do_not_inherit_the_running_sums_rounding() -> None:
    # update() keeps river's running sums: on a constant far from zero their rounding raises
    # false alarms. update_many works on centred sums and raises none (see _adwin_many).
    values = [1e10 / 7] * 50_000
    assert one_by_one(values, {})[0]
    assert ADWIN().update_many(values).tolist() == []
