from __future__ import annotations

from collections.abc import Iterator

import pytest

from prodwrap.testing import FakeClock, no_sleep


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """A fake clock for every model in the test: retry waits cost no real time."""
    with no_sleep() as fake:
        yield fake
