"""The model's lifecycle: close() and the context manager stop what it owns; drift feedback
under threads never reaches a prediction."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

import prodwrap as pw


def _drift_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("prodwrap-drift")]


def test_20_models_with_monitors_closed_leave_no_thread_behind() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(500, 2))
    before = set(_drift_threads())
    models = []
    for _ in range(20):
        monitor = pw.DriftMonitor(reference, window=10)
        model = pw.ProductionModel(lambda x: float(x[0]), drift=monitor)
        for row in rng.normal(size=(10, 2)):  # one full window: the checker thread starts
            model(row)
        monitor.wait(5)
        models.append(model)
    assert len(set(_drift_threads()) - before) == 20
    for model in models:
        model.close()
    deadline = time.monotonic() + 2.0
    while set(_drift_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.01)  # polling for threads to end, bounded by the 2 s the contract allows
    assert set(_drift_threads()) - before == set()
    assert models[0](np.zeros(2)) == 0.0  # a closed model still predicts


def test_8_threads_predict_detailed_and_feedback_raise_nothing() -> None:
    rng = np.random.default_rng(1)
    monitor = pw.DriftMonitor(rng.normal(size=(500, 1)), window=200, performance=pw.drift.ADWIN())
    model = pw.ProductionModel(lambda x: float(x[0]) > 0, drift=monitor)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(seed: int) -> None:
        local = np.random.default_rng(seed)
        barrier.wait()
        try:
            for _ in range(1500):
                p = model.predict_detailed(local.normal(size=1))
                model.feedback(p.id, bool(local.integers(2)))
        except BaseException as exc:  # anything at all is a failure of this test
            errors.append(exc)

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(previous)
    model.close()
    assert errors == []
    stats = model.stats()
    assert stats.calls == 8 * 1500 and stats.drift is not None
    assert stats.drift.feedback + stats.drift.unmatched_feedback == 8 * 1500


def test_the_model_closes_its_monitor_on_leaving_the_with_block() -> None:
    monitor = pw.DriftMonitor(np.arange(100.0), window=10)
    with pw.ProductionModel(lambda x: x, drift=monitor) as model:
        for i in range(10):
            model(float(i))
        monitor.wait(5)
    assert monitor.stats().closed
    with pytest.raises(pw.ConfigurationError, match="feedback needs"):
        pw.ProductionModel(lambda x: x).feedback("id", 1)


def test_close_with_a_timeout_returns_though_the_audit_sink_hangs() -> None:
    """Without a timeout close() hands every queued line to the sink, however long it takes;
    with one it returns after it, and the lines left are counted."""
    release, entered = threading.Event(), threading.Event()

    def hanging(line: str) -> None:
        entered.set()
        release.wait(30)

    log = pw.AuditLog(hanging)
    model = pw.ProductionModel(lambda x: x, name="hung-audit", audit=log)
    for i in range(3):
        assert model(i) == i
    assert entered.wait(10)  # the writer is inside the sink with the first line
    closer = threading.Thread(target=model.close, kwargs={"timeout": 0.05})
    closer.start()
    closer.join(10)
    try:
        assert not closer.is_alive() and not release.is_set()  # returned while the sink still hangs
        assert log.stats().after_close == 2  # the two lines still queued behind the first
    finally:
        release.set()
    for nonsense in (float("nan"), -1, "x", True, [1]):
        with pytest.raises(pw.ConfigurationError, match=r"close\(timeout=\) must be None or seconds >= 0"):
            model.close(timeout=nonsense)  # type: ignore[arg-type]
