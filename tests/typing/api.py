"""Type-checked by mypy --strict (tests/test_quality.py), never run: the public API's types."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, assert_type

from pydantic import BaseModel

import prodwrap as pw
from prodwrap import testing


def score(x: int, scale: float = 1.0) -> float:
    return x * scale


async def remote(x: str) -> str:
    return x


model = pw.ProductionModel(score, timeout=0.5, retry=3, fallback=pw.Constant(0.0))
assert_type(model(1), float)
assert_type(model.predict(1, 2.0), float)
assert_type(model.predict_detailed(1), pw.Prediction)
assert_type(model.stats(), pw.Stats)


@pw.production(name="scorer")
def decorated(x: int) -> float:
    return float(x)


assert_type(decorated(3), float)


@pw.retry(attempts=2)
@pw.timeout(0.1)
def stacked(x: int) -> int:
    return x


assert_type(stacked(1), int)


async def use_async() -> None:
    amodel = pw.ProductionModel(remote)
    assert_type(await amodel("a"), str)
    p = await amodel.apredict_detailed("a")
    assert_type(p, pw.Prediction)


# -- with input=, every input form the validator takes type-checks (issue: model({"age": 40})) --


class Applicant(BaseModel):
    age: int


def risk(a: Applicant) -> float:
    return a.age / 100


validated = pw.ProductionModel(risk, input=Applicant, fallback=pw.Constant(0.5))
assert_type(validated({"age": 40}), float)
assert_type(validated('{"age": 40}'), float)
assert_type(validated(Applicant(age=40)), float)
assert_type(validated.predict_detailed({"age": 40}), pw.Prediction)
unvalidated = pw.ProductionModel(risk)
assert_type(unvalidated(Applicant(age=1)), float)
unvalidated({"age": 40})  # type: ignore[arg-type]  # without input= the predict's own type


@pw.validate(input=Applicant)
def checked(a: Applicant) -> float:
    return a.age / 100


assert_type(checked({"age": 3}), float)


@pw.retry
def bare_retry(x: int) -> int:
    return x


assert_type(bare_retry(1), int)


async def use_async_surface() -> None:
    amodel = pw.ProductionModel(remote)
    assert_type(await amodel.apredict("a"), str)  # the awaited result, not a coroutine
    assert_type(await amodel.predict_detailed("a"), pw.Prediction)  # awaitable for an async model
    sync_model = pw.ProductionModel(score)
    assert_type(await sync_model.apredict(1), float)  # a sync predict awaited on a worker thread
    with pw.ProductionModel(score) as closing:
        assert_type(closing(2), float)


@pw.rate_limit(calls=500, per=60.0, max_wait=1.0)
@pw.retry(attempts=3, budget=pw.RetryBudget(ratio=0.1))
def limited(x: int) -> int:
    return x


assert_type(limited(1), int)
throttled = pw.ProductionModel(score, rate_limit=pw.RateLimit(calls=10, tokens=10_000, by="customer"))
assert_type(throttled(1), float)


@pw.cache
def cached(x: int) -> int:
    return x


@pw.cache(maxsize=10, ttl=5.0)
def cached_for_a_while(x: str, scale: float = 1.0) -> float:
    return len(x) * scale


assert_type(cached(1), int)
assert_type(cached_for_a_while("a", 2.0), float)
assert_type(pw.ProductionModel(score, cache=pw.Cache(maxsize=10)).stats().cache, Any)


@pw.circuit
def guarded(x: int) -> float:
    return float(x)


@pw.circuit(failure_rate=0.5, window=20, slow_call=0.2)
def guarded_keyed(x: int) -> float:
    return float(x)


assert_type(guarded(1), float)
assert_type(guarded_keyed(1), float)
circuit = guarded_keyed.circuit
if circuit is not None:
    assert_type(circuit.state, str)


def telemetry_setup() -> None:  # a function: module level would install providers when mypy's file were run
    telemetry = pw.telemetry.configure(console=True, prometheus_port=0)
    assert_type(telemetry, pw.telemetry.Telemetry)
    assert_type(telemetry.prometheus_port, int | None)
    assert_type(telemetry.force_flush(), bool)
    with pw.telemetry.configure(otlp_endpoint="http://localhost:4318", tracing=False) as same:
        assert_type(same, pw.telemetry.Telemetry)
    pw.telemetry.configure(console="raw", export_interval=5.0, service_name="svc").shutdown()


# prodwrap.testing: chaos keeps the wrapped function's parameters and sync/async nature.


def _plain(x: int, scale: float = 1.0) -> float:
    return x * scale


async def _coro(x: int) -> str:
    return str(x)


_chaotic = testing.chaos(_plain, error_rate=0.1, seed=1)
assert_type(_chaotic(1, 2.0), float)
assert_type(_chaotic(1, scale=2.0), float)
_achaotic: testing.AsyncChaos[[int], str] = testing.chaos(_coro)
_pending = assert_type(_achaotic(1), Coroutine[Any, Any, str])
assert_type(testing.expect_cases(_plain, [(1, 1.0)]), testing.Expectation)
with testing.capture() as _cap:
    assert_type(_cap, testing.Captured)
