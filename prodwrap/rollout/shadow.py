"""``pw.Shadow``: a candidate runs on the primary's traffic, compared, never served.

GitHub Scientist's semantics, inside the application (DESIGN §3, "Shadow and canary"): once
a call's result is final and the primary served it, the candidate is run with the same
validated input (and the same pass-through arguments) in the background, its output is
compared with the primary's, and the tally is in ``model.shadow_report()``. The primary's
value, latency and exceptions never change: the candidate runs on a bounded executor owned
by the model (threads for a sync candidate, tasks on the caller's event loop for an async
one); when ``max_pending`` runs are pending, a sampled call is skipped and counted, never
waited for. The candidate's exceptions and timeouts are recorded, never raised; so are the
faults of ``compare``, ``ignore``, ``enabled`` and ``on_mismatch`` (a raising ``enabled``
counts as off, a raising ``ignore`` as "not ignored", a raising comparator as a
disagreement).

The stage itself is in ``prodwrap.rollout._shadow_stage``; the candidate run in
``prodwrap.rollout._shadow_run``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import count, fraction, seconds
from prodwrap.rollout._keys import Key, check_key

if TYPE_CHECKING:
    from prodwrap._stage import Build, Stage
    from prodwrap.rollout.compare import Comparator


def candidate_name(candidate: Any) -> str:
    """A candidate's default name: a model's ``name``, else the function's ``__name__``."""
    from prodwrap._model import ProductionModel  # (the model module imports the compiler)

    if isinstance(candidate, ProductionModel):
        return candidate.name
    return str(getattr(candidate, "__name__", None) or type(candidate).__name__)


def _callable_or_none(value: object, what: str) -> None:
    if value is not None and not callable(value):
        raise ConfigurationError(f"Shadow.{what} must be a callable or None, got {value!r}")


@dataclass(frozen=True, slots=True)
class Shadow:
    """Run ``candidate`` on the primary's traffic and compare, never serving it (``shadow=``).

    Args:
        candidate: a callable (sync, or async for an async model) taking what the primary takes,
            or a ``ProductionModel`` (run through its own pipeline: its validation, timeout,
            cost).
        sample: the share of the primary's calls shadowed, in [0, 1] (default 1.0: all): an
            independent draw per call, or with ``key`` the share of key values.
        key: sample deterministically instead: the name of a ``pw.context`` tag (if set) or of
            a field of the validated input (or a function of the input) whose value is hashed,
            so the same customer is always shadowed or never. A call with no such value is not
            shadowed.
        compare: ``compare(primary, candidate) -> bool`` (default ``pw.compare.equal``); see
            ``pw.compare`` for ``close``, ``same_label``, ``top_k``.
        timeout: seconds the candidate may take (None: no limit). An async candidate is
            cancelled then; a sync one cannot be stopped (its thread runs on until it returns)
            and its late output is recorded as a timeout.
        max_pending: candidate runs queued or running at most (default 1000); beyond, a
            sampled call is skipped and counted.
        on_mismatch: ``on_mismatch(input, primary, candidate)``, called (off the primary's
            path) for each mismatch that is not ignored.
        ignore: ``ignore(input, primary, candidate) -> bool``: a known, accepted difference
            (consulted only on a difference; counted as ``ignored``, not as a mismatch).
        enabled: ``enabled() -> bool``, asked per sampled call before anything is dispatched
            (Scientist's ``run_if``): switch the experiment at run time.
        name: the candidate's name in reports (default: its model name or ``__name__``).
        workers: threads running a sync candidate at once (default 4).
        seed: seeds this shadow's own random draws (``sample``), for reproducible tests.

    Raises:
        ConfigurationError: a candidate that is not callable, a ``sample`` outside [0, 1], a
            non-positive ``timeout``, ``max_pending`` or ``workers`` below 1, a callback that is
            not callable, an empty name.
    """

    candidate: Any
    sample: float = 1.0
    key: Key | None = None
    compare: Comparator | None = None
    timeout: float | None = None
    max_pending: int = 1000
    on_mismatch: Callable[[Any, Any, Any], object] | None = None
    ignore: Callable[[Any, Any, Any], bool] | None = None
    enabled: Callable[[], bool] | None = None
    name: str | None = None
    workers: int = 4
    seed: int | None = None

    def __post_init__(self) -> None:
        if not callable(self.candidate):
            raise ConfigurationError(f"Shadow.candidate must be callable or a ProductionModel, got {self.candidate!r}")
        object.__setattr__(self, "sample", fraction("Shadow", "sample", self.sample, zero=True))
        check_key(self.key, "Shadow")
        if self.timeout is not None:
            object.__setattr__(self, "timeout", seconds("Shadow", "timeout", self.timeout, infinite=True))
        for what in ("max_pending", "workers"):
            object.__setattr__(self, what, count("Shadow", what, getattr(self, what)))
        for what in ("compare", "on_mismatch", "ignore", "enabled"):
            _callable_or_none(getattr(self, what), what)
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise ConfigurationError(f"Shadow.name must be a non-empty string, got {self.name!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ConfigurationError(f"Shadow.seed must be an int or None, got {self.seed!r}")

    @property
    def label(self) -> str:
        """The candidate's name in reports: ``name``, else its model name or ``__name__``."""
        return self.name if self.name is not None else candidate_name(self.candidate)

    def stages(self, build: Build) -> Sequence[Stage]:
        """This shadow's stage on the observer seam (several shadows share one: ``shadow=[...]``)."""
        from prodwrap.rollout._shadow_stage import compile_shadows

        return compile_shadows((self,), build, ())

    def describe(self) -> dict[str, Any]:
        def named(fn: object) -> str | None:
            return None if fn is None else str(getattr(fn, "__qualname__", None) or repr(fn))

        key = self.key if self.key is None or isinstance(self.key, str) else named(self.key)
        return {
            "candidate": self.label,
            "sample": self.sample,
            "key": key,
            "compare": named(self.compare) or "equal",
            "timeout": self.timeout,
            "max_pending": self.max_pending,
            "workers": self.workers,
            "on_mismatch": named(self.on_mismatch),
            "ignore": named(self.ignore),
            "enabled": named(self.enabled),
        }
