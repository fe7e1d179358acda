"""The telemetry stage: what every model compiles unless ``telemetry=False``.

Its ``watch`` hook is asked first on every call. With no provider installed it returns None
after three attribute reads (``prodwrap.telemetry._providers.installed``): no span object, no
metric, nothing allocated. Otherwise it makes the call's :class:`~prodwrap.telemetry._watch.Watch`.
On the attempt seam (innermost, after the cost stage, so an attempt's charge is known when
its span ends) it opens a child span per attempt when ``retry=`` or ``hedge=`` is configured,
and per fallback tried; on calls it did not watch its hooks return at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import context as _context
from opentelemetry import trace as _trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from prodwrap._log import Throttle, logger
from prodwrap._masking import exception_text, quoted_values, withheld
from prodwrap._stage import Seam, Stage
from prodwrap.cost._money import UNIT
from prodwrap.telemetry import _providers
from prodwrap.telemetry._instruments import STATES, Instruments
from prodwrap.telemetry._watch import Watch, detach

if TYPE_CHECKING:
    from prodwrap._engine import Target
    from prodwrap._record import CallRecord
    from prodwrap._stage import Build

log = logger("telemetry")
_faults = Throttle(log)
_in_context = _trace.set_span_in_context
_attach = _context.attach
_ERROR = StatusCode.ERROR
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "mistralai": "mistral_ai", "cohere": "cohere"}


class TelemetryStage(Stage):
    """Spans and metrics of one model (see the module docstring)."""

    name = "telemetry"
    seam = Seam.ATTEMPT

    def __init__(self, build: Build, fallback_constants: frozenset[str], redactor: Any = None) -> None:
        settings = build.settings
        self.model = build.name
        self.version = build.version
        self.own_tracer = settings.tracer_provider
        self.own_meter = settings.meter_provider
        self.kind = SpanKind.CLIENT if settings.remote else SpanKind.INTERNAL
        self.span_name = f"predict {build.name}"
        self.base: dict[str, Any] = {"prodwrap.model.name": build.name}
        if build.version is not None:
            self.base["prodwrap.model.version"] = build.version
        self.spans_attempts = settings.retry is not None or settings.hedge is not None
        self.priced = settings.cost is not None
        self.cached = settings.cache is not None
        self.constants = fallback_constants
        self.redactor = redactor  # capture_content=True: inputs and outputs on spans, redacted
        self.masking = build.masking  # the input's sensitive fields: masked in recorded exceptions
        self._tracer: tuple[Any, Any] = (None, None)  # (provider, tracer) last used
        self._meters: dict[int, tuple[Any, Instruments]] = {}
        self.faults = 0
        self.counted: Any = None  # the model's StatsRecorder.telemetry_failed (set when compiled)
        self.watch = self._watcher()

    def _watcher(self) -> Callable[[], Watch | None]:
        open_ = self.open
        if self.own_tracer is not None or self.own_meter is not None:
            return open_
        if not _providers.FAST:  # (an API without the attributes read below)
            installed = _providers.installed
            return lambda: open_() if installed() else None
        from opentelemetry.metrics import _internal as metering

        from prodwrap._scope import SCOPE as scope

        tracing = _trace

        def watch() -> Watch | None:
            # Every call asks this first: three attribute reads when nothing is installed.
            if scope.on or tracing._TRACER_PROVIDER is not None or metering._METER_PROVIDER is not None:
                return open_()
            return None

        # The compiled success path reads these itself and calls the watch only when one is set.
        watch.when = ((scope, "on"), (tracing, "_TRACER_PROVIDER"), (metering, "_METER_PROVIDER"))  # type: ignore[attr-defined]
        return watch

    # -- providers ---------------------------------------------------------------------------

    def open(self) -> Watch | None:
        """The call's watch, or None when neither a tracer nor a meter provider is in force."""
        try:
            tracer = self.tracer()
            instruments = self.instruments()
            if tracer is None and instruments is None:
                return None
            return Watch(self, tracer, instruments)
        except Exception as exc:  # a provider that raises costs the call its telemetry only
            self.failed(exc)
            return None

    def tracer(self) -> Any:
        provider = _providers.tracer_provider(self.own_tracer)
        if provider is None:
            return None
        last, tracer = self._tracer
        if last is not provider:
            from prodwrap import __version__

            tracer = provider.get_tracer("prodwrap", __version__)
            self._tracer = (provider, tracer)
        return tracer

    def instruments(self) -> Instruments | None:
        provider = _providers.meter_provider(self.own_meter)
        if provider is None:
            return None
        held = self._meters.get(id(provider))
        if held is None or held[0] is not provider:
            held = (provider, Instruments(provider, self.base))
            if len(self._meters) > 16:  # (test scopes come and go: keep a few)
                self._meters.clear()
            self._meters[id(provider)] = held
        return held[1]

    def record_exception(self, span: Any, exc: BaseException, call: CallRecord | None) -> None:
        """``span.record_exception`` of an ``Exception`` (an interrupt is not recorded), with
        only what a span may show of it (:meth:`shown`)."""
        if isinstance(exc, Exception):
            span.record_exception(exc, attributes=self.shown(exc, None if call is None else call.input))

    def shown(self, exc: BaseException, value: Any) -> dict[str, str] | None:
        """The ``exception.message`` and ``exception.stacktrace`` a span may show of ``exc``
        (``prodwrap._masking``), or None when the SDK's own will do: the sensitive values of
        the call's input ``value`` masked (a predict may put one in the text of its error),
        and without ``capture_content=True`` no rejected value quoted by a validation error."""
        try:
            secrets = self.masking.secrets(value)
        except Exception:  # sensitive values that cannot be read: nothing of the text is shown
            return {"exception.message": withheld(""), "exception.stacktrace": withheld("")}
        quoted = quoted_values(exc) if self.redactor is None else []
        if not secrets and not quoted:
            return None
        message, trace = exception_text(exc, secrets, quoted)
        return {"exception.message": message, "exception.stacktrace": trace}

    def failed(self, exc: Exception) -> None:
        """Telemetry raised: counted (``stats().telemetry_errors``), logged once per burst."""
        self.faults += 1
        if self.counted is not None:
            self.counted()
        _faults.warning(
            f"{self.model}:telemetry", "%s: telemetry failed: %s: %s", self.model, type(exc).__name__, exc, exc_info=exc
        )

    # -- attempt spans -----------------------------------------------------------------------

    def before_attempt(self, call: CallRecord, target: Target) -> None:
        w: Watch | None = call.watch
        if w is None or w.span is None:
            return
        try:
            if call.phase >= 0:
                name = f"fallback {target.name}"
                attrs: dict[str, Any] = {"prodwrap.fallback": target.name}
            elif self.spans_attempts:
                n = call.attempts + len(w.tries) if call.racing else call.attempts + 1  # (a race counted one)
                name, attrs = f"attempt {self.model}", {"prodwrap.attempt": n}
                if n > 1 and not call.racing:
                    w.span.add_event("prodwrap.retry", {"prodwrap.attempt": n})
                elif call.racing:
                    w.span.add_event("prodwrap.hedge", {"prodwrap.attempt": n})
            else:
                return
            span = w.tracer.start_span(name, context=w.ctx, kind=self.kind, attributes=attrs)
            if w.tries:  # a hedge's extra attempt: it, not the one before, is current now
                detach(w.tries[-1][1])
            bill = call.bill
            w.tries.append([span, _attach(_in_context(span, w.ctx)), 0 if bill is None else len(bill.lines)])
        except Exception as exc:
            self.failed(exc)
        return

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        w: Watch | None = call.watch
        if w is None or not w.tries:
            return
        try:
            tries = list(w.tries)
            w.tries.clear()
            detach(tries[-1][1])
            bill = call.bill
            lines = () if bill is None else bill.lines[tries[0][2] :]
            raced = len(tries) > 1
            for i, (span, _, _) in enumerate(tries):
                try:  # (each span ends on its own: one that raises leaves none of the others open)
                    self._end_try(call, span, i, raced, error, lines)
                except Exception as exc:
                    self.failed(exc)
        except Exception as exc:
            self.failed(exc)

    def _end_try(self, call: CallRecord, span: Any, i: int, raced: bool, error: Exception | None, lines: Any) -> None:
        """End attempt ``i``'s span with its cost, and its error or lost race."""
        won = (not raced and error is None) or (raced and i == call.won)
        attrs: dict[str, Any] = {}
        if call.phase >= 0:  # a fallback: a model's own charges, else nothing
            if self.priced or lines:
                attrs["prodwrap.cost.usd"] = sum(line.units for line in lines) / UNIT
        elif self.priced:
            attrs["prodwrap.cost.usd"] = lines[i].units / UNIT if i < len(lines) else 0.0
        if not won:
            failure = error if not raced else None
            attrs["error.type"] = type(failure).__name__ if failure is not None else "lost_race"
            if failure is not None:
                self.record_exception(span, failure, call)
            span.set_status(Status(_ERROR, attrs["error.type"]))
        span.set_attributes(attrs)
        span.end()

    def undo_attempt(self, call: CallRecord, target: Target) -> None:
        w: Watch | None = call.watch
        if w is None or not w.tries:
            return
        try:
            if call.racing:  # a hedge's extra attempt that could not start
                span, token, _ = w.tries.pop()
                detach(token)
                span.set_attribute("prodwrap.attempt.started", False)
                span.end()
                if w.tries:
                    w.tries[-1][1] = _attach(_in_context(w.tries[-1][0], w.ctx))
                return
            tries = list(w.tries)
            w.tries.clear()
            detach(tries[-1][1])
            for span, _, _ in tries:  # the call ended mid-attempt
                try:
                    span.set_status(Status(_ERROR, "ended"))
                    span.end()
                except Exception as exc:
                    self.failed(exc)
        except Exception as exc:
            self.failed(exc)

    # -- what the call's span and metrics say -------------------------------------------------

    def describe_call(self, rec: CallRecord, attrs: dict[str, Any]) -> None:
        """Add what the record knows to the call's span attributes (GenAI usage, content)."""
        w: Watch = rec.watch
        if rec.outcome == "fallback" and rec.served_by in self.constants and w.tracer is not None:
            self.constant_span(w, rec.served_by)
        bill = rec.bill
        usage = [line.tokens for line in bill.lines if line.tokens is not None] if bill is not None else []
        if usage:
            attrs.update(self.genai(rec))
            attrs["gen_ai.usage.input_tokens"] = sum(u.input_tokens for u in usage)
            attrs["gen_ai.usage.output_tokens"] = sum(u.output_tokens for u in usage)
        if self.redactor is not None:
            redactor = self.redactor
            if rec.valid_input:
                attrs["prodwrap.input"] = _text(redactor.side(rec.input, redactor.secret_input))
            if rec.value is not None:
                attrs["prodwrap.output"] = _text(redactor.side(rec.value, redactor.secret_output))

    def constant_span(self, w: Watch, name: str) -> None:
        """The zero-length span of a Constant fallback that served the call (it makes no
        attempt, so no attempt hook opened one): one that raises costs that span only."""
        try:
            span = w.tracer.start_span(f"fallback {name}", context=w.ctx, attributes={"prodwrap.fallback": name})
            span.end()
        except Exception as exc:
            self.failed(exc)

    def genai(self, rec: CallRecord) -> dict[str, Any]:
        """The GenAI semantic-convention attributes of a token-priced call."""
        out: dict[str, Any] = {"gen_ai.operation.name": "chat"}
        value = rec.value
        module = type(value).__module__.split(".")[0] if value is not None else ""
        provider = _PROVIDERS.get(module)
        if provider is not None:
            out["gen_ai.provider.name"] = provider
        response_model = value.get("model") if isinstance(value, dict) else getattr(value, "model", None)
        requested = rec.kwargs.get("model") if rec.kwargs else None
        if isinstance(requested, str):
            out["gen_ai.request.model"] = requested
        if isinstance(response_model, str):
            out["gen_ai.response.model"] = response_model
            out.setdefault("gen_ai.request.model", response_model)
        return out

    def genai_metrics(self, instruments: Instruments, rec: CallRecord, latency: float) -> None:
        bill = rec.bill
        usage = [line.tokens for line in bill.lines if line.tokens is not None] if bill is not None else []
        if not usage:
            return
        attrs = {**self.genai(rec), **instruments.base}
        instruments.genai_duration.record(latency, attrs)
        instruments.tokens.record(sum(u.input_tokens for u in usage), {**attrs, "gen_ai.token.type": "input"})
        instruments.tokens.record(sum(u.output_tokens for u in usage), {**attrs, "gen_ai.token.type": "output"})

    # -- a breaker's transitions ----------------------------------------------------------------

    def transition(self, change: Any) -> None:
        """A circuit breaker changed state: an event on the current span, the state gauge."""
        span = _trace.get_current_span()
        if span.is_recording():
            span.add_event(
                "prodwrap.circuit.transition",
                {
                    "prodwrap.circuit.from": change.from_state,
                    "prodwrap.circuit.to": change.to_state,
                    "prodwrap.circuit.reason": change.reason,
                },
            )
        instruments = self.instruments()
        if instruments is not None and instruments.circuit is not None:
            instruments.circuit.set(STATES.get(change.to_state, -1), instruments.base)


MAX_CONTENT = 4096  # characters of an input or output put on a span (capture_content=True)


def _text(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(value)
    if len(text) > MAX_CONTENT:
        text = f"{text[:MAX_CONTENT]}... ({len(text)} characters)"
    return text
