"""``replay``: record and replay cassettes of predict calls (issue 14, item 6)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import pydantic
import pytest

import prodwrap as pw
from prodwrap.testing import CassetteMiss, no_sleep, replay


class Prompt(pydantic.BaseModel):
    text: str
    user: Annotated[str, pw.Sensitive]


class Answer(pydantic.BaseModel):
    text: str
    input_tokens: int = 0
    output_tokens: int = 0


class FakeLLM:
    """A stand-in for a remote model: counts its calls, answers differently each time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, prompt: Prompt, temperature: float = 0.0) -> Answer:
        self.calls += 1
        return Answer(text=f"{prompt.text.upper()} #{self.calls} t={temperature}", input_tokens=10, output_tokens=5)


def lines(path: Path) -> list[dict[str, Any]]:
    """The recorded calls (the header line, with the salt, left out)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()][1:]


def test_record_then_replay_offline_with_the_same_outputs(tmp_path: Path) -> None:
    llm = FakeLLM()
    model = pw.ProductionModel(llm, input=Prompt, output=Answer, name="llm")
    path = tmp_path / "cassettes" / "llm.jsonl"
    with replay(path, model, mode="record") as cassette:
        first = model({"text": "hi", "user": "alice@example.com"})
        second = model({"text": "bye", "user": "bob"}, 0.7)
    assert cassette.recorded == 2 and llm.calls == 2
    with replay(path, model, mode="replay") as cassette:
        assert model._engine.fast is not None  # replayed calls keep the compiled success path
        assert model({"text": "hi", "user": "alice@example.com"}) == first
        assert model(Prompt(text="bye", user="bob"), 0.7) == second  # an instance: the same key
    assert llm.calls == 2 and cassette.hits == 2  # nothing was called
    assert isinstance(first, Answer)
    assert model._engine.primary.fn is llm  # the original engine is back


def test_a_miss_in_replay_mode_fails_naming_the_input_with_secrets_masked(tmp_path: Path) -> None:
    model = pw.ProductionModel(FakeLLM(), input=Prompt, name="llm")
    path = tmp_path / "llm.jsonl"
    with replay(path, model, mode="record"):
        model({"text": "hi", "user": "alice"})
    with pytest.raises(CassetteMiss) as info, replay(path, model, mode="replay"):
        model({"text": "unseen", "user": "carol-secret"})
    message = str(info.value)
    assert "llm has no recorded call" in message and "'text': 'unseen'" in message and str(path) in message
    assert "carol-secret" not in message and "'user': '***'" in message
    with pytest.raises(CassetteMiss), replay(path, model, mode="replay"):
        model({"text": "hi", "user": "alice"}, 0.5)  # other pass-through arguments: another call


def test_a_miss_a_fallback_swallowed_still_fails_the_block(tmp_path: Path) -> None:
    model = pw.ProductionModel(FakeLLM(), input=Prompt, name="llm", fallback=pw.Constant(Answer(text="sorry")))
    path = tmp_path / "llm.jsonl"
    with replay(path, model, mode="record"):
        model({"text": "hi", "user": "a"})
    with pytest.raises(CassetteMiss, match="'text': 'new'"), replay(path, model, mode="replay"):
        assert model({"text": "new", "user": "a"}).text == "sorry"


def test_replay_without_a_cassette_fails_at_once(tmp_path: Path) -> None:
    model = pw.ProductionModel(FakeLLM(), input=Prompt, name="llm")
    with pytest.raises(CassetteMiss, match="no cassette"), replay(tmp_path / "none.jsonl", model, mode="replay"):
        pass


def test_auto_replays_what_it_has_and_records_the_rest(tmp_path: Path) -> None:
    llm = FakeLLM()
    model = pw.ProductionModel(llm, input=Prompt, name="llm")
    path = tmp_path / "llm.jsonl"
    with replay(path, model) as cassette:
        a = model({"text": "a", "user": "u"})
    assert cassette.recorded == 1 and llm.calls == 1
    with replay(path, model) as cassette:
        assert model({"text": "a", "user": "u"}) == a
        model({"text": "b", "user": "u"})
    assert (cassette.hits, cassette.recorded, llm.calls) == (1, 1, 2)
    assert [line["input"]["text"] for line in lines(path)] == ["a", "b"]  # appended


def test_repeated_calls_replay_in_order_then_the_last_repeats(tmp_path: Path) -> None:
    model = pw.ProductionModel(FakeLLM(), input=Prompt, output=Answer, name="llm")
    path = tmp_path / "llm.jsonl"
    with replay(path, model, mode="record"):
        recorded = [model({"text": "same", "user": "u"}).text for _ in range(3)]
    assert recorded == ["SAME #1 t=0.0", "SAME #2 t=0.0", "SAME #3 t=0.0"]
    with replay(path, model, mode="replay"):
        replayed = [model({"text": "same", "user": "u"}).text for _ in range(4)]
    assert replayed == [*recorded, recorded[-1]]


def test_sensitive_fields_are_redacted_in_the_cassette(tmp_path: Path) -> None:
    model = pw.ProductionModel(FakeLLM(), input=Prompt, name="llm")
    path = tmp_path / "llm.jsonl"
    with replay(path, model, mode="record", redact=["text"]):
        model({"text": "my card is 4111", "user": "alice@example.com"})
    assert "alice@example.com" not in path.read_text(encoding="utf-8")
    (line,) = lines(path)
    assert line["input"]["user"].startswith("redacted:") and line["input"]["text"].startswith("redacted:")
    assert line["output"]["text"] == "MY CARD IS 4111 #1 t=0.0"  # outputs are what is replayed: kept whole
    with replay(path, model, mode="replay"):  # the key is of the whole input, not of what was written
        assert model({"text": "my card is 4111", "user": "alice@example.com"}).model_dump() == line["output"]


def test_recorded_errors_are_raised_again_so_retries_and_fallbacks_replay_too(tmp_path: Path) -> None:
    outcomes = iter([ConnectionError("reset"), "ok"])

    def flaky(x: int) -> str:
        out = next(outcomes)
        if isinstance(out, Exception):
            raise out
        return out

    model = pw.ProductionModel(flaky, name="flaky", retry=pw.Retry(attempts=3))
    path = tmp_path / "flaky.jsonl"
    with no_sleep(), replay(path, model, mode="record"):
        assert model.predict_detailed(1).attempts == 2
    assert [line.get("error", {}).get("type") for line in lines(path)] == ["builtins:ConnectionError", None]
    with no_sleep(), replay(path, model, mode="replay"):
        prediction = model.predict_detailed(1)
    assert prediction.value == "ok" and prediction.attempts == 2
    assert [type(e).__name__ for e in prediction.errors] == ["ConnectionError"]


def test_cost_stats_and_observers_run_around_replayed_calls(tmp_path: Path) -> None:
    seen: list[pw.Prediction] = []
    model = pw.ProductionModel(
        FakeLLM(),
        input=Prompt,
        output=Answer,
        name="llm",
        cost=pw.PerCall("0.01"),
        observers=[seen.append],
    )
    path = tmp_path / "llm.jsonl"
    with replay(path, model, mode="record"):
        model({"text": "a", "user": "u"})
    with replay(path, model, mode="replay"):
        model({"text": "a", "user": "u"})
    assert model.stats().calls == 2 and model.stats().cost == Decimal("0.02")
    assert len(seen) == 2 and seen[0].value == seen[1].value


def test_without_an_output_spec_the_return_annotation_rebuilds_the_output(tmp_path: Path) -> None:
    def answer(prompt: Prompt) -> Answer:
        return Answer(text=prompt.text)

    model = pw.ProductionModel(answer, input=Prompt, name="llm")
    path = tmp_path / "llm.jsonl"
    with replay(path, model, mode="record"):
        model({"text": "a", "user": "u"})
    with replay(path, model, mode="replay"):
        assert model({"text": "a", "user": "u"}) == Answer(text="a")


def test_async_models_record_and_replay(tmp_path: Path) -> None:
    calls = []

    async def aanswer(prompt: Prompt) -> Answer:
        calls.append(prompt.text)
        return Answer(text=prompt.text * 2)

    model = pw.ProductionModel(aanswer, input=Prompt, output=Answer, name="allm")
    path = tmp_path / "allm.jsonl"
    with replay(path, model, mode="record"):
        assert asyncio.run(model({"text": "a", "user": "u"})).text == "aa"
    with replay(path, model, mode="replay"):
        assert asyncio.run(model({"text": "a", "user": "u"})).text == "aa"
    assert calls == ["a"]


def test_several_models_share_one_cassette(tmp_path: Path) -> None:
    one = pw.ProductionModel(lambda x: x + 1, name="one")
    two = pw.ProductionModel(lambda x: x + 2, name="two")
    path = tmp_path / "both.jsonl"
    with replay(path, one, two, mode="record"):
        assert (one(1), two(1)) == (2, 3)
    with replay(path, one, two, mode="replay") as cassette:
        assert (one(1), two(1)) == (2, 3)
    assert len(cassette) == 2 and cassette.hits == 2


def test_the_block_restores_the_engine_even_when_it_fails(tmp_path: Path) -> None:
    model = pw.ProductionModel(lambda x: x, name="m")
    engine = model._engine
    with pytest.raises(KeyError), replay(tmp_path / "m.jsonl", model, mode="record"):
        raise KeyError("boom")
    assert model._engine is engine


def test_nonsense_is_refused(tmp_path: Path) -> None:
    model = pw.ProductionModel(lambda x: x, name="m")
    with pytest.raises(pw.ConfigurationError, match="mode"), replay(tmp_path / "c", model, mode="both"):  # type: ignore[arg-type]
        pass
    with pytest.raises(pw.ConfigurationError), replay(tmp_path / "c", lambda x: x):
        pass
    with pytest.raises(pw.ConfigurationError), replay(tmp_path / "c"):
        pass
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(pw.ConfigurationError, match="line 1"), replay(tmp_path / "bad.jsonl", model):
        pass


def test_the_key_is_salted_per_cassette_so_the_file_gives_no_secret_away(tmp_path: Path) -> None:
    from prodwrap.policies._canonical import canonical_key

    model = pw.ProductionModel(FakeLLM(), input=Prompt, name="llm")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (a, b):
        with replay(path, model, mode="record"):
            model({"text": "hi", "user": "4711"})
    header = json.loads(a.read_text(encoding="utf-8").splitlines()[0])
    assert header["prodwrap_cassette"] == 1 and len(bytes.fromhex(header["salt"])) == 16
    (line,) = lines(a)
    plain = canonical_key(Prompt(text="hi", user="4711"), "llm", (), {})
    assert line["key"] != plain and line["key"] != lines(b)[0]["key"]  # guesses cannot be tested
    with replay(a, model, mode="replay") as cassette:  # the salt is read back
        model({"text": "hi", "user": "4711"})
    with replay(a, model, mode="auto") as cassette:
        model({"text": "hi", "user": "4711"})
        model({"text": "new", "user": "1"})
    assert (cassette.hits, cassette.recorded) == (1, 1) and len(lines(a)) == 2


def test_an_old_cassette_without_a_header_replays_but_auto_refuses_it(tmp_path: Path) -> None:
    from prodwrap.policies._canonical import canonical_key

    model = pw.ProductionModel(lambda x: x * 2, name="m")
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"model": "m", "key": canonical_key(3, "m", (), {}), "input": 3, "output": 6}) + "\n")
    with replay(old, model, mode="replay"):
        assert model(3) == 6
    with pytest.raises(pw.ConfigurationError, match="no salt header"), replay(old, model, mode="auto"):
        pass


def test_a_recorded_error_message_has_the_inputs_secrets_masked(tmp_path: Path) -> None:
    class Req(pydantic.BaseModel):
        prompt: str
        api_key: pydantic.SecretStr
        user: Annotated[str, pw.Sensitive]

    def llm(r: Req) -> str:  # as SDKs often echo the request
        raise PermissionError(f"invalid key {r.api_key.get_secret_value()!r} for {r.user}, prompt {r.prompt}")

    model = pw.ProductionModel(llm, name="llm", input=Req, fallback=pw.Constant("x"))
    path = tmp_path / "c.jsonl"
    with replay(path, model, mode="record"):
        model({"prompt": "hi there", "api_key": "sk-live-abcdef", "user": "alice@example.com"})
    text = path.read_text(encoding="utf-8")
    assert "sk-live-abcdef" not in text and "alice@example.com" not in text
    (line,) = lines(path)
    assert line["error"]["message"] == "invalid key '**********' for **********, prompt hi there"


class APIStatusError(Exception):  # shaped like openai's / httpx's errors
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class Response:
    status_code = 429


class WithResponse(Exception):
    def __init__(self, message: str, *, response: Any) -> None:  # cls(message) cannot rebuild it
        super().__init__(message)
        self.response = response
        self.retry_after = 0.5


@pytest.mark.parametrize(
    "error", [APIStatusError("Service Unavailable", status_code=503), WithResponse("slow down", response=Response())]
)
def test_replayed_errors_keep_the_attributes_retries_read(tmp_path: Path, error: Exception) -> None:
    state = {"n": 0}

    def llm(prompt: str) -> str:
        state["n"] += 1
        if state["n"] == 1:
            raise error
        return prompt.upper()

    model = pw.ProductionModel(llm, name="llm", retry=3, fallback=pw.Constant("FALLBACK"))
    path = tmp_path / "c.jsonl"
    with no_sleep(), replay(path, model, mode="record"):
        assert model.predict_detailed("hi").attempts == 2
    with no_sleep(), replay(path, model, mode="replay"):
        p = model.predict_detailed("hi")
    assert (p.value, p.outcome, p.attempts) == ("HI", "ok", 2)
    (replayed,) = p.errors
    if isinstance(error, APIStatusError):
        assert type(replayed) is APIStatusError and replayed.status_code == 503
    else:
        assert getattr(replayed, "retry_after", None) == 0.5 and replayed.response.status_code == 429  # type: ignore[attr-defined]


def test_a_promote_inside_the_block_stands_after_it(tmp_path: Path) -> None:
    model = pw.ProductionModel(lambda x: "v1", name="m", version="1")
    with replay(tmp_path / "r.jsonl", model, mode="record"):
        model.stage(lambda x: "v2", version="2", mode="canary", fraction=1.0)
        model.promote()
    assert (model.version, model(1), model.versions[-1].event) == ("2", "v2", "promoted")
    untouched = pw.ProductionModel(lambda x: "u", name="u")
    before = untouched._engine
    with replay(tmp_path / "u.jsonl", untouched, mode="record"):
        assert untouched(1) == "u" and untouched._engine is not before
    assert untouched._engine is before  # a model not swapped in the block gets its own engine back
