"""The rate limit: client-side token buckets for a dependency's request and token quotas.

``pw.RateLimit(calls=500, per=60.0, tokens=200_000)`` is an API's requests-per-minute and
tokens-per-minute quota kept on this side: buckets of ``calls`` and ``tokens`` per ``per``
seconds, refilled continuously, holding at most the limit (the burst). Every attempt of the
primary takes a permit, retries and hedges included, since each one reaches the dependency.
Tokens are reserved before the attempt (from ``estimate=``, else the running mean of the
usage reported so far) and settled to the usage the output reports once it is back.

Without a permit the attempt waits up to ``max_wait`` seconds, never past the call's deadline
(the walk sleeps on prodwrap's clock, then asks again); then it is refused with
``RateLimitedError``, which is never retried: the fallbacks serve, or the caller gets it. A
wait longer than what is left of the deadline, or of ``max_wait``, is refused at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import amount, seconds
from prodwrap.state import StateStore

if TYPE_CHECKING:
    from prodwrap._stage import Build, Stage
    from prodwrap.cost import Usage

UsageReader = Callable[[Any], "Usage | int | float | None"]
Estimate = float | Callable[[Any], float]


def _amount(name: str, value: object, *, zero: bool = False, least: float | None = None) -> float | None:
    return None if value is None else amount("RateLimit", name, value, zero=zero, least=least)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Token buckets of ``calls`` and/or ``tokens`` per ``per`` seconds (``rate_limit=``).

    Args:
        calls: attempts allowed per ``per`` seconds (None: no request limit).
        per: the period of both limits, in seconds (60.0 for per-minute quotas).
        tokens: LLM tokens (input and output) allowed per ``per`` seconds (None: no token
            limit). The stage then sees every call on the general path (the success path
            cannot read the output's usage).
        max_wait: seconds an attempt may wait for its permit (never past the call's deadline);
            0 refuses at once.
        by: the name of a ``pw.context(...)`` tag: one set of buckets per value of the tag,
            keyed by its text (calls without the tag share one set; a value whose text
            raises is keyed ``"<TypeName>"``).
        store: where the buckets live (default: a ``MemoryStore`` of the model's own); a shared
            store makes one limit for every process using it.
        estimate: tokens reserved for an attempt before it is made: a number, or a callable of
            the validated input (a cost model's estimate plugs in here). Default: the running
            mean of the usage reported so far (0 until some is).
        usage: reads the tokens an output used: a callable of the output returning a
            ``prodwrap.cost.Usage``, a number of tokens, or None (unknown: the reservation
            stands). Default: ``prodwrap.cost.usage_of`` (OpenAI and Anthropic shapes).
    """

    calls: float | None = None
    per: float = 1.0
    tokens: float | None = None
    max_wait: float = 0.0
    by: str | None = None
    store: StateStore | None = None
    estimate: Estimate | None = None
    usage: UsageReader | None = None

    def __post_init__(self) -> None:
        for name in ("calls", "tokens"):  # (least=1: the bucket holds the limit)
            given = getattr(self, name)
            checked = _amount(name, given, least=1)
            object.__setattr__(self, name, given if type(given) is int else checked)  # (an int kept as given)
        object.__setattr__(self, "per", seconds("RateLimit", "per", self.per))
        object.__setattr__(self, "max_wait", seconds("RateLimit", "max_wait", self.max_wait, zero=True))
        if self.calls is None and self.tokens is None:
            raise ConfigurationError("RateLimit needs calls= or tokens= (or both)")
        if self.by is not None and (not isinstance(self.by, str) or not self.by):
            raise ConfigurationError(f"RateLimit.by names a context tag (a str), got {self.by!r}")
        if self.store is not None and not isinstance(self.store, StateStore):
            raise ConfigurationError(f"RateLimit.store must be a StateStore, got {self.store!r}")
        if self.estimate is not None and not callable(self.estimate):
            object.__setattr__(self, "estimate", _amount("estimate", self.estimate, zero=True))
        if self.usage is not None and not callable(self.usage):
            raise ConfigurationError(f"RateLimit.usage must be a callable of the output, got {self.usage!r}")
        if self.estimate is not None and self.tokens is None:
            raise ConfigurationError("RateLimit.estimate reserves tokens: give tokens= as well")

    def stages(self, build: Build) -> list[Stage]:
        from prodwrap.policies._ratelimit_stage import CallLimitStage, TokenLimitStage

        stage = CallLimitStage if self.tokens is None else TokenLimitStage
        return [stage(self, build)]

    def describe(self) -> dict[str, Any]:
        estimate = self.estimate
        return {
            "calls": self.calls,
            "per": self.per,
            "tokens": self.tokens,
            "max_wait": self.max_wait,
            "by": self.by,
            "store": None if self.store is None else type(self.store).__name__,
            "estimate": estimate if estimate is None or isinstance(estimate, float) else _name(estimate),
            "usage": None if self.usage is None else _name(self.usage),
        }


def _name(fn: object) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))


@dataclass(frozen=True, slots=True)
class RateLimitStats:
    """``stats().rate_limit``.

    Attributes:
        permits: permits taken by attempts (given back ones not counted).
        waits: attempts that waited for their permit; ``seconds_waited`` the seconds they
            waited in all, each wait from its start to its end on prodwrap's clock (a wait
            the caller cancelled or interrupted counts what it lasted, not what it planned).
        refusals: attempts refused (``RateLimitedError``).
        tokens_reserved: tokens reserved before attempts; ``tokens_settled`` what the attempts
            that ended were finally charged (their reported usage, else their reservation).
        unreported: successful attempts whose output reported no usage (a ``usage=`` that
            raised or returned nonsense is counted in ``faults`` only).
        faults: faults of the store or of ``estimate``/``usage`` (logged; the attempt went on).
    """

    permits: int
    waits: int
    seconds_waited: float
    refusals: int
    tokens_reserved: int = 0
    tokens_settled: int = 0
    unreported: int = 0
    faults: int = 0


__all__ = ["RateLimit", "RateLimitStats"]
