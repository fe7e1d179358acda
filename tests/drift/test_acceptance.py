"""End to end: a model with a monitor, 5k in-distribution then 5k shifted inputs."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel

import prodwrap as pw
from prodwrap.drift import DriftResult


class Applicant(BaseModel):
    age: float
    income: float
    debt: float
    region: Literal["north", "south", "east", "west"]


REGIONS = np.array(["north", "south", "east", "west"])


def _rows(rng: np.random.Generator, n: int, income_shift: float = 0.0) -> list[dict[str, object]]:
    age = rng.normal(40, 10, n)
    income = rng.lognormal(10, 0.5, n) * (1 + income_shift)
    debt = rng.gamma(2.0, 5000, n)
    region = REGIONS[rng.integers(0, 4, n)]
    columns = zip(age, income, debt, region, strict=True)
    return [{"age": a, "income": i, "debt": d, "region": r} for a, i, d, r in columns]


def test_shift_half_way_alerts_on_the_shifted_feature_only() -> None:
    rng = np.random.default_rng(20261125)
    reference = [Applicant(**row) for row in _rows(rng, 5000)]  # type: ignore[arg-type]
    alerts: list[DriftResult] = []
    monitor = pw.DriftMonitor(reference, window=1000, on_drift=alerts.append, background=False)
    model = pw.ProductionModel(lambda a: a.debt / a.income, input=Applicant, drift=monitor)

    for row in _rows(rng, 5000):
        model(row)
    assert alerts == [] and monitor.stats().checks == 5

    for row in _rows(rng, 5000, income_shift=0.15):
        model(row)
    assert monitor.stats().checks == 10
    assert {a.feature for a in alerts} == {"income"}
    assert len(alerts) == 5  # every shifted window
    # the default detectors: KS for numbers, chi-square for the category; Bonferroni over 4
    assert {type(d).__name__ for d in monitor.detectors.values()} == {"KS", "ChiSquare"}
    assert all(a.threshold == 0.05 / 4 and a.p_value is not None and a.p_value < 0.05 / 4 for a in alerts)
    latest = monitor.report()
    assert set(latest) == {"age", "income", "debt", "region"}
    assert [k for k, r in latest.items() if r.drifted] == ["income"]
    assert model.stats().drift.alerts == 5
