"""The ``prodwrap.drift.score`` gauge: the monitor's own meter provider, else its models'."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import prodwrap as pw
from prodwrap import _scope

_ROWS = [[5.0 + i / 50] for i in range(50)]  # far off the reference: the 50th call's check alerts


class _Meters:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture
def meters() -> Iterator[Any]:
    made: list[_Meters] = []

    def make() -> _Meters:
        made.append(_Meters())
        return made[-1]

    yield make
    for m in made:
        m.provider.shutdown()


def _monitor(**options: Any) -> pw.DriftMonitor:
    """A monitor that checks inline every 50 observations."""
    reference = np.random.default_rng(0).normal(size=(500, 1))
    return pw.DriftMonitor(reference, window=50, background=False, **options)


def _identity(row: list[float]) -> float:
    return row[0]


def test_the_drift_score_goes_to_the_models_meter_provider(meters: Any) -> None:
    model_meters = meters()
    monitor = _monitor()
    model = pw.ProductionModel(_identity, name="m", drift=monitor, meter_provider=model_meters.provider)
    for row in _ROWS:
        model(row)
    assert [p.value for p in model_meters.points("prodwrap.drift.score")] == [monitor.report()[0].statistic]


def test_a_monitors_own_meter_provider_keeps_its_drift_scores(meters: Any) -> None:
    own, model_meters = meters(), meters()
    monitor = _monitor(meter_provider=own.provider)
    model = pw.ProductionModel(_identity, name="m", drift=monitor, meter_provider=model_meters.provider)
    for row in _ROWS:
        model(row)
    assert len(own.points("prodwrap.drift.score")) == 1 and own.points("prodwrap.predictions") == []
    assert model_meters.points("prodwrap.drift.score") == [] and model_meters.points("prodwrap.predictions")


def test_a_shared_monitors_drift_scores_go_where_each_models_metrics_go(meters: Any) -> None:
    mine, scoped, silent = meters(), meters(), meters()
    monitor = _monitor()
    own = pw.ProductionModel(_identity, name="own", drift=monitor, meter_provider=mine.provider)
    default = pw.ProductionModel(_identity, name="default", drift=monitor)  # the scope's, here
    pw.ProductionModel(_identity, name="off", drift=monitor, telemetry=False, meter_provider=silent.provider)
    pw.ProductionModel(_identity, name="again", drift=monitor, meter_provider=mine.provider)
    with _scope.scoped(meter_provider=scoped.provider):
        for i, row in enumerate(_ROWS):
            (own if i % 2 else default)(row)
    assert len(mine.points("prodwrap.drift.score")) == 1  # (one provider, one gauge: set once)
    assert len(scoped.points("prodwrap.drift.score")) == 1
    assert silent.points("prodwrap.drift.score") == []


def test_a_monitor_of_no_model_uses_the_scopes_provider(meters: Any) -> None:
    scoped = meters()
    monitor = _monitor()
    pw.ProductionModel(_identity, name="off", drift=monitor, telemetry=False)
    with _scope.scoped(meter_provider=scoped.provider):
        for row in _ROWS:
            monitor.observe(row, None)
    assert len(scoped.points("prodwrap.drift.score")) == 1
