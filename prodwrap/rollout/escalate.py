"""``pw.Escalate``: uncertain predictions go to people, the rest flow automatically.

Once a call's result is final, a prediction whose output value matches ``when`` is marked
``escalated=True`` and handed to ``to`` (a review queue's ``put``, a ticket system) on one
background thread, off the caller's path. Any call that served an output is considered
(the primary's, a fallback's or the cache's: what the user got is what a person reviews);
a failed call has no output and is not. A ``to`` that raises loses that prediction (counted
in ``stats().escalation.failed``, logged once per burst), never the caller's; a full queue
(``max_pending``) counts the loss (``dropped``). ``when`` raising counts as no match
(counted, logged).

On the success path ``when`` is asked through the stage's ``fast_record`` hook: the call's
record, and its ``Prediction``, are made only for a match; every other call pays one call
of ``when``.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from prodwrap._copies import snapshot
from prodwrap._log import Throttle, logger
from prodwrap._scope import SCOPE, emit
from prodwrap._stage import Seam, Stage
from prodwrap._stats import Tallies, counted
from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import count
from prodwrap.rollout._worker import BoundedWorker

if TYPE_CHECKING:
    from prodwrap._record import CallRecord, Prediction
    from prodwrap._stage import Build

CLOSE_WAIT = 1.0  # seconds close() waits for the queue to reach ``to``
log = logger("escalation")
_faults = Throttle(log)


@dataclass(frozen=True, slots=True)
class Escalate:
    """Hand predictions whose output matches ``when`` to ``to`` (``escalate=``).

    Args:
        when: ``when(output) -> bool``, asked of every served output.
        to: ``to(prediction)``, called on a background thread with each escalated
            ``pw.Prediction`` (``escalated`` True), in order.
        reason: why, as a label: a string, or ``reason(output) -> str``; escalations are
            counted by it in ``stats().escalation.reasons`` (default: ``"escalated"``).
        max_pending: predictions waiting for ``to`` at most (default 10_000); beyond, one
            is dropped and counted.

    Raises:
        ConfigurationError: ``when`` or ``to`` not callable, a ``reason`` that is neither a
            string nor a callable, ``max_pending`` not an int >= 1.
    """

    when: Callable[[Any], bool]
    to: Callable[[Prediction], object]
    reason: str | Callable[[Any], str] | None = None
    max_pending: int = 10_000

    def __post_init__(self) -> None:
        if not callable(self.when):
            raise ConfigurationError(f"Escalate.when must be a predicate on the output, got {self.when!r}")
        if not callable(self.to):
            raise ConfigurationError(f"Escalate.to must be a callable taking a Prediction, got {self.to!r}")
        reason = self.reason
        if reason is not None and not callable(reason) and (not isinstance(reason, str) or not reason):
            raise ConfigurationError(f"Escalate.reason must be a non-empty string or a callable, got {reason!r}")
        object.__setattr__(self, "max_pending", count("Escalate", "max_pending", self.max_pending))

    def stages(self, build: Build) -> Sequence[Stage]:
        return (EscalationStage(self, build),)

    def describe(self) -> dict[str, Any]:
        def named(fn: object) -> str:
            return str(getattr(fn, "__qualname__", None) or repr(fn))

        reason = self.reason if self.reason is None or isinstance(self.reason, str) else named(self.reason)
        return {"when": named(self.when), "to": named(self.to), "reason": reason, "max_pending": self.max_pending}


@dataclass(frozen=True, slots=True)
class EscalationStats:
    """``model.stats().escalation``.

    Attributes:
        calls: calls considered (those that served an output).
        escalated: predictions that matched ``when`` (marked ``escalated``).
        rate: ``escalated / calls``; None before the first call.
        delivered: handed to ``to`` without it raising.
        failed: ``to`` raised (the prediction is lost to the sink; logged).
        dropped: not queued: ``max_pending`` were waiting, or the model was closed.
        pending: waiting for ``to`` now.
        faults: ``when`` or ``reason`` raised (counted as no match / the default reason).
        reasons: escalations by reason.
    """

    calls: int
    escalated: int
    rate: float | None
    delivered: int
    failed: int
    dropped: int
    pending: int
    faults: int
    reasons: dict[str, int]


class EscalationStage(Stage):
    """The escalation on the observer seam, after shadow, before audit (its line says
    ``escalated``)."""

    name = "escalation"
    seam = Seam.OBSERVER
    section = "escalation"

    def __init__(self, policy: Escalate, build: Build) -> None:
        self.policy = policy
        self.model = build.name
        self.telemetry: Any = None  # the model's rollout telemetry (set when it has telemetry)
        self.version = build.version
        self.masking = build.masking  # a callback's error may quote the input
        self.worker = BoundedWorker(f"prodwrap-escalation-{build.name}", 1, policy.max_pending)
        self.seen = itertools.count()  # calls considered (lock-free)
        self.matched = itertools.count()
        self.delivered = itertools.count()
        self.failed = itertools.count()
        self.dropped = itertools.count()
        self.faults = itertools.count()
        self.reasons = Tallies()
        seen, when = self.seen, policy.when

        def fast_record(value: Any, out: Any) -> bool:
            next(seen)
            try:
                return bool(when(out))
            except Exception as exc:
                self.fault("when", exc, value, out)
                return False

        self.fast_record = fast_record

    def observe(self, call: CallRecord) -> None:
        if call.outcome == "error":
            return
        state = call.state
        if state is None or not state.get(self):  # (asked already on the success path)
            next(self.seen)
            try:
                if not self.policy.when(call.value):
                    return
            except Exception as exc:
                self.fault("when", exc, call.input, call.value)
                return
        call.escalated = True
        prediction = call.public(self.model, self.version)  # built once: the same for every reader
        next(self.matched)
        label = self._reason(call.value, call.input)
        next(self.reasons.get(label) or self.reasons.new(label))
        if self.telemetry is not None:
            self.telemetry.escalated(label)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: escalated %s (%s)", self.model, prediction.id, label, extra={"model": self.model, "reason": label}
            )
        if SCOPE.on:
            emit("escalation", prediction)
        served = snapshot(prediction.value)  # the reviewer sees what was served, as it was
        if served is not prediction.value:
            prediction = replace(prediction, value=served)
        if not self.worker.submit(self._hand, prediction, call.input):  # (the input: to mask a fault line)
            next(self.dropped)

    def _reason(self, out: Any, value: Any) -> str:
        reason = self.policy.reason
        if reason is None:
            return "escalated"
        if isinstance(reason, str):
            return reason
        try:
            return str(reason(out))
        except Exception as exc:
            self.fault("reason", exc, value, out)
            return "escalated"

    def _hand(self, prediction: Prediction, value: Any = None) -> None:
        """On the worker: give the reviewer sink one prediction (its fault is counted, and
        logged with the sensitive values of the call's input ``value`` and output masked)."""
        try:
            self.policy.to(prediction)
        except Exception as exc:
            next(self.failed)
            _faults.warning(
                f"{self.model}:to",
                "%s: escalation sink %s raised %s: %s (the prediction did not reach it)",
                self.model,
                getattr(self.policy.to, "__qualname__", repr(self.policy.to)),
                type(exc).__name__,
                exc,
                exc_info=exc,
                extra={"model": self.model, "version": self.version, "reason": "escalation_sink"},
                masked=partial(self.masking.mask_for, value, prediction.value),
            )
        else:
            next(self.delivered)

    def fault(self, what: str, exc: Exception, value: Any = None, out: Any = None) -> None:
        """A callback raised: counted, logged once per burst (the input, ``value``, and the
        output, ``out``, masked)."""
        next(self.faults)
        _faults.warning(
            f"{self.model}:{what}",
            "%s: escalation %s raised %s: %s",
            self.model,
            what,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"model": self.model, "version": self.version, "reason": f"escalation_{what}"},
            masked=partial(self.masking.mask_for, value, out),
        )

    def flush(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds until every queued prediction has reached ``to``."""
        return self.worker.drain(timeout)

    def stats(self) -> EscalationStats:
        calls, escalated = counted(self.seen), counted(self.matched)
        return EscalationStats(
            calls=calls,
            escalated=escalated,
            rate=escalated / calls if calls else None,
            delivered=counted(self.delivered),
            failed=counted(self.failed),
            dropped=counted(self.dropped) + self.worker.dropped,
            pending=self.worker.pending,
            faults=counted(self.faults),
            reasons=self.reasons.read(),
        )

    def close(self, timeout: float | None = None) -> None:
        """Stop the worker: what is queued is handed to ``to`` first, for up to ``CLOSE_WAIT``
        seconds (or ``timeout``, if shorter); what is left then is dropped (counted). Idempotent."""
        if not self.worker.closed:
            self.worker.drain(CLOSE_WAIT if timeout is None else min(CLOSE_WAIT, timeout))
        self.worker.close()
