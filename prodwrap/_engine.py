"""The decision engine: every decision a call needs, in pure code that does no I/O.

The drivers (``_drivers.py``) carry out what the engine decides: they alone call, wait,
sleep and await. The engine reads no clock (the driver sends ``now``) and never sleeps. The
user code it runs is what decisions are made of: input and output validation (``check=``
predicates included), copies of ``pw.Constant`` values, the retry policy's predicate and
strategies (only after a failure), and the stages' hooks.

A call is walked by :meth:`Engine.walk`, a generator that yields an :class:`Act` (CALL or
SLEEP) and ends when the call is decided (``rec.ok``: served with ``rec.result``, or failed
with the exception ``rec.result``). The details of each act (the target and its limits, the
seconds to sleep) and what came of it (``rec.ok``, ``rec.result``, the clock's reading
``rec.now``) are on the call's record, so a step allocates nothing and a driver iterates the
walk with a plain ``for`` loop. After a failure, :meth:`Engine.on_failure` decides a
:class:`Step`: RETRY, NEXT fallback or GIVE_UP.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence, Sized
from typing import Any, Literal

from prodwrap._acts import CALL, GIVE_UP, NEXT, RACE, RETRY, SLEEP, WAIT, Act, Step
from prodwrap._attempt import attempt
from prodwrap._ending import checked_input
from prodwrap._fastpath import FastPath, fast_enough, overrides
from prodwrap._finish import Finisher
from prodwrap._jobs import LateHook
from prodwrap._masking import NO_MASKING, Masking
from prodwrap._record import CallRecord
from prodwrap._stage import Pause, Refuse, Route, Seam, Serve, Stage, Wait
from prodwrap._stats import StatsRecorder
from prodwrap._target import ASYNC, CONSTANT, MODEL, SYNC, Kind, Target, is_async_callable, reason_of
from prodwrap.errors import (
    FallbackExhausted,
    InputValidationError,
    OutputValidationError,
    PredictionTimeout,
    ProdwrapError,
)
from prodwrap.policies.retry import Retry
from prodwrap.policies.timeout import Timeout

# (what other modules import from here)
__all__ = ["ASYNC", "CALL", "MODEL", "RACE", "SLEEP", "SYNC", "Act", "Engine", "Target"]


class Engine:
    """A model's compiled pipeline and the decisions taken along it (immutable once built)."""

    __slots__ = (
        "admission",
        "async_fast",
        "attempt_stages",
        "attempt_timeout",
        "batch",
        "call",
        "fallbacks",
        "fast",
        "finisher",
        "inner",
        "input_name",
        "is_async",
        "late",
        "masking",
        "name",
        "on_invalid",
        "primary",
        "race",
        "race_extra",
        "retry",
        "retry_masked",
        "run_async",
        "run_sync",
        "spend",
        "stages",
        "stats",
        "sync_fast",
        "timed",
        "total_timeout",
        "unwatched",
        "validate_fast",
        "validate_input",
        "validate_output",
        "version",
        "watch",
    )

    def __init__(
        self,
        *,
        fn: Callable[..., Any],
        name: str,
        input_name: str | None = None,
        version: str | None = None,
        is_async: bool | None = None,
        validate_input: Callable[[Any], Any] | None = None,
        validate_fast: Callable[[Any], Any] | None = None,
        validate_output: Callable[[Any], Any] | None = None,
        timeout: Timeout | None = None,
        retry: Retry | None = None,
        fallbacks: Sequence[Target] = (),
        on_invalid: Literal["raise", "fallback"] = "raise",
        stages: Sequence[Stage] = (),
        stats: StatsRecorder | None = None,
        batch: bool = False,
        masking: Masking | None = None,
    ) -> None:
        self.name = name
        self.input_name = input_name  # the predict's first parameter: the input passed by keyword
        self.version = version
        self.is_async = is_async_callable(fn) if is_async is None else is_async
        self.primary = Target(fn, Kind.ASYNC if self.is_async else Kind.SYNC, "primary", True)
        self.validate_input = validate_input
        # Tried first on the success path; may raise anything, the general walk then decides.
        self.validate_fast = validate_input if validate_fast is None else validate_fast
        self.validate_output = validate_output
        self.attempt_timeout = None if timeout is None else timeout.attempt
        self.total_timeout = None if timeout is None else timeout.total
        self.timed = timeout is not None
        self.retry = retry
        self.fallbacks = tuple(fallbacks)
        self.on_invalid = on_invalid
        self.stats = StatsRecorder() if stats is None else stats
        self.masking = NO_MASKING if masking is None else masking  # what logs may show of the input
        self.late = LateHook(self.stats.late_error, self.masking)  # the on_late of its attempts
        # (the masking of a retry policy's fault line: given to Retry.delay, not to one a subclass overrides)
        self.retry_masked = (self.masking,) if retry is not None and type(retry).delay is Retry.delay else ()
        self.stages = tuple(stages)
        self.admission = tuple(s for s in self.stages if s.seam is Seam.ADMISSION and overrides(s, "admit"))
        self.attempt_stages = tuple(
            s
            for s in self.stages
            if s.seam is Seam.ATTEMPT
            and any(overrides(s, hook) for hook in ("before_attempt", "after_attempt", "undo_attempt"))
        )
        watching = [s.watch for s in self.stages if s.watch is not None]
        if len(watching) > 1:
            raise ValueError("a model has at most one stage with a watch (telemetry)")
        self.watch = watching[0] if watching else None  # asked first on every call
        # A call no watch took asks the attempt seam without the watching stage (its hooks
        # act on watched calls only).
        self.unwatched = tuple(s for s in self.attempt_stages if s.watch is None)
        self.finisher = Finisher(self, [s for s in self.stages if s.seam is Seam.OBSERVER])
        self.spend = next((s.spend for s in self.stages if s.spend is not None), None)  # a retry budget
        hedge = next((s for s in self.attempt_stages if s.race is not None), None)
        self.race = None if hedge is None else hedge.race
        self.race_extra = 0 if hedge is None else hedge.race_extra
        # The stages inside the hedge (the rate limit) are asked again for every extra attempt.
        self.inner = () if hedge is None else self.attempt_stages[self.attempt_stages.index(hedge) + 1 :]
        self.batch = batch  # outputs are lists as long as the input list (checked on the walk)
        fast = not batch and all(fast_enough(s) for s in self.stages)
        self.fast = FastPath(self, self.stages) if fast else None
        # What each driver runs inline: a sync predict's success path is the sync driver's,
        # an async predict's the async driver's (apredict of a sync predict takes the walk).
        self.sync_fast = None if self.is_async else self.fast
        self.async_fast = self.fast if self.is_async else None
        from prodwrap._compiled import compile_runners  # (it imports the drivers, which import this)

        # What a call runs: the success path compiled into one function per driver (and the
        # sync one again as the model's __call__).
        self.run_sync, self.call, self.run_async = compile_runners(self)

    # -- deadlines -------------------------------------------------------------------------

    def begin(self, rec: CallRecord, now: float, outer: float | None) -> None:
        """Fix the call's overall deadline: its own total timeout, clamped to the caller's."""
        deadline = outer
        if self.total_timeout is not None:
            own = now + self.total_timeout
            deadline = own if deadline is None else min(deadline, own)
        rec.deadline = deadline

    def timeout_error(self, rec: CallRecord | None, seconds: float) -> PredictionTimeout:
        """The attempt ``rec`` is on (None: the first of the primary) ran out of time."""
        if rec is None or rec.phase < 0:
            target = "primary" if rec is None or rec.target is self.primary else rec.target.name
            what = f"{target} attempt {1 if rec is None else rec.attempts}"
        else:
            what = f"fallback {rec.target.name}"
        if seconds <= 0:  # (its deadline had passed before it could start: admission's waits, a slow key)
            return PredictionTimeout(f"{self.name}: no time was left for {what}: the deadline had passed", timeout=0.0)
        return PredictionTimeout(f"{self.name}: {what} timed out after {seconds:.3g} s", timeout=seconds)

    # -- decisions after a failure ---------------------------------------------------------

    def on_invalid_input(self, rec: CallRecord, error: InputValidationError) -> Step:
        rec.fail(error, "invalid_input")
        rec.valid_input = False
        if self.on_invalid == "fallback" and self.fallbacks:
            rec.phase = 0
            rec.target = self.fallbacks[0]
            return NEXT
        rec.result = error
        return GIVE_UP

    def on_failure(self, rec: CallRecord, exc: Exception, now: float, reason: str | None = None) -> Step:
        """An attempt (or a fallback) failed with ``exc``: retry, move on, or give up.

        Args:
            now: the clock's monotonic reading.
            reason: the reason of an admission refusal (no retry can help one).
        """
        retry = self.retry
        if reason is None:
            reason = "exception" if not isinstance(exc, ProdwrapError) else reason_of(exc)
        else:
            retry = None  # an admission refusal: no retry can help
        if rec.errors is None:
            rec.errors, rec.reasons = [exc], [reason]
        else:
            rec.errors.append(exc)
            rec.reasons.append(reason)  # type: ignore[union-attr]
        if retry is not None and rec.phase < 0:
            delay = retry.delay(rec, exc, now, self.name, *self.retry_masked)
            if delay is not None and (self.spend is None or self.spent(now)):
                rec.wait = delay
                return RETRY
        return self.moved_on(rec, exc)

    def moved_on(self, rec: CallRecord, exc: Exception) -> Step:
        """No retry after ``exc`` (the failure last recorded): the next fallback, or the end."""
        following = rec.phase + 1
        if following < len(self.fallbacks):
            rec.phase = following
            rec.target = self.fallbacks[following]
            return NEXT
        if not self.fallbacks:
            rec.result = exc  # the user's own exception, unchanged
        else:
            rec.result = FallbackExhausted(
                f"{self.name}: the primary and {len(self.fallbacks)} fallback(s) all failed", rec.errors or []
            )
        return GIVE_UP

    # -- the walk ------------------------------------------------------------------------------

    def walk(
        self,
        rec: CallRecord,
        x: Any,
        outer: float | None,
        failure: Exception | None,
        now: float,
        began: float | None = None,
        validated: bool = False,
        *,
        resumed: bool = False,
        decided: Step | None = None,
    ) -> Generator[Act, None, None]:
        """A call from input to result or final error, as a generator of :class:`Act`.

        It never calls a target, sleeps or reads a clock itself, so one walk serves the sync
        and the async driver alike (as tenacity's ``iter()`` does). When it ends, ``rec.ok``
        says whether ``rec.result`` is the output served or the exception to raise.

        Args:
            x: the raw input; or, with ``failure``, the validated input of a call whose first
                attempt of the primary already failed (on the success path) with ``failure``.
            outer: the caller's deadline (absolute), or None.
            failure: that first attempt's exception.
            now: the clock's monotonic reading.
            began: with ``failure``, the clock's reading when that attempt began.
            validated: ``x`` is already validated (the success path handed the call over
                before any attempt: a ``fast_admit`` hook said no).
            resumed: the compiled failure path (``prodwrap._compiled``: an untimed call with
                no stage around its attempts) made the call's first attempts, and the record
                holds them (target, input, attempts, errors, started_at): with ``failure``,
                the attempt of ``rec.target`` failed; else ``decided`` is the step the engine
                decided after the last one.

        Where the call's attempts go is the primary, unless an admission stage routes the call,
        or the success path's ``fast_admit`` chose already (a :class:`Route`: ``rec.routed`` is
        set when the walk begins).
        """
        step: Step | None = decided
        if resumed:  # the compiled failure path made the first attempts: the record holds them
            if failure is not None:  # the attempt of rec.target failed (no attempt stage is there)
                step = self.on_failure(rec, failure, now)
        elif failure is not None:
            rec.target = rec.routed = self.primary
            rec.input = x
            rec.started_at = now if began is None else began
            rec.attempts = 1
            if self.timed or outer is not None:
                self.begin(rec, rec.started_at, outer)
            for stage in self.attempt_stages if rec.watch is not None else self.unwatched:
                stage.after_attempt(rec, self.primary, failure, 0.0 if began is None else now - began)
            step = self.on_failure(rec, failure, now)
        else:
            routed = rec.routed
            rec.target = rec.routed = self.primary if routed is None else routed
            rec.input = x
            rec.started_at = now if began is None else began
            invalid = None
            if not validated and self.validate_input is not None:
                value, invalid = checked_input(self.validate_input, x)  # (no frame of the walk's in its traceback)
                if invalid is None:
                    rec.input = value
            if invalid is not None:
                step = self.on_invalid_input(rec, invalid)
            else:
                if self.timed or outer is not None:
                    self.begin(rec, now, outer)
                for stage in self.admission:
                    decision = stage.admit(rec, rec.input)
                    while isinstance(decision, Wait | Pause):  # wait, then ask the stage again
                        if isinstance(decision, Pause):
                            rec.wait = decision.seconds
                            yield SLEEP
                        else:
                            rec.gate, rec.wait = decision.gate, decision.seconds
                            yield WAIT
                        now = rec.now
                        decision = stage.admit(rec, rec.input)
                    if decision is None:
                        continue
                    if isinstance(decision, Serve):
                        rec.outcome, rec.served_by = decision.outcome, decision.served_by  # type: ignore[assignment]
                        rec.ok, rec.result = True, decision.value
                        return
                    if isinstance(decision, Refuse):
                        rec.refused = decision.reason
                        if decision.final:  # no fallback serves it: the caller gets the error
                            rec.fail(decision.error, decision.reason)
                            rec.result = decision.error
                            step = GIVE_UP
                        else:
                            step = self.on_failure(rec, decision.error, now, decision.reason)
                        break
                    if isinstance(decision, Route):
                        rec.target = rec.routed = decision.target
        while True:
            if step is None:  # an attempt of rec.target, with the attempt seam around it
                target = rec.target
                if target.kind is CONSTANT:
                    try:  # a fresh copy of its value (checked against the input, for a batch)
                        rec.result = self.batch_checked(rec, target.fn())
                        rec.ok = True
                    except Exception as exc:  # a failed fallback: the next one is tried
                        rec.ok, rec.result = False, exc
                else:
                    now = yield from attempt(self, rec, target, outer, now)
                if rec.ok:
                    if rec.phase >= 0:
                        rec.outcome, rec.served_by = "fallback", target.name
                    elif target is not self.primary:
                        rec.served_by = target.name  # the routed target served
                    return
                step = self.on_failure(rec, rec.result, now)
            if step is RETRY:
                rec.slept += rec.wait
                yield SLEEP
                now = rec.now
                rec.target = rec.routed
            elif step is GIVE_UP:
                rec.ok = False
                if rec.routed is not self.primary:
                    rec.served_by = rec.routed.name  # (the routed target failed: a canary's candidate)
                return
            step = None

    def spent(self, now: float) -> bool:
        """Whether the retry budget lets one more retry be spent (a budget that raises is a
        fault of its own, counted and logged: the retry goes ahead as without a budget)."""
        try:
            return self.spend(now)  # type: ignore[misc]
        except Exception as exc:
            self.finisher.failed(self.spend, exc)
            return True

    def checked_output(self, rec: CallRecord, out: Any) -> Any:
        """The output validated (``output=``, ``check=``; a batch's length matching its input's)."""
        out = self.batch_checked(rec, out)
        return out if self.validate_output is None else self.validate_output(out)

    def batch_checked(self, rec: CallRecord, out: Any) -> Any:
        """``out``, when it is as long as the call's batch of inputs (or the model takes no
        batch); else an ``OutputValidationError``."""
        if self.batch and rec.valid_input:
            sized = isinstance(out, Sized) and not isinstance(out, str | bytes | Mapping)
            n = len(out) if sized else None  # a list, a numpy array, a Series: anything with a length
            if n != len(rec.input):
                got = "not a list" if n is None else f"{n} outputs"
                raise OutputValidationError(
                    [
                        {
                            "type": "batch_length",
                            "loc": ("batch",),
                            "msg": f"a batch of {len(rec.input)} inputs gave {got}",
                        }
                    ],
                    model=self.name,
                )
        return out
