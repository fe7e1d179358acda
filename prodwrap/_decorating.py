"""What the decorators refuse when they are applied (``prodwrap.decorators``): an option
given twice by a stack of decorators, and a decorator on a method."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prodwrap._options import DECLARED
from prodwrap.errors import ConfigurationError

if TYPE_CHECKING:
    from prodwrap._model import ProductionModel


def given_once(model: ProductionModel[Any, Any, Any], options: dict[str, Any]) -> None:
    """An option a stacked decorator replaces must not be set already (``@pw.cache`` on
    ``@pw.cache(5)``): which one was meant is unclear. Sequences that extend (fallbacks,
    observers) add up, and the name is always set (the function's by default)."""
    given, adding = model._settings.given(), model._settings.of(options).given()
    twice = [key for key in adding if key != "name" and DECLARED[key].merge == "replace" and key in given]
    if twice:
        listed = ", ".join(f"{key}=" for key in twice)
        raise ConfigurationError(
            f"{model.name}: {listed} given twice by stacked decorators (the same decorator applied twice?): "
            "give each option once, or replace it with model.with_options(...)"
        )


def not_a_method(fn: Callable[..., Any]) -> None:
    """A decorator on a method would make a model that is never given ``self``: refused."""
    if not inspect.isfunction(fn):
        return
    params = list(inspect.signature(fn).parameters)
    if params and params[0] == "self":
        raise ConfigurationError(
            f"{fn.__qualname__}: a prodwrap decorator is on a method (its first parameter is self), but a "
            "ProductionModel is not a method descriptor and would never be given self: wrap the bound method "
            "once per instance instead, in __init__: self.predict = pw.ProductionModel(self._predict, ...) "
            "(see docs/index.md)"
        )
