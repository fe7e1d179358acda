"""One shadow's experiment: which calls it samples, how its candidate runs, how it judges.

:meth:`Experiment.dispatch` is called once a sampled call's result is final, on the caller's
thread: it hands a :class:`Job` (the validated input, the primary's output and latency, the
pass-through arguments, a copy of the caller's context) to the bounded worker (a sync
candidate) or starts a task on the caller's event loop (an async candidate), and returns.
Full: skipped and counted. The run (:meth:`Experiment.run` / :meth:`Experiment.arun`) is in a
span linked to the primary's (:func:`candidate_span`). Under ``strict_shadows()`` it happens
inline, and a mismatch or a candidate error raises ``ShadowMismatchError`` in the caller.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import sys
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._audit_lines import Redactor
from prodwrap._context import DEADLINE, within_deadline
from prodwrap._copies import snapshot
from prodwrap._log import Throttle, logger
from prodwrap._scope import SCOPE, emit
from prodwrap._stats import counted
from prodwrap._target import is_async_callable
from prodwrap.errors import ConfigurationError, PredictionTimeout, ShadowMismatchError
from prodwrap.rollout._keys import MISSING, key_value, point
from prodwrap.rollout._shadow_report import Comparison, Tally, mismatch
from prodwrap.rollout._worker import BoundedWorker
from prodwrap.rollout.compare import equal

if TYPE_CHECKING:
    from prodwrap._stage import Build
    from prodwrap.rollout.shadow import Shadow

log = logger("shadow")
_faults = Throttle(log)
_clocks = _clock.current
IN_SHADOW: contextvars.ContextVar[bool] = contextvars.ContextVar("prodwrap_in_shadow", default=False)


class Strict:
    """``strict_shadows()``'s switch (process-wide, nestable): while on, candidates run inline."""

    __slots__ = ("_lock", "depth", "on")

    def __init__(self) -> None:
        self.on = False
        self.depth = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        with self._lock:
            self.depth += 1
            self.on = True
        try:
            yield
        finally:
            with self._lock:
                self.depth -= 1
                self.on = self.depth > 0


STRICT = Strict()


class Job:
    """One sampled call, handed to the candidate: copies of its input and output when they are
    mutable (the caller may reuse its input, or change what it was served, before the
    candidate runs)."""

    __slots__ = ("args", "context", "error", "kwargs", "primary", "primary_latency", "trace", "value")

    def __init__(
        self, value: Any, primary: Any, args: tuple[Any, ...], kwargs: dict[str, Any], latency: float | None
    ) -> None:
        self.value, self.primary = snapshot(value), snapshot(primary)
        self.args, self.kwargs = args, kwargs  # (passed through as they are: clients, settings)
        self.primary_latency = latency
        self.context = contextvars.copy_context()  # the caller's tags (and trace) follow the candidate
        otel = sys.modules.get("opentelemetry.context")  # (never imported here: only read if loaded)
        self.trace = None if otel is None else otel.get_current()
        self.error: BaseException | None = None  # (an async candidate's own CancelledError included)


def candidate_span(experiment: Experiment, job: Job) -> contextlib.AbstractContextManager[Any]:
    """Where a candidate run is traced: a span linked to the primary's (``job.trace``), made
    by the model's telemetry (``prodwrap.telemetry._rollouts``) when it has any."""
    if experiment.telemetry is None:
        return contextlib.nullcontext()
    return experiment.telemetry.candidate_span(experiment.name, job.trace)  # type: ignore[no-any-return]


