"""The shadows on the observer seam: one stage for every ``pw.Shadow`` of a model.

On the success path the stage samples in ``fast_admit`` (the validated input and the
pass-through arguments are there): an unsampled call costs one draw and nothing else; a
sampled one leaves a :class:`Pending` note (the input, the arguments, when the attempt
began) in a context variable, which ``fast_observe`` takes once the output is in and hands
to each chosen experiment. The note is a stack (each holds the one it covered), so a model
called inside another's predict never takes its caller's; the context variable keeps the
concurrent calls of threads and tasks apart. On the general path, ``observe`` reads the
record (taking the note when the call began on the success path, sampling otherwise).
Only calls the primary served (outcome ``"ok"``) are compared: a sampled call served by a
fallback or the cache, or failed, is counted as ``not_served``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from decimal import Decimal
from time import perf_counter
from typing import TYPE_CHECKING, Any, NamedTuple

from prodwrap._audit_lines import Redactor
from prodwrap._stage import Seam, Stage
from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import seconds
from prodwrap.rollout._shadow_run import STRICT, Experiment

if TYPE_CHECKING:
    from prodwrap._record import CallRecord
    from prodwrap._stage import Build
    from prodwrap.rollout.shadow import Shadow


class Pending(NamedTuple):
    """A sampled success-path call, between ``fast_admit`` and the finish."""

    stage: ShadowStage
    value: Any
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    began: float  # perf_counter() at admission
    chosen: tuple[Experiment, ...]
    covered: Pending | None  # the note this one covers (an outer call's), restored after


_PENDING: ContextVar[Pending | None] = ContextVar("prodwrap_shadow", default=None)


class ShadowStage(Stage):
    """Every shadow of one model (``shadow=``), after cost and drift, before audit."""

    name = "shadow"
    seam = Seam.OBSERVER
    section = "shadow"

    def __init__(self, experiments: tuple[Experiment, ...]) -> None:
        self.experiments = experiments
        self.by_name = {e.name: e for e in experiments}
        get, put = _PENDING.get, _PENDING.set
        stage = self

        if len(experiments) == 1:
            only = (experiments[0],)
            sampled, room = experiments[0].sampled, experiments[0].room

            def fast_admit(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
                if sampled(value) and (STRICT.on or room()):  # (full: skipped here, nothing made)
                    put(Pending(stage, value, args, kwargs, perf_counter(), only, get()))
                return True

        else:

            def fast_admit(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
                chosen = tuple(e for e in experiments if e.sampled(value) and (STRICT.on or e.room()))
                if chosen:
                    put(Pending(stage, value, args, kwargs, perf_counter(), chosen, get()))
                return True

        def fast_undo() -> None:  # a later stage sent the call elsewhere: forget the note
            note = get()
            if note is not None and note.stage is stage:
                put(note.covered)

        def fast_observe(value: Any, out: Any) -> None:
            note = get()
            if note is None or note.stage is not stage or note.value is not value:
                return
            put(note.covered)
            latency = perf_counter() - note.began
            for experiment in note.chosen:
                experiment.dispatch(value, out, note.args, note.kwargs, latency)

        self.fast_admit = fast_admit
        self.fast_undo = fast_undo
        self.fast_observe = fast_observe

    def observe(self, call: CallRecord) -> None:
        note = _PENDING.get()
        chosen: Sequence[Experiment] | None = None
        if note is not None and note.stage is self and note.value is call.input:
            _PENDING.set(note.covered)
            chosen = note.chosen
        if chosen is None and call.valid_input and not call.admitted:  # one the success path's hook never saw
            chosen = [e for e in self.experiments if e.sampled(call.input)]
        if call.outcome != "ok" or call.served_by != "primary" or not call.valid_input:
            for experiment in chosen or ():  # (a canary's candidate served it, a fallback, the cache)
                experiment.tally.count("not_served")
            return
        for experiment in chosen or ():
            experiment.dispatch(call.input, call.value, call.args, call.kwargs, call.latency)

    # -- reading ----------------------------------------------------------------------------

    def report(self, name: str | None = None, wait: float | None = 0.0) -> Any:
        """One shadow's report (``name``), or with several shadows a dict by name."""
        if wait is not None:
            wait = seconds("shadow_report", "wait", wait, zero=True, infinite=True)
            if wait == math.inf:
                wait = None
        if name is not None:
            experiment = self.by_name.get(name)
            if experiment is None:
                raise KeyError(f"no shadow named {name!r}; shadows: {', '.join(self.by_name)}")
            chosen: Sequence[Experiment] = (experiment,)
        else:
            chosen = self.experiments
        if wait is None or wait > 0:
            for experiment in chosen:
                experiment.drain(wait)
        if name is not None or len(chosen) == 1:
            return chosen[0].report()
        return {e.name: e.report() for e in chosen}

    def stats(self) -> Any:
        return self.report()

    def close(self, timeout: float | None = None) -> None:  # (a shadow's queued runs are dropped: no wait)
        for experiment in self.experiments:
            if not getattr(experiment, "handed_over", False):  # (a newer pipeline's shares its worker)
                experiment.close()


def compile_shadows(shadows: Sequence[Shadow], build: Build, stages: Sequence[Stage]) -> tuple[ShadowStage, ...]:
    """The one stage of a model's shadows (none for none).

    Raises:
        ConfigurationError: something given to ``shadow=`` is not a ``pw.Shadow``, two have
            the same name, or an async candidate is given to a sync model.
    """
    from prodwrap.rollout.shadow import Shadow

    if not shadows:
        return ()
    for shadow in shadows:
        if not isinstance(shadow, Shadow):
            raise ConfigurationError(f"shadow= takes pw.Shadow (or a list of them), got {shadow!r}")
    names = [s.label for s in shadows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigurationError(f"shadow= has two candidates named {twice[0]!r}: give each Shadow(name=...)")
    redactor = new_redactor(build.settings)
    primary_cost = _mean_cost_of(stages)
    experiments = [Experiment(s, build, redactor, _costs(primary_cost, _candidate_cost(s.candidate))) for s in shadows]
    return (ShadowStage(tuple(experiments)),)


def new_redactor(settings: Any) -> Redactor:
    """How comparisons show values: the model's specs' sensitive fields hashed (a fresh salt)."""
    from prodwrap.policies.validation import _sensitive

    found_in = _sensitive(getattr(settings, "input", None))
    found_out = _sensitive(getattr(settings, "output", None))
    return Redactor(found_in.names | found_out.names, os.urandom(16), found_in.everywhere, found_out.everywhere)


def _costs(primary: Callable[[], Any], candidate: Callable[[], Any]) -> Callable[[], tuple[Any, Any]]:
    return lambda: (primary(), candidate())


def _mean_cost_of(stages: Any) -> Any:
    """``() -> Decimal | None``: the mean cost per call of the model these stages are of."""
    from prodwrap.cost._stage import meter_of

    charger = meter_of(stages)
    if charger is None:
        return lambda: None
    meter = charger.meter

    def mean() -> Decimal | None:
        from prodwrap.cost._money import money

        meter.ledger.drain()
        if not meter.calls:
            return None
        return money(int((Decimal(meter.units) / meter.calls).to_integral_value()))

    return mean


def _candidate_cost(candidate: Any) -> Any:
    from prodwrap._model import ProductionModel

    if not isinstance(candidate, ProductionModel):
        return lambda: None

    def cost() -> Any:  # (read at report time: the candidate's engine is the one it has then)
        return _mean_cost_of(candidate._engine.stages)()

    return cost
