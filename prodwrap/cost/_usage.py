"""Token usage, read from what an LLM call returns, whichever provider's shape it has.

:func:`usage_of` reads the output's ``.usage`` (``["usage"]`` for a dict), or the output itself, in
the shapes of OpenAI chat completions (``prompt_tokens``, ``completion_tokens``,
``prompt_tokens_details.cached_tokens`` and ``.cache_write_tokens``,
``completion_tokens_details.reasoning_tokens``),
OpenAI Responses (``input_tokens``, ``output_tokens``, ``input_tokens_details.cached_tokens``,
``output_tokens_details.reasoning_tokens``) and Anthropic messages (``input_tokens``,
``output_tokens``, ``cache_read_input_tokens``, ``cache_creation_input_tokens``), as SDK
objects or plain dicts. The counts are normalised into one :class:`Usage`, in which every
part is counted once: Anthropic's ``input_tokens`` leaves cache reads and writes out, so they
are added to :attr:`Usage.input_tokens` here, as OpenAI's ``prompt_tokens`` already includes
its cached tokens.

A count is a non-negative integer (numpy's too), or a float that is one (``10.0``: JSON
decoders and some SDKs give those). A field that is there but is no count (NaN, ±inf, a
negative or fractional number, a string, a bool), or cached and cache-written tokens that add
up to more than the input tokens, is corrupt: :func:`checked_usage` raises
:class:`UsageError` naming it (``PerToken`` leaves the attempt unpriced, never priced at 0
tokens); :func:`usage_of` reports no usage.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """The tokens one call used.

    Attributes:
        input_tokens: every input token (cached ones and cache writes included).
        output_tokens: every output token (reasoning tokens included).
        cached_tokens: the part of ``input_tokens`` read from the provider's prompt cache.
        reasoning_tokens: the part of ``output_tokens`` spent reasoning.
        cache_write_tokens: the part of ``input_tokens`` written to the prompt cache (Anthropic's
            ``cache_creation_input_tokens``).
    """

    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total(self) -> int:
        """Input and output tokens together (what a tokens-per-minute quota counts)."""
        return self.input_tokens + self.output_tokens


def _field(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if type(obj) is dict or isinstance(obj, Mapping):  # (a dict first: the ABC check costs more)
        return obj.get(name)
    return getattr(obj, name, None)


class UsageError(ValueError):
    """An output's usage has a field that is there but is not a count of tokens."""


def _count(obj: Any, name: str) -> int | None:
    """A token count: a non-negative integer (numpy's too, or a float that is one), None when
    the field is not there; raises :class:`UsageError` when it is there and is no count."""
    value = _field(obj, name)
    if value is None:
        return None
    if type(value) is int:
        if value >= 0:
            return value
    elif isinstance(value, bool):
        pass
    elif isinstance(value, numbers.Integral):
        if int(value) >= 0:
            return int(value)
    elif isinstance(value, numbers.Real):
        number = float(value)
        if math.isfinite(number) and number >= 0 and number.is_integer():
            return int(number)  # (10.0: a JSON decoder's count)
    raise UsageError(f"the output's usage has {name}={value!r}, not a count of tokens")


def _checked(usage: Usage, input_name: str) -> Usage:
    if usage.cached_tokens + usage.cache_write_tokens > usage.input_tokens:
        raise UsageError(
            f"the output's usage has {usage.cached_tokens} cached and {usage.cache_write_tokens} cache-written"
            f" tokens, more than its {input_name}={usage.input_tokens}"
        )
    return usage


def _read(usage: Any) -> Usage | None:
    prompt, completion = _count(usage, "prompt_tokens"), _count(usage, "completion_tokens")
    if prompt is not None or completion is not None:  # OpenAI chat completions
        return _detailed(usage, prompt, completion, "prompt", "completion")
    given, produced = _count(usage, "input_tokens"), _count(usage, "output_tokens")
    if given is None and produced is None:
        return None
    read, written = _count(usage, "cache_read_input_tokens"), _count(usage, "cache_creation_input_tokens")
    if read is not None or written is not None:  # Anthropic: input_tokens leaves the cache out
        return Usage(
            (given or 0) + (read or 0) + (written or 0),
            produced or 0,
            cached_tokens=read or 0,
            cache_write_tokens=written or 0,
        )
    return _detailed(usage, given, produced, "input", "output")  # OpenAI Responses (or Anthropic without cache counts)


def _detailed(usage: Any, given: int | None, produced: int | None, side: str, other: str) -> Usage | None:
    """OpenAI's form: ``<side>_tokens`` and ``<other>_tokens``, with the cached and cache-written
    tokens (part of the input's count) in ``<side>_tokens_details`` and the reasoning tokens in
    ``<other>_tokens_details``."""
    details = _field(usage, f"{side}_tokens_details")
    return _checked(
        Usage(
            given or 0,
            produced or 0,
            cached_tokens=_count(details, "cached_tokens") or 0,
            reasoning_tokens=_count(_field(usage, f"{other}_tokens_details"), "reasoning_tokens") or 0,
            cache_write_tokens=_count(details, "cache_write_tokens") or 0,
        ),
        f"{side}_tokens",
    )


def usage_of(output: Any) -> Usage | None:
    """The token usage ``output`` reports (its ``.usage`` / ``["usage"]``, or itself; a
    ``Usage`` is its own), or None when it reports none or a corrupt one (see the module's
    docstring). Never raises for an output of another shape."""
    try:
        return checked_usage(output)
    except UsageError:
        return None


def checked_usage(output: Any) -> Usage | None:
    """:func:`usage_of`, raising :class:`UsageError` (naming the field) for a corrupt usage
    where ``usage_of`` reports none."""
    if output is None or isinstance(output, str | bytes | int | float):
        return None
    if type(output) is Usage:
        return output
    try:
        usage = _field(output, "usage")  # (the usual place: read first)
        found = None if usage is None else _read(usage)
        if found is None:
            found = _read(output)
    except UsageError:
        raise
    except Exception:  # a property that raises, an odd mapping: no usage found
        return None
    return found
