"""The worker pool: limits, hand-off under interrupts, late exceptions, bursts, lifecycle.

Where a test waits for a limit to pass, the wait is real time (a caller blocks on a real
lock, or an event loop timer fires): its docstring says so and the slack is generous. Every
other wait is on an event, a semaphore or a thread join.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest

import prodwrap as pw
from prodwrap import _jobs
from prodwrap._jobs import Job, PoolCounts
from prodwrap._workers import POOL, Pool, Worker
from prodwrap.testing import FakeClock, no_sleep

WAIT = 10.0  # seconds an event wait may take before the test fails (never reached when it passes)


def gave_up(outcome: tuple[bool, object]) -> bool:
    """The caller stopped waiting: ``(False, job)``, the job running on."""
    return outcome[0] is False and isinstance(outcome[1], Job)


class Probe(Pool):
    """A pool that signals each time a worker goes idle, and can hold its starter back."""

    def __init__(self, idle_seconds: float = 60.0) -> None:
        super().__init__(idle_seconds)
        self.idled = threading.Semaphore(0)
        self.spawn_gate = threading.Event()
        self.spawn_gate.set()

    def _next(self, worker: Worker) -> Any:
        job = super()._next(worker)
        if job is None:
            self.idled.release()
        return job

    def _spawn(self) -> None:
        assert self.spawn_gate.wait(WAIT)
        super()._spawn()

    def wait_idle(self, n: int = 1) -> None:
        for _ in range(n):
            assert self.idled.acquire(timeout=WAIT), "a worker never went back to the idle list"


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event hung attempts wait on; set at teardown so their threads end."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def pool() -> Probe:
    return Probe()


def ident() -> int:
    return threading.get_ident()


class Late:
    """An ``on_late`` hook that records each late exception and lets a test wait for them."""

    def __init__(self) -> None:
        self.seen: list[BaseException] = []
        self._arrived = threading.Semaphore(0)

    def __call__(self, exc: BaseException) -> None:
        self.seen.append(exc)
        self._arrived.release()

    def wait(self, n: int = 1) -> list[BaseException]:
        for _ in range(n):
            assert self._arrived.acquire(timeout=WAIT), "no late exception was reported"
        return self.seen


def hang_then(
    gate: threading.Event, outcome: Callable[[], Any], started: threading.Event | None = None
) -> Callable[[], Any]:
    def fn() -> Any:
        if started is not None:
            started.set()
        assert gate.wait(WAIT)
        return outcome()

    return fn


def raise_(exc: BaseException) -> Callable[[], Any]:
    def fn() -> Any:
        raise exc

    return fn


# -- results, arguments, limits ------------------------------------------------------------


def test_run_returns_the_result_and_reraises_the_attempts_own_exception(pool: Probe) -> None:
    assert pool.run(1.0, None, lambda a, b=0: a + b, (1,), {"b": 2}) == (True, 3)
    error = ValueError("boom")
    with pytest.raises(ValueError) as raised:
        pool.run(1.0, None, raise_(error), (), {})
    assert raised.value is error
    ok, thread = pool.run(1.0, None, ident, (), {})
    assert ok and thread != threading.get_ident()


def test_arguments_named_like_the_pools_own_parameters_pass_through(pool: Probe) -> None:
    names = {n: n for n in ("timeout", "fn", "deadline", "loop", "seconds", "on_late", "args", "kwargs")}

    def predict(x: int, **kw: str) -> tuple[int, dict[str, str]]:
        return x, kw

    assert pool.run(1.0, None, predict, (1,), names) == (True, (1, names))
    assert asyncio.run(pool.arun(1.0, None, predict, (2,), names)) == (True, (2, names))
    assert asyncio.run(pool.arun(None, None, predict, (3,), names)) == (True, (3, names))


def test_a_model_passes_timeout_and_friends_to_the_predict() -> None:
    def predict(x: int, timeout: float, fn: str, deadline: str, loop: str) -> tuple[int, float, str, str, str]:
        return x, timeout, fn, deadline, loop

    model = pw.ProductionModel(predict, timeout=1.0)
    kw: dict[str, Any] = {"timeout": 3, "fn": "f", "deadline": "d", "loop": "l"}
    assert model(1, **kw) == (1, 3, "f", "d", "l")
    assert asyncio.run(model.apredict(2, **kw)) == (2, 3, "f", "d", "l")
    assert model.stats().failures == {}


@pytest.mark.parametrize("seconds", [1e10, sys.maxsize, float("inf")])
def test_huge_limits_wait_in_steps_instead_of_overflowing(pool: Probe, seconds: float) -> None:
    assert pool.run(seconds, None, lambda: "ok", (), {}) == (True, "ok")
    far = _jobs._clocks.clock.monotonic() + seconds
    assert pool.run(None, far, lambda: "ok", (), {}) == (True, "ok")
    assert asyncio.run(pool.arun(seconds, far, lambda: "ok", (), {})) == (True, "ok")


def test_a_model_with_a_huge_timeout_keeps_its_result() -> None:
    for timeout in (1e10, sys.maxsize):
        model = pw.ProductionModel(lambda x: x * 2, timeout=timeout, retry=3, fallback=pw.Constant(-1))
        p = model.predict_detailed(21)
        assert (p.value, p.outcome, p.attempts) == (42, "ok", 1)


def test_the_attempt_sees_the_nearer_limit_as_its_deadline(pool: Probe) -> None:
    with no_sleep(FakeClock(start=50.0)) as clock:  # the fake clock stands still: exact values
        assert pool.run(3.0, None, pw.deadline, (), {}) == (True, 3.0)
        assert pool.run(10.0, clock.monotonic() + 2.0, pw.deadline, (), {}) == (True, 2.0)
        assert pool.run(None, clock.monotonic() + 2.5, pw.deadline, (), {}) == (True, 2.5)
        assert asyncio.run(pool.arun(4.0, None, pw.deadline, (), {})) == (True, 4.0)
        assert asyncio.run(pool.arun(None, None, pw.deadline, (), {})) == (True, None)
    ok, left = pool.run(1.0, None, pw.deadline, (), {})
    assert ok and 0.0 < left <= 1.0  # the real clock moved a little
    assert pool.run(None, None, pw.deadline, (), {}) == (True, None)  # each attempt's own binding


def test_run_gives_up_at_the_limit_and_drops_the_late_result(
    pool: Probe, gate: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    """Real time: the caller waits 0.05 s on a real lock, twice."""
    late: list[BaseException] = []
    began = time.monotonic()
    assert gave_up(pool.run(0.05, None, hang_then(gate, ident), (), {}, late.append))
    assert time.monotonic() - began >= 0.05
    deadline = _jobs._clocks.clock.monotonic() + 0.05
    assert gave_up(pool.run(None, deadline, hang_then(gate, ident), (), {}, late.append))
    assert pool.counts() == PoolCounts(workers=2, idle=0, queued=0)
    gate.set()
    pool.wait_idle(2)
    assert late == [] and not caplog.records  # a late result is discarded silently
    assert pool.counts() == PoolCounts(workers=2, idle=2, queued=0)


# -- KeyboardInterrupt on the caller's side ------------------------------------------------


class _Interrupting:
    """A job's ``done`` lock whose first timed wait on the main thread raises KeyboardInterrupt,
    ``after`` acquiring (the outcome arrived) or instead of it (Ctrl-C during the wait)."""

    def __init__(self, lock: Any, after: bool) -> None:
        self.lock, self.after = lock, after

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout != -1 and threading.current_thread() is threading.main_thread():
            if self.after:
                assert self.lock.acquire(blocking, timeout)
            raise KeyboardInterrupt
        return bool(self.lock.acquire(blocking, timeout))

    def release(self) -> None:
        self.lock.release()


@contextlib.contextmanager
def interrupting_jobs(after: bool) -> Iterator[None]:
    """Jobs created in the block get an interrupting ``done`` lock."""
    real = threading.Lock
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_jobs, "_allocate_lock", lambda: _Interrupting(real(), after))
        yield


def test_interrupt_as_the_outcome_arrives_leaves_the_worker_reusable(pool: Probe) -> None:
    ok, first = pool.run(1.0, None, ident, (), {})
    assert ok
    pool.wait_idle()
    with interrupting_jobs(after=True), pytest.raises(KeyboardInterrupt):
        pool.run(1.0, None, ident, (), {})
    pool.wait_idle()
    assert pool.counts() == PoolCounts(workers=1, idle=1, queued=0)
    assert pool.run(1.0, None, ident, (), {}) == (True, first)  # the same worker, reused


def test_interrupt_while_waiting_abandons_the_attempt_and_reports_its_exception(
    pool: Probe, gate: threading.Event
) -> None:
    late, started = Late(), threading.Event()
    error = RuntimeError("after the interrupt")
    with interrupting_jobs(after=False), pytest.raises(KeyboardInterrupt):
        pool.run(1.0, None, hang_then(gate, raise_(error), started), (), {}, late)
    assert started.wait(WAIT)
    assert pool.counts() == PoolCounts(workers=1, idle=0, queued=0)  # still running the attempt
    gate.set()
    assert late.wait() == [error]
    pool.wait_idle()
    assert pool.counts().busy == 0


def test_keyboard_interrupt_raised_by_the_attempt_reaches_the_caller(pool: Probe) -> None:
    with pytest.raises(KeyboardInterrupt):
        pool.run(1.0, None, raise_(KeyboardInterrupt()), (), {})
    pool.wait_idle()
    assert pool.counts() == PoolCounts(workers=1, idle=1, queued=0)


class _InterruptedRelease:
    def __init__(self, lock: Any) -> None:
        self.lock = lock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self.lock.acquire(blocking, timeout))

    def release(self) -> None:
        raise KeyboardInterrupt  # before the worker is woken: the hand-off never finishes


def test_interrupted_hand_off_retires_the_worker() -> None:
    """Real time: the stranded worker leaves after idle_seconds (0.5 s), seen by a join."""
    pool = Probe(idle_seconds=0.5)
    ok, worker = pool.run(1.0, None, threading.current_thread, (), {})
    assert ok
    pool.wait_idle()
    assert isinstance(worker, Worker)
    worker.go = _InterruptedRelease(worker.go)  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        pool.run(1.0, None, ident, (), {})
    worker.join(WAIT)
    assert not worker.is_alive()
    assert pool.counts() == PoolCounts(workers=0, idle=0, queued=0)


# -- late exceptions -----------------------------------------------------------------------


def test_late_exceptions_reach_on_late_and_log_once_per_burst(
    pool: Probe, gate: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    """Real time: five attempts time out after 0.02 s each."""
    caplog.set_level(logging.WARNING, logger="prodwrap.workers")
    late = Late()
    errors = [ValueError(i) for i in range(5)]
    for error in errors:
        assert gave_up(pool.run(0.02, None, hang_then(gate, raise_(error)), (), {}, late))
    gate.set()
    assert sorted(late.wait(5), key=str) == errors
    pool.wait_idle(5)  # each worker logs (or not) after its on_late call, then goes idle
    records = [r for r in caplog.records if r.name == "prodwrap.workers"]
    assert [(r.levelno, r.reason) for r in records] == [(logging.WARNING, "late_exception")]  # type: ignore[attr-defined]
    assert "ValueError" in records[0].getMessage() and "not logged" not in records[0].getMessage()
    pool.late.throttle._last.clear()  # as though the burst's quiet period had passed
    gate.clear()
    assert gave_up(pool.run(0.02, None, hang_then(gate, raise_(KeyError("k"))), (), {}, late))
    gate.set()
    late.wait()
    pool.wait_idle()
    records = [r for r in caplog.records if r.name == "prodwrap.workers"]
    assert len(records) == 2
    assert "KeyError" in records[1].getMessage() and "4 more like it" in records[1].getMessage()


def test_a_late_errors_log_line_masks_the_inputs_sensitive_values(gate: threading.Event) -> None:
    """Real time: the attempt times out after 0.02 s."""

    class Applicant(pydantic.BaseModel):
        name: str
        ssn: pydantic.SecretStr

    def lookup(a: Applicant) -> float:
        assert gate.wait(WAIT)
        ssn = a.ssn.get_secret_value()
        try:
            raise KeyError(ssn)
        except KeyError as exc:
            raise ValueError(f"lookup failed for ssn {ssn}") from exc

    records: list[logging.LogRecord] = []
    logged = threading.Event()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name == "prodwrap.workers":
                records.append(record)
                logged.set()

    # On the root logger, after every other handler: once it has the line, the line has been
    # handled everywhere (a handler on prodwrap.workers would let it reach the next test's).
    handler, workers = Keep(logging.WARNING), logging.getLogger()
    workers.addHandler(handler)
    POOL.late.throttle._last.clear()  # (an earlier test's line would hold this one back)
    try:
        model = pw.ProductionModel(
            lookup, name="late", input=Applicant, timeout=0.02, fallback=pw.Constant(0.5), telemetry=False
        )
        assert model({"name": "Ada", "ssn": "123-45-6789"}) == 0.5
        gate.set()
        assert logged.wait(WAIT)
    finally:
        workers.removeHandler(handler)
    (record,) = records
    text = logging.Formatter().format(record)
    assert "lookup failed for ssn **********" in text and "KeyError" in text  # the chain, masked
    assert "123-45-6789" not in text and record.exc_info is None  # (no exception for a handler to print)


def test_on_late_raising_does_not_kill_the_worker(
    pool: Probe, gate: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    """Real time: the attempt times out after 0.02 s."""

    def broken_hook(exc: BaseException) -> None:
        raise RuntimeError("hook")

    ok, first = pool.run(1.0, None, threading.current_thread, (), {})
    assert ok
    pool.wait_idle()
    assert gave_up(pool.run(0.02, None, hang_then(gate, raise_(ValueError("late"))), (), {}, broken_hook))
    gate.set()
    pool.wait_idle()
    assert first.is_alive()
    assert pool.counts() == PoolCounts(workers=1, idle=1, queued=0)
    assert "on_late raised RuntimeError: hook" in caplog.records[0].getMessage()
    assert pool.run(1.0, None, threading.current_thread, (), {}) == (True, first)


# -- asyncio -------------------------------------------------------------------------------


async def test_arun_results_exceptions_and_timeouts(pool: Probe, gate: threading.Event) -> None:
    """Real time: one loop timer of 0.05 s."""
    assert await pool.arun(1.0, None, lambda: 7, (), {}) == (True, 7)
    assert await pool.arun(None, None, lambda: 8, (), {}) == (True, 8)
    with pytest.raises(ZeroDivisionError):
        await pool.arun(1.0, None, lambda: 1 / 0, (), {})
    late, error = Late(), OSError("late")
    assert gave_up(await pool.arun(0.05, None, hang_then(gate, raise_(error)), (), {}, late))
    gate.set()
    assert await asyncio.to_thread(late.wait) == [error]


async def test_cancelling_arun_abandons_the_attempt(pool: Probe, gate: threading.Event) -> None:
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    late, error = Late(), ValueError("after the cancel")

    def fn() -> None:
        loop.call_soon_threadsafe(started.set)
        assert gate.wait(WAIT)
        raise error

    task = asyncio.create_task(pool.arun(None, None, fn, (), {}, late))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.set()
    assert await asyncio.to_thread(late.wait) == [error]
    await asyncio.to_thread(pool.wait_idle)
    assert pool.counts() == PoolCounts(workers=1, idle=1, queued=0)


async def test_queued_time_counts_toward_the_deadline_only(pool: Probe, gate: threading.Event) -> None:
    """Real time: the starter is held back for 0.1 s of queueing, then each limit runs out."""
    pool.spawn_gate.clear()
    starts: list[float] = []

    def fn() -> None:
        starts.append(time.monotonic())
        assert gate.wait(WAIT)

    began = time.monotonic()
    own = asyncio.create_task(pool.arun(0.05, None, fn, (), {}))
    total = asyncio.create_task(pool.arun(10.0, _jobs._clocks.clock.monotonic() + 0.05, fn, (), {}))
    assert gave_up(await total)  # queued past its deadline: given up, never run
    assert pool.counts().queued == 1
    await asyncio.sleep(0.05)  # more queued time for the other: 0.1 s at least in all
    pool.spawn_gate.set()
    assert gave_up(await own)
    ended = time.monotonic()
    assert len(starts) == 1 and starts[0] - began >= 0.1
    assert ended - starts[0] >= 0.05  # its own limit ran from its start, not from the queue
    assert pool.counts().queued == 0


async def test_a_burst_times_out_from_each_start_and_keeps_the_loop_responsive(
    gate: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real time: 300 sync attempts at once, each limited to 0.1 s, on a fresh pool, so every
    worker is started during the burst. No worker is started on the loop's thread (only the
    starter, once). Each attempt times out no earlier than 0.1 s after it started (the pool's
    start mark) and within 0.4 s of slack; the loop is never held up for 0.25 s (a loaded
    2-core machine: both bounds generous). The garbage the suite has left is collected first:
    a full collection falling due during the burst (the oldest generation of a whole session,
    ~270k objects) holds the loop for ~0.27 s on such a machine, which is not the pool's doing."""
    gc.collect()
    pool = Probe()
    loop = asyncio.get_running_loop()
    starts: dict[int, float] = {}
    lags: list[float] = []
    started_on_loop: list[str] = []
    done = asyncio.Event()
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if threading.get_ident() == loop_thread:
            started_on_loop.append(thread.name)
        real_start(thread)

    def fn(i: int) -> None:
        starts[i] = time.monotonic()
        assert gate.wait(WAIT)

    async def probe() -> None:
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - before - 0.005)

    jobs: dict[int, Job] = {}

    async def one(i: int) -> float:
        outcome = await pool.arun(0.1, None, fn, (i,), {})
        assert gave_up(outcome)
        jobs[i] = outcome[1]  # type: ignore[assignment]
        return time.monotonic()

    loop_thread = threading.get_ident()
    monkeypatch.setattr(threading.Thread, "start", start)
    watcher = asyncio.create_task(probe())
    ends = await asyncio.gather(*(one(i) for i in range(300)))
    done.set()
    await watcher
    assert started_on_loop == ["prodwrap-starter"]
    assert sorted(starts) == list(range(300))
    # From the pool's own start mark (a worker thread may be preempted for a while between it
    # and fn's first line when 300 start at once on 2 cores: fn's clock would read late).
    after_start = [end - jobs[i].started for i, end in enumerate(ends)]  # type: ignore[operator]
    assert all(jobs[i].started <= starts[i] for i in range(300))  # type: ignore[operator]
    assert min(after_start) >= 0.1 - 1e-6
    assert max(after_start) < 0.5
    assert max(lags) < 0.25


