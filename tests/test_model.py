"""ProductionModel's surface: calling styles, records, batches, deriving, describing."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

import prodwrap as pw


class In(BaseModel):
    a: int
    b: float


def double(x: In) -> float:
    """Twice a times b."""
    return 2 * x.a * x.b


def test_call_predict_and_detailed_agree() -> None:
    model = pw.ProductionModel(double, input=In, version="1.0")
    assert model({"a": 1, "b": 2}) == model.predict({"a": 1, "b": 2}) == 4.0
    p = model.predict_detailed({"a": 1, "b": 2})
    assert isinstance(p, pw.Prediction)
    assert (p.value, p.outcome, p.served_by, p.model, p.version, p.attempts) == (
        4.0,
        "ok",
        "primary",
        "double",
        "1.0",
        1,
    )
    assert p.cost == Decimal(0) and p.errors == () and p.trace_id is None and p.drift == () and not p.escalated
    assert p.latency > 0
    with pytest.raises(AttributeError):
        p.value = 3  # type: ignore[misc]


def test_prediction_ids_are_unique_and_cheap() -> None:
    model = pw.ProductionModel(lambda x: x)
    ids = [model.predict_detailed(i).id for i in range(1000)]
    assert len(set(ids)) == 1000
    prefix = ids[0].split("-")[0]
    assert all(i.startswith(prefix + "-") for i in ids)


def test_name_defaults_and_metadata_preserved() -> None:
    model = pw.ProductionModel(double)
    assert model.name == "double" and model.__name__ == "double"
    assert model.__doc__ == "Twice a times b." and model.__wrapped__ is double
    assert repr(pw.ProductionModel(double, name="m", version="2")) == "<ProductionModel 'm' version='2'>"


def test_extra_arguments_pass_through() -> None:
    def predict(x: int, scale: int = 1, *, offset: int = 0) -> int:
        return x * scale + offset

    model = pw.ProductionModel(predict, fallback=lambda x, scale=1, offset=0: -1)
    assert model(2, 3, offset=1) == 7


def test_context_tags_on_predictions_and_in_worker_threads() -> None:
    seen = []

    def predict(x: int) -> int:
        seen.append(dict(pw._context.current_tags()))
        return x

    model = pw.ProductionModel(predict, timeout=1.0)
    with pw.context(customer="acme", request_id="r-1"), pw.context(request_id="r-2"):
        p = model.predict_detailed(1)
    assert p.tags == {"customer": "acme", "request_id": "r-2"}
    assert seen == [{"customer": "acme", "request_id": "r-2"}]  # ran on a worker thread
    assert model.predict_detailed(1).tags == {}


async def test_context_tags_cross_tasks() -> None:
    async def predict(x: int) -> dict[str, object]:
        return dict(pw._context.current_tags())

    model = pw.ProductionModel(predict)
    with pw.context(customer="acme"):
        task = asyncio.create_task(model.apredict_detailed(1))
    p = await task
    assert p.tags == {"customer": "acme"} and p.value == {"customer": "acme"}


async def test_async_model_surface() -> None:
    async def predict(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    model = pw.ProductionModel(predict)
    assert model.is_async
    assert inspect.isawaitable(pending := model(1))
    assert await pending == 2
    assert await model.predict(2) == 3
    p = await model.predict_detailed(3)
    assert p.value == 4
    assert await model.apredict(4) == 5
    assert (await model.apredict_detailed(5)).value == 6
    assert await model.predict_batch([1, 2, 3]) == [2, 3, 4]


def test_async_fallback_on_a_sync_model_is_refused() -> None:
    async def fb(x: int) -> int:
        return 0

    with pytest.raises(pw.ConfigurationError, match="async"):
        pw.ProductionModel(lambda x: x, fallback=fb)
    with pytest.raises(pw.ConfigurationError, match="async"):
        pw.ProductionModel(lambda x: x, fallback=pw.ProductionModel(fb))


async def _agen(x: int) -> AsyncIterator[int]:
    yield x


def _gen(x: int) -> Iterator[int]:
    yield x


class _Yields:
    def __call__(self, x: int) -> Iterator[int]:
        yield x


@pytest.mark.parametrize(
    ("fn", "kind"),
    [
        (_agen, "an async generator function"),
        (_gen, "a generator function"),
        (_Yields(), "a generator function"),
        (functools.partial(_agen), "an async generator function"),
    ],
)
def test_a_generator_function_is_refused_as_a_predict_or_a_fallback(fn: Any, kind: str) -> None:
    with pytest.raises(pw.ConfigurationError, match=rf": the predict is {kind} \(it yields\): calling it returns"):
        pw.ProductionModel(fn)
    with pytest.raises(pw.ConfigurationError, match=rf"^m: fallback '\w+' is {kind}"):
        pw.ProductionModel(lambda x: x, name="m", fallback=fn)
    with pytest.raises(pw.ConfigurationError, match=kind):
        pw.cache(fn)


async def test_async_model_with_sync_and_model_fallbacks() -> None:
    async def broken(x: int) -> int:
        raise ConnectionError

    def sync_fb(x: int) -> tuple[int, int]:
        return (x, threading.get_ident())

    model = pw.ProductionModel(broken, fallback=[pw.ProductionModel(broken, name="also-broken"), sync_fb])
    p = await model.apredict_detailed(3)
    assert p.served_by == "sync_fb" and p.value[0] == 3
    assert p.value[1] != threading.get_ident()  # sync fallbacks don't block the event loop


def test_predict_batch_per_item_and_every_error_listed() -> None:
    model = pw.ProductionModel(double, input=In)
    assert model.predict_batch([{"a": 1, "b": 1}, {"a": 2, "b": 1}]) == [2.0, 4.0]
    with pytest.raises(pw.InputValidationError) as info:
        model.predict_batch([{"a": 1, "b": 1}, {"a": "x", "b": 1}, {"b": "y"}])
    assert [e["loc"] for e in info.value.errors] == [(1, "a"), (2, "a"), (2, "b")]
    assert model.stats().calls == 2  # the invalid batch was refused before any call


def test_predict_batch_one_call_when_batch_true() -> None:
    calls = []

    def predict(xs: list[In]) -> list[float]:
        calls.append(len(xs))
        return [x.a * x.b for x in xs]

    model = pw.ProductionModel(predict, input=In, output=float, batch=True)
    assert model.predict_batch([{"a": 1, "b": 2}, {"a": 3, "b": 4}]) == [2.0, 12.0]
    assert calls == [2]
    with pytest.raises(pw.InputValidationError) as info:
        model.predict_batch([{"a": 1, "b": 2}, {"a": "x", "b": 2}])
    assert info.value.errors[0]["loc"] == (1, "a")
    assert model.predict_batch(({"a": 1, "b": 2},)) == [2.0]  # any sequence: a tuple too
    for bad in ("ab", b"ab", {"a": 1, "b": 2}, 5):  # never taken apart into a batch
        with pytest.raises(pw.InputValidationError, match="a batch must be a sequence"):
            model.predict_batch(bad)  # type: ignore[arg-type]
    assert calls == [2, 1]
    assert model.stats().outcomes == {"ok": 2, "error": 5}


def test_with_options_derives_a_new_model() -> None:
    base = pw.ProductionModel(double, input=In, name="m")
    derived = base.with_options(retry=2, fallback=pw.Constant(0.0), version="2")
    assert derived is not base and derived.version == "2" and base.version is None
    assert derived.describe()["retry"]["attempts"] == 2 and base.describe()["retry"] is None
    with pytest.raises(pw.ConfigurationError, match="unknown"):
        base.with_options(retries=2)


def test_describe_is_json_able_and_lists_stages_in_order() -> None:
    model = pw.ProductionModel(
        double,
        input=In,
        output=float,
        check=lambda y: y >= 0,
        timeout=pw.Timeout(attempt=0.5, total=2.0),
        retry=3,
        fallback=[pw.Constant(0.0)],
    )
    info = model.describe()
    json.dumps(info)
    assert info["stages"] == [
        "input validation",
        "fallback chain",
        "total deadline",
        "retry",
        "attempt timeout",
        "predict",
        "output validation",
    ]
    assert info["timeout"] == {"attempt": 0.5, "total": 2.0}
    assert info["fallback"] == ["constant"]
    assert info["input"] == {"kind": "pydantic", "model": "In", "fields": ["a", "b"]}
    assert pw.ProductionModel(double).describe()["stages"] == ["predict"]


def test_report_text_and_html() -> None:
    model = pw.ProductionModel(double, input=In, fallback=pw.Constant(0.0))
    model({"a": 1, "b": 1})
    with pytest.raises(pw.InputValidationError):
        model({"a": "x"})
    text = model.report()
    assert "calls" in text and "invalid_input" in text and "p50" in text
    page = model.report(html=True)
    assert page.startswith("<!DOCTYPE html>") and "double" in page
    assert model._repr_html_().startswith("<table")


def test_report_has_a_line_per_resilience_policy_the_model_has() -> None:
    model = pw.ProductionModel(
        lambda x: x,
        circuit=pw.CircuitBreaker(),
        bulkhead=pw.Bulkhead(4),
        cache=pw.Cache(maxsize=8),
        rate_limit=pw.RateLimit(calls=100),
        retry=pw.Retry(attempts=2, budget=pw.RetryBudget()),
        hedge=pw.Hedge(after=1.0),
    )
    model(1)
    model(1)
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in model.report().splitlines() if "  " in line)
    assert rows["circuit"] == "closed: 0 trips, 0 s open, 0 refused, failure rate - of 1 in the window"
    assert rows["bulkhead"] == "0 of 4 in use (peak 1), 0 waited, 0 refused"
    assert rows["cache"] == "1 hits, 1 misses (hit rate 50.0%), 1 of 8 held, 0 evicted"
    assert rows["rate limit"] == "1 permits, 0 waited (0 s), 0 refused"
    assert rows["retry budget"] == "0 retries of 1 calls, 0 denied"
    assert rows["hedge"] == "0 calls hedged, 0 extra attempts, 0 won by an extra"
    plain = pw.ProductionModel(lambda x: x).report()
    assert not any(w in plain for w in ("circuit", "bulkhead", "cache", "rate limit", "retry budget", "hedge"))


def test_stats_snapshot() -> None:
    model = pw.ProductionModel(lambda x: x)
    empty = model.stats()
    assert (empty.calls, empty.outcomes, empty.latency_p50) == (0, {}, None)
    for i in range(10):
        model(i)
    stats = model.stats()
    assert stats.calls == 10 and stats.outcomes == {"ok": 10} and stats.served_by == {"primary": 10}
    assert stats.latency_p50 is not None and stats.latency_p50 <= stats.latency_p95 <= stats.latency_p99
    assert model.stats().calls == 10  # reading stats is not a call
    assert stats.circuit is None and stats.budget is None and stats.drift is None


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": -1},
        {"timeout": 0},
        {"timeout": float("nan")},
        {"retry": 0},
        {"retry": "3"},
        {"on_invalid": "ignore"},
        {"fallback": [42]},
        {"name": ""},
    ],
)
def test_nonsense_options_are_configuration_errors(options: dict[str, object]) -> None:
    with pytest.raises(pw.ConfigurationError):
        pw.ProductionModel(lambda x: x, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", [1.4, 3, True, "", "  ", ["a"], object(), "v" * 257])
def test_a_version_is_a_non_empty_string_of_sane_length(version: object) -> None:
    with pytest.raises(pw.ConfigurationError, match=r"^version must be a non-empty string of at most 256 characters"):
        pw.ProductionModel(lambda x: x, version=version, cache=pw.Cache())  # type: ignore[arg-type]
    with pytest.raises(pw.ConfigurationError, match=r"^version must be"):
        pw.ProductionModel(lambda x: x).with_options(version=version)  # type: ignore[arg-type]
    assert pw.ProductionModel(lambda x: x, version="v" * 256).version == "v" * 256


def test_a_numeric_version_is_refused_with_its_text_suggested() -> None:
    with pytest.raises(pw.ConfigurationError, match=r'got 1.4 \(give the text: version="1.4"\)$'):
        pw.ProductionModel(lambda x: x, version=1.4)  # type: ignore[arg-type]


def test_wrapping_a_model_or_a_non_callable_is_refused() -> None:
    with pytest.raises(pw.ConfigurationError):
        pw.ProductionModel(pw.ProductionModel(double))
    with pytest.raises(pw.ConfigurationError):
        pw.ProductionModel(42)  # type: ignore[arg-type]


def test_stats_reads_leave_no_stale_latency_samples() -> None:
    import time

    from prodwrap._stats import RING

    model = pw.ProductionModel(lambda x: time.sleep(x) if x else None)
    model(0.05)
    for _ in range(3):
        for _ in range(RING - 1):
            model(0)
        model.stats()
    assert model.stats().latency_p99 < 0.01  # the slow call is long out of the window
