"""The compiled success path: what both drivers run inline when the first attempt succeeds.

It is built from the stages' success-path hooks (``prodwrap._stage``), so a stage's logic is
written once and a model without a stage pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from prodwrap._stage import Stage

if TYPE_CHECKING:
    from prodwrap._engine import Engine


def overrides(stage: Stage, hook: str) -> bool:
    return getattr(type(stage), hook) is not getattr(Stage, hook)


def fast_enough(stage: Stage) -> bool:
    """Whether the success path can serve a stage: it has a success-path hook for every
    general-path hook it overrides (but ``observe``: the finish point then makes a record):
    ``fast_admit`` for ``admit`` and ``before_attempt``, ``fast_attempt`` or ``fast_done`` for
    ``after_attempt`` (or a ``fast_admit`` that counts the success already: ``success_at_admit``;
    or an observer's ``fast_observe`` that does: ``success_at_finish``)."""
    if not stage.fast:
        return False
    if stage.watch is not None:  # its hooks act on the calls its watch takes to the walk
        return True
    if (overrides(stage, "admit") or overrides(stage, "before_attempt")) and stage.fast_admit is None:
        return False
    if (stage.success_at_admit and stage.fast_admit is not None) or stage.success_at_finish:
        return True
    return not (overrides(stage, "after_attempt") and stage.fast_attempt is None and stage.fast_done is None)


class FastPath:
    """The compiled success path both drivers run inline: validate, call, validate the
    output, finish. Built from the stages' success-path hooks. An engine has none (None) when
    a stage needs the walk for every call (``fast=False``, or it may refuse an attempt) and
    for ``batch=True`` (the output's length is checked against the call's input)."""

    __slots__ = (
        "admit",
        "admit_one",
        "attempted",
        "done",
        "finish",
        "finisher",
        "fn",
        "hooked",
        "interrupted",
        "only_done",
        "primary",
        "record",
        "seconds",
        "undo",
        "validate",
        "validate_output",
        "watch",
    )

    def __init__(self, engine: Engine, stages: Sequence[Stage]) -> None:
        self.validate = engine.validate_fast
        self.fn = engine.primary.fn
        self.primary = engine.primary
        self.validate_output = engine.validate_output
        limits = [t for t in (engine.attempt_timeout, engine.total_timeout) if t is not None]
        self.seconds = min(limits, default=None)  # the first attempt's limit
        admitting = [s for s in stages if s.fast_admit is not None]
        self.admit = tuple(s.fast_admit for s in admitting if s.fast_admit is not None)
        self.undo = tuple(s.fast_undo for s in admitting)  # (None where nothing is taken)
        # What an interrupted success-path attempt gives back (a budget settles at the finish instead).
        self.interrupted = tuple(s.fast_undo if s.undo_interrupted else None for s in admitting)
        # One hook alone is called straight from the driver (no loop; nothing to undo after it).
        self.admit_one = self.admit[0] if len(self.admit) == 1 else None
        self.attempted = tuple(s.fast_attempt for s in stages if s.fast_attempt is not None)
        self.done = tuple(s.fast_done for s in stages if s.fast_done is not None)  # no clock read for these
        self.record = engine.finisher.needs_record  # the finish needs a record of the call
        self.hooked = bool(self.attempted or self.done) or self.record  # the end takes finish_fast
        self.only_done = bool(self.done) and not self.attempted and not self.record
        self.finisher = engine.finisher
        self.finish = engine.finisher.finish
        self.watch = engine.watch
