"""The pytest plugin (registered through the ``pytest11`` entry point ``prodwrap``).

Fixtures:
    ``prodwrap_capture``: a ``capture()`` in force for the test (``pw.testing.Captured``).
    ``prodwrap_clock``: a ``FakeClock`` installed with ``no_sleep()`` for the test.

Option:
    ``--prodwrap-update-golden``: ``expect_golden`` rewrites its golden files.

Marker:
    ``@pytest.mark.prodwrap(clock=True, capture=False, start=1000.0, wall=None)``: the test
    runs under a fake clock (``clock=True``, the default; ``start``/``wall`` as
    ``FakeClock``'s) and, with ``capture=True``, inside a capture; the same objects are what
    the ``prodwrap_clock`` and ``prodwrap_capture`` fixtures give the test.

Loading it imports ``prodwrap.testing`` only (no OpenTelemetry SDK, no hypothesis).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from prodwrap.testing._capture import Captured, capture
from prodwrap.testing._clock import FakeClock, no_sleep
from prodwrap.testing._golden import UPDATE

MARKER = "prodwrap"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("prodwrap")
    group.addoption(
        "--prodwrap-update-golden",
        action="store_true",
        default=False,
        help="prodwrap: expect_golden rewrites its golden files with the current outputs",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(clock=True, capture=False, start=1000.0, wall=None): run the test under prodwrap's "
        "fake clock (no real sleeping) and, with capture=True, inside prodwrap.testing.capture()",
    )
    if config.getoption("--prodwrap-update-golden", default=False):
        UPDATE[0] = True


def pytest_unconfigure(config: pytest.Config) -> None:
    UPDATE[0] = False


def _marker(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return {}
    if marker.args:
        raise pytest.UsageError(f"@pytest.mark.{MARKER} takes keywords only: clock=, capture=, start=, wall=")
    unknown = set(marker.kwargs) - {"clock", "capture", "start", "wall"}
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.{MARKER}: unknown option(s) {', '.join(sorted(unknown))}")
    return dict(marker.kwargs)


@pytest.fixture
def prodwrap_clock(request: pytest.FixtureRequest) -> Iterator[FakeClock]:
    """A ``FakeClock`` every model uses during the test: sleeps and backoff cost no real time."""
    options = _marker(request)
    clock = FakeClock(start=float(options.get("start", 1000.0)), wall=options.get("wall"))
    with no_sleep(clock):
        yield clock


@pytest.fixture
def prodwrap_capture() -> Iterator[Captured]:
    """What every model emits during the test: predictions, spans, metrics, charges, ..."""
    with capture() as captured:
        yield captured


@pytest.fixture(autouse=True)
def _prodwrap_marker(request: pytest.FixtureRequest) -> None:
    """Applies ``@pytest.mark.prodwrap`` (does nothing for a test without it)."""
    options = _marker(request)
    if not options and request.node.get_closest_marker(MARKER) is None:
        return
    if options.get("clock", True):
        request.getfixturevalue("prodwrap_clock")
    if options.get("capture", False):
        request.getfixturevalue("prodwrap_capture")
