from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points

import pytest

from prodwrap.testing import FakeClock, no_sleep
from tests.support import BAD_TAGS

# The plugin loads through its pytest11 entry point once prodwrap is installed with it; until
# then (an install of an older checkout in the venv) the suite loads it itself, never twice.
if not any(ep.value == "prodwrap.testing._plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["prodwrap.testing._plugin"]


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """A fake clock for every model in the test: retry waits cost no real time."""
    with no_sleep() as fake:
        yield fake


@pytest.fixture(params=list(BAD_TAGS))
def bad_tag(request: pytest.FixtureRequest) -> tuple[Callable[[], object], str]:
    """A kind of tag value that cannot be hashed, compared or shown: (a maker of fresh ones, its text)."""
    return BAD_TAGS[request.param]
