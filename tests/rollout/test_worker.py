"""The bounded background worker: never blocks, never queues beyond its bound, closes cleanly."""

from __future__ import annotations

import threading

from prodwrap.rollout._worker import BoundedWorker

WAIT = 10.0


def test_submit_refuses_beyond_max_pending_and_runs_the_rest() -> None:
    release = threading.Event()
    done: list[int] = []
    worker = BoundedWorker("test-worker", threads=2, max_pending=3)

    def job(i: int) -> None:
        release.wait(WAIT)
        done.append(i)

    assert [worker.submit(job, i) for i in range(5)] == [True, True, True, False, False]
    assert worker.pending == 3 and worker.peak == 3
    release.set()
    assert worker.drain(WAIT)
    assert sorted(done) == [0, 1, 2] and worker.pending == 0
    assert worker.submit(job, 9) and worker.drain(WAIT) and done[-1] == 9
    worker.close()


def test_close_drops_the_queue_and_threads_end_after_their_job() -> None:
    started, release = threading.Event(), threading.Event()
    done: list[int] = []

    def job(i: int) -> None:
        started.set()
        release.wait(WAIT)
        done.append(i)

    worker = BoundedWorker("test-closing", threads=1, max_pending=10)
    for i in range(4):
        worker.submit(job, i)
    assert started.wait(WAIT)
    assert worker.close() == 3 and worker.dropped == 3
    assert not worker.submit(job, 5)
    release.set()
    assert worker.drain(WAIT) and done == [0]
    for t in [t for t in threading.enumerate() if t.name == "test-closing"]:
        t.join(WAIT)
        assert not t.is_alive()


def test_idle_threads_leave_and_come_back() -> None:
    worker = BoundedWorker("test-idle", threads=1, max_pending=10)
    worker.idle_seconds = 0.01
    ran = threading.Event()
    worker.submit(ran.set)
    assert ran.wait(WAIT) and worker.drain(WAIT)
    for t in [t for t in threading.enumerate() if t.name == "test-idle"]:
        t.join(WAIT)
    again = threading.Event()
    assert worker.submit(again.set) and again.wait(WAIT)
    worker.close()


def test_a_job_that_raises_is_logged_and_the_worker_goes_on() -> None:
    worker = BoundedWorker("test-raising", threads=1, max_pending=10)
    ok = threading.Event()

    def bad() -> None:
        raise RuntimeError("bug")

    worker.submit(bad)
    worker.submit(ok.set)
    assert ok.wait(WAIT) and worker.drain(WAIT) and worker.pending == 0
    worker.close()
