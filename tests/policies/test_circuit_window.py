"""The breaker's window and probes against a plain reference (a deque of the last outcomes)."""

from __future__ import annotations

from collections import deque

from hypothesis import given
from hypothesis import strategies as st

from prodwrap.policies._circuit_window import FAILED, OK, SLOW, Probes, Window

# "fast": the success path's lock-free count; "undo": one counted, then withdrawn (a later
# stage said no); "convert": one counted, then failed (withdrawn, and the failure added)
CODES = st.sampled_from([OK, FAILED, SLOW, FAILED | SLOW, "fast", "undo", "convert"])


def reference_verdict(window: deque[int], min_calls: int, failure_rate: float, slow_rate: float) -> str | None:
    n = len(window)
    if n < min_calls:
        return None
    if sum(c & FAILED for c in window) / n >= failure_rate:
        return "failure_rate"
    if sum(c >> 1 for c in window) / n >= slow_rate:
        return "slow_call_rate"
    return None


@given(
    size=st.integers(1, 12),
    min_calls=st.integers(1, 12),
    failure_rate=st.sampled_from([0.1, 0.25, 0.5, 0.7, 1.0]),
    slow_rate=st.sampled_from([0.2, 0.5, 1.0]),
    ops=st.lists(CODES, max_size=200),
)
def test_the_window_decides_as_the_last_outcomes_do(
    size: int, min_calls: int, failure_rate: float, slow_rate: float, ops: list[int | str]
) -> None:
    min_calls = min(min_calls, size)
    window = Window(size, min_calls, failure_rate, slow_rate)
    ref: deque[int] = deque(maxlen=size)
    generation = 0
    for op in ops:
        if op in ("fast", "undo") and window.primed:  # only ever when primed, as the breaker does
            next(window.pending)
            if op == "undo":
                next(window.withdrawn)
            else:
                ref.append(OK)
            continue
        code = op if isinstance(op, int) else OK
        if op == "convert" and window.primed:
            next(window.pending)
            next(window.withdrawn)
            code = FAILED
        ref.append(code)
        expected = reference_verdict(ref, min_calls, failure_rate, slow_rate)
        assert window.add(code) == expected
        if expected is not None:  # the breaker opens; it is closed again with an empty window
            generation += 1
            window.reset(generation)
            ref.clear()
    n, failure, slow = window.rates()
    assert n == len(ref)
    if n >= min_calls and n:
        assert failure == sum(c & FAILED for c in ref) / n and slow == sum(c >> 1 for c in ref) / n
    else:
        assert failure is None and slow is None


def test_probes_decide_once_all_are_in_and_a_given_back_slot_is_free_again() -> None:
    probes = Probes(3, failure_rate=0.5, slow_rate=1.0)
    probes.reset(7)
    assert [probes.take() for _ in range(4)] == [True, True, True, False]
    probes.give_back()
    assert probes.take() and not probes.take()
    assert probes.add(FAILED) is None and probes.add(OK) is None
    assert probes.add(SLOW) == "probes_passed"  # 1 of 3 failed, 1 of 3 slow
    probes.reset(8)
    assert [probes.add(c) for c in (FAILED | SLOW, OK, FAILED)] == [None, None, "failure_rate"]
