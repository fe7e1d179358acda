"""The providers every ``capture()`` installs: one span and metric stream, fanned out to every
capture in force when an item is emitted, so nested captures (and captures of concurrent
tests) each see everything emitted while they are in force.

Spans: one process-wide SDK ``TracerProvider`` (made on first use, never shut down) whose
span processor hands each ended span to every capture in ``SCOPE.captures``. Metrics: a
meter provider whose instruments, when recorded, record on the instrument of the same name
of every capture in force (each capture has its own SDK ``MeterProvider`` and in-memory
reader, its instruments made on first record). The SDK is imported on first use only.
"""

from __future__ import annotations

import threading
from typing import Any

from prodwrap._scope import SCOPE

_lock = threading.Lock()
_shared: list[Any] = []  # [tracer provider, meter provider], once made


def providers() -> tuple[Any, Any]:
    """The fan-out tracer and meter providers (made once per process)."""
    with _lock:
        if not _shared:
            from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

            class ToCaptures(SpanProcessor):
                """Each ended span to every capture in force."""

                def on_end(self, span: Any) -> None:
                    for capture in SCOPE.captures:
                        ended = getattr(capture, "span_ended", None)
                        if ended is not None:
                            ended(span)

            tracer_provider = TracerProvider(shutdown_on_exit=False)
            tracer_provider.add_span_processor(ToCaptures())
            _shared.extend((tracer_provider, MeterFanOut()))
        return _shared[0], _shared[1]


class MeterFanOut:
    """A meter provider whose meters record on every capture in force."""

    def get_meter(
        self, name: str, version: str | None = None, schema_url: str | None = None, attributes: Any = None
    ) -> _Meter:
        return _Meter((name, version, schema_url))


class _Meter:
    def __init__(self, key: tuple[Any, ...]) -> None:
        self.key = key

    def __getattr__(self, method: str) -> Any:
        if not method.startswith("create_"):
            raise AttributeError(method)

        def create(name: str, *args: Any, **kwargs: Any) -> _Instrument:
            return _Instrument((*self.key, method, name, args, kwargs))

        return create


class _Instrument:
    """One instrument, recorded on every capture in force (``add``, ``record``, ``set``)."""

    __slots__ = ("spec",)

    def __init__(self, spec: tuple[Any, ...]) -> None:
        self.spec = spec

    def _fan(self, op: str, amount: Any, attributes: Any, kwargs: dict[str, Any]) -> None:
        for capture in SCOPE.captures:
            real = getattr(capture, "instrument", None)
            if real is not None:
                getattr(real(self), op)(amount, attributes, **kwargs)

    def add(self, amount: Any, attributes: Any = None, **kwargs: Any) -> None:
        self._fan("add", amount, attributes, kwargs)

    def record(self, amount: Any, attributes: Any = None, **kwargs: Any) -> None:
        self._fan("record", amount, attributes, kwargs)

    def set(self, amount: Any, attributes: Any = None, **kwargs: Any) -> None:
        self._fan("set", amount, attributes, kwargs)


def make_instrument(meter_provider: Any, fanned: _Instrument) -> Any:
    """The real instrument of ``fanned``, on ``meter_provider`` (a capture's own)."""
    name, version, schema_url, method, instrument, args, kwargs = fanned.spec
    meter = meter_provider.get_meter(name, version, schema_url)
    return getattr(meter, method)(instrument, *args, **kwargs)
