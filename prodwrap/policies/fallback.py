"""Fallbacks: what serves the call when the primary cannot.

A fallback chain is tried in order: plain callables (sync or async), other
``ProductionModel``s (which apply their own policies) and ``pw.Constant(value)``. Every
fallback's output goes through the model's output validation; a ``Constant`` is validated
once, when the model is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Constant:
    """A fallback that always returns ``value`` (validated once, at model construction).

    Args:
        value: the output to serve.
        name: how it appears in ``Prediction.served_by`` (default ``"constant"``).
    """

    value: Any
    name: str = "constant"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.value


def fallback_name(fallback: object) -> str:
    """The name a fallback is known by in ``served_by``, stats and errors."""
    if isinstance(fallback, Constant):
        return fallback.name
    name = getattr(fallback, "name", None)  # a ProductionModel
    if isinstance(name, str):
        return name
    return str(getattr(fallback, "__name__", None) or type(fallback).__name__)
