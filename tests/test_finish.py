"""The one finish point: observers see every call exactly once, on every path and outcome."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from typing import Annotated, Any

import pydantic
import pytest

import prodwrap as pw
from prodwrap.testing import FakeClock


class Collect:
    def __init__(self) -> None:
        self.seen: list[pw.Prediction] = []
        self.lock = threading.Lock()

    def __call__(self, p: pw.Prediction) -> None:
        with self.lock:
            self.seen.append(p)


def outcome_of(x: int) -> int:
    if x % 4 == 1:
        raise ConnectionError("down")  # -> fallback
    if x % 4 == 2:
        raise KeyError("bug")  # -> fallback too (not retried)
    return x


def model_for(fn: Any, sink: Collect, **options: Any) -> pw.ProductionModel[Any, Any]:
    return pw.ProductionModel(fn, input=int, observers=[sink], **options)


def test_every_entry_point_and_outcome_reaches_the_observer_once(clock: FakeClock) -> None:
    sink = Collect()
    model = model_for(outcome_of, sink, retry=2, fallback=lambda x: -x)
    bare = Collect()
    no_fallback = model_for(outcome_of, bare)
    values = [model(0), model.predict(1), model.predict_detailed(2).value, model.predict_batch([3, 4])]
    assert values == [0, -1, -2, [3, 4]]
    with pytest.raises(pw.InputValidationError):
        model("not a number")
    with pytest.raises(ConnectionError):
        no_fallback(1)
    assert [p.outcome for p in sink.seen] == ["ok", "fallback", "fallback", "ok", "ok", "error"]
    assert [p.outcome for p in bare.seen] == ["error"]
    assert sink.seen[1].attempts == 2 and sink.seen[2].attempts == 1  # ConnectionError retried, KeyError not
    assert model.stats().calls == 6


async def test_async_entry_points_and_cancellation_reach_the_observer() -> None:
    sink = Collect()
    gate = asyncio.Event()

    async def predict(x: int) -> int:
        if x < 0:
            await gate.wait()
        return x

    model = model_for(predict, sink, fallback=pw.Constant(0))
    assert await model(1) == 1
    assert await model.apredict(2) == 2
    assert (await model.apredict_detailed(3)).value == 3
    task = asyncio.create_task(model.apredict(-1))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [p.outcome for p in sink.seen] == ["ok", "ok", "ok", "error"]
    stats = model.stats()
    assert stats.outcomes == {"error": 1, "ok": 3}
    assert stats.failures == {"cancelled": 1}


def test_the_observers_prediction_is_the_one_predict_detailed_returns() -> None:
    sink, other = Collect(), Collect()
    model = pw.ProductionModel(lambda x: x, observers=[sink, other])
    p = model.predict_detailed(7)
    assert sink.seen[0] is p and other.seen[0] is p


def test_a_raising_observer_is_counted_logged_and_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(p: pw.Prediction) -> None:
        raise RuntimeError("sink down")

    sink = Collect()
    model = pw.ProductionModel(lambda x: x, observers=[broken, sink])
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        assert [model(i) for i in range(5)] == list(range(5))
    assert len(sink.seen) == 5  # the observer after the broken one still sees every call
    assert model.stats().observer_errors == 5
    warnings = [r for r in caplog.records if "sink down" in r.getMessage()]
    assert len(warnings) == 1  # once per burst, not per call
    assert warnings[0].name == "prodwrap.observers"


def test_exact_under_16_threads() -> None:
    threads, per_thread = 16, 500
    sink = Collect()
    model = pw.ProductionModel(lambda x: x if x[1] % 5 else 1 / 0, observers=[sink], fallback=pw.Constant(None))
    barrier = threading.Barrier(threads)

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            if i % 2:
                model((t, i))
            else:
                model.predict_detailed((t, i))

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    total = threads * per_thread
    assert len(sink.seen) == total
    assert len({p.id for p in sink.seen}) == total
    fallbacks = sum(1 for p in sink.seen if p.outcome == "fallback")
    assert fallbacks == threads * len(range(0, per_thread, 5))
    assert model.stats().calls == total


def test_no_prediction_is_built_without_someone_to_read_it(monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    from prodwrap import _record

    real = _record.new_id  # called once for each Prediction built

    def counting() -> str:
        built.append(1)
        return real()

    monkeypatch.setattr(_record, "new_id", counting)
    model = pw.ProductionModel(lambda x: x, fallback=pw.Constant(0))
    model(1)
    assert built == []
    model.predict_detailed(1)
    assert built == [1]


def test_a_prediction_is_frozen_and_a_plain_dataclass_to_its_users() -> None:
    import copy
    import dataclasses
    import pickle

    from prodwrap._record import _PredictionSlots

    p = pw.ProductionModel(lambda x: x * 2, observers=[]).predict_detailed(3)
    assert type(p) is pw.Prediction and p.value == 6
    assert {f.name for f in dataclasses.fields(pw.Prediction)} == set(_PredictionSlots.__slots__)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.value = 7  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(p)) == p == copy.deepcopy(p)
    assert dataclasses.replace(p, value=1).value == 1 and not hasattr(p, "__dict__")


def test_snapshots_in_flight_agree_on_outcomes_and_who_served() -> None:
    import sys

    model = pw.ProductionModel(lambda x: x if x % 3 else 1 / 0, fallback=pw.Constant(-1))
    stop = threading.Event()
    bad: list[Any] = []

    def hammer() -> None:
        i = 0
        while not stop.is_set():
            model(i)
            i += 1

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    workers = [threading.Thread(target=hammer) for _ in range(4)]
    try:
        for w in workers:
            w.start()
        for _ in range(300):
            s = model.stats()
            if sum(s.outcomes.values()) != s.calls or sum(s.served_by.values()) != s.calls:
                bad.append(s)
    finally:
        stop.set()
        for w in workers:
            w.join()
        sys.setswitchinterval(previous)
    assert bad == []


def test_counting_reads_no_deprecated_api() -> None:
    import itertools
    import warnings

    from prodwrap._stats import counted

    c = itertools.count()
    for _ in range(12345):
        next(c)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert counted(c) == 12345


def test_prediction_tags_are_read_only() -> None:
    with pw.context(customer="acme"):
        p = pw.ProductionModel(lambda x: x).predict_detailed(1)
    assert p.tags == {"customer": "acme"}
    with pytest.raises(TypeError):
        p.tags["customer"] = "other"  # type: ignore[index]


@pytest.mark.parametrize("path", ["success", "fallback"])
def test_an_observer_faults_log_line_masks_the_inputs_sensitive_values(
    caplog: pytest.LogCaptureFixture, path: str
) -> None:
    class Applicant(pydantic.BaseModel):
        name: str
        ssn: pydantic.SecretStr

    def leaky(p: pw.Prediction) -> None:
        ssn = p.value
        try:
            raise KeyError(ssn)
        except KeyError as exc:
            raise RuntimeError(f"sink refused ssn {ssn}") from exc

    def predict(a: Applicant) -> str:
        if path == "fallback":
            raise ConnectionError("down")
        return a.ssn.get_secret_value()

    model = pw.ProductionModel(
        predict,
        name=f"leaky-{path}",
        input=Applicant,
        fallback=lambda a: a.ssn.get_secret_value(),
        observers=[leaky],
        telemetry=False,
    )
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        assert model({"name": "Ada", "ssn": "123-45-6789"}) == "123-45-6789"
    (record,) = [r for r in caplog.records if r.name == "prodwrap.observers"]
    text = logging.Formatter().format(record)
    assert "sink refused ssn **********" in text and "KeyError" in text  # the chain, masked
    assert "123-45-6789" not in text and record.exc_info is None  # (no exception for a handler to print)
    plain = pw.ProductionModel(lambda x: x, name=f"plain-{path}", observers=[leaky], telemetry=False)
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        plain("no secret here")
    (record,) = [r for r in caplog.records if r.name == "prodwrap.observers" and "plain" in r.getMessage()]
    assert record.exc_info is not None  # nothing to mask: the record is as before


def test_an_observer_fault_whose_masking_cannot_read_the_input_costs_no_output(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Keyed(pydantic.BaseModel):
        user: str
        key: Annotated[int, pw.Sensitive]

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise ValueError("no text")

    def observer(p: pw.Prediction) -> None:
        raise RuntimeError("observer bug")

    def unprintable(p: pw.Prediction) -> None:
        raise Unprintable

    model = pw.ProductionModel(lambda x: "output", name="m", input=Keyed, observers=[observer], telemetry=False)
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        assert model({"user": "bob", "key": 10**5000}) == "output"  # (str() of it raises: over 4300 digits)
    assert model.stats().observer_errors == 1
    (record,) = [r for r in caplog.records if r.name == "prodwrap.observers"]
    assert "withheld" in record.getMessage() and record.exc_info is None
    other = pw.ProductionModel(lambda x: "output", name="u", input=Keyed, observers=[unprintable], telemetry=False)
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        assert other({"user": "bob", "key": 12345}) == "output"  # an error whose text cannot be made, masked
    assert other.stats().observer_errors == 1


def test_a_refusal_is_logged_at_info(caplog: pytest.LogCaptureFixture) -> None:
    from prodwrap._engine import Engine
    from prodwrap._record import CallRecord
    from prodwrap._stage import Refuse, Seam, Stage

    class Budget(Stage):
        name = "budget"
        seam = Seam.ADMISSION

        def __init__(self) -> None:
            self.fast_admit = lambda value, args, kwargs: False

        def admit(self, call: CallRecord, value: Any) -> Refuse:
            return Refuse(pw.BudgetExceededError(scope="all", limit=1, spent=1, resets_at=None), "budget")  # type: ignore[arg-type]

    model = pw.ProductionModel(lambda x: x)
    model._swap(Engine(fn=lambda x: x, name="m", stages=[Budget()]))
    with caplog.at_level("INFO", logger="prodwrap"), pytest.raises(pw.BudgetExceededError):
        model(1)
    assert [r.getMessage() for r in caplog.records if r.levelname == "INFO"] == ["m: refused (budget)"]


# -- the success path's record on demand (fast_record), an observer's error for the caller --------


def _asking_stage(wanted: set[int], seen: list[tuple[int, bool, int]]) -> Any:
    from prodwrap._stage import Seam, Stage

    class Asking(Stage):
        name = "asking"
        seam = Seam.OBSERVER

        def __init__(self) -> None:
            self.fast_record = lambda value, out: value in wanted

        def observe(self, call: Any) -> None:
            marked = bool(call.state and call.state.get(self))
            seen.append((call.input, marked, len(call.args)))

    return Asking()


def test_fast_record_makes_a_record_only_for_the_calls_it_asks_for() -> None:
    from prodwrap._drivers import predict_sync
    from prodwrap._engine import Engine

    seen: list[tuple[int, bool, int]] = []
    engine = Engine(fn=lambda x: x, name="m", stages=[_asking_stage({2}, seen)])
    assert engine.fast is not None and not engine.finisher.needs_record
    assert [predict_sync(engine, x, (), {}) for x in (1, 2, 3)] == [1, 2, 3]
    assert seen == [(2, True, 0)]
    assert engine.stats.snapshot().calls == 3  # counted once each, with or without a record


def test_an_observer_error_meant_for_the_caller_is_raised_after_every_observer() -> None:
    from prodwrap._stage import Seam, Stage

    kept: list[Any] = []

    class Strict(Stage):
        name = "strict"
        seam = Seam.OBSERVER

        def __init__(self) -> None:
            self.fast_observe = self.check

        def check(self, value: Any, out: Any) -> None:
            raise pw.ShadowMismatchError("for the caller")

        def observe(self, call: Any) -> None:
            self.check(call.input, call.value)

    from prodwrap._engine import Engine
    from prodwrap._stage import Observers

    engine = Engine(fn=lambda x: x, name="m", stages=[Strict(), Observers((kept.append,))])
    from prodwrap._detailed import detailed_sync
    from prodwrap._drivers import predict_sync

    with pytest.raises(pw.ShadowMismatchError):
        predict_sync(engine, 1, (), {})
    with pytest.raises(pw.ShadowMismatchError):
        detailed_sync(engine, 2, (), {})
    assert [p.value for p in kept] == [1, 2]  # the observers after it ran
    assert engine.stats.snapshot().observer_errors == 0


def test_an_async_observer_is_refused_at_construction() -> None:
    async def record(p: pw.Prediction) -> None:
        raise AssertionError("never awaited")

    class Awaitable:
        async def __call__(self, p: pw.Prediction) -> None:
            raise AssertionError("never awaited")

    for observer in (record, Awaitable()):
        with pytest.raises(pw.ConfigurationError, match="never awaited"):
            pw.ProductionModel(lambda x: x, observers=[observer])


@pytest.mark.parametrize("entry", ["predict", "predict_detailed"])
def test_an_interrupt_in_one_observer_reaches_the_caller_after_every_other_observer(entry: str) -> None:
    """A KeyboardInterrupt raised by an observer stops neither the observers after it nor
    the audit line: it is raised once all of them have run."""
    seen: list[str] = []
    lines: list[dict[str, Any]] = []
    log = pw.AuditLog(lines.append)

    def interrupt(p: pw.Prediction) -> None:
        raise KeyboardInterrupt

    model = pw.ProductionModel(lambda x: x, observers=[interrupt, lambda p: seen.append(p.id)], audit=log)
    with pytest.raises(KeyboardInterrupt):
        getattr(model, entry)(1)
    assert log.flush(10)
    assert len(seen) == len(lines) == 1
    assert model.stats().calls == 1
    log.close()


def _hooks_raising(*errors: BaseException | None) -> tuple[list[str], list[Any]]:
    """Observer stages whose success-path hook (and record path, through ``observe``) says
    its name, then raises its error (None: nothing)."""
    from prodwrap._record import CallRecord
    from prodwrap._stage import Seam, Stage

    heard: list[str] = []

    class Hook(Stage):
        seam = Seam.OBSERVER

        def __init__(self, name: str, error: BaseException | None) -> None:
            self.name = name

            def fast(value: Any, out: Any) -> None:
                heard.append(name)
                if error is not None:
                    raise error

            self.fast_observe = fast

        def observe(self, call: CallRecord) -> None:
            self.fast_observe(call.input, call.value)

    return heard, [Hook(chr(ord("a") + i), error) for i, error in enumerate(errors)]


def _model_with(stages: list[Any]) -> pw.ProductionModel[Any, ..., Any]:
    """A model whose predict fails for 13 (the call then ends with a record), with ``stages``."""
    from prodwrap._engine import Engine

    def predict(x: int) -> int:
        if x == 13:
            raise ConnectionError
        return x

    model = pw.ProductionModel(predict)
    model._swap(Engine(fn=predict, name="m", stages=stages))
    return model


@pytest.mark.parametrize("x", [1, 13])  # the success path's hooks (compiled), and a record's
def test_an_interrupt_in_a_success_path_hook_lets_the_hooks_after_it_run(x: int) -> None:
    heard, stages = _hooks_raising(KeyboardInterrupt(), None)
    with pytest.raises(KeyboardInterrupt):
        _model_with(stages)(x)
    assert heard == ["a", "b"]


@pytest.mark.parametrize("x", [1, 13])
def test_an_interrupt_is_raised_before_an_error_meant_for_the_caller(x: int) -> None:
    heard, stages = _hooks_raising(KeyboardInterrupt(), pw.ShadowMismatchError("differs"), ValueError())
    model = _model_with(stages)
    with pytest.raises(KeyboardInterrupt):
        model(x)
    assert heard == ["a", "b", "c"]
    assert model.stats().observer_errors == 1  # the ValueError (the others are not faults)


def test_a_success_path_prediction_made_without_a_record_is_the_one_a_record_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prodwrap import _record
    from prodwrap._stage import Seam, Stage

    class ReadsRecords(Stage):
        """An observer stage that reads records: the finish then makes one for every call."""

        name = "reads"
        seam = Seam.OBSERVER

        def observe(self, call: Any) -> None:
            return None

    direct, recorded = Collect(), Collect()
    plain = pw.ProductionModel(lambda x: x * 2, input=int, version="3", observers=[direct], telemetry=False)
    with_record = pw.ProductionModel(lambda x: x * 2, input=int, version="3", observers=[recorded], telemetry=False)
    with_record._swap(
        type(with_record._engine)(
            fn=lambda x: x * 2,
            name="<lambda>",
            version="3",
            validate_input=with_record._engine.validate_input,
            stages=[*with_record._engine.stages, ReadsRecords()],
        )
    )
    assert plain._engine.finisher.direct and not with_record._engine.finisher.direct
    records: list[Any] = []
    real = _record.CallRecord.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        records.append(1)
        real(self, *args, **kwargs)

    monkeypatch.setattr(_record.CallRecord, "__init__", counting)
    with pw.context(user="u1"):
        plain("21"), with_record("21")
    assert len(records) == 1  # the record path's only
    a, b = direct.seen[0], recorded.seen[0]
    fields = ("value", "outcome", "served_by", "model", "version", "attempts", "cost", "errors")
    assert (
        [getattr(a, f) for f in fields]
        == [getattr(b, f) for f in fields]
        == [42, "ok", "primary", "<lambda>", "3", 1, 0, ()]
    )
    assert (a.trace_id, a.drift, a.escalated, a.charges, dict(a.tags)) == (
        b.trace_id,
        b.drift,
        b.escalated,
        b.charges,
        dict(b.tags),
    )
    assert dict(a.tags) == {"user": "u1"} and a.id != b.id and a.latency > 0
    assert type(a) is pw.Prediction
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.value = 0  # type: ignore[misc]
    assert plain.stats().calls == 1
