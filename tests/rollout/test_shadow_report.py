"""What a shadow reports: the Wilson interval, comparison records (redacted) emitted into a
capture, latencies, and the candidate run's trace context."""

from __future__ import annotations

import sys
from typing import Any

import pydantic
import pytest

import prodwrap as pw
from prodwrap.rollout import _shadow_run
from prodwrap.rollout._shadow_report import wilson

WAIT = 10.0


def test_wilson_matches_the_textbook_values() -> None:
    low, high = wilson(81, 263)  # Wilson (1927) / Newcombe (1998) example: 0.2553 to 0.3662
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson(0, 0) is None
    from scipy.stats import binomtest

    for k, n in ((0, 10), (10, 10), (998, 1000), (3, 7), (500, 1000)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_every_comparison_is_emitted_into_a_capture_with_sensitive_fields_hashed(captured: Any) -> None:
    class Applicant(pydantic.BaseModel):
        name: str
        ssn: pydantic.SecretStr
        income: float = pydantic.Field(json_schema_extra={"sensitive": True})

    def primary(x: Applicant) -> float:
        return x.income / 1000

    def cand(x: Applicant) -> float:
        if x.name == "err":
            raise ValueError("boom")
        return round(x.income / 1000)

    model = pw.ProductionModel(primary, input=Applicant, shadow=pw.Shadow(cand, name="v2"))
    for name, income in (("ann", 52_000.0), ("bob", 52_400.0), ("err", 1.0)):
        model({"name": name, "ssn": "123-45-6789", "income": income})
    model.shadow_report(wait=WAIT)
    comparisons = sorted(captured.of("shadow"), key=lambda c: c.input["name"])
    assert [c.input["name"] for c in comparisons] == ["ann", "bob", "err"]
    ann, bob, err = comparisons
    assert ann.agreed and not ann.mismatch and ann.candidate == 52 and ann.primary == 52.0
    assert bob.mismatch and (bob.primary, bob.candidate) == (52.4, 52)
    assert err.error == "ValueError" and err.candidate is None and not err.mismatch
    for c in comparisons:
        assert c.name == "v2" and c.candidate_latency >= 0 and c.primary_latency is not None
        assert c.input["ssn"].startswith("redacted:") and c.input["income"].startswith("redacted:")
        assert "123-45-6789" not in repr(c) and "52000" not in repr(c.input)
    assert model.shadow_report().mismatches == (bob,)
    model.close()


def test_latency_percentiles_of_both_sides(clock: Any) -> None:
    def cand(x: int) -> int:
        clock.advance(x / 100)  # the candidate takes x/100 s on prodwrap's clock
        return x

    model = pw.ProductionModel(lambda x: x, shadow=pw.Shadow(cand, workers=1))
    for x in range(1, 101):
        model(x)
    report = model.shadow_report(wait=WAIT)
    assert report.candidate_latency_p50 == pytest.approx(0.505)
    assert report.candidate_latency_p95 == pytest.approx(0.9505)
    assert report.primary_latency_p50 is not None and report.primary_latency_p95 is not None
    assert 0 < report.primary_latency_p50 <= report.primary_latency_p95 < 1.0
    model.close()


def test_the_candidate_run_gets_the_primary_s_trace_context(monkeypatch: pytest.MonkeyPatch) -> None:
    import opentelemetry.context as otel

    assert "opentelemetry.context" in sys.modules
    seen: list[Any] = []

    def span(experiment: Any, job: Any) -> Any:
        seen.append(job.trace)
        return _shadow_run.contextlib.nullcontext()

    monkeypatch.setattr(_shadow_run, "candidate_span", span)
    key = otel.create_key("marker")
    token = otel.attach(otel.set_value(key, "primary's"))
    try:
        model = pw.ProductionModel(lambda x: x, shadow=pw.Shadow(lambda x: x))
        model(1)
    finally:
        otel.detach(token)
    model.shadow_report(wait=WAIT)
    assert len(seen) == 1 and otel.get_value(key, seen[0]) == "primary's"
    model.close()


def test_stats_shadow_is_the_report() -> None:
    model = pw.ProductionModel(lambda x: x, shadow=pw.Shadow(lambda x: x))
    assert pw.ProductionModel(lambda x: x).stats().shadow is None
    model(1)
    model.shadow_report(wait=WAIT)
    assert isinstance(model.stats().shadow, pw.ShadowReport) and model.stats().shadow.n == 1
    model.close()


@pytest.mark.parametrize("wait", [-1, float("nan"), "1", True])
def test_shadow_report_refuses_a_nonsense_wait(wait: object) -> None:
    model = pw.ProductionModel(lambda x: x, name="m", shadow=pw.Shadow(lambda x: x))
    with pytest.raises(pw.ConfigurationError, match="wait"):
        model.shadow_report(wait=wait)  # type: ignore[arg-type]
    assert model.shadow_report(wait=float("inf")).n == 0
    model.close()
