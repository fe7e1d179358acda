"""The targets a call can be sent to (the primary, a routed candidate, each fallback), how each
is invoked, and the failure reason an exception is counted under."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import IntEnum
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from prodwrap.errors import (
    BudgetExceededError,
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    InputValidationError,
    OutputValidationError,
    PredictionTimeout,
    ProdwrapError,
    RateLimitedError,
)

if TYPE_CHECKING:
    from prodwrap._engine import Engine


class Kind(IntEnum):
    """How a target is invoked."""

    SYNC = 0  # a plain function
    ASYNC = 1  # a coroutine function
    MODEL = 2  # a ProductionModel (applies its own policies)
    CONSTANT = 3  # a pre-validated value (``fn()`` serves it)


# Members as module constants: on the call path an enum member is read as a plain global
# (``Kind.MODEL`` is an attribute lookup on the enum class, several times slower).
SYNC, ASYNC, MODEL, CONSTANT = Kind.SYNC, Kind.ASYNC, Kind.MODEL, Kind.CONSTANT


class Target:
    """The primary or one fallback, compiled: how to invoke it and what it is called."""

    __slots__ = ("fn", "kind", "name", "validated", "version")

    def __init__(self, fn: Any, kind: Kind, name: str, validated: bool, version: str | None = None) -> None:
        self.fn = fn
        self.kind = kind
        self.name = name
        self.validated = validated  # whether the model's output validation applies
        # A routed target's own version (a canary's candidate): the calls routed to it are
        # charged, traced and reported under it. None: the model's version.
        self.version = version


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine (coroutine functions, partials of them,
    instances whose ``__call__`` is a coroutine function, a ``ProductionModel`` of an async
    predict: calling it returns a coroutine)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if getattr(type(fn), "__prodwrap_model__", False):
        return bool(getattr(fn, "is_async", False))
    if inspect.iscoroutinefunction(fn):
        return True
    return not inspect.isroutine(fn) and inspect.iscoroutinefunction(type(fn).__call__)


def refuse_generator(fn: object, model: str, which: str) -> None:
    """A generator function (sync or async) as a predict or fallback is refused at
    construction: calling it returns a generator, not a value, which would be served as the
    output. Raises ``ConfigurationError`` saying how to fix it."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    call = fn if inspect.isroutine(fn) else type(fn).__call__
    if inspect.isasyncgenfunction(call):
        kind, fix = "an async generator function", "`async def predict(x): return [y async for y in stream(x)]`"
    elif inspect.isgeneratorfunction(call):
        kind, fix = "a generator function", "`def predict(x): return list(stream(x))`"
    else:
        return
    raise ConfigurationError(
        f"{model}: {which} is {kind} (it yields): calling it returns a generator, not a value; "
        f"return the value instead, e.g. collect what it yields ({fix})"
    )


NO_INPUT: Any = type("NoInput", (), {"__repr__": lambda self: "<no input>"})()  # x not passed first


def input_name(fn: Callable[..., Any]) -> str | None:
    """The name of the predict's first parameter, under which the input may be passed."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if params and params[0].kind in (params[0].POSITIONAL_OR_KEYWORD, params[0].KEYWORD_ONLY):
        return params[0].name
    return None


def keyword_input(engine: Engine, kwargs: dict[str, Any]) -> Any:
    """The input a call passed by keyword, under the name of the predict's first parameter
    (taken out of ``kwargs``: the rest pass through)."""
    name, model = engine.input_name, engine.name
    if name is None or name not in kwargs:
        raise TypeError(
            f"{model}: missing the input: pass it first, or as {name}=" if name else f"{model}: missing the input"
        )
    return kwargs.pop(name)


COROUTINE = CoroutineType  # an output of this class from a sync target: returned_coroutine()


def returned_coroutine(model: str, target: str, out: Any) -> ConfigurationError:
    """The failed attempt of a sync target that returned a coroutine (``lambda x:
    client.acomplete(x)``): ``out`` is closed (so no "never awaited" warning); the error says
    how to fix it, and is never retried (``policies.retry.NEVER_RETRIED``)."""
    out.close()
    which = "the predict" if target == "primary" else f"fallback {target!r}"
    return ConfigurationError(
        f"{model}: {which} returned a coroutine, but it was given as a sync function, so nothing "
        "awaited it (it was closed): pass an `async def` function (`async def predict(x): return "
        "await acomplete(x)`, not `lambda x: acomplete(x)`), or wrap the call so it returns a value"
    )


def reason_of(exc: BaseException) -> str:
    """The failure reason recorded in stats and metrics for an exception."""
    if not isinstance(exc, ProdwrapError):
        return "exception"  # the user's own (one check for the common case)
    if isinstance(exc, PredictionTimeout):
        return "timeout"
    if isinstance(exc, OutputValidationError):
        return "invalid_output"
    if isinstance(exc, CircuitOpenError):
        return "circuit_open"
    if isinstance(exc, InputValidationError):
        return "invalid_input"
    if isinstance(exc, BulkheadFullError):
        return "bulkhead_full"
    if isinstance(exc, BudgetExceededError):
        return "budget"
    if isinstance(exc, RateLimitedError):
        return "rate_limited"
    return "exception"
