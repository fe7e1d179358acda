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
capture in force receives every item. Scopes may also end out of order (two asyncio tasks or
threads): each end removes its own entry, wherever it is, so none outlives its block.
A capture that raises is counted and logged, never passed on.
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
_entries: list[tuple[Capture | None, Any, Any]] = []  # every scope in force, innermost last


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
    entry = (capture, tracer_provider, meter_provider)
    with _lock:
        _entries.append(entry)
        _settle()
    try:
        yield SCOPE
    finally:
        with _lock:
            for i in range(len(_entries) - 1, -1, -1):
                if _entries[i] is entry:  # its own entry, wherever it is (never a stale "previous")
                    del _entries[i]
                    break
            _settle()


def _settle() -> None:
    """``SCOPE`` from the entries in force (under ``_lock``)."""
    SCOPE.captures = tuple(capture for capture, _, _ in _entries if capture is not None)
    SCOPE.tracer_provider = next((t for _, t, _ in reversed(_entries) if t is not None), None)
    SCOPE.meter_provider = next((m for _, _, m in reversed(_entries) if m is not None), None)
    SCOPE.on = bool(_entries)
