"""Versions: staging a candidate, promoting it, rolling back, and the history as data.

A model holds one immutable engine. ``stage``, ``promote`` and ``rollback`` compile a new engine
from new settings (the same ``StatsRecorder`` and, by default, the same ledger: the model's
counts and costs go on) and swap it in with one assignment, under a lock that orders the swaps
(it is not on the call path): a call in flight ends on the engine it began with, and calls that
start after the swap run on the new one. The primary's policies keep their stages (``Kept``,
``prodwrap._kept``): the new engine shares them with the old, so an open circuit, a spent
quota and the permits held in flight go on; a promoted candidate gets a primary home of its
own (fresh state: another dependency), and a rollback to the primary it replaced brings that
one's home back. The old engine's rollout stages (canary, shadows, escalation: the new engine
compiled its own) are closed once the swap is done, so no worker thread is left behind; every
other stage of the old engine is left to its calls, since the new engine's stages are the same
or wrap the same monitors, logs and stores.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from prodwrap import _clock
from prodwrap._compile import compile_engine
from prodwrap._kept import Kept
from prodwrap.errors import ConfigurationError
from prodwrap.rollout._guard import ROLLED_BACK

if TYPE_CHECKING:
    from prodwrap._model import ProductionModel
    from prodwrap._options import Settings
    from prodwrap.rollout.canary import CanaryEvent

ROLLOUT_SECTIONS = ("canary", "shadow", "escalation")  # stages a swap compiles afresh: the old ones close


@dataclass(frozen=True, slots=True)
class VersionEvent:
    """One entry of ``model.versions``.

    Attributes:
        version: the version the event is about (None when none was given).
        event: ``"deployed"`` (the model was built), ``"staged"``, ``"promoted"`` or
            ``"rolled_back"`` (by hand, or by the canary's guard: ``by="guard"``).
        role: what that version is, or was until the event: ``"primary"`` or ``"candidate"``.
        mode: ``"canary"`` or ``"shadow"`` for a candidate (None for a primary).
        by: who did it (the ``by=`` argument; ``"guard"`` for an automatic rollback).
        at: wall time, epoch seconds (prodwrap's clock).
        reason: why (the ``reason=`` argument, or the guard's).
    """

    version: str | None
    event: str
    role: str
    mode: str | None
    by: str | None
    at: float
    reason: str | None


class _Staged(NamedTuple):
    """The candidate on trial: how it runs, under which option, as which policy."""

    mode: str
    version: str | None
    candidate: Any
    policy: Any


class Rollouts:
    """A model's versions: what is staged, the primaries before this one, the history."""

    def __init__(self, model: ProductionModel[Any, Any, Any]) -> None:
        self.model = model
        self.lock = threading.Lock()
        self.previous: list[tuple[Any, Settings, Kept]] = []  # the primaries promote() replaced
        settings = model._settings
        now = _clock.current.clock.time()
        self.history = [VersionEvent(settings.version, "deployed", "primary", None, None, now, None)]
        self.staged: _Staged | None = None
        if settings.canary is not None:  # built with canary=: it is the staged candidate
            canary = settings.canary
            version = canary.version if canary.version is not None else _version_of(canary.candidate)
            self.staged = _Staged("canary", version, canary.candidate, canary)
            self.history.append(VersionEvent(self.staged.version, "staged", "candidate", "canary", None, now, None))
            self._watch()

    # -- the operations --------------------------------------------------------------------------

    def stage(
        self,
        candidate: Any,
        version: str | None,
        mode: Literal["shadow", "canary"],
        by: str | None,
        reason: str | None,
        opts: dict[str, Any],
    ) -> None:
        if candidate is self.model or getattr(candidate, "_fn", None) is self.model._fn:
            raise ConfigurationError(f"{self.model.name}: a model cannot be staged as its own candidate")
        if self.model._closed:
            raise ConfigurationError(f"{self.model.name}: the model is closed; stage() would start new workers")
        if mode == "canary":
            from prodwrap.rollout.canary import Canary

            if "fraction" not in opts:
                raise ConfigurationError('stage(mode="canary") needs fraction= (the share of calls it serves)')
            if version is not None:  # the candidate's calls are charged and traced under it
                opts = {**opts, "version": version}
            policy: Any = Canary(candidate, **opts)
        elif mode == "shadow":
            from prodwrap.rollout.shadow import Shadow  # type: ignore[import-not-found,unused-ignore]

            policy = Shadow(candidate, **opts)
        else:
            raise ConfigurationError(f'stage(mode=) is "shadow" or "canary", got {mode!r}')
        with self.lock:
            model = self.model
            settings = self._unstaged(model._settings)
            current = getattr(settings, mode)
            value = (*current, policy) if isinstance(current, tuple) else policy
            self._swap(model._fn, settings.replaced({mode: value}))
            self.staged = _Staged(mode, version if version is not None else _version_of(candidate), candidate, policy)
            self._record(self.staged.version, "staged", "candidate", mode, by, reason)
            if mode == "canary":
                self._watch()

    def promote(self, by: str | None, reason: str | None) -> None:
        with self.lock:
            model, staged = self.model, self.staged
            if staged is None:
                raise ConfigurationError(f"{model.name}: no candidate is staged: stage(candidate, ...) first")
            handle = model.canary
            if handle is not None and handle.state == ROLLED_BACK:
                raise ConfigurationError(
                    f"{model.name}: the guard rolled the candidate back ({handle.stats().reason}): "
                    "rollback() removes it, stage() tries again"
                )
            fn = getattr(staged.candidate, "_fn", staged.candidate)  # a model's own predict
            settings = self._unstaged(model._settings)
            promoted = settings.replaced({"version": staged.version})
            self._swap(fn, promoted, keep=(model._fn, settings, model._kept), kept=model._kept.promoted())
            if handle is not None:
                handle._core.halt("promoted", state="promoted")  # (its listeners hear it)
            self.staged = None
            self._record(staged.version, "promoted", "primary", None, by, reason)

    def rollback(self, by: str | None, reason: str | None) -> None:
        with self.lock:
            model, staged = self.model, self.staged
            if staged is not None:  # the candidate leaves; the primary stays
                self._swap(model._fn, self._unstaged(model._settings))
                self.staged = None
                self._record(staged.version, "rolled_back", "candidate", staged.mode, by, reason)
            elif self.previous:  # the promoted primary leaves; the one before it is back
                gone = model.version
                fn, settings, kept = self.previous[-1]
                self._swap(fn, settings, kept=kept)  # (its own policies' state is back with it)
                self.previous.pop()
                self._record(gone, "rolled_back", "primary", None, by, reason)
            else:
                raise ConfigurationError(f"{model.name}: nothing to roll back (no candidate staged, nothing promoted)")

    # -- helpers -----------------------------------------------------------------------------------

    def _unstaged(self, settings: Settings) -> Settings:
        """``settings`` without the staged candidate's policy."""
        staged = self.staged
        if staged is None:
            return settings
        current = getattr(settings, staged.mode)
        if isinstance(current, tuple):
            return settings.replaced({staged.mode: tuple(p for p in current if p is not staged.policy)})
        return settings.replaced({staged.mode: None})

    def _swap(
        self, fn: Any, settings: Settings, keep: tuple[Any, Settings, Kept] | None = None, kept: Kept | None = None
    ) -> None:
        """Compile, then swap in one assignment; close the rollout stages the new engine dropped.
        (A compile that fails leaves everything as it was.) ``kept``: the new primary's kept
        stages (default: the model's, for the same primary)."""
        model = self.model
        old = model._engine
        kept = model._kept if kept is None else kept
        engine = compile_engine(fn, settings, stats=old.stats, ledger=model.ledger, kept=kept)
        _carry_reports(old, engine)
        if keep is not None:
            if self.previous:  # only the primary just replaced keeps its home (a cache's entries and all)
                earlier, earlier_settings, earlier_kept = self.previous[-1]
                self.previous[-1] = (earlier, earlier_settings, earlier_kept.promoted())
            self.previous.append(keep)
        model._fn, model._settings, model._kept = fn, settings, kept
        model.__wrapped__ = fn
        model._swap(engine)
        for stage in old.stages:
            if stage.section in ROLLOUT_SECTIONS:  # (the new engine compiled its own: no thread is left behind)
                try:
                    stage.close()
                except Exception as exc:  # (a rollout stage's own fault: never the caller's)
                    engine.finisher.failed(stage, exc)

    def _record(self, version: str | None, event: str, role: str, mode: str | None, by: Any, reason: Any) -> None:
        self.history.append(VersionEvent(version, event, role, mode, by, _clock.current.clock.time(), reason))

    def _watch(self) -> None:
        """An automatic rollback goes into the history too (the guard's listener)."""
        handle = self.model.canary
        staged = self.staged
        if handle is None or staged is None:
            return

        def rolled_back(event: CanaryEvent) -> None:
            if event.event == "rolled_back":
                with self.lock:  # (the swaps' lock: a guard's breach never runs under it)
                    self.history.append(
                        VersionEvent(
                            staged.version, "rolled_back", "candidate", "canary", "guard", event.at, event.reason
                        )
                    )

        handle.listeners.append(rolled_back)


def _carry_reports(old: Any, engine: Any) -> None:
    """A shadow the swap keeps (the same ``pw.Shadow``, a constructor's, say) keeps its report
    and its runs: the new pipeline's experiment counts on in the old one's tally and shares
    its worker and tasks, so the runs queued or running at the swap go on, and so does a
    call still in flight on the old pipeline (the old experiment is handed over: closing the
    old pipeline leaves it open; the new one's own worker, unused, is closed here)."""
    before = {id(e.policy): e for stage in old.stages for e in getattr(stage, "experiments", ())}
    for stage in engine.stages:
        for experiment in getattr(stage, "experiments", ()):
            prior = before.get(id(experiment.policy))
            if prior is not None and prior.policy is experiment.policy:
                experiment.tally = prior.tally
                experiment.skipped = prior.tally.skipped
                unused, experiment.worker, experiment.tasks = experiment.worker, prior.worker, prior.tasks
                if unused is not None:
                    unused.close()
                prior.handed_over = True


def _version_of(candidate: Any) -> str | None:
    from prodwrap._model import ProductionModel

    return candidate.version if isinstance(candidate, ProductionModel) else None
