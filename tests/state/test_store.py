from __future__ import annotations

import math

import pytest

from prodwrap.state import MemoryStore
from prodwrap.state._store import SWEEP_AT


def _churn(store: MemoryStore, count: int, now: float, prefix: str = "other") -> None:
    """Take a token from ``count`` new buckets (10 a second, 10 at most) at ``now``."""
    for i in range(count):
        assert store.take(f"{prefix}:{i}", 1.0, 10.0, 10.0, now) == 0.0


def test_a_bucket_swept_out_when_full_behaves_as_a_fresh_one() -> None:
    swept, fresh = MemoryStore(), MemoryStore()
    for _ in range(10):
        assert swept.take("a", 1.0, 10.0, 10.0, 0.0) == 0.0
    assert swept.take("a", 1.0, 10.0, 10.0, 0.0) == pytest.approx(0.1)  # empty
    _churn(swept, SWEEP_AT, now=5.0)  # "a" refilled long ago: the sweep drops it
    assert "a" not in swept._buckets
    for now in (5.0, 5.0, 5.05, 5.2, 5.2):
        for _ in range(4):
            assert swept.take("a", 1.0, 10.0, 10.0, now) == fresh.take("a", 1.0, 10.0, 10.0, now)
        swept.give("a", 0.5, 10.0, 10.0, now)
        fresh.give("a", 0.5, 10.0, 10.0, now)
    assert vars_of(swept, "a") == vars_of(fresh, "a")


def vars_of(store: MemoryStore, key: str) -> tuple[float, float]:
    bucket = store._buckets[key]
    return bucket.tokens, bucket.at


def test_buckets_not_yet_full_are_kept_as_they_were() -> None:
    store = MemoryStore()
    store.take("partial", 1.0, 10.0, 10.0, 0.0)  # 9 left, full again at 0.1 s
    store.give("debt", -25.0, 10.0, 10.0, 0.0)  # 15 owed, full again at 3.5 s
    store.take("never", 1.0, 10.0, 0.0, 0.0)  # no refill: never full again
    _churn(store, SWEEP_AT, now=1.0)
    assert "partial" not in store._buckets
    assert vars_of(store, "debt") == (-15.0, 0.0)
    assert vars_of(store, "never") == (9.0, 0.0)
    assert store.take("debt", 1.0, 10.0, 10.0, 3.5) == 0.0  # refilled on the same terms
    assert store.take("never", 10.0, 10.0, 0.0, 9.0) == float("inf")


def test_buckets_stay_bounded_as_keys_churn() -> None:
    store = MemoryStore()
    for i in range(5 * SWEEP_AT):  # 1000 new keys a second, each full again 0.1 s after its call
        store.take(f"r-{i}", 1.0, 10.0, 10.0, i / 1000)
        assert len(store._buckets) <= SWEEP_AT
    assert store._sweep_at == SWEEP_AT


def test_a_sweep_looks_at_about_two_buckets_per_new_one_when_none_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    looked: list[int] = []
    sweep = MemoryStore._sweep

    def counted(self: MemoryStore, now: float) -> None:
        looked.append(len(self._buckets))
        sweep(self, now)

    monkeypatch.setattr(MemoryStore, "_sweep", counted)
    store = MemoryStore()
    new = 5 * SWEEP_AT
    for i in range(new):  # no refill: nothing ever becomes full, every bucket is kept
        store.take(f"k{i}", 1.0, 10.0, 0.0, float(i))
    assert len(store._buckets) == new
    assert looked == [SWEEP_AT, 2 * SWEEP_AT, 4 * SWEEP_AT]  # doubling
    assert sum(looked) < 2 * new


@pytest.mark.parametrize(("window", "now"), [(1e-305, 1000.0), (0.0, 1000.0), (10.0, math.inf), (10.0, math.nan)])
def test_a_sliding_sum_no_slice_can_hold_is_a_value_error_saying_so(window: float, now: float) -> None:
    store = MemoryStore()
    with pytest.raises(ValueError, match=r"no slice of a .* s window holds the reading"):
        store.add("k", 1, window, now)
    assert store.add("k", 1, 10.0, 1000.0) == 1  # nothing was counted


@pytest.mark.parametrize("capacity", [4.0, 4, 10**12])
def test_a_bucket_refills_at_its_rate_and_never_past_its_capacity(capacity: float) -> None:
    store = MemoryStore()
    rate = 2.0
    for _ in range(4 if capacity == 4 else 10):
        assert store.take("k", 1.0, capacity, rate, 0.0) == 0.0
    if capacity == 4:
        assert store.take("k", 1.0, capacity, rate, 0.0) == pytest.approx(0.5)  # empty: one token in 0.5 s
        assert store.take("k", 1.0, capacity, rate, 0.25) == pytest.approx(0.25)  # half a token by then
        assert store.take("k", 1.0, capacity, rate, 0.5) == 0.0  # refilled one at 2 a second
        # a long idle refills it to its capacity, no more: 4 takes, then a wait again
        assert [store.take("k", 1.0, capacity, rate, 100.0) for _ in range(5)][4] == pytest.approx(0.5)
    else:  # as many tokens as an int this large holds: compared as floats, no overflow, no error
        assert store.take("k", 1.0, capacity, rate, 1e9) == 0.0
        assert store.take("k", 3.0e12, capacity, rate, 1e9) == math.inf  # more than it can ever hold
