"""What fault log lines show of a call's input (prodwrap/_masking.py, DESIGN §3): a user's
callback that puts a sensitive input value in its error's message never has it logged in clear,
whichever stage logs the fault (the cost model, a shadow's callbacks, the escalation policy)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

import prodwrap as pw

SSN = "123-45-6789"
WAIT = 10.0


class Applicant(pydantic.BaseModel):
    name: str
    ssn: pydantic.SecretStr


def leaks(*args: Any) -> Any:
    """A callback that quotes the input's secret in its error (as a careless one would)."""
    raise RuntimeError(f"refused the applicant with ssn {SSN}")


def score(a: Applicant) -> float:
    return 0.5


def cost_model(name: str) -> pw.ProductionModel:
    return pw.ProductionModel(score, name=name, input=Applicant, cost=leaks, telemetry=False)


def shadow_compare(name: str) -> pw.ProductionModel:
    return pw.ProductionModel(score, name=name, input=Applicant, shadow=pw.Shadow(score, compare=leaks))


def shadow_on_mismatch(name: str) -> pw.ProductionModel:
    other = pw.Shadow(lambda a: 0.9, on_mismatch=leaks)
    return pw.ProductionModel(score, name=name, input=Applicant, shadow=other)


def escalate_when(name: str) -> pw.ProductionModel:
    return pw.ProductionModel(score, name=name, input=Applicant, escalate=pw.Escalate(when=leaks, to=print))


def escalate_reason(name: str) -> pw.ProductionModel:
    policy = pw.Escalate(when=lambda out: True, to=lambda p: None, reason=leaks)
    return pw.ProductionModel(score, name=name, input=Applicant, escalate=policy)


def escalation_sink(name: str) -> pw.ProductionModel:
    """The reviewer sink runs on the escalation's worker, given the Prediction alone."""
    return pw.ProductionModel(score, name=name, input=Applicant, escalate=pw.Escalate(when=lambda out: True, to=leaks))


def cache_key(name: str) -> pw.ProductionModel:
    return pw.ProductionModel(score, name=name, input=Applicant, cache=pw.Cache(maxsize=8, key=leaks))


def retry_on(name: str) -> pw.ProductionModel:
    def refuse(a: Applicant) -> float:
        raise ConnectionError("down")

    retry = pw.Retry(attempts=3, on=leaks)  # (the retry policy's own predicate raises)
    return pw.ProductionModel(refuse, name=name, input=Applicant, retry=retry, fallback=lambda a: 0.0)


def fault_lines(
    caplog: pytest.LogCaptureFixture, build: Callable[[str], pw.ProductionModel], entry: str, x: Any, calls: int = 1
) -> str:
    """The fault lines logged by ``calls`` calls on ``x`` of the model ``build`` makes."""
    name = f"masked-{build.__name__}-{entry}"
    model = build(name)
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        for _ in range(calls):
            assert getattr(model, entry)(x) is not None
        if "shadow" in build.__name__:
            model.shadow_report(wait=WAIT)  # (the shadow's worker has run its job)
        model.close()  # (and the escalation's)
    lines = [logging.Formatter().format(r) for r in caplog.records if name in r.getMessage()]
    assert lines, "the fault was logged"
    return "\n".join(lines)


def test_a_fault_line_with_no_sensitive_input_keeps_its_exception() -> None:
    """Nothing to mask: the record is as before, with its exception for a handler to format."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logging.getLogger("prodwrap").addHandler(handler)
    try:
        model = pw.ProductionModel(lambda x: x, name="unmasked-cost", cost=leaks, telemetry=False)
        assert model(1) == 1
    finally:
        logging.getLogger("prodwrap").removeHandler(handler)
    (record,) = [r for r in records if "unmasked-cost: the cost model raised" in r.getMessage()]
    assert record.exc_info is not None and SSN in record.getMessage()


def test_a_throttled_fault_line_reads_no_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of faults logs its first line only: the input's sensitive values are read for
    that line, not for each fault the throttle leaves out."""
    from prodwrap import _finish
    from prodwrap._masking import Masking

    read: list[Any] = []
    mask_for = Masking.mask_for

    def counting(self: Masking, value: Any, *outs: Any) -> Any:
        read.append(value)
        return mask_for(self, value, *outs)

    monkeypatch.setattr(Masking, "mask_for", counting)
    monkeypatch.setattr(_finish._faults, "clock", lambda: 0.0)  # every fault in one burst
    model = pw.ProductionModel(score, name="throttled-observer", input=Applicant, observers=[leaks], telemetry=False)
    for _ in range(5):
        assert model({"name": "Ada", "ssn": SSN}) == 0.5
    assert len(read) == 1 and model.stats().observer_errors == 5


