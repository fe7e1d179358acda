"""Token usage read from every shape the providers return, as SDK objects and as dicts."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pydantic
import pytest

from prodwrap.cost import Usage, usage_of
from prodwrap.cost._usage import UsageError, checked_usage


# Stand-ins for the SDKs' own types (pydantic models with optional fields, as openai's and anthropic's are).
class PromptDetails(pydantic.BaseModel):
    cached_tokens: int | None = None
    audio_tokens: int | None = None


class CompletionDetails(pydantic.BaseModel):
    reasoning_tokens: int | None = None


class CompletionUsage(pydantic.BaseModel):  # openai.types.CompletionUsage
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptDetails | None = None
    completion_tokens_details: CompletionDetails | None = None


class ChatCompletion(pydantic.BaseModel):
    id: str = "chatcmpl-1"
    usage: CompletionUsage | None = None


class InputDetails(pydantic.BaseModel):
    cached_tokens: int


class OutputDetails(pydantic.BaseModel):
    reasoning_tokens: int


class ResponseUsage(pydantic.BaseModel):  # openai.types.responses.ResponseUsage
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: InputDetails
    output_tokens_details: OutputDetails


class AnthropicUsage(pydantic.BaseModel):  # anthropic.types.Usage
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class Message(pydantic.BaseModel):
    content: list[str] = []
    usage: AnthropicUsage


CHAT = {
    "prompt_tokens": 1200,
    "completion_tokens": 300,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 1000},
    "completion_tokens_details": {"reasoning_tokens": 120},
}
RESPONSES = {
    "input_tokens": 900,
    "output_tokens": 50,
    "total_tokens": 950,
    "input_tokens_details": {"cached_tokens": 512},
    "output_tokens_details": {"reasoning_tokens": 20},
}
ANTHROPIC = {
    "input_tokens": 40,
    "output_tokens": 70,
    "cache_read_input_tokens": 2000,
    "cache_creation_input_tokens": 300,
}
EXPECTED = {
    "chat": Usage(1200, 300, cached_tokens=1000, reasoning_tokens=120),
    "responses": Usage(900, 50, cached_tokens=512, reasoning_tokens=20),
    "anthropic": Usage(40 + 2000 + 300, 70, cached_tokens=2000, cache_write_tokens=300),
}


@pytest.mark.parametrize(
    ("shape", "output"),
    [
        ("chat", ChatCompletion(usage=CompletionUsage.model_validate(CHAT))),
        ("chat", CompletionUsage.model_validate(CHAT)),
        ("chat", {"choices": [], "usage": CHAT}),
        ("chat", CHAT),
        ("responses", SimpleNamespace(output_text="hi", usage=ResponseUsage.model_validate(RESPONSES))),
        ("responses", {"output": [], "usage": RESPONSES}),
        ("responses", RESPONSES),
        ("anthropic", Message(usage=AnthropicUsage.model_validate(ANTHROPIC))),
        ("anthropic", {"content": [], "usage": ANTHROPIC}),
        ("anthropic", ANTHROPIC),
    ],
)
def test_every_shape_as_an_object_or_a_dict(shape: str, output: Any) -> None:
    assert usage_of(output) == EXPECTED[shape]


def test_totals_count_every_token_once() -> None:
    assert EXPECTED["chat"].total == 1500
    assert EXPECTED["anthropic"].total == 40 + 2000 + 300 + 70  # cache reads and writes are input too


def test_missing_details_and_none_fields_count_as_zero() -> None:
    bare = ChatCompletion(usage=CompletionUsage(prompt_tokens=10, completion_tokens=5, total_tokens=15))
    assert usage_of(bare) == Usage(10, 5)
    detailed = CompletionUsage(
        prompt_tokens=10, completion_tokens=5, total_tokens=15, prompt_tokens_details=PromptDetails()
    )
    assert usage_of(detailed) == Usage(10, 5)
    no_cache = Message(usage=AnthropicUsage(input_tokens=12, output_tokens=3))  # the cache fields None
    assert usage_of(no_cache) == Usage(12, 3)
    assert usage_of({"usage": {"completion_tokens": 7}}) == Usage(0, 7)


def test_numpy_integers_are_counts() -> None:
    assert usage_of({"prompt_tokens": np.int64(3), "completion_tokens": np.int32(4)}) == Usage(3, 4)


class Raising:
    @property
    def usage(self) -> Any:
        raise RuntimeError("lazy attribute failed")


@pytest.mark.parametrize(
    "output",
    [
        None,
        "text",
        b"bytes",
        42,
        1.5,
        [1, 2],
        {"label": 1},
        {"usage": None},
        {"usage": {"prompt_tokens": "12"}},  # not a count
        {"usage": {"prompt_tokens": -1, "completion_tokens": True}},
        ChatCompletion(usage=None),
        np.zeros(3),
        Raising(),
        SimpleNamespace(usage=SimpleNamespace(tokens=3)),
    ],
)
def test_outputs_without_usage_give_none(output: Any) -> None:
    assert usage_of(output) is None


def test_openai_cache_writes_are_read_from_the_details() -> None:
    details = {"cached_tokens": 20, "cache_write_tokens": 30}
    chat = {"usage": {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": details}}
    responses = {"usage": {"input_tokens": 100, "output_tokens": 5, "input_tokens_details": details}}
    for output in (chat, responses):
        usage = usage_of(output)
        assert usage is not None
        assert (usage.input_tokens, usage.cached_tokens, usage.cache_write_tokens) == (100, 20, 30)


@pytest.mark.parametrize("corrupt", [float("nan"), float("inf"), -5, "10", 2.5, True, np.float64("nan")])
def test_a_corrupt_count_is_no_usage_and_names_its_field(corrupt: Any) -> None:
    output = {"usage": {"prompt_tokens": corrupt, "completion_tokens": 1}}
    assert usage_of(output) is None  # never 0 input tokens
    with pytest.raises(UsageError, match="prompt_tokens="):
        checked_usage(output)


def test_integral_floats_are_counts() -> None:
    assert usage_of({"prompt_tokens": 10.0, "completion_tokens": np.float64(5.0)}) == Usage(10, 5)
    assert usage_of({"input_tokens": 10.0, "output_tokens": 5.0, "cache_read_input_tokens": 2.0}) == Usage(
        12, 5, cached_tokens=2
    )


def test_more_cached_tokens_than_prompt_tokens_is_corrupt() -> None:
    details = {"cached_tokens": 80, "cache_write_tokens": 30}
    chat = {"usage": {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": details}}
    responses = {"usage": {"input_tokens": 100, "output_tokens": 5, "input_tokens_details": {"cached_tokens": 101}}}
    assert usage_of(chat) is None and usage_of(responses) is None
    with pytest.raises(UsageError, match="more than its prompt_tokens=100"):
        checked_usage(chat)
    with pytest.raises(UsageError, match="more than its input_tokens=100"):
        checked_usage(responses)
