"""The attempt seam: one attempt of a target, with every attempt stage around it.

Stages are asked outermost first (DESIGN §1: bulkhead, retry budget, circuit breaker, hedge,
rate limit); each lets the attempt through, refuses it, or asks the driver to wait (WAIT) or
sleep (SLEEP) first. A refusal makes the stages that let it through give back what they took.
The attempt is a CALL, or a RACE when a hedge covers it; then every stage hears how it went.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

from prodwrap._acts import CALL, RACE, SLEEP, WAIT, Act
from prodwrap._stage import Pause, Wait
from prodwrap._target import COROUTINE, SYNC, reason_of, returned_coroutine
from prodwrap.errors import ProdwrapError

if TYPE_CHECKING:
    from prodwrap._engine import Engine
    from prodwrap._record import CallRecord
    from prodwrap._target import Target


def attempt(
    engine: Engine, rec: CallRecord, target: Target, outer: float | None, now: float
) -> Generator[Act, None, float]:
    """One attempt of ``target`` (not a constant) through the attempt seam; returns the clock's
    reading after it. ``rec.ok`` and ``rec.result`` say how it went."""
    primary = rec.phase < 0  # the primary, or the target admission routed to
    if primary:
        rec.seconds, rec.limit = engine.attempt_timeout, rec.deadline
    else:  # fallbacks run under the caller's deadline only
        rec.seconds, rec.limit = None, outer
    refused: Exception | None = None
    stages = engine.attempt_stages if rec.watch is not None else engine.unwatched
    i = 0
    paused = False  # stage i asked for a Pause: the driver is sleeping
    if engine.race is not None:
        rec.raced, rec.won = 1, 0  # (a refused attempt is no race)
    rec.late = None  # (an earlier attempt's abandoned job is not this one's)
    try:
        while i < len(stages):  # the attempt seam, outermost first
            asked = stages[i].before_attempt(rec, target)
            if asked is None:
                i += 1
                continue
            if isinstance(asked, Pause):  # sleep, then ask the same stage again
                rec.wait = asked.seconds
                paused = True
                yield SLEEP
                paused = False
                now = rec.now
                continue
            if isinstance(asked, Wait):
                rec.gate, rec.wait = asked.gate, asked.seconds
                yield WAIT
                now = rec.now
                if rec.ok:
                    i += 1
                    continue
                asked = asked.error
            refused = asked
            for granted in stages[:i]:  # they let it through: they give back what they took
                granted.undo_attempt(rec, target)
            break
    except GeneratorExit:  # the call ended while a stage waited: those before it give back
        for granted in stages[:i] if not paused else stages[: i + 1]:  # (and the one pausing settles)
            granted.undo_attempt(rec, target)
        raise
    if refused is not None:  # refused attempts are not attempts made
        rec.ok, rec.result = False, refused
    else:
        if primary:
            rec.attempts += 1
        before = rec.began = now  # (a stage charging an attempt the call ended mid-way reads it)
        after = None
        extra = 0
        if engine.race is not None and primary:
            extra = engine.race_extra
            if engine.retry is not None and engine.retry.attempts is not None:
                extra = min(extra, engine.retry.attempts - rec.attempts)  # attempts: the most in all
            if extra > 0:
                after = race_after(engine, rec)
        try:
            if after is None:
                yield CALL
            else:  # hedged: the driver races attempts
                rec.wait, rec.extra = after, extra
                yield RACE
                rec.attempts += rec.raced - 1
        except GeneratorExit:  # the call ended mid-attempt (cancelled, interrupted)
            if after is not None:
                rec.attempts += rec.raced - 1  # every attempt the race started counts
            for stage in stages:
                stage.undo_attempt(rec, target)
            raise
        now = rec.now
        if rec.ok and rec.result.__class__ is COROUTINE and target.kind is SYNC:
            rec.ok, rec.result = False, returned_coroutine(engine.name, target.name, rec.result)
        if rec.ok and target.validated and (engine.validate_output is not None or engine.batch):
            try:
                rec.result = engine.checked_output(rec, rec.result)
            except Exception as exc:  # a bad output is a failed attempt
                rec.ok, rec.result = False, exc
        for stage in stages:
            stage.after_attempt(rec, target, None if rec.ok else rec.result, now - before)
    return now


def race_after(engine: Engine, rec: CallRecord) -> float | None:
    """The hedge's threshold for this attempt (a hedge that raises: no race, counted)."""
    try:
        return engine.race(rec)  # type: ignore[misc]
    except Exception as exc:
        engine.finisher.failed(engine.race, exc)
        return None


def may_race(engine: Engine, rec: CallRecord, now: float) -> bool:
    """May a race start one more attempt now? The stages inside the hedge must let it
    through without waiting (a rate limit's permit), and the retry budget pay for it."""
    target = rec.target
    for i, stage in enumerate(engine.inner):
        asked = stage.before_attempt(rec, target)
        if asked is not None:  # refused, or it would have to wait: no hedge
            for granted in engine.inner[:i]:
                granted.undo_attempt(rec, target)
            return False
    if engine.spend is None or engine.spent(now):
        return True
    for granted in engine.inner:
        granted.undo_attempt(rec, target)
    return False


def undo_inner(engine: Engine, rec: CallRecord) -> None:
    """An extra attempt ``may_race`` let through could not start: its inner stages give back."""
    for stage in engine.inner:
        stage.undo_attempt(rec, rec.target)


def lost(engine: Engine, rec: CallRecord, exc: Exception) -> None:
    """A raced attempt failed while others went on: it is one of the call's errors."""
    rec.fail(exc, "exception" if not isinstance(exc, ProdwrapError) else reason_of(exc))
