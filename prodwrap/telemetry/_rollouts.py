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

from opentelemetry import trace as _trace
from opentelemetry.context import Context
from opentelemetry.trace import Link

if TYPE_CHECKING:
    from prodwrap.telemetry._stage import TelemetryStage


class RolloutTelemetry:
    """What a model's rollout stages emit, through its telemetry stage's providers."""

    __slots__ = ("_counters", "stage")

    def __init__(self, stage: TelemetryStage) -> None:
        self.stage = stage
        self._counters: dict[tuple[int, str], Any] = {}

    @contextlib.contextmanager
    def candidate_span(self, candidate: str, primary: Any) -> Iterator[None]:
        """A shadow candidate's run: a root span linked to the primary's span (``primary``:
        the OTel context captured when the primary's call dispatched the run)."""
        tracer = None
        try:
            tracer = self.stage.tracer()
        except Exception as exc:
            self.stage.failed(exc)
        if tracer is None:
            yield
            return
        linked = _trace.get_current_span(primary).get_span_context() if primary is not None else None
        links = [Link(linked)] if linked is not None and linked.is_valid else []
        attrs = {**self.stage.base, "prodwrap.shadow.candidate": candidate}
        with tracer.start_as_current_span(f"shadow {candidate}", context=Context(), links=links, attributes=attrs):
            yield

    def _counter(self, name: str, unit: str, description: str) -> Any:
        provider_meter = self.stage.instruments()
        if provider_meter is None:
            return None
        key = (id(provider_meter), name)
        counter = self._counters.get(key)
        if counter is None:
            meter = provider_meter.meter
            counter = self._counters[key] = meter.create_counter(name, unit=unit, description=description)
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
