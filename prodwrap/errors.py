"""Exceptions raised by prodwrap for its own conditions.

The user's own exception propagates unchanged when no fallback is configured and
retries are exhausted; prodwrap raises the errors below only for conditions it owns::

    Exception
    ├── ProdwrapError
    │   ├── InputValidationError        (also ValueError)  input failed validation; never retried
    │   ├── OutputValidationError                          an attempt returned an invalid output
    │   ├── PredictionTimeout           (also TimeoutError) an attempt or the call ran out of time
    │   ├── CircuitOpenError                               the circuit breaker refused an attempt
    │   ├── BulkheadFullError                              no concurrency permit was free in time
    │   ├── RateLimitedError                               no rate-limit permit was free in time; never retried
    │   ├── BudgetExceededError                            the cost budget would be exceeded
    │   ├── UnkeyableError              (also TypeError)   a value has no canonical (cache) key
    │   ├── ShadowMismatchError         (also AssertionError) a shadow disagreed, under strict_shadows() (tests)
    │   └── ConfigurationError          (also ValueError)  a policy or option makes no sense; never retried
    └── ExceptionGroup
        └── FallbackExhausted           (also ProdwrapError) every attempt and fallback failed

    UserWarning
    └── ConfigurationWarning                               a setting works but is likely a mistake (a float price)

``InputValidationError`` and ``OutputValidationError`` carry every field error in
``.errors`` (pydantic's list of dicts; ``loc[0]`` is the field name). Values of fields
marked sensitive are never kept, and long values are truncated. The message lists one
error per line, naming the input or the output (``<output>`` for an error about the whole
output).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "BudgetExceededError",
    "BulkheadFullError",
    "CircuitOpenError",
    "ConfigurationError",
    "ConfigurationWarning",
    "FallbackExhausted",
    "InputValidationError",
    "OutputValidationError",
    "PredictionTimeout",
    "ProdwrapError",
    "RateLimitedError",
    "ShadowMismatchError",
    "UnkeyableError",
]


class ProdwrapError(Exception):
    """Base class of every error prodwrap raises for its own conditions."""


def _format_errors(title: str, subject: str, errors: Sequence[dict[str, Any]]) -> str:
    """One line per error. ``subject`` ("input" or "output") names what failed: an error
    about the whole value shows as ``<subject>``, and pydantic's "Input should ..." reads
    "Output should ..." for an output (``.errors`` keeps pydantic's own words)."""
    lines = [f"{title}: {len(errors)} error{'s' if len(errors) != 1 else ''}"]
    for err in errors:
        loc = ".".join(str(part) for part in err.get("loc", ())) or f"<{subject}>"
        msg = str(err.get("msg", ""))
        if subject != "input" and msg.startswith("Input "):
            msg = subject.capitalize() + msg[len("Input") :]
        lines.append(f"  {loc}: {msg} [type={err.get('type', '')}]{_quoted_value(subject, err)}")
    return "\n".join(lines)


def _quoted_value(subject: str, err: dict[str, Any]) -> str:
    """How a message line quotes the rejected value (`` input='...'``, `` value='...'``),
    at its end; "" when the error keeps none."""
    if "input" not in err:
        return ""
    return f" {'input' if subject == 'input' else 'value'}={err['input']!r}"


class _FieldErrors(ProdwrapError):
    title = "validation failed"
    subject = "value"

    def __init__(self, errors: Sequence[dict[str, Any]], *, model: str | None = None) -> None:
        self.errors: list[dict[str, Any]] = list(errors)
        self.model = model
        title = self.title if model is None else f"{model}: {self.title}"
        super().__init__(_format_errors(title, self.subject, self.errors))

    def _quoted(self) -> list[str]:
        """The texts that end the message's lines quoting rejected values: what a span leaves
        out without ``capture_content=True`` (``prodwrap._masking``)."""
        return [text for err in self.errors if (text := _quoted_value(self.subject, err))]


class InputValidationError(_FieldErrors, ValueError):
    """The input failed validation. ``.errors`` lists every problem, not the first only."""

    title = "invalid input"
    subject = "input"


class OutputValidationError(_FieldErrors):
    """An attempt returned an output that failed ``output=`` or ``check=``.

    Inside the pipeline this is a failed attempt (reason ``"invalid_output"``) that goes to
    the fallback chain; it is retried only when ``Retry(on=...)`` names it.
    """

    title = "invalid output"
    subject = "output"


class PredictionTimeout(ProdwrapError, TimeoutError):
    """An attempt (or the whole call) ran past its deadline.

    Attributes:
        timeout: the seconds that were allowed.
    """

    def __init__(self, message: str, *, timeout: float | None = None) -> None:
        super().__init__(message)
        self.timeout = timeout


class CircuitOpenError(ProdwrapError):
    """The circuit breaker refused an attempt: it is open, or half-open with every probe out.

    Never retried; the fallbacks serve if there are any (counted as ``failures["circuit_open"]``).
    """


class BulkheadFullError(ProdwrapError):
    """No concurrency permit became free within the bulkhead's ``max_wait``."""


class RateLimitedError(ProdwrapError):
    """No rate-limit permit (a call, or the tokens it reserves) became free within the rate
    limit's ``max_wait``, or before the call's deadline. Never retried.

    Attributes:
        scope: the bucket that was empty (``"calls"`` or ``"tokens"``, with ``by=``'s tag and value).
        wait: seconds until the bucket would have had the permit (``inf``: never, the amount is
            more than the bucket holds).
    """

    def __init__(self, message: str, *, scope: str = "", wait: float = float("inf")) -> None:
        super().__init__(message)
        self.scope = scope
        self.wait = wait


class BudgetExceededError(ProdwrapError):
    """The call would exceed a cost budget.

    Attributes:
        scope: what the budget applies to (for example ``"customer=acme"``).
        limit: the budget, in USD.
        spent: what was spent in the current window, in USD.
        resets_at: when the window resets (UTC), or None for a lifetime budget.
    """

    def __init__(self, *, scope: str, limit: Decimal, spent: Decimal, resets_at: datetime | None) -> None:
        self.scope = scope
        self.limit = limit
        self.spent = spent
        self.resets_at = resets_at
        resets = "never" if resets_at is None else resets_at.isoformat()
        super().__init__(f"budget exceeded for {scope}: spent {spent} of {limit} USD (resets {resets})")


class UnkeyableError(ProdwrapError, TypeError):
    """A value has no canonical key (``prodwrap.policies.canonical_key``): something in it is
    neither data prodwrap knows how to key (numbers, strings, containers, arrays, pydantic
    models, dataclasses, ...) nor keyed by a function given for it. The message says where in
    the value it is. The cache does not raise it: such a call is not cached (counted in
    ``stats().cache.unkeyable``, logged) and goes on; ``pw.Cache(key=...)`` keys such inputs."""


class ShadowMismatchError(ProdwrapError, AssertionError):
    """Under ``prodwrap.testing.strict_shadows()`` only: a shadow's candidate disagreed with the
    primary, or raised (then it is this error's ``__cause__``). Raised in the caller once the
    call has finished (every observer has run); the primary's output is lost to the caller, as
    a failed assertion is meant to be.

    Attributes:
        comparison: the ``prodwrap.rollout.Comparison`` (candidate name, redacted input,
            primary and candidate outputs, error, latencies).
    """

    def __init__(self, message: str, comparison: Any = None) -> None:
        super().__init__(message)
        self.comparison = comparison


class ConfigurationError(ProdwrapError, ValueError):
    """A policy or option was given a value that makes no sense (raised at construction).

    Also what an attempt fails with when a sync predict or fallback returns a coroutine (which
    only a call shows): nothing would await it; the predict should be an ``async def``. Never
    retried.
    """


class ConfigurationWarning(UserWarning):
    """A setting that works but is probably not what was meant (a float price: not exact)."""


class FallbackExhausted(ProdwrapError, ExceptionGroup[Exception]):
    """Every attempt and every fallback failed; holds every failure, in order."""

    def __new__(cls, message: str, exceptions: Sequence[Exception]) -> FallbackExhausted:
        return super().__new__(cls, message, exceptions)

    def derive(self, excs: Sequence[Exception], /) -> FallbackExhausted:  # type: ignore[override]
        return FallbackExhausted(self.message, excs)
