"""Tools for testing code that uses prodwrap (DESIGN §3, Testing).

- ``no_sleep()`` / :class:`FakeClock`: retry waits, backoff, breaker and budget windows run
  on fake time, instantly.
- ``capture()``: predictions, spans, metrics, charges, drift alerts, shadow comparisons and
  audit lines emitted during a block.
- ``chaos(fn, ...)``, :class:`FlakyFunction`, :class:`AsyncFlaky`: fault injection.
- ``expect_cases``, ``expect_invariant``, ``expect_directional``, ``expect_golden``:
  behavioural checks raising an ``AssertionError`` with a table of the failing cases.
- ``replay(path, model, mode=...)``: record and replay predict calls (cassettes).
- ``fuzz(model, n)`` and ``prodwrap.testing.strategies`` (hypothesis, imported when used).
- ``strict_shadows()``: a shadow mismatch or candidate error raises in the caller.
- A pytest plugin (fixtures ``prodwrap_capture``, ``prodwrap_clock``; ``--prodwrap-update-golden``;
  the ``prodwrap`` marker), registered through the ``pytest11`` entry point.
"""

from prodwrap.testing._calls import wilson_lower
from prodwrap.testing._capture import Captured, Histogram, Point, capture
from prodwrap.testing._chaos import AsyncChaos, AsyncFlaky, Chaos, FlakyFunction, chaos
from prodwrap.testing._clock import FakeClock, no_sleep
from prodwrap.testing._expect import (
    CaseResult,
    Expectation,
    ExpectationFailed,
    expect_cases,
    expect_directional,
    expect_invariant,
)
from prodwrap.testing._fuzz import FuzzResult, fuzz
from prodwrap.testing._golden import expect_golden
from prodwrap.testing._replay import Cassette, CassetteMiss, replay
from prodwrap.testing._strict import strict_shadows

__all__ = [
    "AsyncChaos",
    "AsyncFlaky",
    "Captured",
    "CaseResult",
    "Cassette",
    "CassetteMiss",
    "Chaos",
    "Expectation",
    "ExpectationFailed",
    "FakeClock",
    "FlakyFunction",
    "FuzzResult",
    "Histogram",
    "Point",
    "capture",
    "chaos",
    "expect_cases",
    "expect_directional",
    "expect_golden",
    "expect_invariant",
    "fuzz",
    "no_sleep",
    "replay",
    "strict_shadows",
    "wilson_lower",
]