class Decision(pydantic.BaseModel):
    approved: bool
    ssn: pydantic.SecretStr  # an output field as sensitive as the input's


def decide(x: int) -> Decision:
    return Decision(approved=True, ssn=SSN)


def out_observer(name: str) -> pw.ProductionModel:
    return pw.ProductionModel(decide, name=name, output=Decision, observers=[leaks], telemetry=False)


def out_cached_observer(name: str) -> pw.ProductionModel:
    """The observer of a cache hit (the second call), served on the success path."""
    return pw.ProductionModel(decide, name=name, output=Decision, observers=[leaks], cache=pw.Cache(maxsize=8))


def out_cost_model(name: str) -> pw.ProductionModel:
    return pw.ProductionModel(decide, name=name, output=Decision, cost=leaks, telemetry=False)


def out_escalate_when(name: str) -> pw.ProductionModel:
    return pw.ProductionModel(decide, name=name, output=Decision, escalate=pw.Escalate(when=leaks, to=print))


def out_escalation_sink(name: str) -> pw.ProductionModel:
    return pw.ProductionModel(decide, name=name, output=Decision, escalate=pw.Escalate(when=lambda out: True, to=leaks))


def out_shadow_compare(name: str) -> pw.ProductionModel:
    return pw.ProductionModel(decide, name=name, output=Decision, shadow=pw.Shadow(decide, compare=leaks))


INPUT_FAULTS = [
    cost_model,
    shadow_compare,
    shadow_on_mismatch,
    escalate_when,
    escalate_reason,
    escalation_sink,
    retry_on,
    cache_key,
]
OUTPUT_FAULTS = [
    out_observer,
    out_cached_observer,
    out_cost_model,
    out_escalate_when,
    out_escalation_sink,
    out_shadow_compare,
]


@pytest.mark.parametrize("build", INPUT_FAULTS + OUTPUT_FAULTS, ids=lambda b: b.__name__)
@pytest.mark.parametrize("entry", ["predict", "predict_detailed"])
def test_a_stage_fault_line_masks_the_sensitive_values_the_callback_was_given(
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    build: Callable[[str], pw.ProductionModel],
    entry: str,
) -> None:
    """The input's sensitive values, and an output field marked sensitive, as the input's: a
    callback given either may quote it in its error."""
    from prodwrap import _finish

    monkeypatch.setattr(_finish._faults, "clock", itertools.count(0, 3600).__next__)  # (no burst: each line)
    x = {"name": "Ada", "ssn": SSN} if build in INPUT_FAULTS else 7
    text = fault_lines(caplog, build, entry, x, calls=2)  # (the second call of a cached model is a hit)
    if build is out_cached_observer:  # the miss's line and the hit's
        assert text.count("observer leaks raised") == 2
    assert "refused the applicant with ssn **********" in text and "RuntimeError" in text
    assert SSN not in text


@pytest.mark.parametrize("spec", [dict[str, pydantic.SecretStr], list[pydantic.SecretStr]], ids=str)
def test_an_output_spec_of_secrets_masks_each_secret_it_holds(caplog: pytest.LogCaptureFixture, spec: Any) -> None:
    value = {"k": SSN} if spec.__origin__ is dict else [SSN]
    model = pw.ProductionModel(
        lambda x: value, name=f"secrets-{spec.__origin__.__name__}", output=spec, observers=[leaks]
    )
    with caplog.at_level(logging.WARNING, logger="prodwrap"):
        assert model(1) is not None
    text = "\n".join(logging.Formatter().format(r) for r in caplog.records if model.name in r.getMessage())
    assert "refused the applicant with ssn **********" in text and SSN not in text


def test_masking_reads_the_input_and_every_output_given() -> None:
    from prodwrap._masking import Masking
    from prodwrap.policies.validation import _sensitive

    masking = Masking(_sensitive(Applicant), _sensitive(Decision))
    shadow_out = Decision(approved=False, ssn="987-65-4321")
    mask = masking.mask_for(Applicant(name="Ada", ssn="111-22-3333"), decide(1), shadow_out)
    assert mask is not None
    assert mask("111-22-3333 123-45-6789 987-65-4321 Ada") == "********** ********** ********** Ada"
    assert Masking(None, _sensitive(Decision)).mask_for(None) is None  # no output: nothing to mask
    assert not Masking() and Masking(None, _sensitive(Decision))
