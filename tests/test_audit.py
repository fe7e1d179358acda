"""``pw.AuditLog`` on a model: one JSON line per prediction, off the prediction path
(DESIGN §3, Audit; issue 11, item 5 and its acceptance bullets)."""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import pydantic
import pytest

import prodwrap as pw
from prodwrap._audit_lines import MAX_TEXT, Redactor
from prodwrap.testing import FakeClock, no_sleep

SSN = "123-45-6789"
PIN = "pin-93718"
CARD = "4111-1111-1111-1111"


class Applicant(pydantic.BaseModel):
    name: str
    ssn: Annotated[str, pw.Sensitive]
    pin: pydantic.SecretStr
    card: str = pydantic.Field(default="", json_schema_extra={"sensitive": True})
    age: int


def applicant(age: int = 40) -> dict[str, Any]:
    return {"name": "Ada", "ssn": SSN, "pin": PIN, "card": CARD, "age": age}


def score(a: Applicant) -> float:
    return a.age / 100


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class Killable:
    """A sink that raises once killed (and writes again once revived)."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.dead = False

    def __call__(self, line: dict[str, Any]) -> None:
        if self.dead:
            raise OSError("disk gone")
        self.lines.append(line)


# -- the acceptance bullets -----------------------------------------------------------------------


def test_n_calls_from_threads_make_exactly_n_lines_after_close_with_no_secret_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "deep" / "predictions.jsonl"  # directories made on the first line
    log = pw.AuditLog(path)
    model = pw.ProductionModel(score, input=Applicant, audit=log, name="credit", version="1.4.0")
    threads, per_thread = 8, 250
    start = threading.Barrier(threads)

    def run(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            with pw.context(customer=f"c{t}"):
                assert model(applicant(i % 90)) == (i % 90) / 100

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    model.close()
    text = path.read_text(encoding="utf-8")
    lines = read_lines(path)
    assert len(lines) == threads * per_thread
    assert len({line["id"] for line in lines}) == len(lines)
    assert [s for s in (SSN, PIN, CARD) if s in text] == []
    assert {line["input"]["name"] for line in lines} == {"Ada"}
    assert {line["input"]["ssn"] for line in lines} == {log.hash_of(SSN)}
    assert {line["input"]["pin"] for line in lines} == {log.hash_of(PIN)}
    assert {line["input"]["card"] for line in lines} == {log.hash_of(CARD)}
    assert log.stats().written == len(lines) and log.stats().lost == 0


def test_a_sink_killed_mid_run_loses_lines_counted_and_logged_never_the_predictions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Killable()
    log = pw.AuditLog(sink)
    model = pw.ProductionModel(score, input=Applicant, audit=log)
    with caplog.at_level(logging.WARNING, logger="prodwrap.audit"):
        for i in range(10):
            assert model(applicant(i)) == i / 100
        assert log.flush(10)
        sink.dead = True
        for i in range(15):
            assert model(applicant(i)) == i / 100
        assert log.flush(10)
        sink.dead = False
        for i in range(5):
            assert model(applicant(i)) == i / 100
        assert log.close(10)
    stats = model.stats()
    assert stats.outcomes == {"ok": 30} and stats.observer_errors == 0
    assert stats.audit.written == 15 and stats.audit.failed == 15 and stats.audit.lost == 15
    assert len(sink.lines) == 15
    faults = [r for r in caplog.records if r.name == "prodwrap.audit"]
    assert len(faults) == 1  # once per burst, not once per line
    assert "a line was lost: OSError: disk gone" in faults[0].getMessage()


# -- what a line holds ----------------------------------------------------------------------------


def test_a_line_holds_the_fields_design_lists_with_a_fake_clocks_wall_time() -> None:
    lines: list[dict[str, Any]] = []
    log = pw.AuditLog(lines.append)
    model = pw.ProductionModel(score, input=Applicant, audit=log, name="credit", version="1.4.0")
    with no_sleep(FakeClock(wall=1_700_000_000.0)) as clock:
        with pw.context(customer="acme", request_id="r-17"):
            p = model.predict_detailed(applicant(40))
        clock.advance(1.25)
        model(applicant(41))
    log.close()
    first, second = lines
    assert list(first) == [
        "id",
        "time",
        "model",
        "version",
        "outcome",
        "served_by",
        "attempts",
        "latency",
        "cost",
        "charges",
        "tags",
        "trace_id",
        "valid_input",
        "input",
        "output",
        "errors",
        "reasons",
        "escalated",
        "drift",
    ]
    assert first["id"] == p.id and first["latency"] == p.latency > 0
    assert first["time"] == "2023-11-14T22:13:20.000000Z"
    assert second["time"] == "2023-11-14T22:13:21.250000Z"
    assert (first["model"], first["version"], first["outcome"], first["served_by"]) == (
        "credit",
        "1.4.0",
        "ok",
        "primary",
    )
    assert first["cost"] == "0" and first["charges"] == [] and first["attempts"] == 1
    assert first["tags"] == {"customer": "acme", "request_id": "r-17"} and second["tags"] == {}
    assert first["output"] == 0.4 and first["errors"] == [] and first["reasons"] == []
    assert first["trace_id"] is None and first["escalated"] is False and first["valid_input"] is True


def test_failed_attempts_and_fallbacks_are_written_with_their_error_types_and_reasons(clock: FakeClock) -> None:
    lines: list[dict[str, Any]] = []
    calls = {"n": 0}

    def flaky(x: int) -> int:
        calls["n"] += 1
        raise ConnectionError("down")

    model = pw.ProductionModel(flaky, retry=2, fallback=pw.Constant(-1), audit=pw.AuditLog(lines.append))
    assert model(1) == -1
    bare = pw.ProductionModel(flaky, audit=pw.AuditLog(lines.append))
    with pytest.raises(ConnectionError):
        bare(2)
    model.close()
    bare.close()
    # Two logs, two writer threads: their lines may land in either order.
    served, failed = sorted(lines, key=lambda line: line["outcome"] == "error")
    assert (served["outcome"], served["served_by"], served["attempts"], served["output"]) == (
        "fallback",
        "constant",
        2,
        -1,
    )
    assert served["errors"] == ["ConnectionError", "ConnectionError"]
    assert served["reasons"] == ["exception", "exception"]
    assert (failed["outcome"], failed["output"], failed["errors"]) == ("error", None, ["ConnectionError"])


def test_a_rejected_input_is_written_raw_with_its_sensitive_fields_hashed() -> None:
    lines: list[dict[str, Any]] = []
    log = pw.AuditLog(lines.append)
    model = pw.ProductionModel(score, input=Applicant, audit=log)
    with pytest.raises(pw.InputValidationError):
        model({"name": "Ada", "ssn": SSN, "pin": PIN, "age": "old"})
    with pytest.raises(pw.InputValidationError):
        model(json.dumps({"name": "Ada", "ssn": SSN, "age": "old"}))  # JSON text is parsed to redact it
    with pytest.raises(pw.InputValidationError):
        model(f"not json {SSN}")  # text that is not JSON is hashed whole
    log.close()
    as_dict, as_json, as_text = lines
    assert as_dict["valid_input"] is False and as_dict["reasons"] == ["invalid_input"]
    assert as_dict["input"] == {"name": "Ada", "ssn": log.hash_of(SSN), "pin": log.hash_of(PIN), "age": "old"}
    assert as_json["input"] == {"name": "Ada", "ssn": log.hash_of(SSN), "age": "old"}
    assert as_text["input"] == log.hash_of(f"not json {SSN}")
    assert SSN not in json.dumps(lines) and PIN not in json.dumps(lines)


def test_redact_names_hash_fields_of_the_input_output_and_tags_at_any_depth() -> None:
    lines: list[dict[str, Any]] = []
    log = pw.AuditLog(lines.append, redact=["email", "customer"], salt="fixed")

    def predict(x: dict[str, Any]) -> dict[str, Any]:
        return {"label": 1, "contact": {"email": x["user"]["email"]}}

    model = pw.ProductionModel(predict, audit=log)
    with pw.context(customer="acme"):
        model({"user": {"email": "ada@example.com", "id": 7}})
    log.close()
    (line,) = lines
    hashed = log.hash_of("ada@example.com")
    assert line["input"] == {"user": {"email": hashed, "id": 7}}
    assert line["output"] == {"label": 1, "contact": {"email": hashed}}
    assert line["tags"] == {"customer": log.hash_of("acme")}
    assert hashed == pw.AuditLog(print, salt="fixed").hash_of("ada@example.com")  # a fixed salt: comparable
    assert hashed != pw.AuditLog(print).hash_of("ada@example.com")  # a random salt per log


def test_an_output_spec_marking_fields_sensitive_hides_them_in_the_output() -> None:
    class Decision(pydantic.BaseModel):
        approved: bool
        token: pydantic.SecretStr

    lines: list[dict[str, Any]] = []
    log = pw.AuditLog(lines.append)
    model = pw.ProductionModel(lambda x: {"approved": True, "token": "tok-secret"}, output=Decision, audit=log)
    model(1)
    secret_in = pw.ProductionModel(len, input=Annotated[str, pw.Sensitive], audit=log)
    secret_in("whole-input-secret")
    log.close()
    assert lines[0]["output"] == {"approved": True, "token": log.hash_of("tok-secret")}
    assert lines[1]["input"] == log.hash_of("whole-input-secret") and lines[1]["output"] == 18


def test_huge_strings_are_summarised_as_huge_bytes_are_after_redaction() -> None:
    lines: list[dict[str, Any]] = []
    log = pw.AuditLog(lines.append, redact=["ssn"])
    huge = "lorem ipsum " * 10_000  # 120,000 characters
    echo = pw.ProductionModel(lambda x: x, audit=log)
    echo(huge)
    echo({"doc": huge, "ssn": huge})  # (mutable: taken on the call's thread)
    with pw.context(note=huge):
        pw.ProductionModel(len, input=Annotated[str, pw.Sensitive], audit=log)(huge)
    pw.ProductionModel(lambda x: x, audit=log)(huge.encode())
    log.close()
    text, mapping, secret, data = lines
    summary = {"summary": "str", "length": len(huge), "hash": log.hash_of(huge)}
    assert text["input"] == text["output"] == summary
    assert mapping["input"] == mapping["output"] == {"doc": summary, "ssn": log.hash_of(huge)}
    assert secret["input"] == log.hash_of(huge) and secret["tags"] == {"note": summary}
    assert data["input"] == {"summary": "bytes", "length": len(huge), "hash": log.hash_of(huge.encode())}
    assert "lorem" not in json.dumps(lines)


def test_a_mutable_inputs_huge_strings_are_summarised_and_hashed_on_the_writers_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The prediction's thread snapshots a dict holding a huge string as before: a reference
    to the string (immutable), no JSON text, no hash; the writer's thread summarises it."""
    hashed_on: list[threading.Thread] = []
    hash_of = Redactor.hash_of

    def spy(self: Redactor, value: Any) -> str:
        hashed_on.append(threading.current_thread())
        return hash_of(self, value)

    monkeypatch.setattr(Redactor, "hash_of", spy)
    lines: list[dict[str, Any]] = []
    log = pw.AuditLog(lines.append)
    huge = "é" * (MAX_TEXT + 1)
    doc = {"doc": huge, "more": [huge]}
    pw.ProductionModel(lambda x: x, audit=log)(doc)
    assert hashed_on == []  # nothing hashed on the prediction's thread
    doc["doc"] = "changed"  # (the caller goes on: the line holds what was asked)
    log.close()
    writers = set(hashed_on)
    summary = {"summary": "str", "length": MAX_TEXT + 1, "hash": log.hash_of(huge)}
    assert lines[0]["input"] == lines[0]["output"] == {"doc": summary, "more": [summary]}
    assert len(writers) == 1 and threading.current_thread() not in writers  # the writer's thread, only


