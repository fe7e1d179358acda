"""Token pricing from a real openai ``ChatCompletion`` (built from JSON, no network) and from
the same response as a dict give the same cost."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from openai.types.chat import ChatCompletion

import prodwrap as pw

RESPONSE = json.loads(
    """{
  "id": "chatcmpl-123", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini",
  "choices": [{"index": 0, "finish_reason": "stop", "logprobs": null,
               "message": {"role": "assistant", "content": "Hello!", "refusal": null}}],
  "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 100, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
}"""
)
# 176 uncached x 0.15 + 1024 cached x 0.075 + 300 output x 0.60, per million
EXPECTED = Decimal("0.0000264") + Decimal("0.0000768") + Decimal("0.00018")


def test_a_chat_completion_and_its_dict_cost_the_same() -> None:
    completion = ChatCompletion.model_validate(RESPONSE)
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    seen: list[Any] = [completion, RESPONSE]
    model = pw.ProductionModel(
        lambda i: seen[i], name="llm", cost=pw.PerToken(input="0.15", output="0.60", cached_input="0.075")
    )
    as_object, as_dict = model.predict_detailed(0), model.predict_detailed(1)
    assert as_object.cost == as_dict.cost == EXPECTED
    assert as_object.charges[0].tokens == as_dict.charges[0].tokens == pw.Usage(1200, 300, 1024, 100)
    assert model(0) is completion  # the success path prices it too
    assert model.stats().cost == 3 * EXPECTED and model.stats().unpriced == 0


def test_a_result_without_usage_is_counted_unpriced() -> None:
    bare = ChatCompletion.model_validate({**RESPONSE, "usage": None})
    model = pw.ProductionModel(lambda x: bare, name="llm", cost=pw.PerToken(input="0.15", output="0.60"))
    p = model.predict_detailed(0)
    assert p.cost == 0 and p.charges[0].unpriced and p.charges[0].tokens is None
    model(0)
    stats = model.stats()
    assert stats.unpriced == 2 and stats.cost == 0
    assert "unpriced               2" in model.report()
