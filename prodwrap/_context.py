"""Per-call context: tags from ``pw.context(...)`` and the deadline seen by ``pw.deadline()``.

Both are ``contextvars``, so they follow the call into the worker threads and tasks that
prodwrap starts (each attempt runs in a copy of the caller's context).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any

from prodwrap import _clock

NO_TAGS: Mapping[str, Any] = MappingProxyType({})  # the tags outside every pw.context (one object)

TAGS: ContextVar[Mapping[str, Any]] = ContextVar("prodwrap_tags", default=NO_TAGS)


class Ever:
    """Whether ``TAGS`` has been set anywhere in the process yet (``set``). Until it has, no
    context holds anything but ``NO_TAGS``, and the compiled success path reads one slot in
    place of ``TAGS.get()``. Never reset: a context copied into a thread or task while tags
    were set keeps them after the ``pw.context`` block that set them has ended."""

    __slots__ = ("set",)

    def __init__(self) -> None:
        self.set = False


EVER = Ever()


def set_tags(tags: Mapping[str, Any]) -> Token[Mapping[str, Any]]:
    """``TAGS.set(tags)``, the only way it is set (``EVER`` is marked first)."""
    EVER.set = True
    return TAGS.set(tags)


class Binding:
    """A deadline in force while one attempt runs (``at``: absolute, on the clock's
    monotonic scale). Made by :func:`bind`.

    It lives in ``DEADLINE`` in the attempt's own context (worker thread or task). A thread or
    task the attempt started inherits that context and may outlive the attempt; once the
    attempt ends (``end()``), the binding is dead and no longer binds anything run there.
    A live binding is a member of ``LIVE``. (It has no ``__init__``: a class without one is
    made four times faster, and the compiled async success path makes one inline as
    :func:`bind` does, then ends it with ``LIVE.discard``: keep ``prodwrap._compiled`` in step.)
    """

    __slots__ = ("at",)

    at: float

    def end(self) -> None:
        """The attempt has ended: the deadline binds nothing any more (idempotent)."""
        LIVE.discard(self)


def bind(at: float) -> Binding:
    """A live binding of the absolute deadline ``at``."""
    binding = Binding()
    binding.at = at
    LIVE.add(binding)
    return binding


# The deadline bindings live right now, process-wide. While it is empty no context can hold a
# live deadline, so the success path skips reading ``DEADLINE`` (a context-variable lookup).
# Adding and discarding are single set operations, atomic under the GIL: no lock.
LIVE: set[Binding] = set()


DEADLINE: ContextVar[Binding | None] = ContextVar("prodwrap_deadline", default=None)


def outer_deadline() -> float | None:
    """The absolute deadline of the attempt this code runs in (a caller's), or None.

    Every entry point reads the caller's deadline through this one function.
    """
    if not LIVE:
        return None
    binding = DEADLINE.get()
    if binding is None or binding not in LIVE:
        return None
    return binding.at


@contextmanager
def within_deadline(at: float) -> Iterator[Binding]:
    """Run the block under the absolute deadline ``at``, as a caller's attempt would."""
    binding = bind(at)
    token = DEADLINE.set(binding)
    try:
        yield binding
    finally:
        DEADLINE.reset(token)
        binding.end()


@contextmanager
def context(**tags: Any) -> Iterator[Mapping[str, Any]]:
    """Tag every prediction made inside the block (and in threads/tasks it starts).

    Tags nest: an inner block adds to (and may override) the outer block's tags. They appear
    in ``Prediction.tags`` and are what cost, budgets, spans and the audit log are keyed by.
    Any value is accepted and kept as given; where a value is a key, one that cannot be
    hashed or compared (a list, a tuple holding one) is keyed by its text, and one whose
    text raises by ``"<TypeName>"`` (:func:`tag_text`), so no tag value breaks a call.

    Example::

        with pw.context(customer="acme", request_id="r-17"):
            model(x)
    """
    merged = MappingProxyType({**TAGS.get(), **tags})
    token = set_tags(merged)
    try:
        yield merged
    finally:
        TAGS.reset(token)


def tag_text(value: Any, show: Callable[[Any], str] = format) -> str:
    """A tag value as the text that keys it (a budget's or rate limit's scope, a ledger's
    total): ``show(value)`` (``format``: what ``f"{value}"`` gives), or ``"<TypeName>"`` when
    that raises. Never raises: a tag value must not break a call."""
    try:
        return show(value)
    except Exception:
        pass
    try:
        return f"<{type(value).__name__}>"
    except Exception:  # (a metaclass whose __name__ raises)
        return "<tag value>"


def current_tags() -> Mapping[str, Any]:
    """The tags in force here (read-only)."""
    return TAGS.get()


def deadline() -> float | None:
    """Seconds left until the nearer of the attempt timeout and the total deadline.

    Call it inside a predict function to pass the remaining time on (to an HTTP client, a
    database query). Returns None when no timeout is set here or in any calling model, and
    0.0 once the deadline has passed.
    """
    at = outer_deadline()
    if at is None:
        return None
    return max(0.0, at - _clock.current.clock.monotonic())