def test_a_line_is_bounded_huge_keys_summarised_and_a_payload_over_max_payload_summarised_whole() -> None:
    lines: list[dict[str, Any]] = []
    log = pw.AuditLog(lines.append, redact=["ssn"])
    key = "Z" * 200_000
    many = ["y" * (MAX_TEXT - 10)] * 20  # each string within the limit, 1.3 million characters in all
    echo = pw.ProductionModel(lambda x: x, audit=log)
    echo({key: 1, "ssn": key})
    with pw.context(**{key: "v"}):
        echo(tuple(many))
    log.close()
    keyed, listed = lines
    short = f"summary:str:{len(key)}:{log.hash_of(key)}"
    assert keyed["input"] == keyed["output"] == {short: 1, "ssn": log.hash_of(key)}  # (redaction first)
    whole = {"summary": "json", "length": len(json.dumps(many, separators=(",", ":"))), "hash": log.hash_of(many)}
    assert listed["input"] == listed["output"] == whole
    assert listed["tags"] == {short: "v"}
    assert all(len(json.dumps(line)) < 1000 for line in lines)


# -- the pipeline -----------------------------------------------------------------------------------


def test_the_success_path_is_kept_and_the_stage_is_described_and_reported(tmp_path: Path) -> None:
    log = pw.AuditLog(tmp_path / "a.jsonl", redact=["ssn"], sample=0.5)
    model = pw.ProductionModel(score, input=Applicant, audit=log)
    assert model._engine.fast is not None
    described = model.describe()
    assert described["stages"] == ["input validation", "predict", "audit"]
    assert described["audit"] == {
        "sink": str(tmp_path / "a.jsonl"),
        "redact": ["ssn"],
        "sample": 0.5,
        "max_queue": 10_000,
        "max_wait": 0.1,
    }
    for i in range(40):
        model(applicant(i))
    log.flush()
    report = model.report()
    stats = model.stats().audit
    assert stats.written + stats.skipped == 40 and stats.written > 0 and stats.skipped > 0
    assert f"{stats.written} lines written to {tmp_path / 'a.jsonl'}, 0 pending" in report
    assert f"  not sampled            {stats.skipped}\n" in report + "\n"
    model.close()


