"""An async attempt's time limit: ``asyncio.timeout``'s semantics, at under half its cost.

``asyncio.timeout`` is an async context manager: a ``Timeout`` object with a state machine,
two coroutines to enter and leave it, a bound method for its timer, and ``loop.time()`` read
twice. Around a predict that returns at once it costs about 4 µs on a 2-core VM, which is
most of a timed async call. An attempt needs less: one timer on the event loop whose
callback is the :class:`Expiry` itself (:func:`arm`), cancelled when the attempt ends
(:func:`disarm`), with what ``asyncio.timeout`` does about cancellation kept exactly:

- when the timer fires it cancels the task; the attempt then ends with ``CancelledError``,
  which is the timeout's only when no other cancel was asked for meanwhile (the task's
  ``uncancel()`` count is back to what it was when the timer was armed);
- once the timer has fired, the cancel it asked for is taken back (``uncancel()``) however the
  attempt ends: returning (a predict that swallowed the cancel), raising, or cancelled, so an
  enclosing ``asyncio.timeout`` or ``TaskGroup`` counts cancels right;
- the predict's own ``TimeoutError`` is a failure of the predict, never taken for ours,
  unless the limit fired first (a client that turns the cancel into a ``TimeoutError``:
  ``asyncio.timeout`` then says ``expired()``, and the attempt timed out);
- a limit already run out when armed cancels before the task's next step (``call_soon``).

A ``CancelledError`` subclass is taken for the timeout's as Python 3.12's ``asyncio.timeout``
takes it (3.11's passes only the class itself).

Both the compiled success path and the drivers' general path (``_drivers._timed``) use it.
"""

from __future__ import annotations

import sys
from typing import Any


class Expiry:
    """One armed time limit: the task it cancels, that task's cancel count when armed, the
    loop's timer, and whether it fired."""

    __slots__ = ("cancelling", "fired", "handle", "task")

    cancelling: int
    fired: bool
    handle: Any  # the event loop's TimerHandle
    task: Any  # the asyncio.Task the attempt runs in

    def __call__(self) -> None:
        """The loop's timer: the attempt ran out of time."""
        self.fired = True
        self.task.cancel()


def arm(seconds: float) -> Expiry:
    """A time limit of ``seconds`` from now (on the loop's clock) for the current task.

    Raises:
        RuntimeError: outside an asyncio task (as ``asyncio.timeout`` does).
    """
    task = sys.modules["asyncio"].current_task()
    if task is None:
        raise RuntimeError("a timed async attempt must run inside an asyncio task")
    expiry = Expiry()
    expiry.task, expiry.cancelling, expiry.fired = task, task.cancelling(), False
    loop = task.get_loop()
    when = loop.time() + seconds
    if when <= loop.time():  # already run out: the cancel lands before the task's next step
        expiry.handle = loop.call_soon(expiry)
    else:
        expiry.handle = loop.call_at(when, expiry)
    return expiry


def timed_out(expiry: Expiry, exc: BaseException) -> bool:
    """The attempt ended with ``exc``: :func:`disarm`, and True when ``exc`` is the limit's
    doing (a ``CancelledError``, or the ``TimeoutError`` a predict turned it into)."""
    return disarm(expiry) and isinstance(exc, (sys.modules["asyncio"].CancelledError, TimeoutError))


def disarm(expiry: Expiry) -> bool:
    """The attempt is over: its timer is cancelled and, if it fired, the cancel it asked for
    taken back. True when it fired and no other cancel came meanwhile: a ``CancelledError``
    (or ``TimeoutError``) the attempt ended with is then the timeout's."""
    expiry.handle.cancel()
    return expiry.fired and expiry.task.uncancel() <= expiry.cancelling
