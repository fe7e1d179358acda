"""Decorators build one ProductionModel; stacked, they merge into one pipeline."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

import prodwrap as pw
from prodwrap.testing import FakeClock


class In(BaseModel):
    x: int


def test_bare_and_configured_production() -> None:
    @pw.production
    def plain(v: int) -> int:
        return v

    @pw.production(name="scorer", input=In, retry=2)
    def scored(v: In) -> int:
        return v.x

    assert isinstance(plain, pw.ProductionModel) and plain.name == "plain" and plain(3) == 3
    assert scored.name == "scorer" and scored({"x": 4}) == 4
    assert scored.describe()["retry"]["attempts"] == 2


def test_stacked_decorators_are_one_model_with_one_pipeline(clock: FakeClock) -> None:
    calls = []

    @pw.fallback(lambda v: 0)
    @pw.retry(attempts=2, on=(ConnectionError,))
    @pw.timeout(0.5)
    @pw.validate(input=In, check=lambda y: y >= 0)
    def model(v: In) -> int:
        calls.append(v.x)
        if len(calls) == 1:
            raise ConnectionError
        return v.x

    assert isinstance(model, pw.ProductionModel)
    assert model.__wrapped__.__name__ == "model"  # the function, not another wrapper
    info = model.describe()
    assert info["stages"] == [
        "input validation",
        "fallback chain",
        "retry",
        "attempt timeout",
        "predict",
        "output validation",
    ]
    p = model.predict_detailed({"x": 5})
    assert (p.value, p.attempts) == (5, 2)
    assert model({"x": -3}) == 0  # the check failed: fallback


def test_retry_decorator_forms() -> None:
    assert pw.retry(3)(lambda v: v).describe()["retry"]["attempts"] == 3
    policy = pw.Retry(attempts=4)
    assert pw.retry(policy)(lambda v: v).describe()["retry"]["attempts"] == 4
    import tenacity

    unbounded = pw.retry(stop=tenacity.stop_after_attempt(9))(lambda v: v)
    assert unbounded.describe()["retry"]["attempts"] is None


def test_timeout_decorator_forms() -> None:
    assert pw.timeout(0.5)(lambda v: v).describe()["timeout"] == {"attempt": 0.5, "total": None}
    assert pw.timeout(attempt=0.1, total=1)(lambda v: v).describe()["timeout"] == {"attempt": 0.1, "total": 1.0}
    with pytest.raises(pw.ConfigurationError):
        pw.timeout(0.5, total=1)


def test_stacked_fallbacks_extend_the_chain() -> None:
    @pw.fallback(pw.Constant(2, name="second"))
    @pw.fallback(pw.Constant(1, name="first"))
    def model(v: int) -> int:
        raise RuntimeError

    assert model.describe()["fallback"] == ["first", "second"]
    assert model.predict_detailed(0).served_by == "first"


def test_decorators_need_something() -> None:
    with pytest.raises(pw.ConfigurationError):
        pw.validate()
    with pytest.raises(pw.ConfigurationError):
        pw.fallback()


def test_async_function_stays_async() -> None:
    @pw.retry(2)
    @pw.production(name="remote")
    async def remote(v: int) -> int:
        return v * 2

    assert remote.is_async and remote.name == "remote"
    assert asyncio.run(remote(4)) == 8
