"""DriftMonitor's checker thread: close(), collection, faults, and serialised checks."""

from __future__ import annotations

import gc
import logging
import threading
import time
import weakref
from typing import Any

import numpy as np
import pytest

import prodwrap as pw
from tests.drift.support import Shift, raising

REF = np.random.default_rng(0).normal(size=(200, 2))


def _fill(monitor: pw.DriftMonitor, n: int) -> None:
    for _ in range(n):
        monitor.observe([0.0, 0.0], None)


def _ended(threads: list[threading.Thread], within: float = 2.0) -> bool:
    """Poll until none of ``threads`` is alive (True), or ``within`` seconds pass (False)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(t.is_alive() for t in threads):
            return True
        time.sleep(0.005)
    return not any(t.is_alive() for t in threads)


def test_closed_monitors_leave_no_thread_behind() -> None:
    monitors = [pw.DriftMonitor(REF, features={0: Shift()}, window=5) for _ in range(20)]
    for monitor in monitors:
        _fill(monitor, 5)
        assert monitor.wait(5)
    threads = [monitor._checker.thread for monitor in monitors]
    assert all(t is not None and t.is_alive() for t in threads)
    for monitor in monitors:
        monitor.close()
        monitor.close()  # idempotent
    assert _ended([t for t in threads if t is not None])
    names = {t.name for t in threading.enumerate()}
    assert not any(t in names for t in (t.name for t in threads if t is not None))


def test_a_with_block_closes_the_monitor_and_its_thread_even_on_error() -> None:
    with pw.DriftMonitor(REF, features={0: Shift()}, window=5) as monitor:
        assert isinstance(monitor, pw.DriftMonitor) and not monitor.closed
        _fill(monitor, 5)
        assert monitor.wait(5)
        thread = monitor._checker.thread
        assert thread is not None and thread.is_alive()
    assert monitor.closed and not thread.is_alive()  # (close() joins the thread)
    with pytest.raises(KeyError), pw.DriftMonitor(REF, window=5) as failing:
        raise KeyError("in the block")
    assert failing.closed


def test_a_dropped_monitor_is_collected_and_its_thread_ends() -> None:
    monitor = pw.DriftMonitor(REF, features={0: Shift()}, window=5)
    _fill(monitor, 5)
    assert monitor.wait(5)
    thread = monitor._checker.thread
    assert thread is not None and thread.is_alive()
    ref = weakref.ref(monitor)
    del monitor
    gc.collect()
    assert ref() is None
    assert _ended([thread])


def test_after_close_observe_does_nothing_costly_and_never_raises() -> None:
    checked: list[int] = []

    class Counting(Shift):
        def test(self, current: Any) -> Any:
            checked.append(len(current))
            return super().test(current)

    inline = pw.DriftMonitor(REF, features={0: Counting()}, window=5, background=False)
    inline.close()
    assert [inline.observe([0.0, 0.0], None) for _ in range(10)] == [()] * 10
    threaded = pw.DriftMonitor(REF, features={0: Counting()}, window=5)
    threaded.close()
    _fill(threaded, 10)
    assert threaded._checker.thread is None and threaded.wait(1)
    assert checked == [] and inline.stats().checks == threaded.stats().checks == 0
    assert len(inline.check()) == 1  # asked for explicitly, a check still runs


@pytest.mark.parametrize("error", [SystemExit(3), GeneratorExit(), ZeroDivisionError("bug")])
def test_the_checker_survives_any_detector_error(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    monitor = pw.DriftMonitor(REF, features={0: raising(error), 1: Shift()}, window=5)
    with caplog.at_level(logging.WARNING, logger="prodwrap.drift"):
        _fill(monitor, 5)
        assert monitor.wait(5)
        _fill(monitor, 5)  # the thread is still there: the next check runs too
        assert monitor.wait(5)
    stats = monitor.stats()
    assert (stats.checks, stats.failures) == (2, 2)
    assert monitor._checker.thread is not None and monitor._checker.thread.is_alive()
    assert any(r.levelno == logging.WARNING and type(error).__name__ in r.getMessage() for r in caplog.records)
    monitor.close()


def test_keyboard_interrupt_in_an_inline_check_reaches_the_caller() -> None:
    monitor = pw.DriftMonitor(REF, features={0: raising(KeyboardInterrupt())}, window=5, background=False)
    _fill(monitor, 4)
    with pytest.raises(KeyboardInterrupt):
        monitor.observe([0.0, 0.0], None)


def test_a_manual_check_waits_for_the_background_one() -> None:
    entered, release, second = threading.Event(), threading.Event(), threading.Event()
    inside = [0]
    overlap = [False]

    class Slow(Shift):
        def test(self, current: Any) -> Any:
            inside[0] += 1
            overlap[0] = overlap[0] or inside[0] > 1
            if entered.is_set():
                second.set()
            entered.set()
            release.wait(5)
            inside[0] -= 1
            return super().test(current)

    monitor = pw.DriftMonitor(REF, features={0: Slow()}, window=5)
    _fill(monitor, 5)
    assert entered.wait(5)  # the background check holds the detector
    manual = threading.Thread(target=monitor.check)
    manual.start()
    assert not second.wait(0.2)  # bounded negative check: the manual one must not enter
    release.set()
    manual.join(5)
    assert monitor.wait(5) and second.is_set() and not overlap[0]
    assert monitor.stats().checks == 2
    monitor.close()


def test_wait_returns_when_closed_with_a_check_pending() -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow(Shift):
        def test(self, current: Any) -> Any:
            entered.set()
            release.wait(5)
            return super().test(current)

    monitor = pw.DriftMonitor(REF, features={0: Slow()}, window=5)
    _fill(monitor, 5)
    assert entered.wait(5)
    _fill(monitor, 5)  # a second check is due behind the running one
    closer = threading.Thread(target=monitor.close)
    closer.start()
    release.set()
    closer.join(5)
    assert not closer.is_alive() and monitor.wait(1)
    assert monitor.stats().checks == 1  # the pending check is dropped at close
