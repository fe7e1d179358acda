from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from prodwrap._scope import scoped


class Captured:
    """A test capture: what prodwrap emits, by kind."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []

    def add(self, kind: str, item: Any) -> None:
        self.items.append((kind, item))

    def of(self, kind: str) -> list[Any]:
        return [item for k, item in self.items if k == kind]


@pytest.fixture
def captured() -> Iterator[Captured]:
    capture = Captured()
    with scoped(capture):
        yield capture
