"""Telemetry's faults and edges: raising processors, scopes, secrets, strict shadows, canaries."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import pydantic
import pytest
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

import prodwrap as pw
from prodwrap import _scope
from prodwrap.testing import strict_shadows


class _Raises:
    def __init__(self, on_start: bool, on_end: bool) -> None:
        self.on_start_raises, self.on_end_raises = on_start, on_end

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.on_start_raises:
            raise RuntimeError("processor down")

    def on_end(self, span: Any) -> None:
        if self.on_end_raises:
            raise RuntimeError("processor down")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _raising_provider(on_start: bool, on_end: bool) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(_Raises(on_start, on_end))  # type: ignore[arg-type]
    return provider


@pytest.mark.parametrize(("on_start", "on_end"), [(True, False), (False, True)])
def test_strict_shadows_raise_the_mismatch_under_a_raising_processor(on_start: bool, on_end: bool) -> None:
    model = pw.ProductionModel(
        lambda x: x,
        name="m",
        shadow=pw.Shadow(lambda x: -x, name="next"),
        tracer_provider=_raising_provider(on_start, on_end),
    )
    with strict_shadows(), pytest.raises(pw.ShadowMismatchError):
        model(3)


def test_a_processor_raising_on_start_loses_no_shadow_comparison() -> None:
    done = threading.Semaphore(0)

    def candidate(x: int) -> int:
        done.release()
        return x

    model = pw.ProductionModel(
        lambda x: x, name="m", shadow=pw.Shadow(candidate), tracer_provider=_raising_provider(True, False)
    )
    for i in range(5):
        model(i)
    for _ in range(5):
        assert done.acquire(timeout=10)
    assert model.shadow_report(wait=None).n == 5
    model.close()


def test_a_processor_raising_on_end_costs_the_call_its_span_only(metrics: Any) -> None:
    model = pw.ProductionModel(
        lambda x: x, name="m", tracer_provider=_raising_provider(False, True), meter_provider=metrics.provider
    )
    for i in range(3):
        model(i)
    assert metrics.points("prodwrap.predictions")[0].value == 3


def test_each_scope_gets_its_own_rollout_counts(metrics: Any) -> None:
    model = pw.ProductionModel(lambda x: x, name="m", escalate=pw.Escalate(when=lambda out: True, to=lambda p: None))
    for _ in range(40):  # more scopes than the stage keeps instruments for
        scope = type(metrics)()
        with _scope.scoped(meter_provider=scope.provider):
            model(1)
        assert [p.value for p in scope.points("prodwrap.escalations")] == [1]
        scope.provider.shutdown()
    model.close()


def test_attempt_spans_go_to_the_provider_of_their_call(traces: Any) -> None:
    other = type(traces)()
    gate, resumed = threading.Event(), threading.Event()
    calls = 0

    def flaky(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            gate.set()
            assert resumed.wait(10)  # another scope's call runs meanwhile
            raise ConnectionError("once")
        return x

    model = pw.ProductionModel(flaky, name="m", retry=2)

    def first() -> None:
        with _scope.scoped(tracer_provider=traces.provider):
            model(1)

    thread = threading.Thread(target=first)
    thread.start()
    assert gate.wait(10)
    with _scope.scoped(tracer_provider=other.provider):
        pw.ProductionModel(lambda x: x, name="m", retry=2)(2)
    resumed.set()
    thread.join(10)
    assert sorted(s.name for s in traces.spans()) == ["attempt m", "attempt m", "predict m"]


def test_an_escalated_traced_call_keeps_its_trace_id(traces: Any) -> None:
    seen: list[pw.Prediction] = []
    arrived = threading.Event()

    def review(p: pw.Prediction) -> None:
        seen.append(p)
        arrived.set()

    model = pw.ProductionModel(
        lambda x: x, name="m", escalate=pw.Escalate(when=lambda out: True, to=review), tracer_provider=traces.provider
    )
    model(1)
    assert arrived.wait(10)
    assert seen[0].trace_id == f"{traces.one('predict m').context.trace_id:032x}"
    model.close()


@pytest.mark.parametrize("options", [{}, {"retry": 2}, {"cost": pw.PerCall("0.01")}])
def test_a_strict_mismatch_is_told_the_same_on_every_path(traces: Any, options: dict[str, Any]) -> None:
    model = pw.ProductionModel(
        lambda x: x, name="m", shadow=pw.Shadow(lambda x: -x), tracer_provider=traces.provider, **options
    )
    with strict_shadows(), pytest.raises(pw.ShadowMismatchError):
        model(3)
    span = traces.one("predict m")
    assert span.attributes["prodwrap.outcome"] == "ok"
    assert "prodwrap.errors.ShadowMismatchError" in [e.attributes["exception.type"] for e in span.events]


def test_a_failed_call_routed_to_the_candidate_is_served_by_the_candidate(traces: Any) -> None:
    def candidate(x: int) -> int:
        raise ValueError("broken candidate")

    model = pw.ProductionModel(lambda x: x, name="m", canary=pw.Canary(candidate, 1.0), tracer_provider=traces.provider)
    with pytest.raises(ValueError):
        model(1)
    assert traces.one("predict m").attributes["prodwrap.served_by"] == "candidate"


class _Person(pydantic.BaseModel):
    name: str
    ssn: pydantic.SecretStr


def test_sensitive_values_are_masked_in_recorded_exceptions(traces: Any) -> None:
    def lookup(a: _Person) -> float:
        raise ValueError(f"lookup failed for ssn={a.ssn.get_secret_value()}")

    model = pw.ProductionModel(
        lookup, name="m", input=_Person, fallback=pw.Constant(0.0), tracer_provider=traces.provider
    )
    model({"name": "Ada", "ssn": "123-45-6789"})
    (event,) = [e for e in traces.one("predict m").events if e.name == "exception"]
    assert "123-45-6789" not in event.attributes["exception.message"]
    assert "123-45-6789" not in event.attributes["exception.stacktrace"]
    assert "lookup failed for ssn=" in event.attributes["exception.message"]


def test_a_shadow_candidates_span_masks_the_inputs_sensitive_values(traces: Any) -> None:
    def candidate(a: _Person) -> float:
        raise ValueError(f"candidate failed for ssn={a.ssn.get_secret_value()}")

    model = pw.ProductionModel(
        lambda a: 1.0,
        name="m",
        input=_Person,
        shadow=pw.Shadow(candidate, name="next"),
        tracer_provider=traces.provider,
    )
    model({"name": "Ada", "ssn": "123-45-6789"})
    model.shadow_report(wait=5.0)
    (event,) = [e for e in traces.one("shadow next").events if e.name == "exception"]
    assert "candidate failed for ssn=" in event.attributes["exception.message"]
    assert "123-45-6789" not in event.attributes["exception.message"] + event.attributes["exception.stacktrace"]
    model.close()


def test_an_exception_whose_inputs_sensitive_values_cannot_be_read_is_withheld_from_the_span(traces: Any) -> None:
    class Keyed(pydantic.BaseModel):
        key: Annotated[int, pw.Sensitive]

    def lookup(k: Keyed) -> float:
        raise ValueError("lookup failed")

    model = pw.ProductionModel(
        lookup, name="m", input=Keyed, fallback=pw.Constant(0.0), tracer_provider=traces.provider
    )
    assert model({"key": 10**5000}) == 0.0  # (str() of it raises: over 4300 digits)
    (event,) = [e for e in traces.one("predict m").events if e.name == "exception"]
    assert (
        "withheld" in event.attributes["exception.message"]
        and "lookup failed" not in event.attributes["exception.stacktrace"]
    )
    assert model.stats().telemetry_errors == 0


class _Applicant(pydantic.BaseModel):
    email: str
    age: int
    ssn: pydantic.SecretStr


class _Score(pydantic.BaseModel):
    score: float


def _exception_texts(traces: Any) -> dict[str, str]:
    """Span name -> every exception.message and exception.stacktrace recorded on it."""
    texts: dict[str, str] = {}
    for span in traces.spans():
        for event in span.events:
            if event.name == "exception":
                attrs = event.attributes
                texts[span.name] = texts.get(span.name, "") + attrs["exception.message"] + attrs["exception.stacktrace"]
    return texts


@pytest.mark.parametrize("content", [False, True])
def test_validation_errors_on_spans_quote_values_only_with_capture_content(traces: Any, content: bool) -> None:
    taken = pw.ProductionModel(
        lambda a: 0.5, name="in", input=_Applicant, capture_content=content, tracer_provider=traces.provider
    )
    with pytest.raises(pw.InputValidationError, match="born 1815"):  # (the caller's error keeps it)
        taken({"email": "ada@example.com", "age": "born 1815 in London", "ssn": "123-45-6789"})
    given = pw.ProductionModel(
        lambda a: {"score": "patient John Doe"},
        name="out",
        output=_Score,
        retry=pw.Retry(attempts=2, on=(pw.OutputValidationError,), wait=pw.backoff(initial=0, maximum=0, jitter=False)),
        fallback=[lambda a: {"score": "fallback Jane Roe"}],
        capture_content=content,
        tracer_provider=traces.provider,
    )
    with pytest.raises(pw.FallbackExhausted):
        given(1)
    texts = _exception_texts(traces)
    assert set(texts) == {"predict in", "predict out", "attempt out", "fallback <lambda>"}
    assert "age: Input should be a valid integer" in texts["predict in"]  # where and why, always
    assert "score: Output should be a valid number" in texts["attempt out"]
    assert ("born 1815" in texts["predict in"]) is content
    assert "123-45-6789" not in texts["predict in"]
    assert ("John Doe" in texts["attempt out"]) is content
    assert ("Jane Roe" in texts["fallback <lambda>"]) is content
    assert ("John Doe" in texts["predict out"] and "Jane Roe" in texts["predict out"]) is content  # (the group's)


def test_a_shadow_candidates_validation_error_quotes_no_value_on_its_span(traces: Any) -> None:
    candidate = pw.ProductionModel(lambda a: {"score": "patient John Doe"}, name="cand", output=_Score, telemetry=False)
    model = pw.ProductionModel(
        lambda a: {"score": 1.0}, name="m", shadow=pw.Shadow(candidate), tracer_provider=traces.provider
    )
    model(1)
    assert model.shadow_report(wait=5.0).candidate_errors == 1
    model.close()
    (text,) = [v for k, v in _exception_texts(traces).items() if k.startswith("shadow")]
    assert "score: Output should be a valid number" in text and "John Doe" not in text


def test_content_on_spans_is_capped(traces: Any) -> None:
    model = pw.ProductionModel(len, name="m", capture_content=True, tracer_provider=traces.provider)
    model("x" * 1_000_000)
    text = traces.one("predict m").attributes["prodwrap.input"]
    assert len(text) < 5000 and text.endswith("(1000002 characters)")


def test_shadow_runs_are_never_shadowed_again() -> None:
    a = pw.ProductionModel(lambda x: x, name="a")
    b = pw.ProductionModel(lambda x: x, name="b")
    a.stage(b, mode="shadow")
    b.stage(a, mode="shadow")
    a(1)
    report = a.shadow_report(wait=None)
    assert report.n == 1
    assert b.shadow_report(wait=None).n == 0  # the candidate's own shadow skipped the nested call
    a.close()
    b.close()
    with pytest.raises(pw.ConfigurationError, match="its own candidate"):
        a.stage(a, mode="shadow")
    with pytest.raises(pw.ConfigurationError, match="closed"):
        a.stage(lambda x: x, mode="shadow")


def test_a_failed_shadow_run_has_an_error_span(traces: Any) -> None:
    def candidate(x: int) -> int:
        raise KeyError("bad")

    model = pw.ProductionModel(
        lambda x: x, name="m", shadow=pw.Shadow(candidate, name="c"), tracer_provider=traces.provider
    )
    model(1)
    model.shadow_report(wait=None)
    model.close()
    span = traces.one("shadow c")
    assert span.attributes["error.type"] == "KeyError" and span.status.status_code.name == "ERROR"


class _RaisesOnChildEnd(SpanProcessor):
    """A processor whose ``on_end`` raises for every span but the call's own."""

    def on_end(self, span: Any) -> None:
        if not span.name.startswith("predict"):
            raise RuntimeError("processor down")