class Experiment:
    """One ``pw.Shadow`` compiled for one model."""

    def __init__(self, policy: Shadow, build: Build, redactor: Redactor, costs: Callable[[], tuple[Any, Any]]) -> None:
        from prodwrap._model import ProductionModel  # (the model module imports the compiler)

        self.policy = policy
        self.telemetry: Any = None  # the model's rollout telemetry (set when it has telemetry)
        self.name = policy.label
        self.model = build.name
        self.version = build.version
        self.compare = policy.compare or equal
        candidate = policy.candidate
        if isinstance(candidate, ProductionModel):
            self.is_async = candidate.is_async
            self.call: Callable[..., Any] = candidate.apredict if candidate.is_async else candidate.predict
        else:
            self.is_async = is_async_callable(candidate)
            self.call = candidate
        if self.is_async and not build.is_async:
            raise ConfigurationError(f"shadow {self.name!r} is async; a sync model cannot await it")
        self.timeout = policy.timeout
        self.redactor = redactor
        self.masking = build.masking  # a callback's error may quote the input
        self.costs = costs
        self.tally = Tally()
        self.worker = (
            None if self.is_async else BoundedWorker(f"prodwrap-shadow-{self.name}", policy.workers, policy.max_pending)
        )
        self.tasks: set[Any] = set()  # an async candidate's runs (strong references until they end)
        self.closed = False
        self.max_pending = policy.max_pending
        self.skipped = self.tally.skipped
        self.sampled = self._sampler()

    # -- sampling (on the primary's path) -------------------------------------------------------

    def _sampler(self) -> Callable[[Any], bool]:
        """``sampled(value) -> bool``, as cheap as the settings allow (never raises)."""
        policy = self.policy
        rate, key, enabled = policy.sample, policy.key, policy.enabled
        draw = random.Random(policy.seed).random if policy.seed is not None else random.random

        def on() -> bool:
            if enabled is None:
                return True
            try:
                return bool(enabled())
            except Exception as exc:
                self.fault("enabled", exc)
                return False

        if key is None:
            if rate >= 1.0:
                return (lambda value: True) if enabled is None else (lambda value: on())
            if rate <= 0.0:
                return lambda value: False
            if enabled is None:
                return lambda value: draw() < rate
            return lambda value: draw() < rate and on()

        def keyed(value: Any) -> bool:
            try:
                found = key_value(key, value)
            except Exception as exc:
                self.fault("key", exc, value)
                return False
            return found is not MISSING and point(found) < rate and on()

        return keyed

    # -- dispatch (on the caller's thread, once the call is final) ------------------------------

    def dispatch(
        self, value: Any, primary: Any, args: tuple[Any, ...], kwargs: dict[str, Any], latency: float | None
    ) -> None:
        """Hand the candidate this call (never blocks; never raises but under strict_shadows)."""
        if IN_SHADOW.get():  # a call made by a candidate's run: never shadowed again (no loops)
            next(self.skipped)
            return
        if STRICT.on:
            self.strict(Job(value, primary, args, kwargs, latency))
            return
        if not self.room():
            return
        worker = self.worker
        job = Job(value, primary, args, kwargs, latency)
        if worker is not None:
            if not worker.submit(job.context.run, self.run, job):
                next(self.skipped)
            return
        tasks = self.tasks
        try:
            loop = sys.modules["asyncio"].get_running_loop()
            task = loop.create_task(self.arun(job), context=job.context)
        except Exception as exc:  # no running loop (an async model called oddly): skipped
            next(self.skipped)
            self.fault("dispatch", exc)
            return
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def room(self) -> bool:
        """Whether a run may be queued now; if not, the call is counted as skipped. (Read
        without the lock: the worker's ``submit`` decides; this spares a full queue the job.)"""
        worker = self.worker
        pending = worker.pending if worker is not None else len(self.tasks)
        if pending < self.max_pending and not self.closed:
            return True
        next(self.skipped)
        return False

    def strict(self, job: Job) -> None:
        """``strict_shadows()``: run inline, raise a mismatch or a candidate error here."""
        if self.is_async:
            import asyncio

            box: list[Comparison | None] = [None]
            coro = self.arun(job)
            thread = threading.Thread(target=lambda: box.__setitem__(0, job.context.run(asyncio.run, coro)))
            thread.start()  # (its own event loop: the caller's may be running)
            thread.join()
            comparison = box[0]
        else:
            comparison = job.context.run(self.run, job)
        if comparison is None or ((comparison.agreed or comparison.ignored) and comparison.error is None):
            return
        shown = self.masking.mask_for(job.value, comparison.primary, comparison.candidate) or str  # (echoed secrets)
        raise ShadowMismatchError(
            f"{self.model}: shadow {self.name!r} disagreed: {mismatch(comparison, shown)}", comparison
        ) from job.error

    # -- the run (on a worker thread, or a task) ------------------------------------------------

    def run(self, job: Job) -> Comparison | None:
        """Run a sync candidate on ``job`` and judge it (in a copy of the caller's context)."""
        with candidate_span(self, job) as span:
            IN_SHADOW.set(True)  # (in the job's copy of the context: the caller's is untouched)
            DEADLINE.set(None)  # the caller's deadline is not the candidate's
            clock = _clocks.clock
            began = clock.monotonic()
            timeout = self.timeout
            out: Any = None
            error: BaseException | None = None
            try:
                if timeout is None:
                    out = self.call(job.value, *job.args, **job.kwargs)
                else:
                    with within_deadline(began + timeout):  # pw.deadline() inside says what is left
                        out = self.call(job.value, *job.args, **job.kwargs)
            except BaseException as exc:  # (on a worker: even a CancelledError is the candidate's own)
                error = exc
            seconds = clock.monotonic() - began
            if error is None and timeout is not None and seconds > timeout:
                out, error = None, self._timed_out(seconds)
            if span is not None and error is not None:  # (its span says so)
                self.telemetry.run_failed(span, error, job.value)
            return self.judge(job, out, error, seconds)

    async def arun(self, job: Job) -> Comparison | None:
        """Await an async candidate on ``job`` and judge it (the task's context is the caller's copy)."""
        import asyncio

        with candidate_span(self, job) as span:
            IN_SHADOW.set(True)
            DEADLINE.set(None)
            clock = _clocks.clock
            began = clock.monotonic()
            timeout = self.timeout
            out: Any = None
            error: BaseException | None = None
            try:
                if timeout is None:
                    out = await self.call(job.value, *job.args, **job.kwargs)
                else:
                    limit = asyncio.timeout(timeout)
                    try:
                        with within_deadline(began + timeout):
                            async with limit:
                                out = await self.call(job.value, *job.args, **job.kwargs)
                    except TimeoutError:
                        if not limit.expired():
                            raise  # the candidate's own TimeoutError
                        error = self._timed_out(timeout)
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is None or task.cancelling():  # close() (or the loop ending) cancelled it
                    self.tally.count("dropped")
                    raise
                error = exc  # the candidate raised it (its task was never cancelled): its error
            except Exception as exc:
                error = exc
            seconds = clock.monotonic() - began
            if error is None and timeout is not None and seconds > timeout:
                out, error = None, self._timed_out(seconds)
            if span is not None and error is not None:  # (its span says so)
                self.telemetry.run_failed(span, error, job.value)
            return self.judge(job, out, error, seconds)

    def _timed_out(self, seconds: float) -> PredictionTimeout:
        return PredictionTimeout(
            f"shadow {self.name!r}: took {seconds:.3g} s, past its timeout of {self.timeout:g} s", timeout=self.timeout
        )

    def judge(self, job: Job, out: Any, error: BaseException | None, seconds: float) -> Comparison | None:
        """Compare, count, keep an example, tell ``on_mismatch`` and a test capture."""
        policy = self.policy
        agreed = ignored = False
        if error is None:
            try:
                agreed = bool(self.compare(job.primary, out))
            except Exception as exc:  # a disagreement
                self.fault("compare", exc, job.value, job.primary, out)
            if not agreed and policy.ignore is not None:
                try:
                    ignored = bool(policy.ignore(job.value, job.primary, out))
                except Exception as exc:  # not ignored
                    self.fault("ignore", exc, job.value, job.primary, out)
        job.error = error
        timed_out = isinstance(error, PredictionTimeout)
        self.tally.ran(agreed, ignored, error is not None, timed_out, job.primary_latency, seconds)
        if self.telemetry is not None:
            self.telemetry.compared(self.name, agreed, ignored, error is not None)
        mismatch = error is None and not agreed and not ignored
        comparison = None
        if mismatch or SCOPE.on or STRICT.on:
            comparison = self.comparison(job, out, error, agreed, ignored, seconds)
            if mismatch:
                self.tally.example(comparison)
            if SCOPE.on:
                emit("shadow", comparison)
        if mismatch and policy.on_mismatch is not None:
            try:
                policy.on_mismatch(job.value, job.primary, out)
            except Exception as exc:
                self.fault("on_mismatch", exc, job.value, job.primary, out)
        return comparison

    def comparison(
        self, job: Job, out: Any, error: BaseException | None, agreed: bool, ignored: bool, seconds: float
    ) -> Comparison:
        redactor = self.redactor
        return Comparison(
            name=self.name,
            input=redactor.side(job.value, redactor.secret_input),
            primary=redactor.side(job.primary, redactor.secret_output),
            candidate=None if error is not None else redactor.side(out, redactor.secret_output),
            error=None if error is None else type(error).__qualname__,
            agreed=agreed,
            ignored=ignored,
            primary_latency=job.primary_latency,
            candidate_latency=seconds,
        )

    def fault(self, what: str, exc: Exception, value: Any = None, *outs: Any) -> None:
        """A callback of the shadow's raised: counted, logged once per burst (the call's input,
        ``value``, and the outputs it was given, ``outs``, masked in the line), never raised."""
        self.tally.count("faults")
        _faults.warning(
            f"{self.model}:{self.name}:{what}",
            "%s: shadow %s: %s raised %s: %s",
            self.model,
            self.name,
            what,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"model": self.model, "version": self.version, "reason": f"shadow_{what}"},
            masked=partial(self.masking.mask_for, value, *outs),
        )

    # -- reading and closing --------------------------------------------------------------------

    def report(self) -> Any:
        worker = self.worker
        pending = worker.pending if worker is not None else len(self.tasks)
        dropped = counted(self.tally.dropped)  # (what close() took from a sync worker's queue included)
        primary_cost, candidate_cost = self.costs()
        return self.tally.report(self.name, pending, dropped, primary_cost, candidate_cost)

    def drain(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds for a sync candidate's pending runs (an async
        candidate's are tasks on the caller's loop: not waited for here)."""
        return True if self.worker is None else self.worker.drain(timeout)

    def close(self) -> None:
        self.closed = True
        for _ in range(0 if self.worker is None else self.worker.close()):  # the queued runs it drops
            next(self.tally.dropped)
        for task in list(self.tasks):
            with contextlib.suppress(RuntimeError):  # its loop is closed: nothing runs there
                task.get_loop().call_soon_threadsafe(task.cancel)
