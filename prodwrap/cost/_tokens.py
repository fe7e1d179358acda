"""``pw.PerToken``: token prices, read from the usage an LLM's output reports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prodwrap.cost._models import Charged, Priced
from prodwrap.cost._money import Price, dollars, price, units
from prodwrap.cost._usage import Usage, checked_usage
from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import count

UsageReader = Callable[[Any], "Usage | Mapping[str, Any] | None"]


def _count(value: Any) -> int | None:
    """Tokens of an input when they can be counted without a tokenizer: a list of token ids."""
    if isinstance(value, list | tuple) and all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        return len(value)
    return None


@dataclass(frozen=True, slots=True, eq=True)
class PerToken(Priced):
    """Token prices (USD per ``per`` tokens) read from the usage the output reports.

    Args:
        input: price of an input token not read from the provider's cache.
        output: price of an output token (reasoning tokens are output tokens).
        cached_input: price of an input token read from the cache (default: ``input``).
        cache_write: price of an input token written to the cache (default: ``input``).
        per: how many tokens the prices are for (1_000_000: prices per million).
        max_output_tokens: the most output tokens an attempt can use, for :meth:`estimate`.
        usage: reads the usage from the output (default ``prodwrap.cost.usage_of``: OpenAI
            chat and Responses, Anthropic, as objects or dicts); returns a ``Usage``, a dict
            of one of those shapes, or None (the attempt is then unpriced).
        count_input: counts the input's tokens for :meth:`estimate` (default: a list of
            token ids is counted; other inputs are not).

    Each token is priced once: cached and cache-written tokens are the part of the input
    tokens priced at their own rate, the rest at ``input``. A charge is rounded to the
    pico-dollar (exact when ``price / per`` is a whole number of pico-dollars, as any price
    with up to 6 decimals per million tokens is).
    """

    input: Price
    output: Price
    cached_input: Price | None = None
    cache_write: Price | None = None
    per: int = 1_000_000
    max_output_tokens: int | None = None
    usage: UsageReader | None = None
    count_input: Callable[[Any], int | None] | None = None
    needs_output = True

    def __post_init__(self) -> None:
        rates = []
        for name in ("input", "output", "cached_input", "cache_write"):
            given = getattr(self, name)
            if given is None:
                amount = self.input  # (converted first)
            else:
                amount = price(given, f"PerToken.{name}")
                object.__setattr__(self, name, amount)
            rates.append(units(amount, f"PerToken.{name}"))  # type: ignore[arg-type]
        object.__setattr__(self, "per", count("PerToken", "per", self.per))
        if self.max_output_tokens is not None:
            object.__setattr__(
                self, "max_output_tokens", count("PerToken", "max_output_tokens", self.max_output_tokens, least=0)
            )
        for name in ("usage", "count_input"):
            if getattr(self, name) is not None and not callable(getattr(self, name)):
                raise ConfigurationError(f"PerToken.{name} must be a callable, got {getattr(self, name)!r}")
        object.__setattr__(self, "_rates", tuple(rates))
        exact = all(rate % self.per == 0 for rate in rates)
        object.__setattr__(self, "_each", tuple(rate // self.per for rate in rates) if exact else None)

    _rates: tuple[int, ...] = field(init=False, repr=False, compare=False, default=())
    _each: tuple[int, ...] | None = field(init=False, repr=False, compare=False, default=None)

    def tokens(self, output: Any) -> Usage | None:
        """The usage ``output`` reports, as ``usage=`` (or the default reader) reads it."""
        if self.usage is None:
            return checked_usage(output)  # (a corrupt usage raises: the attempt is unpriced)
        found = self.usage(output)
        return found if found is None or isinstance(found, Usage) else checked_usage(found)

    def charge(self, input: Any, output: Any, error: BaseException | None, seconds: float) -> Charged:
        if error is not None:
            return 0, None, True  # a failed attempt reports no usage
        used = self.tokens(output)
        if used is None:
            return 0, None, True
        cached, written = used.cached_tokens, used.cache_write_tokens
        plain = max(0, used.input_tokens - cached - written)
        each = self._each
        if each is not None:
            return plain * each[0] + used.output_tokens * each[1] + cached * each[2] + written * each[3], used, False
        rates = self._rates
        scaled = plain * rates[0] + used.output_tokens * rates[1] + cached * rates[2] + written * rates[3]
        return (2 * scaled + self.per) // (2 * self.per), used, False  # to the nearest pico-dollar

    def estimated(self, input: Any) -> int | None:
        if self.max_output_tokens is None:
            return None
        counted = _count(input) if self.count_input is None else self.count_input(input)
        if counted is None:
            return None
        scaled = counted * self._rates[0] + self.max_output_tokens * self._rates[1]
        return -(-scaled // self.per)  # rounded up: an estimate is a ceiling

    def describe(self) -> Any:
        out: dict[str, Any] = {"input": dollars(self.input), "output": dollars(self.output)}  # type: ignore[arg-type]
        for name in ("cached_input", "cache_write"):
            value = getattr(self, name)
            if value is not None:
                out[name] = dollars(value)
        out["per"] = self.per
        if self.max_output_tokens is not None:
            out["max_output_tokens"] = self.max_output_tokens
        return {"per_token": out}
