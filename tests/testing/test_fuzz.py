"""fuzz() and the strategies without hypothesis installed (it is not a dependency of prodwrap)."""

from __future__ import annotations

import sys

import pydantic
import pytest

import prodwrap as pw
from prodwrap.testing import fuzz


class Row(pydantic.BaseModel):
    x: int


def test_without_hypothesis_fuzz_and_the_strategies_say_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hypothesis", None)  # (what an import of a missing package meets)
    monkeypatch.delitem(sys.modules, "prodwrap.testing.strategies", raising=False)
    with pytest.raises(ModuleNotFoundError, match="need hypothesis: pip install hypothesis"):
        import prodwrap.testing.strategies  # noqa: F401
    with pytest.raises(ModuleNotFoundError, match="need hypothesis: pip install hypothesis"):
        fuzz(pw.ProductionModel(lambda r: r.x, input=Row), 5)
