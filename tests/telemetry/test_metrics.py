"""Metrics: counters by outcome, durations in seconds with the documented buckets."""

from __future__ import annotations

from typing import Any

import pytest

import prodwrap as pw
from prodwrap.telemetry import DURATION, GENAI_DURATION, GENAI_TOKENS


def flaky_every_third(x: int) -> int:
    if x % 3 == 0:
        raise ConnectionError("down")
    return x


def test_counters_equal_the_calls_made_by_outcome(metrics: Any, clock: Any) -> None:
    model = pw.ProductionModel(
        flaky_every_third, name="m", version="2", fallback=pw.Constant(-1), meter_provider=metrics.provider
    )
    for i in range(30):
        model(i)
    counts = {
        (p.attributes["prodwrap.outcome"], p.attributes["prodwrap.served_by"]): p.value
        for p in metrics.points("prodwrap.predictions")
    }
    assert counts == {("ok", "primary"): 20, ("fallback", "constant"): 10}
    point = metrics.points("prodwrap.predictions")[0]
    assert point.attributes["prodwrap.model.name"] == "m" and point.attributes["prodwrap.model.version"] == "2"
    failures = metrics.points("prodwrap.attempt.failures")
    assert [(p.attributes["prodwrap.failure.reason"], p.value) for p in failures] == [("exception", 10)]
    stats = model.stats()
    assert sum(counts.values()) == stats.calls == 30


def test_durations_are_seconds_with_the_documented_buckets(metrics: Any) -> None:
    model = pw.ProductionModel(lambda x: x, name="m", meter_provider=metrics.provider)
    for i in range(10):
        model(i)
    (point,) = metrics.points("prodwrap.prediction.duration")
    assert tuple(point.explicit_bounds) == DURATION  # not the SDK's millisecond defaults
    assert point.count == 10
    assert point.sum < 1.0  # seconds: ten near-free calls
    assert metrics.unit("prodwrap.prediction.duration") == "s"


def test_errors_are_counted_as_errors(metrics: Any) -> None:
    def bad(x: int) -> int:
        raise ValueError("bug")

    model = pw.ProductionModel(bad, name="m", meter_provider=metrics.provider)
    for _ in range(3):
        with pytest.raises(ValueError):
            model(1)
    assert [(p.attributes["prodwrap.outcome"], p.value) for p in metrics.points("prodwrap.predictions")] == [
        ("error", 3)
    ]


def test_cost_is_a_counter_in_usd(metrics: Any) -> None:
    model = pw.ProductionModel(lambda x: x, name="m", cost=pw.PerCall("0.25"), meter_provider=metrics.provider)
    for i in range(4):
        model(i)
    (point,) = metrics.points("prodwrap.cost")
    assert point.value == pytest.approx(1.0)
    assert metrics.unit("prodwrap.cost") == "USD"


def test_genai_metrics_for_token_priced_models(metrics: Any) -> None:
    def chat(prompt: str) -> dict[str, Any]:
        return {"model": "m-1", "usage": {"input_tokens": 300, "output_tokens": 50}}

    llm = pw.ProductionModel(chat, name="llm", cost=pw.PerToken(input="1", output="2"), meter_provider=metrics.provider)
    llm("a")
    llm("b")
    tokens = {p.attributes["gen_ai.token.type"]: p for p in metrics.points("gen_ai.client.token.usage")}
    assert set(tokens) == {"input", "output"}
    assert tokens["input"].sum == 600 and tokens["output"].sum == 100 and tokens["input"].count == 2
    assert tuple(tokens["input"].explicit_bounds) == GENAI_TOKENS
    assert metrics.unit("gen_ai.client.token.usage") == "{token}"
    (duration,) = metrics.points("gen_ai.client.operation.duration")
    assert tuple(duration.explicit_bounds) == GENAI_DURATION and duration.count == 2
    assert duration.attributes["gen_ai.operation.name"] == "chat"
    assert duration.attributes["gen_ai.response.model"] == "m-1"


def test_a_model_without_tokens_records_no_genai_metrics(metrics: Any) -> None:
    model = pw.ProductionModel(lambda x: x, name="m", cost=pw.PerCall("1"), meter_provider=metrics.provider)
    model(1)
    assert metrics.points("gen_ai.client.token.usage") == []


def test_the_circuit_state_gauge(metrics: Any, clock: Any) -> None:
    def down(x: int) -> int:
        raise ConnectionError("down")

    model = pw.ProductionModel(
        down,
        name="c",
        circuit=pw.CircuitBreaker(failure_rate=0.5, window=2, min_calls=2),
        fallback=pw.Constant(0),
        meter_provider=metrics.provider,
    )
    model(1)
    model(1)
    (point,) = metrics.points("prodwrap.circuit.state")
    assert point.value == 2  # open (closed 0, half_open 1, open 2)


def test_metrics_only_keeps_the_success_path(metrics: Any) -> None:
    calls = 0

    def counted(x: int) -> int:
        nonlocal calls
        calls += 1
        return x

    model = pw.ProductionModel(counted, name="m", meter_provider=metrics.provider)
    assert model._engine.fast is not None
    model(1)
    assert calls == 1 and metrics.points("prodwrap.predictions")[0].value == 1
