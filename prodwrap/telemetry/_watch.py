"""One traced call: its ``predict {name}`` span, its attempt and fallback spans, its metrics.

A :class:`Watch` is made by the telemetry stage's ``watch`` hook when a provider is installed
(``prodwrap.telemetry._providers``) and lives as the call's ``CallRecord.watch``. The driver
calls :meth:`Watch.enter` first (the span starts and becomes current, so what the predict
traces is its child) and :meth:`Watch.exit` last; the finish point hands it the record
(:meth:`Watch.finished`); the telemetry stage's attempt hooks open and end a child span per
attempt (with ``retry=`` or ``hedge=``) and per fallback tried.

Nothing here raises into the call: a span processor or exporter that raises is the SDK's
to contain (it logs), and whatever escapes is counted as an observer fault and logged.
"""

from __future__ import annotations

import contextlib
from time import perf_counter
from typing import TYPE_CHECKING, Any

from opentelemetry import context as _context
from opentelemetry import trace as _trace
from opentelemetry.trace import Status, StatusCode

from prodwrap._context import TAGS
from prodwrap._scope import SCOPE, emit
from prodwrap.cost._money import UNIT

if TYPE_CHECKING:
    from collections.abc import Mapping

    from prodwrap._record import CallRecord
    from prodwrap.telemetry._instruments import Instruments
    from prodwrap.telemetry._stage import TelemetryStage

_attach = _context.attach
_detach = _context.detach
_in_context = _trace.set_span_in_context
_ERROR = StatusCode.ERROR


def detach(token: Any) -> None:
    """Detach a context token; one attached in another context (a call its caller abandoned
    across threads) is left to that context."""
    with contextlib.suppress(Exception):  # (the API logs a failed detach; the call needs none)
        _detach(token)


