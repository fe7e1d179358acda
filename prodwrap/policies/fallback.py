"""Fallbacks: what serves the call when the primary cannot.

A fallback chain is tried in order: plain callables (sync or async), other
``ProductionModel``s (which apply their own policies) and ``pw.Constant(value)``. Every
fallback's output goes through the model's output validation; a ``Constant`` is validated
once, when the model is built.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prodwrap.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Constant:
    """A fallback that always returns ``value`` (validated once, at model construction).

    Args:
        value: the output to serve.
        name: how it appears in ``Prediction.served_by`` (default ``"constant"``).
    """

    value: Any
    name: str = "constant"

    def __post_init__(self) -> None:
        if inspect.isroutine(self.value) or isinstance(self.value, type):
            raise ConfigurationError(
                f"pw.Constant({self.value!r}) would serve the function itself; to compute the fallback, "
                "pass the callable as a fallback: fallback=[fn]"
            )
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(f"pw.Constant name must be a non-empty string, got {self.name!r}")


def fallback_name(fallback: object) -> str:
    """The name a fallback is known by in ``served_by``, stats and errors."""
    if isinstance(fallback, Constant):
        return fallback.name
    name = getattr(fallback, "name", None)  # a ProductionModel
    if isinstance(name, str):
        return name
    return str(getattr(fallback, "__name__", None) or type(fallback).__name__)


def fallback_names(fallbacks: Sequence[object]) -> list[str]:
    """The names a chain of fallbacks is known by: each one's :func:`fallback_name`, with a
    ``fallback:`` prefix for the reserved ``primary``, ``candidate`` and ``cache``, and ``#2``,
    ``#3``, ... on repeats."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for fallback in fallbacks:
        name = fallback_name(fallback)
        if name in ("primary", "candidate", "cache"):
            name = f"fallback:{name}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return names
