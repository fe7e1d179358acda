"""remember / feedback under concurrency, and the default error metric."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import prodwrap as pw
from prodwrap.drift._performance import default_metric
from tests.drift.support import Shift

REF = np.random.default_rng(0).normal(size=(50, 2))
THREADS, PER_THREAD = 8, 3000


@pytest.fixture
def switch_often() -> Iterator[None]:
    """Switch threads every microsecond: races that need an unlucky switch show up."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


class Tally:
    """Stream detector stand-in counting its updates read-modify-write; alarms on every update."""

    def __init__(self) -> None:
        self.updates = 0

    def update(self, value: float) -> bool:
        n = self.updates
        float(value) + 1.0  # a little work between the read and the write
        self.updates = n + 1
        return True

    def reset(self) -> None:
        self.updates = 0


def test_remember_and_feedback_are_thread_safe(switch_often: None) -> None:
    tally = Tally()
    monitor = pw.DriftMonitor(REF, features={0: Shift()}, performance=tally, max_pending=500)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    matched = [0] * THREADS

    def work(t: int) -> None:
        start.wait()
        try:
            for i in range(PER_THREAD):
                key = f"{t}-{i}"
                monitor.remember(key, 0.5)
                matched[t] += monitor.feedback(key, 0.25)
        except BaseException as exc:  # any escape is the failure under test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = monitor.stats()
    assert errors == []
    total = sum(matched)
    # an output may be dropped (500 kept) before its label comes: then it is unmatched
    assert stats.feedback == total == tally.updates and stats.unmatched_feedback == THREADS * PER_THREAD - total
    assert stats.alerts == total and stats.failures == 0
    monitor.close()


def test_a_failing_remember_never_raises() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

    monitor = pw.DriftMonitor(REF, features={0: Shift()}, performance=Tally())
    monitor.remember(Unhashable(), 1.0)  # type: ignore[arg-type]
    assert monitor.stats().failures == 1


@pytest.mark.parametrize("kind", [np.float16, np.float32, np.float64, float])
def test_default_metric_reads_every_float_type_as_a_number(kind: Any) -> None:
    assert default_metric(kind(0.5), kind(0.25)) == pytest.approx(0.25)
    assert default_metric(kind(0.5), 0) == pytest.approx(0.5)


@pytest.mark.parametrize("kind", [np.int8, np.int64, np.uint16, int, np.bool_, bool, str])
def test_default_metric_reads_integers_bools_and_strings_as_labels(kind: Any) -> None:
    assert default_metric(kind(1), kind(1)) == 0.0
    assert default_metric(kind(1), kind(0)) == 1.0


def test_default_metric_numpy_actuals_against_float_outputs() -> None:
    assert default_metric(0.5, np.float32(0.25)) == pytest.approx(0.25)
    assert default_metric(np.float32(0.5), np.int64(1)) == pytest.approx(0.5)
    assert default_metric(0.5, True) == 1.0  # a bool label is a label
