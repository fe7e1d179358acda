"""Type-checked by mypy --strict (tests/test_quality.py), never run: the public API's types."""

from __future__ import annotations

from typing import assert_type

import prodwrap as pw


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
