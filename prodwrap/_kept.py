"""Whose state a policy keeps: the stages a model's policies compiled to, kept across engines.

``stage``, ``promote`` and ``rollback`` compile a new engine from new settings, but the policies
that guard the primary (cache, bulkhead, retry budget, circuit breaker, hedge, rate limit) and
the budgets hold state a rebuild must not lose: an open circuit, a rate limit's spent quota,
the permits attempts still in flight hold, what each has counted. Their stages are kept here,
by option, and a rebuild reuses the stages of the same policy object compiled for the same
model instead of compiling new ones, so the old engine (its calls in flight) and the new one
share them.

Two homes (DESIGN §3, State, as ``docs/architecture.md`` records the decision):

- ``primary``: what guards the dependency the primary calls. A rebuild for the same primary
  (``stage``, the rollback of a candidate) keeps it; a promoted candidate is another
  dependency and starts with a home of its own (fresh state); a rollback to an earlier primary
  brings that primary's home back with it.
- ``model``: what counts the model's money (the budgets), kept for every primary, as the
  ledger is.

``with_options`` makes a new model, with new homes: fresh state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prodwrap._stage import Build, Stage

MODEL_STATE = frozenset({"budget"})  # the options whose state is the model's, not the primary's


class Kept:
    """A model's kept stages: ``primary`` (this primary's) and ``model`` (every primary's)."""

    __slots__ = ("model", "primary")

    def __init__(self, model: dict[str, Any] | None = None) -> None:
        self.model: dict[str, Any] = {} if model is None else model
        self.primary: dict[str, Any] = {}

    def promoted(self) -> Kept:
        """The homes of a promoted candidate: the model's kept, the primary's fresh."""
        return Kept(self.model)

    def stages(self, key: str, policy: object, build: Build, compile: Callable[[], Sequence[Stage]]) -> list[Stage]:
        """The stages option ``key`` (its value ``policy``) compiles to for ``build``: the ones
        kept for the same policy object and model, else ``compile()``'s, kept from now on."""
        home = self.model if key in MODEL_STATE else self.primary
        same = (build.name,) if key in MODEL_STATE else (build.name, build.version, build.is_async)
        held = home.get(key)
        if held is not None and held[0] is policy and held[1] == same:
            return list(held[2])
        stages = tuple(compile())
        home[key] = (policy, same, stages)
        return list(stages)