def test_a_constant_fallback_span_that_raises_costs_that_span_only(traces: Any) -> None:
    traces.provider.add_span_processor(_RaisesOnChildEnd())
    model = pw.ProductionModel(lambda x: 1 / x, name="m", fallback=pw.Constant(0), tracer_provider=traces.provider)
    assert model(0) == 0
    span = traces.one("predict m")  # ended (exported), with every attribute
    assert span.attributes["prodwrap.outcome"] == "fallback"
    assert span.attributes["prodwrap.served_by"] == "constant"
    assert model.stats().telemetry_errors == 1


def test_the_call_span_is_ended_when_describing_it_raises(traces: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from prodwrap.telemetry._stage import TelemetryStage

    def broken(self: Any, rec: Any, attrs: Any) -> None:
        raise RuntimeError("describe failed")

    monkeypatch.setattr(TelemetryStage, "describe_call", broken)
    model = pw.ProductionModel(lambda x: 1 / x, name="m", fallback=pw.Constant(0), tracer_provider=traces.provider)
    assert model(0) == 0
    assert traces.one("predict m").end_time is not None
    assert model.stats().telemetry_errors == 1


def test_a_tag_whose_str_raises_costs_that_attribute_only(traces: Any) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise ValueError("no text")

    model = pw.ProductionModel(lambda x: x, name="m", tracer_provider=traces.provider)
    with pw.context(customer=Unprintable(), region="eu"):
        assert model(1) == 1
    attributes = traces.one("predict m").attributes
    assert "prodwrap.tag.customer" not in attributes
    assert attributes["prodwrap.tag.region"] == "eu" and attributes["prodwrap.outcome"] == "ok"
    assert model.stats().telemetry_errors == 1


class _Stuck:
    """An attempt span whose ``end()`` raises (a processor's fault)."""

    def set_status(self, status: Any) -> None:
        pass

    def set_attributes(self, attributes: Any) -> None:
        pass

    def end(self) -> None:
        raise RuntimeError("processor down")


def _watched(traces: Any, *tries: Any) -> tuple[Any, Any, Any]:
    """A traced model, its telemetry stage, and a call's watch with ``tries`` as its open
    attempt spans."""
    model = pw.ProductionModel(lambda x: x, name="m", tracer_provider=traces.provider)
    stage = next(s for s in model._engine.stages if s.name == "telemetry")
    watch = stage.open()  # type: ignore[attr-defined]
    watch.enter()
    watch.tries.extend([span, None, 0] for span in tries)
    return model, stage, watch


def test_an_open_attempt_span_that_raises_on_end_leaves_the_call_span_ended(traces: Any) -> None:
    model, _, watch = _watched(traces, _Stuck())  # an attempt still open when the call ended
    watch.exit(None)
    assert traces.one("predict m").end_time is not None and not watch.tries
    assert model.stats().telemetry_errors == 1


@pytest.mark.parametrize("how", ["after_attempt", "undo_attempt"])
def test_one_attempt_span_that_raises_on_end_leaves_no_other_open(traces: Any, how: str) -> None:
    from prodwrap._record import CallRecord

    other = traces.provider.get_tracer("t").start_span("attempt m")
    model, stage, watch = _watched(traces, _Stuck(), other)  # a race of two attempts
    call = CallRecord(0.0, watch)
    call.raced, call.won = 2, 1
    if how == "after_attempt":
        stage.after_attempt(call, model._engine.primary, None, 0.0)
    else:
        stage.undo_attempt(call, model._engine.primary)
    watch.exit(None)
    assert traces.one("attempt m").end_time is not None and not watch.tries
    assert model.stats().telemetry_errors == 1
