"""``@production`` and the single-purpose decorators.

Each decorator returns a :class:`ProductionModel`. Applied to a function it builds one;
applied to a model (another decorator's result) it derives a model with the option added,
so a stack of decorators is one model with one pipeline, never nested wrappers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Protocol, TypeVar, overload

from prodwrap._model import ProductionModel
from prodwrap.errors import ConfigurationError
from prodwrap.policies.retry import Retry, RetryOn, StopStrategy, WaitStrategy
from prodwrap.policies.timeout import Timeout
from prodwrap.policies.validation import Check

if TYPE_CHECKING:
    import tenacity

    from prodwrap.drift._monitor import DriftMonitor

P = ParamSpec("P")
R = TypeVar("R")
P2 = ParamSpec("P2")  # the decorated function's, where P is already bound
R2 = TypeVar("R2")


class Decorator(Protocol):
    """What the decorator factories return: function (or model) in, ``ProductionModel`` out."""

    def __call__(self, fn: Callable[P, R], /) -> ProductionModel[P, R]: ...


def _apply(fn: Callable[P, R], **options: Any) -> ProductionModel[P, R]:
    if isinstance(fn, ProductionModel):  # stacked: one model, options merged (fallbacks extend)
        return fn._stacked(options)
    return ProductionModel(fn, **options)


@overload
def production(fn: Callable[P, R], /) -> ProductionModel[P, R]: ...


@overload
def production(*, name: str | None = None, **options: Any) -> Decorator: ...


def production(fn: Callable[P, R] | None = None, /, **options: Any) -> ProductionModel[P, R] | Decorator:
    """Make a function a :class:`ProductionModel`; takes every keyword the model takes.

    Usable bare (``@pw.production``) or with options (``@pw.production(timeout=0.5)``). The
    name defaults to the function's ``__name__``.
    """
    if fn is not None:
        return _apply(fn, **options)

    def decorate(f: Callable[P2, R2]) -> ProductionModel[P2, R2]:
        return _apply(f, **options)

    return decorate


def _bare(decorator: str, fn: object, usage: str) -> None:
    """Decorators whose options have no defaults refuse bare use at decoration time."""
    if fn is not None:
        raise ConfigurationError(f"@pw.{decorator} needs options: {usage}")


def validate(
    fn: object = None,
    /,
    *,
    input: Any = None,
    output: Any = None,
    check: Check | Sequence[Check] | None = None,
    on_invalid: Literal["raise", "fallback"] | None = None,
) -> Decorator:
    """Validate the input and/or output (``input=``, ``output=``, ``check=`` of the model)."""
    _bare("validate", fn, "@pw.validate(input=Schema, output=..., check=...)")
    options: dict[str, Any] = {
        k: v
        for k, v in {"input": input, "output": output, "check": check, "on_invalid": on_invalid}.items()
        if v is not None
    }
    if not options:
        raise ConfigurationError("pw.validate needs input=, output= or check=")

    def decorate(f: Callable[P, R]) -> ProductionModel[P, R]:
        return _apply(f, **options)

    return decorate


def timeout(
    seconds: float | Timeout | None = None, /, *, attempt: float | None = None, total: float | None = None
) -> Decorator:
    """Limit each attempt to ``seconds`` (or give ``attempt=``/``total=`` as in ``pw.Timeout``)."""
    if callable(seconds) and not isinstance(seconds, Timeout):
        _bare("timeout", seconds, "@pw.timeout(0.5) or @pw.timeout(attempt=0.5, total=2.0)")
    if seconds is None:
        policy: float | Timeout = Timeout(attempt=attempt, total=total)
    elif attempt is not None or total is not None:
        raise ConfigurationError("pw.timeout takes seconds or attempt=/total=, not both")
    else:
        policy = seconds

    def decorate(f: Callable[P, R]) -> ProductionModel[P, R]:
        return _apply(f, timeout=policy)

    return decorate


@overload
def retry(attempts: Callable[P, R], /) -> ProductionModel[P, R]: ...


@overload
def retry(
    attempts: int | Retry | None = None,
    *,
    on: RetryOn | None = None,
    wait: WaitStrategy | None = None,
    stop: StopStrategy | tenacity.stop.stop_base | None = None,
) -> Decorator: ...


def retry(
    attempts: int | Retry | Callable[P, R] | None = None,
    *,
    on: RetryOn | None = None,
    wait: WaitStrategy | None = None,
    stop: StopStrategy | tenacity.stop.stop_base | None = None,
) -> Decorator | ProductionModel[P, R]:
    """Retry failed attempts: bare ``@pw.retry`` (``pw.Retry()``: 3 attempts, transient
    failures), ``@pw.retry(3)`` or ``@pw.retry(attempts=3, on=..., wait=...)``."""
    if callable(attempts) and not isinstance(attempts, Retry):
        return _apply(attempts, retry=Retry())
    if isinstance(attempts, Retry):
        policy = attempts
    else:
        kwargs: dict[str, Any] = {"on": on, "wait": wait, "stop": stop}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if attempts is not None:
            kwargs["attempts"] = attempts
        elif stop is not None:
            kwargs["attempts"] = None
        policy = Retry(**kwargs)

    def decorate(f: Callable[P2, R2]) -> ProductionModel[P2, R2]:
        return _apply(f, retry=policy)

    return decorate


def fallback(*fallbacks: Any) -> Decorator:
    """Serve from these, in order, when the primary fails: ``@pw.fallback(f1, pw.Constant(v))``."""
    if not fallbacks:
        raise ConfigurationError("pw.fallback needs at least one fallback")

    def decorate(f: Callable[P, R]) -> ProductionModel[P, R]:
        return _apply(f, fallback=list(fallbacks))

    return decorate


def monitored(fn: object = None, /, *, drift: DriftMonitor | None = None) -> Decorator:
    """Watch inputs and output for drift: ``@pw.monitored(drift=pw.DriftMonitor(X_train))``."""
    _bare("monitored", fn, "@pw.monitored(drift=pw.DriftMonitor(reference))")
    if drift is None:
        raise ConfigurationError("@pw.monitored needs drift=pw.DriftMonitor(reference)")

    def decorate(f: Callable[P, R]) -> ProductionModel[P, R]:
        return _apply(f, drift=drift)

    return decorate
