"""Which providers a model's telemetry uses, read at call time (DESIGN §3 "Telemetry").

The model's own ``tracer_provider=`` / ``meter_provider=``, else the providers a test scope
installed (``prodwrap.testing.capture()``: ``prodwrap._scope.SCOPE``), else the OpenTelemetry
globals. A provider that is the API's default (``ProxyTracerProvider`` before any SDK is set,
``NoOpTracerProvider``, and their meter twins) means "no telemetry": no span, no metric.

:func:`installed` is what every call asks first, so it reads two module attributes of the API
(``opentelemetry.trace._TRACER_PROVIDER`` and ``opentelemetry.metrics._internal._METER_PROVIDER``:
None until a provider is set) instead of calling ``get_tracer_provider()``. Should a future
API release rename them, :data:`FAST` is False and the public getters are used instead.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics as _metrics
from opentelemetry import trace as _trace
from opentelemetry.metrics import _internal as _metrics_state

from prodwrap._scope import SCOPE

FAST = hasattr(_trace, "_TRACER_PROVIDER") and hasattr(_metrics_state, "_METER_PROVIDER")

_NO_TRACING = tuple(
    t for t in (getattr(_trace, "ProxyTracerProvider", None), getattr(_trace, "NoOpTracerProvider", None)) if t
)
_NO_METRICS = tuple(
    t for t in (getattr(_metrics, "NoOpMeterProvider", None), getattr(_metrics_state, "_ProxyMeterProvider", None)) if t
)


def installed() -> bool:
    """Whether a scope or a global provider may be installed (cheap; no provider resolved)."""
    if SCOPE.on:
        return True
    if FAST:
        return _trace._TRACER_PROVIDER is not None or _metrics_state._METER_PROVIDER is not None
    return tracer_provider(None) is not None or meter_provider(None) is not None


def tracer_provider(own: Any) -> Any:
    """The tracer provider a call uses (None: no tracing)."""
    provider = own if own is not None else SCOPE.tracer_provider
    if provider is None:
        provider = _trace._TRACER_PROVIDER if FAST else _trace.get_tracer_provider()
    if provider is None or isinstance(provider, _NO_TRACING):
        return None
    return provider


def meter_provider(own: Any) -> Any:
    """The meter provider a call uses (None: no metrics)."""
    provider = own if own is not None else SCOPE.meter_provider
    if provider is None:
        provider = _metrics_state._METER_PROVIDER if FAST else _metrics.get_meter_provider()
    if provider is None or isinstance(provider, _NO_METRICS):
        return None
    return provider
