"""Spans: one per prediction, children per attempt and per fallback (DESIGN §3 "Telemetry")."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from typing import Any

import numpy as np
import pydantic
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

import prodwrap as pw
from prodwrap import _scope
from prodwrap.testing import FakeClock


def double(x: int) -> int:
    return 2 * x


def test_one_span_per_call_with_the_documented_attributes(traces: Any) -> None:
    model = pw.ProductionModel(double, name="doubler", version="1.2", tracer_provider=traces.provider)
    with pw.context(customer="acme", request_id="r-17"):
        p = model.predict_detailed(4)
    assert model(5) == 10
    spans = traces.spans()
    assert [s.name for s in spans] == ["predict doubler", "predict doubler"]
    span = spans[0]
    assert span.kind is SpanKind.INTERNAL
    assert dict(span.attributes) == {
        "prodwrap.model.name": "doubler",
        "prodwrap.model.version": "1.2",
        "prodwrap.outcome": "ok",
        "prodwrap.served_by": "primary",
        "prodwrap.attempts": 1,
        "prodwrap.tag.customer": "acme",
        "prodwrap.tag.request_id": "r-17",
    }
    assert p.trace_id == f"{span.context.trace_id:032x}"
    assert span.status.status_code is StatusCode.UNSET
    assert "prodwrap.tag.customer" not in spans[1].attributes  # the tags of its own call only


def test_remote_models_make_client_spans(traces: Any) -> None:
    model = pw.ProductionModel(double, name="api", remote=True, tracer_provider=traces.provider)
    model(1)
    assert traces.one("predict api").kind is SpanKind.CLIENT


def test_three_failed_attempts_and_a_fallback_are_four_children_each_with_its_cost(traces: Any, clock: Any) -> None:
    def down(x: int) -> int:
        raise ConnectionError("dependency down")

    baseline = pw.ProductionModel(lambda x: -1, name="baseline", cost=pw.PerCall("0.002"), telemetry=False)
    model = pw.ProductionModel(
        down,
        name="scorer",
        retry=3,
        fallback=[baseline],
        cost=pw.PerCall("0.01"),
        tracer_provider=traces.provider,
    )
    p = model.predict_detailed(1)
    assert p.value == -1 and p.cost == Decimal("0.032")
    root = traces.one("predict scorer")
    children = traces.children(root)
    attempts = [s for s in children if s.name == "attempt scorer"]
    fallbacks = [s for s in children if s.name == "fallback baseline"]
    assert len(children) == 4 and len(attempts) == 3 and len(fallbacks) == 1
    assert [s.attributes["prodwrap.attempt"] for s in attempts] == [1, 2, 3]
    for span in attempts:
        assert span.attributes["prodwrap.cost.usd"] == pytest.approx(0.01)
        assert span.attributes["error.type"] == "ConnectionError"
        assert span.status.status_code is StatusCode.ERROR
        assert [e.name for e in span.events] == ["exception"]
    fallback = fallbacks[0]
    assert "prodwrap.attempt" not in fallback.attributes
    assert fallback.attributes["prodwrap.fallback"] == "baseline"
    assert fallback.attributes["prodwrap.cost.usd"] == pytest.approx(0.002)  # the fallback model's own price
    assert root.attributes["prodwrap.cost.usd"] == pytest.approx(0.032)
    assert root.attributes["prodwrap.outcome"] == "fallback"
    assert root.attributes["prodwrap.served_by"] == "baseline"
    assert root.attributes["prodwrap.attempts"] == 3
    assert [e.name for e in root.events] == ["prodwrap.retry", "prodwrap.retry"]


def test_without_retry_the_attempt_is_the_prediction_span(traces: Any) -> None:
    def down(x: int) -> int:
        raise KeyError("bug")

    model = pw.ProductionModel(down, name="m", fallback=pw.Constant(0), tracer_provider=traces.provider)
    assert model(1) == 0
    root = traces.one("predict m")
    assert [s.name for s in traces.children(root)] == ["fallback constant"]
    assert [e.attributes["exception.type"] for e in root.events if e.name == "exception"] == ["KeyError"]
    plain = pw.ProductionModel(double, name="ok", retry=None, tracer_provider=traces.provider)
    plain(1)
    assert traces.children(traces.one("predict ok")) == []


def test_a_failed_call_has_error_status_and_a_low_cardinality_error_type(traces: Any) -> None:
    def bad(x: int) -> int:
        raise ValueError(f"bad input {x}")

    model = pw.ProductionModel(bad, name="m", tracer_provider=traces.provider)
    with pytest.raises(ValueError):
        model(7)
    span = traces.one("predict m")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ValueError"
    assert span.attributes["prodwrap.outcome"] == "error"
    assert [e.name for e in span.events] == ["exception"]


def test_invalid_input_is_an_error_span(traces: Any) -> None:
    model = pw.ProductionModel(double, name="m", input=int, tracer_provider=traces.provider)
    with pytest.raises(pw.InputValidationError):
        model("not a number")
    assert traces.one("predict m").attributes["error.type"] == "InputValidationError"


def test_the_applications_span_is_the_parent_and_the_predicts_spans_are_children(traces: Any) -> None:
    tracer = traces.provider.get_tracer("app")

    def traced_predict(x: int) -> int:
        with tracer.start_as_current_span("http call"):
            return x + 1

    model = pw.ProductionModel(traced_predict, name="m", tracer_provider=traces.provider)
    with tracer.start_as_current_span("request") as request:
        model(1)
    root = traces.one("predict m")
    assert root.parent.span_id == request.get_span_context().span_id
    assert root.context.trace_id == request.get_span_context().trace_id
    assert traces.one("http call").parent.span_id == root.context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # the call's context was detached


def test_a_timed_attempt_on_a_worker_thread_keeps_the_trace(traces: Any) -> None:
    tracer = traces.provider.get_tracer("app")

    def traced_predict(x: int) -> int:
        with tracer.start_as_current_span("inner"):
            return x

    model = pw.ProductionModel(traced_predict, name="m", timeout=5.0, retry=2, tracer_provider=traces.provider)
    model(1)
    attempt = traces.one("attempt m")
    assert traces.one("inner").parent.span_id == attempt.context.span_id
    assert attempt.parent.span_id == traces.one("predict m").context.span_id


async def test_an_async_prediction_inside_a_request_keeps_the_requests_trace(traces: Any) -> None:
    tracer = traces.provider.get_tracer("app")

    async def apredict(x: int) -> int:
        await asyncio.sleep(0)
        return x

    model = pw.ProductionModel(apredict, name="m", tracer_provider=traces.provider)

    async def handler(i: int) -> int:  # what a FastAPI route does: a span per request, then the model
        with tracer.start_as_current_span(f"GET /score/{i}"):
            return await model.apredict(i)

    assert await asyncio.gather(*(handler(i) for i in range(5))) == list(range(5))
    for i in range(5):
        request = traces.one(f"GET /score/{i}")
        predictions = traces.children(request)
        assert [s.name for s in predictions] == ["predict m"]
        assert predictions[0].context.trace_id == request.context.trace_id


async def test_hedged_attempts_each_have_a_span(traces: Any) -> None:
    release = asyncio.Event()
    calls = 0

    async def slow_then_fast(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            await release.wait()  # the first attempt hangs until the call is over
        return x

    model = pw.ProductionModel(
        slow_then_fast, name="h", hedge=pw.Hedge(after=0.001, max_extra=1), tracer_provider=traces.provider
    )
    assert await model.apredict(3) == 3
    release.set()
    attempts = traces.spans("attempt h")
    assert sorted(s.attributes["prodwrap.attempt"] for s in attempts) == [1, 2]
    lost = next(s for s in attempts if s.attributes["prodwrap.attempt"] == 1)
    assert lost.attributes["error.type"] == "lost_race"
    assert traces.one("predict h").attributes["prodwrap.attempts"] == 2


def test_content_is_on_spans_only_when_asked_and_sensitive_fields_never(traces: Any) -> None:
    class Applicant(pydantic.BaseModel):
        name: str
        ssn: pydantic.SecretStr

    def score(a: Applicant) -> float:
        return 0.5

    quiet = pw.ProductionModel(score, name="quiet", input=Applicant, tracer_provider=traces.provider)
    loud = pw.ProductionModel(
        score, name="loud", input=Applicant, capture_content=True, tracer_provider=traces.provider
    )
    for model in (quiet, loud):
        model({"name": "Ada", "ssn": "123-45-6789"})
    assert not any("input" in key or "output" in key for key in traces.one("predict quiet").attributes)
    attrs = traces.one("predict loud").attributes
    assert '"Ada"' in attrs["prodwrap.input"] and attrs["prodwrap.output"] == "0.5"
    assert "123-45-6789" not in attrs["prodwrap.input"]


def test_genai_attributes_for_a_token_priced_model(traces: Any) -> None:
    def chat(prompt: str, model: str = "gpt-4o-mini") -> dict[str, Any]:
        return {
            "model": "gpt-4o-mini-2024-07-18",
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 40}},
        }

    llm = pw.ProductionModel(
        chat, name="llm", cost=pw.PerToken(input="0.15", output="0.60"), tracer_provider=traces.provider
    )
    llm("hello", model="gpt-4o-mini")
    attrs = traces.one("predict llm").attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attrs["gen_ai.usage.input_tokens"] == 100  # cached tokens included, as the conventions say
    assert attrs["gen_ai.usage.output_tokens"] == 20
    assert attrs["prodwrap.cost.usd"] == pytest.approx((100 * 0.15 + 20 * 0.60) / 1_000_000)


def test_a_circuit_transition_is_an_event(traces: Any, clock: FakeClock) -> None:
    def down(x: int) -> int:
        raise ConnectionError("down")

    model = pw.ProductionModel(
        down,
        name="c",
        circuit=pw.CircuitBreaker(failure_rate=0.5, window=2, min_calls=2),
        fallback=pw.Constant(0),
        tracer_provider=traces.provider,
    )
    model(1)
    model(1)
    events = [e for s in traces.spans() for e in s.events if e.name == "prodwrap.circuit.transition"]
    assert len(events) == 1
    assert events[0].attributes["prodwrap.circuit.to"] == "open"


def test_a_budget_refusal_is_an_event(traces: Any) -> None:
    model = pw.ProductionModel(
        double,
        name="b",
        cost=pw.PerCall("0.01"),
        budget=pw.Budget("0.01", action="fallback"),
        fallback=pw.Constant(0),
        tracer_provider=traces.provider,
    )
    model(1)
    assert model(1) == 0
    refused = traces.spans("predict b")[1]
    assert [e.attributes["prodwrap.refusal.reason"] for e in refused.events if e.name == "prodwrap.refused"] == [
        "budget"
    ]


def _drifting(traces: Any, *, is_async: bool = False, **options: Any) -> tuple[pw.ProductionModel, Any]:
    """A model whose monitor checks inline every 50 calls, fed inputs far off its reference."""
    reference = np.random.default_rng(0).normal(size=(500, 1))
    monitor = pw.DriftMonitor(reference, window=50, background=False)

    async def served(row: list[float]) -> float:
        return row[0]

    predict = served if is_async else (lambda row: row[0])
    model = pw.ProductionModel(predict, name="d", drift=monitor, tracer_provider=traces.provider, **options)
    return model, monitor


_OFF = [[5.0 + i / 50] for i in range(50)]


@pytest.mark.parametrize("options", [{}, {"retry": 2}, {"cost": pw.PerCall("0.01")}])
@pytest.mark.parametrize("how", ["predict", "predict_detailed"])
def test_a_drift_alert_is_an_event_of_the_call_that_raised_it(traces: Any, how: str, options: dict[str, Any]) -> None:
    model, monitor = _drifting(traces, **options)
    for row in _OFF:
        getattr(model, how)(row)
    assert monitor.stats().alerts == 1
    alerted = [s for s in traces.spans("predict d") if any(e.name == "prodwrap.drift.alert" for e in s.events)]
    assert len(alerted) == 1 and alerted[0] is traces.spans("predict d")[-1]  # the 50th call's check
    (event,) = [e for e in alerted[0].events if e.name == "prodwrap.drift.alert"]
    assert event.attributes["prodwrap.drift.feature"] == "0" and event.attributes["prodwrap.drift.statistic"] > 0


async def test_a_drift_alert_is_an_event_of_an_awaited_call(traces: Any) -> None:
    model, monitor = _drifting(traces, is_async=True)
    for row in _OFF:
        await model(row)
    assert monitor.stats().alerts == 1
    events = [e.name for s in traces.spans("predict d") for e in s.events]
    assert events == ["prodwrap.drift.alert"]


def test_only_the_call_that_raised_a_drift_alert_has_a_record_made(
    traces: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prodwrap.telemetry._watch import Watch

    handed: list[Any] = []
    finished = Watch.finished
    monkeypatch.setattr(Watch, "finished", lambda self, rec: (handed.append(rec), finished(self, rec))[1])
    model, _ = _drifting(traces)
    for row in _OFF:
        assert model(row) == row[0]
    assert len(handed) == 1 and len(handed[0].drift) == 1
    span = traces.spans("predict d")[-1]
    assert span.attributes["prodwrap.outcome"] == "ok" and span.attributes["prodwrap.attempts"] == 1


def test_providers_are_read_at_call_time_own_then_scope_then_global(traces: Any) -> None:
    other = type(traces)()
    model = pw.ProductionModel(double, name="m")
    model(1)  # no provider anywhere: nothing
    with _scope.scoped(tracer_provider=traces.provider):
        model(2)
        pw.ProductionModel(double, name="own", tracer_provider=other.provider)(3)
    model(4)
    assert [s.name for s in traces.spans()] == ["predict m"]
    assert [s.name for s in other.spans()] == ["predict own"]


def test_no_provider_means_no_span_object_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    from prodwrap.telemetry import _watch

    def refuse(*args: Any) -> None:
        raise AssertionError("a Watch was made with no provider installed")

    monkeypatch.setattr(_watch.Watch, "__init__", refuse)
    model = pw.ProductionModel(double, name="m", retry=2, fallback=pw.Constant(0))
    assert model(2) == 4
    assert model._engine.watch is not None and model._engine.watch() is None
    assert model.predict_detailed(1).trace_id is None


def test_telemetry_false_compiles_no_stage(traces: Any) -> None:
    model = pw.ProductionModel(double, name="m", telemetry=False, tracer_provider=traces.provider)
    model(1)
    assert traces.spans() == [] and model._engine.watch is None


def test_bad_telemetry_options_are_configuration_errors() -> None:
    with pytest.raises(pw.ConfigurationError, match="tracer_provider"):
        pw.ProductionModel(double, tracer_provider=object())
    with pytest.raises(pw.ConfigurationError, match="remote"):
        pw.ProductionModel(double, remote="yes")  # type: ignore[arg-type]


class _Raising:
    def on_start(self, span: Any, parent_context: Any = None) -> None:
        raise RuntimeError("processor down")

    def on_end(self, span: Any) -> None:
        raise RuntimeError("processor down")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_a_raising_span_processor_never_breaks_a_prediction(caplog: pytest.LogCaptureFixture) -> None:
    provider = TracerProvider()
    provider.add_span_processor(_Raising())  # type: ignore[arg-type]
    model = pw.ProductionModel(double, name="m", retry=2, tracer_provider=provider)
    assert [model(i) for i in range(2000)] == [2 * i for i in range(2000)]
    stats = model.stats()
    assert stats.calls == 2000 and stats.outcomes == {"ok": 2000}
    assert stats.telemetry_errors >= 2000  # every call's span failed, and each failure is counted
    assert "telemetry errors" in model.report()
    model.stage(double, version="2", mode="shadow")  # a new pipeline: the count goes on
    assert model.stats().telemetry_errors >= stats.telemetry_errors
    plain = pw.ProductionModel(double, name="n")
    plain(1)
    assert plain.stats().telemetry_errors == 0


class _Hanging(SpanExporter):
    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def export(self, spans: Any) -> SpanExportResult:
        self.entered.set()
        self.release.wait()
        return SpanExportResult.SUCCESS


def test_a_hanging_exporter_behind_a_batch_processor_never_blocks_predictions() -> None:
    exporter = _Hanging()
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=64, max_export_batch_size=8, schedule_delay_millis=1)
    )
    model = pw.ProductionModel(double, name="m", tracer_provider=provider)
    model(0)
    assert exporter.entered.wait(10)  # the exporter is stuck from here on
    results = [model(i) for i in range(5000)]  # a full queue drops spans; calls never wait on it
    assert results == [2 * i for i in range(5000)]
    exporter.release.set()
    provider.shutdown()


def test_a_provider_that_raises_costs_the_call_its_telemetry_only() -> None:
    class Broken(TracerProvider):
        def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("broken provider")

    model = pw.ProductionModel(double, name="m", tracer_provider=Broken())
    assert model(3) == 6
    stage = next(s for s in model._engine.stages if s.name == "telemetry")
    assert stage.faults == 1  # type: ignore[attr-defined]


def test_traced_decorator_names_the_span_and_stacks(traces: Any) -> None:
    @pw.traced(name="llm", remote=True, tracer_provider=traces.provider)
    def call(x: int) -> int:
        return x

    @pw.retry(3)
    @pw.traced(tracer_provider=traces.provider)
    def score(x: int) -> int:
        return x

    @pw.traced
    def bare(x: int) -> int:
        return x

    assert isinstance(call, pw.ProductionModel) and call(1) == 1 and score(2) == 2 and bare(3) == 3
    assert traces.one("predict llm").kind is SpanKind.CLIENT
    assert [s.name for s in traces.children(traces.one("predict score"))] == ["attempt score"]


def test_a_stacked_traced_keeps_the_options_another_decorator_set(traces: Any) -> None:
    @pw.traced(name="llm")  # outermost: only renames the model
    @pw.production(remote=True, capture_content=True, tracer_provider=traces.provider)
    def renamed(prompt: str) -> str:
        return prompt.upper()

    @pw.production(name="inner")  # innermost traced, another decorator over it
    @pw.traced(remote=True, capture_content=True, tracer_provider=traces.provider)
    def wrapped(prompt: str) -> str:
        return prompt

    @pw.traced
    @pw.traced(remote=True, tracer_provider=traces.provider)
    def bare(x: int) -> int:
        return x

    assert renamed("hi") == "HI" and wrapped("hi") == "hi" and bare(1) == 1
    for name in ("predict llm", "predict inner"):
        span = traces.one(name)
        assert span.kind is SpanKind.CLIENT and "prodwrap.input" in span.attributes
    assert traces.one("predict bare").kind is SpanKind.CLIENT
    assert "prodwrap.input" not in traces.one("predict bare").attributes
    traces.exporter.clear()

    @pw.traced(remote=False, capture_content=False)  # given: they win, whichever order
    @pw.production(remote=True, capture_content=True, tracer_provider=traces.provider)
    def reset(x: int) -> int:
        return x

    reset(1)
    assert traces.one("predict reset").kind is SpanKind.INTERNAL
    assert "prodwrap.input" not in traces.one("predict reset").attributes