def test_a_model_passes_any_keyword_through_sync_async_timed_or_not() -> None:
    def llm(prompt: str, timeout: float = 0.0, fn: str = "", deadline: str = "", loop: str = "") -> tuple[Any, ...]:
        return (prompt, timeout, fn, deadline, loop)

    kwargs = {"timeout": 3, "fn": "f", "deadline": "d", "loop": "l"}
    want = ("hi", 3, "f", "d", "l")
    for timeout in (None, 1.0):
        model = pw.ProductionModel(llm, timeout=timeout)
        assert model("hi", **kwargs) == want
        assert model.predict_detailed("hi", **kwargs).value == want
        assert asyncio.run(model.apredict("hi", **kwargs)) == want


def test_a_huge_timeout_keeps_every_success() -> None:
    for seconds in (1e10, float(sys.maxsize)):
        model = pw.ProductionModel(lambda x: x * 2, timeout=seconds, retry=3, fallback=pw.Constant(-1))
        p = model.predict_detailed(4)
        assert (p.value, p.outcome, p.attempts) == (8, "ok", 1)
        assert asyncio.run(model.apredict(5)) == 10


def test_a_late_exception_is_counted_in_the_models_stats(gate: threading.Event) -> None:
    """Real time: the attempt times out after 0.02 s, then raises once released."""
    raised = threading.Event()

    def slow_then_fail(x: int) -> int:
        assert gate.wait(WAIT)
        raised.set()
        raise RuntimeError("too late")

    model = pw.ProductionModel(slow_then_fail, timeout=0.02, fallback=pw.Constant(0))
    assert model(1) == 0
    gate.set()
    assert raised.wait(WAIT)
    deadline = time.monotonic() + WAIT
    while model.stats().late_errors == 0 and time.monotonic() < deadline:
        time.sleep(0.005)  # the worker reports it right after the predict raises
    stats = model.stats()
    assert (stats.abandoned, stats.late_errors) == (1, 1)


