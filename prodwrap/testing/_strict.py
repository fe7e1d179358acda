"""``strict_shadows()``: in tests, a shadow that disagrees fails the test (Scientist's
``raise_on_mismatches``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def strict_shadows() -> Iterator[None]:
    """Until the block ends, every shadow's candidate runs inline, on the caller's thread,
    once the call is final (so the outcome is known when the call returns), and a mismatch
    that is not ignored, or a candidate that raises or runs past its timeout, raises
    ``pw.ShadowMismatchError`` in the caller (the candidate's exception as its ``__cause__``).

    Sampling (``sample``, ``key``, ``enabled``) still applies: give ``sample=1.0`` to check
    every call. Process-wide, like ``no_sleep()``; blocks nest. An async candidate runs on an
    event loop of its own, in a thread the caller waits for.
    """
    from prodwrap.rollout._shadow_run import STRICT

    with STRICT.scope():
        yield
