"""Scripted variants for the rollout tests: seeded failures, counted calls."""

from __future__ import annotations

import random
import threading
from typing import Any


class Scripted:
    """A predict that fails a seeded share of its calls and counts them (thread-safe)."""

    def __init__(self, name: str, value: Any, fail: float = 0.0, seed: int = 0) -> None:
        self.__name__ = name
        self.value = value
        self.fail = fail
        self.rng = random.Random(seed)
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, x: Any) -> Any:
        with self.lock:
            self.calls += 1
            failing = self.rng.random() < self.fail
        if failing:
            raise RuntimeError(f"{self.__name__} failed")
        return self.value