# -- lifecycle -----------------------------------------------------------------------------


def test_idle_workers_and_the_starter_exit_after_idle_seconds() -> None:
    """Real time: idle_seconds is 0.05 s; the exits are seen by joins."""
    pool = Probe(idle_seconds=0.05)
    ok, worker = pool.run(1.0, None, threading.current_thread, (), {})
    assert ok
    worker.join(WAIT)
    assert not worker.is_alive()
    assert pool.counts() == PoolCounts(workers=0, idle=0, queued=0)

    async def via_starter() -> tuple[threading.Thread | None, Any]:
        job = asyncio.create_task(pool.arun(1.0, None, threading.current_thread, (), {}))
        await asyncio.sleep(0)  # one loop step: the task has queued its job and woken the starter
        starter = pool._starter
        return starter, (await job)[1]

    starter, second = asyncio.run(via_starter())
    assert starter is not None and second is not worker
    for thread in (second, starter):
        thread.join(WAIT)
        assert not thread.is_alive()
    assert pool.counts() == PoolCounts(workers=0, idle=0, queued=0) and pool._starter is None


def test_importing_starts_no_thread() -> None:
    code = (
        "import threading; before = threading.active_count()\n"
        "import prodwrap, prodwrap._workers as w\n"
        "assert threading.active_count() == before, threading.enumerate()\n"
        "assert w.POOL.counts() == (0, 0, 0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


def test_workers_the_starter_spawns_after_the_queue_emptied_stay_usable() -> None:
    """A worker that finds the queue empty when it starts waits on the idle list; it must not
    exit while listed there (later jobs handed to it would never run)."""
    model = pw.ProductionModel(lambda x: x * 2)

    async def bursts() -> list[Any]:
        out = []
        for _ in range(5):
            out.append(await asyncio.wait_for(asyncio.gather(*(model.apredict(i) for i in range(20))), WAIT))
        return out

    assert asyncio.run(bursts()) == [[i * 2 for i in range(20)]] * 5
    listed = POOL.counts()
    alive = sum(t.name == "prodwrap-worker" and t.is_alive() for t in threading.enumerate())
    assert listed.workers <= alive


def _held_coroutine(made: list[Any], go: threading.Event, returned: threading.Event) -> Callable[[Any], Any]:
    """A sync predict that, once ``go`` is set, returns a coroutine (``made``) by mistake."""

    async def later() -> int:
        return 1

    def predict(x: Any) -> Any:
        if x == "hold":
            assert go.wait(timeout=10)
            made.append(later())
            returned.set()
            return made[-1]
        return 2

    return predict


def _closed_soon(coroutine: Any) -> bool:
    """Real time: the worker closes it right after the predict returns (5 s of slack)."""
    deadline = time.monotonic() + 5.0
    while coroutine.cr_frame is not None and time.monotonic() < deadline:
        time.sleep(0.001)
    return coroutine.cr_frame is None


@pytest.mark.parametrize("how", ["timed out", "lost the race"])
def test_a_coroutine_an_attempt_nobody_waits_for_returns_is_closed(how: str) -> None:
    made: list[Any] = []
    go, returned = threading.Event(), threading.Event()
    predict = _held_coroutine(made, go, returned)
    if how == "timed out":
        model = pw.ProductionModel(predict, name="m", timeout=0.05, fallback=pw.Constant(0))
        assert model("hold") == 0  # the caller gave up on the attempt
    else:
        calls = iter(["hold", "quick"])
        model = pw.ProductionModel(lambda x: predict(next(calls)), name="m", hedge=pw.Hedge(after=0.01))
        assert model("x") == 2  # the hedge won; the first attempt runs on
    go.set()
    assert returned.wait(timeout=10)
    (coroutine,) = made
    assert _closed_soon(coroutine)  # closed: no "never awaited" warning when it is collected
