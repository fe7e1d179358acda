"""Telemetry of the rollout stages: shadow runs, comparisons, canary events, escalations.

The telemetry stage is compiled after every other stage of a model and hands itself to them
(``compile_telemetry``): a shadow experiment traces its candidate runs in spans *linked* to the
primary's (never children: the candidate is not part of the call), and counts comparisons; a
canary's events are span events and a counter; escalations are counted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import context as _context
from opentelemetry import trace as _trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Status, StatusCode

from prodwrap.telemetry._watch import detach

if TYPE_CHECKING:
    from prodwrap.telemetry._stage import TelemetryStage

MAX_REASONS = 32  # distinct escalation reasons on prodwrap.escalations; the rest are "other"


class RolloutTelemetry:
    """What a model's rollout stages emit, through its telemetry stage's providers."""

    __slots__ = ("reasons", "stage")

    def __init__(self, stage: TelemetryStage) -> None:
        self.stage = stage
        self.reasons: set[str] = set()  # escalation reasons on the metric (at most MAX_REASONS)

    @contextlib.contextmanager
    def candidate_span(self, candidate: str, primary: Any) -> Iterator[Any]:
        """A shadow candidate's run: a root span linked to the primary's span (``primary``:
        the OTel context captured when the primary's call dispatched the run). What the SDK
        raises (a span processor's fault) costs the run its span, never its comparison."""
        span = token = None
        try:
            tracer = self.stage.tracer()
            if tracer is not None:
                linked = _trace.get_current_span(primary).get_span_context() if primary is not None else None
                links = [Link(linked)] if linked is not None and linked.is_valid else []
                attrs = {**self.stage.base, "prodwrap.shadow.candidate": candidate}
                span = tracer.start_span(f"shadow {candidate}", context=Context(), links=links, attributes=attrs)
                token = _context.attach(_trace.set_span_in_context(span))
        except Exception as exc:
            self.stage.failed(exc)
        try:
            yield span
        finally:
            if token is not None:
                detach(token)
            if span is not None:
                try:
                    span.end()
                except Exception as exc:
                    self.stage.failed(exc)

    def run_failed(self, span: Any, error: BaseException, value: Any = None) -> None:
        """A shadow candidate's run on the input ``value`` failed (raised, timed out): its span
        says so, with the input's sensitive values masked (and without ``capture_content=True``
        no rejected value a validation error quotes)."""
        try:
            span.record_exception(error, attributes=self.stage.shown(error, value))
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        except Exception as exc:
            self.stage.failed(exc)

    def _counter(self, name: str, unit: str, description: str) -> Any:
        instruments = self.stage.instruments()
        if instruments is None:
            return None
        counter = instruments.more.get(name)  # (kept with the provider's instruments)
        if counter is None:
            counter = instruments.more[name] = instruments.meter.create_counter(
                name, unit=unit, description=description
            )
        return counter

    def compared(self, candidate: str, agreed: bool, ignored: bool, error: bool) -> None:
        """One shadow comparison: ``prodwrap.shadow.comparisons`` (``prodwrap.shadow.agree``)."""
        try:
            counter = self._counter("prodwrap.shadow.comparisons", "{comparison}", "shadow comparisons")
            if counter is not None:
                outcome = "error" if error else ("ignored" if ignored else str(agreed).lower())
                counter.add(
                    1, {**self.stage.base, "prodwrap.shadow.candidate": candidate, "prodwrap.shadow.agree": outcome}
                )
        except Exception as exc:
            self.stage.failed(exc)

    def escalated(self, reason: str) -> None:
        """One escalated prediction: ``prodwrap.escalations`` (``prodwrap.escalation.reason``)."""
        try:
            counter = self._counter("prodwrap.escalations", "{prediction}", "predictions escalated to people")
            if counter is not None:
                if reason not in self.reasons:  # a metric's attributes stay low-cardinality
                    if len(self.reasons) >= MAX_REASONS:
                        reason = "other"
                    else:
                        self.reasons.add(reason)
                counter.add(1, {**self.stage.base, "prodwrap.escalation.reason": reason})
        except Exception as exc:
            self.stage.failed(exc)

    def canary_event(self, event: Any) -> None:
        """A canary's state changed: an event on the current span and ``prodwrap.canary.events``."""
        try:
            span = _trace.get_current_span()
            attrs = {
                "prodwrap.canary.event": event.event,
                "prodwrap.canary.state": event.state,
                "prodwrap.canary.fraction": float(event.fraction),
            }
            if event.reason is not None:
                attrs["prodwrap.canary.reason"] = str(event.reason)
            if span.is_recording():
                span.add_event("prodwrap.canary", attrs)
            counter = self._counter("prodwrap.canary.events", "{event}", "canary rollbacks, ramp steps, promotions")
            if counter is not None:
                counter.add(1, {**self.stage.base, "prodwrap.canary.event": event.event})
        except Exception as exc:
            self.stage.failed(exc)
