"""``@pw.traced``: a model whose spans and metrics are set up by the decorator's options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from prodwrap._model import ProductionModel
from prodwrap.decorators import Decorator, _apply

X = TypeVar("X")
P = ParamSpec("P")
R = TypeVar("R")


@overload
def traced(fn: Callable[Concatenate[X, P], R], /) -> ProductionModel[X, P, R]: ...


@overload
def traced(
    *,
    name: str | None = None,
    remote: bool | None = None,
    capture_content: bool | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
) -> Decorator: ...


def traced(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    remote: bool | None = None,
    capture_content: bool | None = None,
    tracer_provider: Any = None,
    meter_provider: Any = None,
) -> Any:
    """Trace and measure a function as a model: ``@pw.traced`` or ``@pw.traced(name="llm",
    remote=True)``. Spans and metrics appear when a provider is installed (every model's
    telemetry is on by default: this decorator names the span and sets its options).

    Only the options given are set: stacked on another decorator, ``@pw.traced(name=...)``
    keeps the ``remote=`` and ``capture_content=`` that one set.

    Args:
        name: the model's name (the span is ``predict {name}``; default the function's name).
        remote: the call reaches another service: CLIENT spans instead of INTERNAL (default
            False).
        capture_content: put the (redacted) input and output on the span (default False).
        tracer_provider, meter_provider: this model's own providers (else a test scope's,
            else the OpenTelemetry globals, read at call time).
    """
    given = {
        "name": name,
        "remote": remote,
        "capture_content": capture_content,
        "tracer_provider": tracer_provider,
        "meter_provider": meter_provider,
    }
    options: dict[str, Any] = {"telemetry": True, **{k: v for k, v in given.items() if v is not None}}
    if fn is not None:
        return _apply(fn, options)

    def decorate(f: Callable[..., Any], /) -> Any:
        return _apply(f, options)

    return decorate
