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


def test_the_same_option_stacked_twice_is_refused() -> None:
    with pytest.raises(pw.ConfigurationError, match=r"^dup: cache= given twice by stacked decorators"):

        @pw.cache
        @pw.cache(5)
        def dup(v: int) -> int:
            return v

    with pytest.raises(pw.ConfigurationError, match=r"retry= given twice"):
        pw.production(retry=3)(pw.retry(2)(lambda v: v))

    # options that extend add up; a name, and options another decorator left unset, are fine
    @pw.production(name="named", observers=[print])
    @pw.validate(output=int)
    @pw.production(observers=[print])
    def fine(v: int) -> int:
        return v

    assert fine.name == "named" and fine(1) == 1 and len(fine.describe()["observers"]) == 2
    replaced = fine.with_options(output=str)  # replacing an option is with_options' job
    assert replaced.describe()["output"] != fine.describe()["output"]


def test_a_decorator_on_a_method_is_refused_pointing_to_the_workaround() -> None:
    with pytest.raises(pw.ConfigurationError, match=r"Scorer.score: a prodwrap decorator is on a method") as e:

        class Scorer:
            @pw.cache
            def score(self, x: int) -> int:
                return x

    assert "self.predict = pw.ProductionModel(self._predict" in str(e.value) and "docs/index.md" in str(e.value)

    class Fine:  # the documented way: the bound method, once per instance
        def __init__(self) -> None:
            self.score = pw.ProductionModel(self._score, cache=pw.Cache())

        def _score(self, x: int) -> int:
            return 2 * x

    assert Fine().score(3) == 6
