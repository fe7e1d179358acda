"""``strict_shadows()``: in tests, a shadow that disagrees fails the test (Scientist's
``raise_on_mismatches``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def strict_shadows() -> Iterator[None]:
    """A process-wide switch, like ``no_sleep()``: while the block is open, every shadowed
    call, of any model on any thread (not only the code inside the ``with``), runs its
    candidate inline, on the thread that made the call, once the call is final (so the
    outcome is known when the call returns), and a mismatch that is not ignored, or a
    candidate that raises or runs past its timeout, raises ``pw.ShadowMismatchError`` in that
    call's caller (the candidate's exception as its ``__cause__``).

    Blocks nest, from any threads: the switch is on until the last open one ends. A run
    handed to the background before a block opened stays there and raises nothing. Sampling
    (``sample``, ``key``, ``enabled``) still applies: give ``sample=1.0`` to check every
    call. An async candidate runs on an event loop of its own, in a thread the caller waits
    for.
    """
    from prodwrap.rollout._shadow_run import STRICT

    with STRICT.scope():
        yield