def test_sampling_is_decided_by_the_prediction_id() -> None:
    lines: list[dict[str, Any]] = []
    ids: list[str] = []
    log = pw.AuditLog(lines.append, sample=0.25)
    model = pw.ProductionModel(lambda x: x, audit=log, observers=[lambda p: ids.append(p.id)])
    for i in range(400):
        model(i)
    log.close()
    written = [line["id"] for line in lines]
    assert written == [i for i in ids if log.sampled(i)]
    assert 50 < len(written) < 150  # about a quarter
    assert log.stats().skipped == 400 - len(written)
    assert all(pw.AuditLog(print, sample=0.25).sampled(i) for i in written)  # by id: any log agrees


def test_async_models_write_their_lines_too() -> None:
    lines: list[dict[str, Any]] = []
    log = pw.AuditLog(lines.append)

    async def predict(x: int) -> int:
        return x * 2

    model = pw.ProductionModel(predict, audit=log)

    async def main() -> None:
        await asyncio.gather(*(model.apredict(i) for i in range(20)))

    asyncio.run(main())
    model.close()
    assert sorted(line["output"] for line in lines) == [i * 2 for i in range(20)]


def test_model_close_closes_the_log_and_later_calls_are_counted_lost(caplog: pytest.LogCaptureFixture) -> None:
    lines: list[dict[str, Any]] = []
    log = pw.AuditLog(lines.append)
    with pw.ProductionModel(lambda x: x, audit=log) as model:
        model(1)
    assert lines and log._writer.thread is not None and not log._writer.thread.is_alive()
    with caplog.at_level(logging.WARNING, logger="prodwrap.audit"):
        assert model(2) == 2
        assert model(3) == 3
    assert log.stats().after_close == 2 and log.stats().lost == 2 and len(lines) == 1
    assert len([r for r in caplog.records if "after close()" in r.getMessage()]) == 1