class Watch:
    """The telemetry of one call (see the module docstring)."""

    __slots__ = (
        "ctx",
        "instruments",
        "rec",
        "record",
        "span",
        "stage",
        "started",
        "token",
        "tracer",
        "tries",
        "walk",
    )

    def __init__(self, stage: TelemetryStage, tracer: Any, instruments: Instruments | None) -> None:
        self.stage = stage
        self.tracer = tracer  # this call's (a shared cache would be another thread's)
        self.instruments = instruments
        self.rec: CallRecord | None = None
        self.span: Any = None
        self.ctx: Any = None
        self.token: Any = None
        self.tries: list[Any] = []  # the open attempt spans: [span, token, bill mark] each
        self.started = 0.0
        # The success path makes a record for it when the span needs more than "served at
        # once by the primary": the call's cost, its content, a capture's Prediction.
        self.record = stage.priced or stage.redactor is not None or bool(SCOPE.captures)
        # A span per attempt needs the walk (the success path's attempt is the call's span).
        self.walk = tracer is not None and stage.spans_attempts
        if tracer is not None:
            # No attributes yet: the SDK's first attribute set costs as much as the rest of the
            # span, so every attribute goes in one set_attributes() when the call ends.
            self.span = tracer.start_span(stage.span_name, kind=stage.kind)

    @property
    def trace_id(self) -> str | None:
        span = self.span
        if span is None:
            return None
        ctx = span.get_span_context()
        return f"{ctx.trace_id:032x}" if ctx.is_valid else None

    def enter(self) -> None:
        """The call begins: its span becomes the current one."""
        self.started = perf_counter()
        if self.span is not None:
            self.ctx = _in_context(self.span)
            self.token = _attach(self.ctx)

    def finished(self, rec: CallRecord) -> None:
        """The finish point's hand-over: the call's record, final (and its Prediction, to the
        captures of a test scope)."""
        self.rec = rec
        if SCOPE.captures:
            emit("prediction", rec.public(self.stage.model, self.stage.version))  # (a routed call's own version)

    def exit(self, error: BaseException | None) -> None:
        """The call is over (``error``: what it raised to its caller, or None). The spans and
        the metrics fail apart: a span processor that raises costs the call its span only, and
        the call's span is ended whatever raised before (its attributes may then be partial)."""
        if self.token is not None:
            detach(self.token)
            self.token = None
        for attempt in self.tries:  # (a call that ended mid-attempt)
            try:
                attempt[0].end()
            except Exception as exc:
                self.stage.failed(exc)
        self.tries.clear()
        try:
            self._span(error)
        except Exception as exc:
            self.stage.failed(exc)
        try:
            self._metrics(error)
        except Exception as exc:
            self.stage.failed(exc)

    def _outcome(self, error: BaseException | None) -> tuple[str, str, int, float]:
        rec = self.rec
        if rec is None:  # the success path, without a record: served at once by the primary
            return "ok", "primary", 1, perf_counter() - self.started
        return rec.outcome, rec.served_by, rec.attempts, rec.latency

    def _span(self, error: BaseException | None) -> None:
        """The call's span, described then ended: ended even when describing it raises (the
        fault is counted by :meth:`exit`; the span keeps what was set on it before)."""
        span = self.span
        if span is not None:
            try:
                self._describe(span, error)
            finally:
                span.end()

    def _describe(self, span: Any, error: BaseException | None) -> None:
        """The call's attributes, events and status, on its span."""
        stage = self.stage
        rec = self.rec
        outcome, served_by, attempts, _ = self._outcome(error)
        bill = None if rec is None else rec.bill
        units = 0 if bill is None else bill.units
        attrs: dict[str, Any] = {
            **stage.base,
            "prodwrap.outcome": outcome,
            "prodwrap.served_by": served_by,
            "prodwrap.attempts": attempts,
        }
        routed = None if rec is None else rec.version_of(None)
        if routed is not None:  # a canary's candidate: its calls are traced under its version
            attrs["prodwrap.model.version"] = routed
        if stage.cached:
            attrs["prodwrap.cache.hit"] = outcome == "cached"
        if stage.priced or bill is not None:
            attrs["prodwrap.cost.usd"] = units / UNIT
        # The call's own failure; an error raised once it was final (a strict shadow's) is an
        # event on a call that succeeded, on every path alike.
        final: BaseException | None = None
        if rec is not None and outcome == "error":
            final = error if error is not None else (rec.errors[-1] if rec.errors else None)
        elif error is not None:
            stage.record_exception(span, error, rec)
        if outcome == "error" and final is not None:
            attrs["error.type"] = type(final).__name__
        tags = TAGS.get()
        if tags:
            self._tags(tags, attrs)
        if rec is not None:
            stage.describe_call(rec, attrs)
        span.set_attributes(attrs)
        if rec is not None:
            self._events(span, rec, final)
        if outcome == "error" and final is not None:
            stage.record_exception(span, final, rec)
            span.set_status(Status(_ERROR, type(final).__name__))

    def _tags(self, tags: Mapping[str, Any], attrs: dict[str, Any]) -> None:
        """The ``pw.context(...)`` tags as ``prodwrap.tag.<key>``: one whose ``str()`` raises
        costs its attribute only (counted as a telemetry fault)."""
        for key, value in tags.items():
            if isinstance(value, str | bool | int | float):
                attrs[f"prodwrap.tag.{key}"] = value
                continue
            try:
                attrs[f"prodwrap.tag.{key}"] = str(value)
            except Exception as exc:
                self.stage.failed(exc)

    def _metrics(self, error: BaseException | None) -> None:
        instruments = self.instruments
        if instruments is not None:
            rec = self.rec
            bill = None if rec is None else rec.bill
            units = 0 if bill is None else bill.units
            outcome, served_by, _, latency = self._outcome(error)
            labels = instruments.by(outcome, served_by, None if rec is None else rec.version_of(None))
            instruments.predictions.add(1, labels)
            instruments.duration.record(latency, labels)
            if rec is not None and rec.reasons:
                for reason in rec.reasons:
                    instruments.attempt_failures.add(1, instruments.reason(reason))
            if units:
                instruments.cost.add(units / UNIT, labels)
            if bill is not None and rec is not None:
                self.stage.genai_metrics(instruments, rec, latency)

    def _events(self, span: Any, rec: CallRecord, final: BaseException | None) -> None:
        """The events of the call: the primary's failures (when its attempts have no spans of
        their own; the final error is recorded apart), a refusal, drift alerts."""
        if not self.walk and rec.errors:
            for exc in rec.errors[: rec.attempts]:
                if exc is not final:
                    self.stage.record_exception(span, exc, rec)
        if rec.refused is not None:
            span.add_event("prodwrap.refused", {"prodwrap.refusal.reason": rec.refused})
        for alert in rec.drift:
            span.add_event(
                "prodwrap.drift.alert",
                {
                    "prodwrap.drift.feature": str(getattr(alert, "feature", "")),
                    "prodwrap.drift.detector": str(getattr(alert, "detector", "")),
                    "prodwrap.drift.statistic": float(getattr(alert, "statistic", 0.0)),
                },
            )
