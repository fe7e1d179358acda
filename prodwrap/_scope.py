"""What a test scope installs for every model at once: providers and captures.

``prodwrap.testing.capture()`` installs in-memory OpenTelemetry providers for its scope
(read by every model at call time, after the model's own ``tracer_provider=`` /
``meter_provider=`` and before the OTel globals: DESIGN §3 "Telemetry") and a capture that
the parts of prodwrap hand what they emit while the scope lasts:

=============  ==================================================  ==========================
kind           item                                                emitted by
=============  ==================================================  ==========================
"prediction"   the call's ``pw.Prediction``                        every model's finish point
"drift"        a ``DriftResult`` that drifted (an alert)           the drift monitor
"shadow"       a ``prodwrap.rollout`` comparison record            the shadow stage
"audit"        the audit line (a dict, as written)                 the audit writer
"escalation"   the escalated ``pw.Prediction``                     the escalation stage
=============  ==================================================  ==========================

``SCOPE.on`` is False outside any scope, so a producer pays one attribute read:
``if SCOPE.on: emit("drift", result)``. Scopes nest; the innermost providers win, and every
capture in force receives every item. A capture that raises is counted and logged, never
passed on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from prodwrap._log import Throttle, logger

_faults = Throttle(logger("testing"))


class Capture(Protocol):
    """What receives what prodwrap emits within a scope (one method: a callable's shape)."""

    def add(self, kind: str, item: Any) -> None: ...


class Scope:
    """The providers and captures in force (process-wide, like the clock)."""

    __slots__ = ("captures", "errors", "meter_provider", "on", "tracer_provider")

    def __init__(self) -> None:
        self.on = False  # any capture or provider installed
        self.captures: tuple[Capture, ...] = ()
        self.tracer_provider: Any = None
        self.meter_provider: Any = None
        self.errors = 0  # captures that raised


SCOPE = Scope()
_lock = threading.Lock()


def emit(kind: str, item: Any) -> None:
    """Hand ``item`` to every capture in force (never raises)."""
    deliver(SCOPE.captures, kind, item)


def deliver(captures: tuple[Capture, ...], kind: str, item: Any) -> None:
    """Hand ``item`` to ``captures`` (never raises): those in force when an item was made,
    for a producer that hands it over later, on another thread (the audit writer)."""
    for capture in captures:
        try:
            capture.add(kind, item)
        except Exception as exc:
            SCOPE.errors += 1
            _faults.warning(f"capture:{kind}", "a capture raised %s on %s: %s", type(exc).__name__, kind, exc)


@contextmanager
def scoped(
    capture: Capture | None = None, *, tracer_provider: Any = None, meter_provider: Any = None
) -> Iterator[Scope]:
    """Install ``capture`` and the providers given until the block ends (process-wide)."""
    with _lock:
        saved = (SCOPE.captures, SCOPE.tracer_provider, SCOPE.meter_provider)
        if capture is not None:
            SCOPE.captures = (*SCOPE.captures, capture)
        if tracer_provider is not None:
            SCOPE.tracer_provider = tracer_provider
        if meter_provider is not None:
            SCOPE.meter_provider = meter_provider
        SCOPE.on = True
    try:
        yield SCOPE
    finally:
        with _lock:
            SCOPE.captures, SCOPE.tracer_provider, SCOPE.meter_provider = saved
            SCOPE.on = bool(SCOPE.captures) or SCOPE.tracer_provider is not None or SCOPE.meter_provider is not None