def test_atexit_is_registered_on_the_first_line_never_before(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[Any] = []
    monkeypatch.setattr(atexit, "register", registered.append)
    monkeypatch.setattr(atexit, "unregister", registered.remove)
    log = pw.AuditLog(lambda line: None)
    model = pw.ProductionModel(lambda x: x, audit=log)
    assert registered == [] and log._writer.thread is None  # no thread, no hook until a line
    model(1)
    model(2)
    assert registered == [log._at_exit]
    log.close()
    assert registered == []


def test_lines_queued_at_exit_are_written_by_the_exit_hook(tmp_path: Path) -> None:
    path = tmp_path / "exit.jsonl"
    script = (
        "import prodwrap as pw\n"
        f"model = pw.ProductionModel(lambda x: x, audit=pw.AuditLog({str(path)!r}))\n"
        "for i in range(2000):\n"
        "    model(i)\n"
        # no close(): the interpreter's exit flushes
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert [line["output"] for line in read_lines(path)] == list(range(2000))


def test_configuration_errors_name_the_setting() -> None:
    for kwargs, setting in [
        ({"sink": 42}, "AuditLog.sink"),
        ({"sink": print, "redact": ["ok", ""]}, "AuditLog.redact"),
        ({"sink": print, "sample": 0}, "AuditLog.sample"),
        ({"sink": print, "sample": 1.5}, "AuditLog.sample"),
        ({"sink": print, "sample": True}, "AuditLog.sample"),
        ({"sink": print, "salt": b""}, "AuditLog.salt"),
        ({"sink": print, "salt": b"x" * 65}, "AuditLog.salt"),
        ({"sink": print, "max_queue": 0}, "AuditLog.max_queue"),
        ({"sink": print, "max_wait": -1}, "AuditLog.max_wait"),
        ({"sink": print, "max_wait": float("nan")}, "AuditLog.max_wait"),
    ]:
        with pytest.raises(pw.ConfigurationError, match=re.escape(setting)):
            pw.AuditLog(**kwargs)
    with pytest.raises(pw.ConfigurationError, match=r"audit= takes a pw\.AuditLog"):
        pw.ProductionModel(lambda x: x, audit="predictions.jsonl")  # type: ignore[arg-type]
    assert pw.AuditLog(print, redact="ssn").redact == {"ssn"}  # one name given bare
    assert repr(pw.AuditLog("a.jsonl", redact=["b", "a"])) == "AuditLog('a.jsonl', redact=['a', 'b'], sample=1.0)"


def test_an_unpriced_call_says_so_in_its_line_and_tiny_costs_have_no_exponent(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log = pw.AuditLog(path)
    price = pw.PerToken(input="0.15", output="0.60")
    replies = iter([{"text": "no usage"}, {"usage": {"prompt_tokens": 1, "completion_tokens": 0}}])
    model = pw.ProductionModel(lambda x: next(replies), cost=price, audit=log)
    first, second = model.predict_detailed(1), model.predict_detailed(2)
    log.close()
    assert first.unpriced and not second.unpriced  # Prediction.unpriced, from its charges
    lines = read_lines(path)
    assert [line["unpriced"] for line in lines] == [True, False]
    assert lines[1]["cost"] == "0.00000015" and lines[1]["charges"][0]["amount"] == "0.00000015"


def test_a_lone_surrogate_is_written_escaped_and_a_baseexception_in_a_sink_loses_only_its_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.jsonl"
    log = pw.AuditLog(path)
    model = pw.ProductionModel(lambda x: x, audit=log)
    assert model({"text": "x\udcff"}) == {"text": "x\udcff"}
    log.close()
    assert read_lines(path)[0]["input"] == {"text": "x\udcff"}  # one line per prediction, escaped

    class Fatal(BaseException):
        pass

    calls: list[int] = []

    def sink(line: dict[str, Any]) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise Fatal

    log = pw.AuditLog(sink)
    model = pw.ProductionModel(lambda x: x, audit=log)
    for i in range(3):
        model(i)
    log.close()
    assert len(calls) == 3  # the writer lived on
    assert (log.stats().written, log.stats().failed) == (2, 1)


def test_a_line_holds_the_input_and_output_as_they_were_when_the_call_ended() -> None:
    """The writer is held on the first line, so the second call's line is built after its
    caller has changed both its input and its output."""
    hold, lines = threading.Event(), []

    def sink(line: dict[str, Any]) -> None:
        if not lines:
            hold.wait(10)
        lines.append(line)

    class Out(pydantic.BaseModel):
        score: float
        labels: list[str]

    log = pw.AuditLog(sink)
    model = pw.ProductionModel(lambda x: {"score": x["v"], "label": "raw"}, audit=log)
    typed = pw.ProductionModel(lambda a: Out(score=a.age, labels=["raw"]), input=Applicant, audit=log)
    model({"v": 0.1})  # (its line holds the writer)
    given = {"v": 0.42}
    out = model(given)
    out["label"], given["v"] = "edited by caller", -1
    answer = typed(applicant())
    answer.labels.append("edited by caller")
    hold.set()
    assert log.flush(10)
    assert (lines[1]["input"], lines[1]["output"]) == ({"v": 0.42}, {"score": 0.42, "label": "raw"})
    assert lines[2]["output"] == {"score": 40.0, "labels": ["raw"]}
    log.close()
