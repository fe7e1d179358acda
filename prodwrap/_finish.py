"""The one finish point every call goes through: stats, then the observers.

Fast and general paths, sync and async, successes and failures (rejected inputs and
cancelled calls included) all end in :meth:`Finisher.finish`. On the success path there is
no call record unless an observer needs one: the latency sample and the observers'
success-path hooks are all there is to it. Otherwise the observers read the record, and
when anyone keeps predictions (``predict_detailed``, audit, capture, the user's
``observers=``) the ``Prediction`` is built once and handed to each of them.

An observer that raises is counted (``stats().observer_errors``) and logged at WARNING once
per burst; it never reaches the caller, but for a test mode's error meant for the caller
(``ShadowMismatchError`` under ``strict_shadows()``): that one is raised once every observer
has run.

An observer with a ``fast_record`` hook (an escalation) is asked on the success path, before
anything else, whether this call needs a record after all; only then is one made. A model
without such an observer runs the plain finish (the choice is made once, at construction).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prodwrap._log import Throttle, logger
from prodwrap._record import CallRecord, served_prediction
from prodwrap._stage import Stage, observer_name
from prodwrap._stats import MASK
from prodwrap.errors import ShadowMismatchError

if TYPE_CHECKING:
    from prodwrap._engine import Engine

log = logger("model")
_info = log.isEnabledFor
_faults = Throttle(logger("observers"))
_FOR_CALLER = ShadowMismatchError  # raised by an observer for the caller (a test mode), not a fault


class Finisher:
    __slots__ = (
        "direct",
        "fast_observe",
        "fast_only",
        "fast_served",
        "finish",
        "keepers",
        "kept",
        "masking",
        "model",
        "needs_record",
        "observe",
        "primary",
        "readers",
        "recorders",
        "ring",
        "seq",
        "serves_fast",
        "stats",
        "version",
    )

    def __init__(self, engine: Engine, observers: Sequence[Stage]) -> None:
        self.model = engine.name
        self.version = engine.version
        self.stats = engine.stats
        self.masking = engine.masking
        self.ring = engine.stats.ring
        self.seq = engine.stats.seq
        overriding = [s for s in observers if type(s).observe is not Stage.observe]
        self.observe: tuple[Callable[[CallRecord], object], ...] = tuple(s.observe for s in overriding)
        self.fast_observe = tuple(s.fast_observe for s in observers if s.fast_observe is not None)
        # Observers with a success-path hook only: on a record, they hear the calls the
        # primary served without a failure (what their hook means).
        self.fast_only = tuple(
            s.fast_observe for s in observers if s.fast_observe is not None and type(s).observe is Stage.observe
        )
        # Keepers that need every call's Prediction, then those that read it when it is built.
        self.keepers = tuple(k for s in observers if s.needs_prediction for k in s.keepers())
        self.readers = tuple(k for s in observers if not s.needs_prediction for k in s.keepers())
        # The success path makes a record only when some observer reads one there (one that
        # asks call by call, through ``fast_record``, has one made only when it says so).
        self.needs_record = bool(self.keepers) or any(
            s.fast_observe is None and s.fast_record is None for s in overriding
        )
        # A call an admission stage served on the success path (a cache hit) needs no record
        # when every observer reading records has a hook for it or ignores such calls.
        self.fast_served = tuple(s.fast_served for s in observers if s.fast_served is not None)
        self.serves_fast = not self.keepers and all(s.fast_served is not None or s.ignores_served for s in overriding)
        # Observers that may ask for a record on the success path, call by call.
        self.recorders = tuple((s, s.fast_record) for s in observers if s.fast_record is not None)
        self.primary = engine.primary
        # When the only record readers keep Predictions (``observers=``), a success-path call's
        # Prediction is made straight from the call, with no record (:meth:`kept_fast`).
        self.kept = (*self.readers, *self.keepers)
        self.direct = bool(self.keepers) and not self.observe and not self.recorders
        self.finish: Callable[[CallRecord | None, Any, Any, float], None] = (
            self._finish_asking if self.recorders and not self.needs_record else self._finish
        )

    def _finish_asking(self, rec: CallRecord | None, value: Any, out: Any, start: float) -> None:
        """:meth:`_finish`, after asking the ``fast_record`` hooks whether a success-path call
        needs a record (then one is made here, as ``finish_fast`` makes one)."""
        if rec is None:
            marks: dict[Any, Any] | None = None
            for stage, asks in self.recorders:
                try:
                    wanted = asks(value, out)
                except Exception as exc:
                    self.failed(asks, exc, value, out)
                    continue
                if wanted:
                    marks = {stage: True} if marks is None else {**marks, stage: True}
            if marks is not None:
                rec = CallRecord(start)
                rec.attempts, rec.input, rec.target, rec.admitted = 1, value, self.primary, True
                rec.ok, rec.result, rec.state = True, out, marks
        self._finish(rec, value, out, start)

    def _finish(self, rec: CallRecord | None, value: Any, out: Any, start: float) -> None:
        """The call is final: count it, then tell every observer (never raises, but for an
        observer's error meant for the caller: ``ShadowMismatchError``, after all have run).

        Args:
            rec: the call's record, or None on the success path when no observer reads one.
            value: the validated input (success path only; the record holds it otherwise).
            out: the output served, or None when the call failed.
            start: ``perf_counter()`` at entry.
        """
        latency = perf_counter() - start
        raised: BaseException | None = None
        if rec is None:
            self.ring[next(self.seq) & MASK] = latency  # a call the primary served at once
            if self.fast_observe:
                self._each(self.fast_observe, value, out)
            return
        rec.value = out
        rec.latency = latency
        self.stats.record(rec)
        if self.fast_only and rec.errors is None and rec.outcome == "ok" and rec.served_by == "primary":
            for hook in self.fast_only:
                try:
                    hook(rec.input, out)
                except BaseException as exc:  # (an interrupt is raised once every hook has run)
                    raised = self._kept(raised, hook, exc, rec.input, out)
        for observe in self.observe:
            try:
                observe(rec)
            except BaseException as exc:  # (an interrupt is raised once every hook has run)
                raised = self._kept(raised, observe, exc, rec.input, out)
        if self.keepers or rec.detailed:
            prediction = rec.public(self.model, self.version)
            for keep in self.kept:
                try:
                    keep(prediction)
                except BaseException as exc:  # (an interrupt is raised once every hook has run)
                    raised = self._kept(raised, keep, exc, rec.input, out)
        watch = rec.watch
        if watch is not None:  # telemetry: the call's span and metrics read the record
            try:
                watch.finished(rec)
            except Exception as exc:
                self.failed(watch.finished, exc, rec.input, out)
        if (rec.outcome == "fallback" or rec.refused is not None) and _info(logging.INFO):
            if rec.outcome == "fallback":
                self.told(rec.served_by, rec.reasons or ())
            else:
                log.info("%s: refused (%s)", self.model, rec.refused, extra=self._extra(rec.outcome, rec.reasons))
        if raised is not None:
            raise raised

    def told(self, served_by: str, reasons: Sequence[str]) -> None:
        """The INFO line of a call a fallback served (``reasons``: its failures so far)."""
        what = f"served by fallback {served_by} after {', '.join(reasons)}"
        log.info("%s: %s", self.model, what, extra=self._extra("fallback", reasons))

    def watched(self, watch: Any, value: Any, out: Any, start: float) -> None:
        """:meth:`_finish` without a record, for a success-path call a ``watch`` handles (its
        telemetry) when nothing else needs the record: a ``fast_observe`` hook that returns a
        non-empty tuple (a drift monitor's alerts, from a check this call ran inline) has a
        record made for the call then, holding them, and handed to the watch as the finish
        point hands it one (its span's ``prodwrap.drift.alert`` events)."""
        latency = perf_counter() - start
        self.ring[next(self.seq) & MASK] = latency  # a call the primary served at once
        raised: BaseException | None = None
        alerts: tuple[Any, ...] = ()
        for hook in self.fast_observe:
            try:
                said = hook(value, out)
            except BaseException as exc:  # (an interrupt is raised once every hook has run)
                raised = self._kept(raised, hook, exc, value, out)
                continue
            if said.__class__ is tuple and said:
                alerts += said
        if alerts:
            rec = CallRecord(start, watch)
            rec.attempts, rec.input, rec.target, rec.admitted = 1, value, self.primary, True
            rec.ok, rec.result, rec.value, rec.latency, rec.drift = True, out, out, latency, alerts
            try:
                watch.finished(rec)
            except Exception as exc:
                self.failed(watch.finished, exc, value, out)
        if raised is not None:
            raise raised

    def kept_fast(self, value: Any, out: Any, start: float) -> None:
        """:meth:`_finish` of a call the primary served at its first attempt, on the success
        path of a model whose only record readers keep Predictions (``direct``): the
        success-path hooks, then the Prediction a record would give, made without one."""
        latency = perf_counter() - start
        self.ring[next(self.seq) & MASK] = latency  # a call the primary served at once
        raised: BaseException | None = None
        for hook in self.fast_only:
            try:
                hook(value, out)
            except BaseException as exc:  # (an interrupt is raised once every hook has run)
                raised = self._kept(raised, hook, exc, value, out)
        prediction = served_prediction(out, self.model, self.version, latency)
        for keep in self.kept:
            try:
                keep(prediction)
            except BaseException as exc:  # (an interrupt is raised once every hook has run)
                raised = self._kept(raised, keep, exc, value, out)
        if raised is not None:
            raise raised

    def _each(self, hooks: tuple[Callable[..., object], ...], value: Any, out: Any) -> None:
        """Each success-path hook in turn on ``(value, out)``, guarded on its own (an error
        meant for the caller is raised once all have run)."""
        raised: BaseException | None = None
        for hook in hooks:
            try:
                hook(value, out)
            except BaseException as exc:  # (an interrupt is raised once every hook has run)
                raised = self._kept(raised, hook, exc, value, out)
        if raised is not None:
            raise raised

    def _kept(
        self, raised: BaseException | None, hook: object, exc: BaseException, value: Any = None, out: Any = None
    ) -> BaseException | None:
        """What the finish raises once every hook has run, now that ``hook`` raised ``exc``
        (``raised``: what it would raise so far; ``value``: the call's input; ``out``: its
        output): an interrupt (not an ``Exception``) before anything, then an error meant for
        the caller; any other error is counted and logged."""
        interrupted = raised is not None and not isinstance(raised, Exception)  # (the first one stands)
        if not isinstance(exc, Exception):
            return raised if interrupted else exc
        for_caller = self.failed(hook, exc, value, out)
        return raised if interrupted else for_caller or raised

    def _extra(self, outcome: str, reasons: Sequence[str] | None) -> dict[str, Any]:
        reason = reasons[-1] if reasons else None
        return {"model": self.model, "version": self.version, "outcome": outcome, "reason": reason}

    def failed(self, observer: object, exc: Exception, value: Any = None, out: Any = None) -> Exception | None:
        """An observer raised: count it, log it once per burst, with the sensitive values of
        the call's input ``value`` and output ``out`` masked (an observer may put one in its
        error's text). An error meant for the caller (``ShadowMismatchError``) is returned
        instead, for the finish point to raise."""
        if isinstance(exc, _FOR_CALLER):
            return exc
        self.stats.observer_failed()
        name = observer_name(observer)
        _faults.warning(
            f"{self.model}:{name}",
            "%s: observer %s raised %s: %s",
            self.model,
            name,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"model": self.model, "version": self.version},
            masked=partial(self.masking.mask_for, value, out),
        )
        return None
