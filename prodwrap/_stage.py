"""The seam: how a capability plugs into the pipeline (DESIGN §1, "How a capability plugs in").

A capability is a :class:`Stage`, compiled from its policy when the model is built, on one
of three seams:

- ``ADMISSION``: once per call, after input validation, before routing. ``admit`` may let the
  call go on (None), serve it (:class:`Serve`, a cache hit), refuse it (:class:`Refuse`, a
  budget) or choose its target (:class:`Route`, a canary).
- ``ATTEMPT``: around every attempt inside the walk. ``before_attempt`` may refuse the
  attempt (return the exception, such as ``CircuitOpenError``); ``after_attempt`` hears how
  it went and how long it took (seconds on prodwrap's clock).
- ``OBSERVER``: once per call, after the result is final, at the one finish point every path
  shares. ``observe`` reads the call record; ``keep`` receives the call's ``Prediction``
  when one is built (``needs_prediction=True`` asks for one on every call).

Every hook has a do-nothing default, so a stage overrides only what it uses. The success path
(first attempt succeeds, no deadline from a caller) is compiled from the stages' own hooks
into a :class:`FastPath`: ``fast_admit`` (may the call stay on the success path?),
``fast_attempt`` (a successful attempt and its duration) and ``fast_observe`` (the validated
input and the output). A stage that overrides ``admit`` or ``after_attempt`` without
giving the matching success-path hook, or overrides ``before_attempt`` at all (only the walk
can refuse an attempt), or sets ``fast=False``, has every call taken by the walk; an
observer that overrides ``observe`` without ``fast_observe`` gets a record on the success
path too.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

if TYPE_CHECKING:
    from prodwrap._engine import Target
    from prodwrap._record import CallRecord, Prediction


class Seam(IntEnum):
    """Where a stage plugs in."""

    ADMISSION = 1
    ATTEMPT = 2
    OBSERVER = 3


class Serve(NamedTuple):
    """An admission decision: the call is served with ``value`` without an attempt."""

    value: Any
    outcome: str
    served_by: str


class Refuse(NamedTuple):
    """An admission decision: the call is refused with ``error`` (then the fallbacks serve)."""

    error: Exception
    reason: str


class Route(NamedTuple):
    """An admission decision: this call's attempts go to ``target``."""

    target: Target


Admission = Serve | Refuse | Route


class Stage:
    """A capability compiled into the pipeline. Subclasses set ``name`` and ``seam`` and
    override the hooks they need; the defaults do nothing.

    Attributes:
        name: how ``describe()`` lists the stage (DESIGN §1's order is by this name).
        seam: which seam it plugs into.
        section: the ``pw.Stats`` attribute its ``stats()`` fills (None: none).
        fast: False when the stage must see every call on the general path (the success path
            is then not taken).
        needs_prediction: an observer that keeps every call's ``Prediction`` (audit, capture,
            the user's observers): ``keep`` is called on every call.
    """

    name: ClassVar[str] = "stage"
    seam: ClassVar[Seam] = Seam.OBSERVER
    section: ClassVar[str | None] = None  # the ``pw.Stats`` field its ``stats()`` fills
    fast: bool = True
    needs_prediction: bool = False

    # -- success-path hooks (None: nothing to do there) -----------------------------------------

    fast_admit: Callable[[Any], bool] | None = None
    """``(value) -> bool``: False sends the call to the general path before anything is called."""

    fast_attempt: Callable[[float], object] | None = None
    """``(seconds)``: the first attempt succeeded after ``seconds`` on prodwrap's clock."""

    fast_observe: Callable[[Any, Any], object] | None = None
    """``(value, output)``: a call the primary served on the success path."""

    # -- the general path ------------------------------------------------------------------------

    def admit(self, call: CallRecord, value: Any) -> Admission | None:
        """Admission seam: decide about this call (None: go on)."""
        return None

    def before_attempt(self, call: CallRecord, target: Target) -> Exception | None:
        """Attempt seam: an exception refuses this attempt (it counts as a failed attempt)."""
        return None

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        """Attempt seam: the attempt ended (``error`` None: it succeeded) after ``seconds``."""

    def observe(self, call: CallRecord) -> None:
        """Observer seam: the call is final (``call.outcome``, ``call.value``, ...).

        ``call.input`` is the validated input, or the raw input when validation refused it
        (``call.valid_input`` says which).
        """

    def keep(self, prediction: Prediction) -> None:
        """Observer seam: the call's ``Prediction``, when one is built."""

    def keepers(self) -> tuple[Callable[[Prediction], object], ...]:
        """The callables handed each ``Prediction`` (each guarded on its own by the engine)."""
        return (self.keep,) if type(self).keep is not Stage.keep else ()

    # -- lifecycle and inspection -------------------------------------------------------------

    def stats(self) -> Any:
        """This stage's section of ``model.stats()`` (None: nothing to report)."""
        return None

    def close(self) -> None:
        """Stop what the stage owns (threads, files); idempotent."""


class Observers(Stage):
    """The user's ``observers=[callable, ...]``: each is called with every call's ``Prediction``."""

    name = "observers"
    seam = Seam.OBSERVER
    fast = True
    needs_prediction = True

    def __init__(self, callables: tuple[Callable[[Prediction], object], ...]) -> None:
        self.callables = callables

    def keepers(self) -> tuple[Callable[[Prediction], object], ...]:
        return self.callables


def observer_name(observer: object) -> str:
    """How an observer is named in logs and ``describe()``."""
    return str(getattr(observer, "__qualname__", None) or type(observer).__name__)
