from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points

import pytest

from prodwrap.testing import FakeClock, no_sleep

# The plugin loads through its pytest11 entry point once prodwrap is installed with it; until
# then (an install of an older checkout in the venv) the suite loads it itself, never twice.
if not any(ep.value == "prodwrap.testing._plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["prodwrap.testing._plugin"]


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """A fake clock for every model in the test: retry waits cost no real time."""
    with no_sleep() as fake:
        yield fake
