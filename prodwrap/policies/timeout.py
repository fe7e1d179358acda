"""Timeouts: per attempt and for the whole call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import seconds


def _seconds(name: str, value: float | None) -> float | None:
    return None if value is None else seconds("Timeout", name, value)


@dataclass(frozen=True, slots=True)
class Timeout:
    """How long an attempt, and the whole call, may take (seconds).

    Args:
        attempt: limit for each attempt (the primary's retries included).
        total: limit for all primary attempts together, retry waits included. When it runs
            out, the call moves on to the fallback chain (fallbacks are not counted in it).

    ``timeout=0.25`` on a model is ``Timeout(attempt=0.25)``.
    """

    attempt: float | None = None
    total: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "attempt", _seconds("attempt", self.attempt))
        object.__setattr__(self, "total", _seconds("total", self.total))
        if self.attempt is None and self.total is None:
            raise ConfigurationError("Timeout needs attempt= or total= (or both)")
        if self.attempt is not None and self.total is not None and self.attempt > self.total:
            raise ConfigurationError(
                f"Timeout(attempt={self.attempt:g}, total={self.total:g}): an attempt can never take longer than "
                "the total; lower attempt= or raise total="
            )

    @classmethod
    def coerce(cls, value: Timeout | float | None) -> Timeout | None:
        """``timeout=`` as given to a model: seconds, a ``Timeout`` or None."""
        if value is None or isinstance(value, Timeout):
            return value
        return cls(attempt=value)

    def describe(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "total": self.total}
