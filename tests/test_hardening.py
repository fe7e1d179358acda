"""What a new user and an attacker found in the core (issue 9), each pinned by a test."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._context import LIVE, bind, within_deadline


def test_the_input_may_be_passed_by_keyword_under_the_predicts_first_parameter() -> None:
    def score(applicant: int, scale: float = 1.0) -> float:
        return applicant * scale

    model = pw.ProductionModel(score, input=int)
    assert model(applicant=4) == 4.0
    assert model.predict(applicant="5", scale=2.0) == 10.0
    assert model.predict_detailed(applicant=3).value == 3.0
    with pytest.raises(TypeError, match=r"score: missing the input: pass it first, or as applicant="):
        model(scale=2.0)


def test_a_batch_output_of_the_wrong_length_is_an_invalid_output() -> None:
    model = pw.ProductionModel(lambda xs: xs[:-1], batch=True, fallback=lambda xs: ["fb"] * len(xs))
    p = model.predict_detailed([1, 2, 3])
    assert (p.value, p.outcome) == (["fb", "fb", "fb"], "fallback")
    assert isinstance(p.errors[0], pw.OutputValidationError)
    assert "a batch of 3 inputs gave 2 outputs" in str(p.errors[0])
    with pytest.raises(pw.OutputValidationError, match="gave not a list"):
        pw.ProductionModel(lambda xs: 42, batch=True)([1])
    assert pw.ProductionModel(lambda xs: [x + 1 for x in xs], batch=True).predict_batch([1, 2]) == [2, 3]


def test_nonsense_configuration_is_refused() -> None:
    with pytest.raises(pw.ConfigurationError, match="pass the callable as a fallback"):
        pw.Constant(lambda: 1)
    with pytest.raises(pw.ConfigurationError, match="an attempt can never take longer than the total"):
        pw.Timeout(attempt=1, total=0.1)
    with pytest.raises(pw.ConfigurationError, match="unknown option"):
        pw.ProductionModel(lambda x: x, retires=3)  # type: ignore[call-arg]


def test_bare_decorators_work_or_fail_at_decoration_naming_the_decorator(clock: object) -> None:
    failures = [ConnectionError()]

    @pw.retry
    def flaky(x: int) -> int:
        if failures:
            raise failures.pop()
        return x

    assert isinstance(flaky, pw.ProductionModel) and flaky(3) == 3
    assert flaky.describe()["retry"]["attempts"] == 3
    for decorator, name in ((pw.timeout, "timeout"), (pw.validate, "validate"), (pw.monitored, "monitored")):
        with pytest.raises(pw.ConfigurationError, match=rf"@pw\.{name} needs options"):
            decorator(lambda x: x)  # type: ignore[operator]


def test_close_and_context_manager() -> None:
    with pw.ProductionModel(lambda x: x) as model:
        assert model(1) == 1
    model.close()  # idempotent
    assert model(2) == 2


def test_a_dead_binding_no_longer_binds_a_thread_it_left_running() -> None:
    """A thread started inside a timed attempt keeps that attempt's context; once the attempt
    is over, a nested untimed call there must not see the stale deadline, even while some
    unrelated timed call keeps the process-wide count of live deadlines above zero."""
    seen: list[float | None] = []
    inner = pw.ProductionModel(lambda x: pw.deadline())
    started, go = threading.Event(), threading.Event()
    leftover: list[threading.Thread] = []

    def attempt(x: int) -> int:
        def later() -> None:
            started.set()
            go.wait()
            seen.append(inner(1))
            seen.append(inner.predict_detailed(1).value)

        t = threading.Thread(target=later)
        leftover.append(t)
        t.start()
        started.wait()
        return x

    assert pw.ProductionModel(attempt, timeout=5.0)(1) == 1
    with within_deadline(time.monotonic() + 60):  # an unrelated live deadline elsewhere
        go.set()
        leftover[0].join()
    assert seen == [None, None]


def test_predict_and_predict_detailed_read_the_callers_deadline_alike() -> None:
    model = pw.ProductionModel(lambda x: pw.deadline())
    with within_deadline(time.monotonic() + 30):
        a, b = model(1), model.predict_detailed(1).value
    assert a is not None and b is not None and 29 < a <= 30 and 29 < b <= 30
    binding = bind(time.monotonic() + 30)
    assert binding in LIVE
    binding.end()
    binding.end()  # idempotent
    assert binding not in LIVE


def test_import_prodwrap_loads_no_numpy_asyncio_otel_sdk_or_drift() -> None:
    code = (
        "import sys, prodwrap\n"
        "names = ('numpy', 'asyncio', 'opentelemetry.sdk', 'prodwrap.drift', 'tenacity',\n"
        "         'hashlib', 'json', 'html', 'random')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_modules_left_out_of_import_load_when_first_needed() -> None:
    code = (
        "import sys, prodwrap as pw\n"
        "pw.Retry(attempts=2, wait=pw.backoff(jitter=False))\n"
        "assert 'random' not in sys.modules\n"
        "retry = pw.Retry(attempts=2)\n"  # jittered: each wait is a draw
        "assert 'random' in sys.modules\n"
        "assert 0.0 <= retry.wait_after(1, ConnectionError(), 0.0, 'm', 0.0, 0.0, None, 'exception') <= 0.05\n"
        "assert 0.0 <= pw.backoff(initial=1.0).plain(1) <= 1.0\n"
        "model = pw.ProductionModel(lambda x: 1, name='m', cache=pw.Cache(8))\n"
        "assert model({'t': 'x' * 300}) == 1 and model({'t': 'x' * 300}) == 1\n"  # a long key: its digest
        "assert model.stats().cache.hits == 1\n"
        "assert model.report(html=True).startswith('<!DOCTYPE html>') and 'html' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_stats_percentiles_match_numpys() -> None:
    import numpy as np

    from prodwrap._stats import percentiles

    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 100, 8192):
        samples = list(rng.exponential(size=n))
        assert percentiles(samples, (50, 95, 99)) == pytest.approx(tuple(np.percentile(samples, [50, 95, 99])))
    assert percentiles([], (50,)) == (None,)


def test_fallback_and_refusals_are_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    model = pw.ProductionModel(lambda x: 1 / 0, name="m", version="2", fallback=pw.Constant(0))
    with caplog.at_level("INFO", logger="prodwrap"):
        model(1)
    lines = [r for r in caplog.records if r.levelname == "INFO"]
    assert len(lines) == 1 and "served by fallback constant" in lines[0].getMessage()
    record: Any = lines[0]
    assert (record.model, record.version, record.outcome, record.reason) == ("m", "2", "fallback", "exception")


def test_the_report_says_what_counts_calls_and_what_counts_attempts(clock: object) -> None:
    import numpy as np

    failures = [ConnectionError(), ConnectionError()]

    def flaky(x: float) -> float:
        if failures:
            raise failures.pop()
        return x

    monitor = pw.DriftMonitor(np.arange(200.0), window=5, background=False)
    model = pw.ProductionModel(flaky, retry=3, drift=monitor)
    for i in range(5):
        model(float(i))
    text = model.report()
    assert "calls" in text and "(outcomes below count calls)" in text
    assert "failures" in text and "one per failed attempt or rejected input" in text
    assert "exception" in text and "the predict raised" in text
    assert "abandoned attempts" in text and "timed out, left to finish" in text
    assert "drift" in text and "5 observed, 1 checks" in text and "ks" in text.lower()
    assert "<table" in model.report(html=True)


def test_a_batch_output_may_be_any_sized_sequence_of_the_right_length() -> None:
    import numpy as np

    model = pw.ProductionModel(lambda xs: np.asarray(xs) * 2, batch=True)
    assert list(model([1, 2, 3])) == [2, 4, 6]
    with pytest.raises(pw.OutputValidationError, match="gave not a list"):
        pw.ProductionModel(lambda xs: {"a": 1}, batch=True)([1])
