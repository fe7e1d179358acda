"""Per-call context: tags from ``pw.context(...)`` and the deadline seen by ``pw.deadline()``.

Both are ``contextvars``, so they follow the call into the worker threads and tasks that
prodwrap starts (each attempt runs in a copy of the caller's context).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from prodwrap import _clock

_EMPTY: Mapping[str, Any] = MappingProxyType({})

TAGS: ContextVar[Mapping[str, Any]] = ContextVar("prodwrap_tags", default=_EMPTY)
# Absolute deadline on the current clock's monotonic scale, or None when no deadline applies.
DEADLINE: ContextVar[float | None] = ContextVar("prodwrap_deadline", default=None)


class _Live:
    """How many attempts run under a deadline right now, process-wide.

    While it is 0, no context can hold a live deadline, so the success path skips reading
    ``DEADLINE`` (a context-variable lookup). Changed under a lock, on timed paths only. A
    task or thread an attempt started and left running keeps the attempt's deadline in its
    context, but once the attempt has ended that deadline no longer binds nested models.
    """

    __slots__ = ("count", "lock")

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.count += 1

    def exit(self) -> None:
        with self.lock:
            self.count -= 1


LIVE = _Live()


@contextmanager
def within_deadline(at: float) -> Iterator[None]:
    """Run the block under the absolute deadline ``at``, as a caller's attempt would (the
    drivers inline the same steps on their timed paths)."""
    LIVE.enter()
    token = DEADLINE.set(at)
    try:
        yield
    finally:
        DEADLINE.reset(token)
        LIVE.exit()


@contextmanager
def context(**tags: Any) -> Iterator[Mapping[str, Any]]:
    """Tag every prediction made inside the block (and in threads/tasks it starts).

    Tags nest: an inner block adds to (and may override) the outer block's tags. They appear
    in ``Prediction.tags`` and are what cost, budgets, spans and the audit log are keyed by.

    Example::

        with pw.context(customer="acme", request_id="r-17"):
            model(x)
    """
    merged = MappingProxyType({**TAGS.get(), **tags})
    token = TAGS.set(merged)
    try:
        yield merged
    finally:
        TAGS.reset(token)


def current_tags() -> Mapping[str, Any]:
    """The tags in force here (read-only)."""
    return TAGS.get()


def deadline() -> float | None:
    """Seconds left until the nearer of the attempt timeout and the total deadline.

    Call it inside a predict function to pass the remaining time on (to an HTTP client, a
    database query). Returns None when no timeout is set here or in any calling model, and
    0.0 once the deadline has passed.
    """
    at = DEADLINE.get()
    if at is None:
        return None
    return max(0.0, at - _clock.current.clock.monotonic())
