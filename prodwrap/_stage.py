"""The seam: how a capability plugs into the pipeline (DESIGN §1, "How a capability plugs in").

A capability is a :class:`Stage`, compiled from its policy when the model is built, on one
of three seams:

- ``ADMISSION``: once per call, after input validation, before routing. ``admit`` may let the
  call go on (None), serve it (:class:`Serve`, a cache hit), refuse it (:class:`Refuse`, a
  budget) or choose its target (:class:`Route`, a canary).
- ``ATTEMPT``: around every attempt inside the walk, in the stages' order (DESIGN §1:
  bulkhead, retry budget, circuit breaker, hedge, rate limit). ``before_attempt`` may let
  the attempt go on (None), refuse it (return the exception, such as ``CircuitOpenError``),
  ask the driver to wait for a permit (:class:`Wait`) or to sleep and ask again
  (:class:`Pause`). When a later stage refuses, the stages that let the attempt through hear
  ``undo_attempt`` (as does a stage whose pause the call ended in). ``after_attempt`` hears
  how it went and how long it took (seconds on prodwrap's clock); ``call.late`` is then the
  abandoned attempt's job when the caller gave up on it at its deadline
  (``job.then(callback)`` runs when its thread really ends).
- ``OBSERVER``: once per call, after the result is final, at the one finish point every path
  shares. ``observe`` reads the call record; ``keep`` receives the call's ``Prediction``
  when one is built (``needs_prediction=True`` asks for one on every call).

Every hook has a do-nothing default, so a stage overrides only what it uses. The success path
(first attempt succeeds, no deadline from a caller) is compiled from the stages' own hooks
into a :class:`FastPath`: ``fast_admit`` (may the call stay on the success path? an
attempt stage may take its permit there, and gives it back in ``fast_undo`` when a later
hook says no),
``fast_attempt`` (a successful attempt and its duration) and ``fast_observe`` (the validated
input and the output). A stage that overrides ``admit`` or ``after_attempt`` without
giving the matching success-path hook (``fast_admit`` for ``before_attempt`` too;
``fast_attempt`` for ``after_attempt`` unless ``success_at_admit`` or ``success_at_finish``), or sets
``fast=False``, has every call taken by the walk; an
observer that overrides ``observe`` without ``fast_observe`` gets a record on the success
path too, and one without ``fast_served`` or ``ignores_served`` on a call an admission
stage's ``fast_admit`` served (a cache hit).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Protocol

from prodwrap._masking import NO_MASKING, Masking

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
    """An admission decision: the call is refused with ``error`` (then the fallbacks serve,
    unless ``final``: the caller gets ``error`` even when the model has fallbacks)."""

    error: Exception
    reason: str
    final: bool = False


class Route(NamedTuple):
    """An admission decision: this call's attempts go to ``target``."""

    target: Target


Admission = Serve | Refuse | Route


class Gate(Protocol):
    """A permit a driver waits for (a bulkhead's): taken when ``acquire`` returns True."""

    def acquire(self, seconds: float) -> bool:
        """Block this thread up to ``seconds`` for the permit."""
        ...

    async def aacquire(self, seconds: float) -> bool:
        """Await the permit up to ``seconds`` without blocking the event loop."""
        ...


class Wait(NamedTuple):
    """An attempt decision: wait up to ``seconds`` for ``gate``; if it is not given in time,
    the attempt is refused with ``error``."""

    gate: Gate
    seconds: float
    error: Exception


class Pause(NamedTuple):
    """An attempt decision: sleep ``seconds`` (on prodwrap's clock), then ask this stage again
    (a rate limit's wait for its next token)."""

    seconds: float


Decision = Exception | Wait | Pause


class Build(NamedTuple):
    """What a policy's stages are compiled for: the model they are part of."""

    name: str  # the model's name (key prefix of the state it keeps in a store)
    version: str | None
    is_async: bool  # the primary is async (a sync model's stages are never awaited)
    settings: Any  # the model's frozen options (``prodwrap._options.Settings``)
    masking: Masking = NO_MASKING  # what a stage's fault line may show of a call's input


class Compiles(Protocol):
    """A policy given as an option: it compiles into its stages (DESIGN §1's order is the
    order of the options in ``prodwrap._compile.ORDER``)."""

    def stages(self, build: Build) -> Sequence[Stage]: ...


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

    fast_admit: Callable[[Any, tuple[Any, ...], dict[str, Any]], bool | Serve | Route] | None = None
    """``(value, args, kwargs) -> bool | Serve | Route``: True lets the call stay on the success
    path; False sends it to the general path before anything is called; a :class:`Serve` serves
    it at once (an admission stage's hit); a :class:`Route` sends it to the general path with
    its attempts going to the route's target (a canary's choice, made once: on the walk
    ``call.routed`` is that target when the stage's ``admit`` is asked). ``args``, ``kwargs``:
    what is passed through to the predict.
    An attempt stage's is the success path's ``before_attempt`` for the first attempt: True
    lets it through (a permit taken, if the stage takes one). A hook made by
    :func:`inline_admit` carries its lines (``inline``), and the compiled success path runs
    them in its own frame instead of calling it."""

    fast_undo: Callable[[], object] | None = None
    """``()``: this stage's ``fast_admit`` said yes, then a later one said no: give back what
    it took. Also run when the success path's attempt is interrupted (cancelled,
    KeyboardInterrupt), unless ``undo_interrupted`` is False (the call then ends at the finish
    point with a record, which the stage's observer settles)."""

    undo_interrupted: bool = True

    fast_attempt: Callable[[float], object] | None = None
    """``(seconds)``: the first attempt succeeded after ``seconds`` on prodwrap's clock."""

    fast_done: Callable[[], object] | None = None
    """``()``: the first attempt succeeded (for a stage that needs no duration: the success
    path reads no clock for it), such as a bulkhead giving its permit back."""

    success_at_admit: bool = False
    """True: this attempt stage's ``fast_admit`` counts the success path's attempt as a
    success already (it needs no duration), so it has no ``fast_attempt`` and the success
    path reads no clock for it. A first attempt that fails reaches ``after_attempt`` as on
    the walk (with nothing of this stage's on ``call.state``)."""

    success_at_finish: bool = False
    """True: this attempt stage's success-path attempt is accounted at the finish point, by an
    observer of the same capability whose ``fast_observe`` has what it needs (the output: a
    token price), so it needs no ``fast_attempt`` or ``fast_done`` (it may still have a
    ``fast_attempt`` that hands that observer the duration)."""

    fast_observe: Callable[[Any, Any], object] | None = None
    """``(value, output)``: a call the primary served on the success path. What it returns is
    ignored, but a non-empty tuple: the call's drift alerts (a drift monitor's check run
    inline), put on the call's span when telemetry watches it. The function may
    carry ``plain``: ``(guards, tally, tick)``, where ``guards`` are pairs of (``ContextVar``,
    value), or triples with an object whose ``set`` says whether the variable was ever set
    (``_blocks.plain_case``): while each variable holds its value (by identity), appending ``None`` to the list
    ``tally`` is all the hook would do but what ``tick()`` catches up on (reading and
    deleting what the list holds), and the compiled success path appends it in place of
    calling the hook; it calls ``tick()`` (never raises) once every 1024 success-path calls
    (the cost of a ``PerCall`` price: the call counted, the ledger folded in batches)."""

    fast_served: Callable[[Any, Serve], object] | None = None
    """An observer's ``(value, decision)`` for a call an admission stage's ``fast_admit``
    served on the success path (a cache hit's :class:`Serve`), when no record is made there:
    what its ``observe`` does with such a call. An observer that overrides ``observe`` with
    neither this hook nor ``ignores_served`` has a record made for every call served so.
    The function may carry ``plain``: ``(outcome) -> (guards, tally, tick)``, as
    ``fast_observe``'s ``plain`` for a call served with that outcome (asked once per pair
    the admission stages declare in ``serves``, when the success path is compiled)."""

    serves: tuple[tuple[str, str], ...] = ()
    """An admission stage's (outcome, served_by) pairs its ``fast_admit`` serves calls with
    (a cache's ``("cached", "cache")``): the compiled success path tallies them inline and
    runs the ``fast_served`` hooks' ``plain`` cases for them. A :class:`Serve` with another
    pair is served all the same, by the general tally and the hooks."""

    ignores_served: bool = False
    """True: this observer's ``observe`` does nothing with a call an admission stage served."""

    fast_record: Callable[[Any, Any], bool] | None = None
    """An observer's ``(value, output) -> bool`` on the success path when no record is made
    there: True asks for one for this call after all (an escalation's match builds the call's
    ``Prediction``). The finish point then makes the record, sets ``call.state[stage]`` to
    True, and every observer reads it as on the general path (its ``args``/``kwargs`` empty)."""

    race: Callable[[CallRecord], float | None] | None = None
    """A hedge's ``(call) -> seconds | None``: asked before each attempt of the primary; a
    number makes it a race (one more attempt each time that many seconds pass without a
    success, up to ``race_extra`` more); None, a plain attempt."""

    race_extra: int = 0

    watch: Callable[[], Any] | None = None
    """Telemetry's ``() -> handle | None``: asked first on every call, before validation. None:
    nothing to do for this call (no provider installed); else the handle is the call's
    ``call.watch``: the driver calls ``handle.enter()`` first and ``handle.exit(error)`` last
    (``error``: what the call raised, or None), the finish point hands it the record
    (``handle.finished(call)``) and the Prediction reads ``handle.trace_id``. A handle whose
    ``walk`` is True takes the call to the walk (its attempt hooks open a span per attempt),
    else the success path keeps it (with a record). A stage with a ``watch`` acts in its other
    hooks only on calls its ``watch`` took, so the success path needs none of them. One stage
    of a model may have one. The function may carry ``when``: pairs of (object, attribute
    name), one of which is truthy whenever it may take a call; the compiled success path
    then reads those attributes inline and calls the watch only when one is set."""

    spend: Callable[[float], bool] | None = None
    """A retry budget's ``(now) -> bool``: may one more retry (or hedge) be spent now? The
    engine asks it before every retry; False means no retry (the stage counts it)."""

    # -- the general path ------------------------------------------------------------------------

    def admit(self, call: CallRecord, value: Any) -> Admission | Wait | Pause | None:
        """Admission seam: decide about this call (None: go on). :class:`Wait` or
        :class:`Pause` ask the driver to wait first, then this stage is asked again (whether
        or not the wait's gate was given: ``call.ok`` says)."""
        return None

    def before_attempt(self, call: CallRecord, target: Target) -> Decision | None:
        """Attempt seam: None lets the attempt go on; an exception refuses it (a failed
        attempt, not an attempt made); :class:`Wait` or :class:`Pause` ask the driver to wait."""
        return None

    def undo_attempt(self, call: CallRecord, target: Target) -> None:
        """Attempt seam: this stage let the attempt through, then a later stage refused it (or
        the call ended mid-attempt). Also heard by a stage whose :class:`Pause` the call ended
        in (cancelled, interrupted): it took nothing then, but may settle what it counts."""

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

    def close(self, timeout: float | None = None) -> None:
        """Stop what the stage owns (threads, files); idempotent. What it still has to hand
        on (queued audit lines, ...) it waits for up to ``timeout`` seconds (None: as long as
        it takes)."""


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


def inline_admit(lines: str, names: dict[str, Any]) -> Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]:
    """A ``fast_admit`` hook written as ``lines`` that set ``said`` from ``value``, ``args`` and
    ``kwargs`` (``{p}`` before each of their own names, the globals ``names`` and the locals
    they set), compiled into the hook, which carries them as ``inline = (lines, names)``: the
    compiled success path runs the same lines in its frame, each name prefixed its own way
    (``_blocks.admit_lines``), so the hook's logic is written once and costs no call there."""
    ns = dict(names)
    body = "".join(f"    {line}\n" for line in lines.format(p="").splitlines())
    exec(compile(f"def admit(value, args, kwargs):\n{body}    return said\n", "<prodwrap admission hook>", "exec"), ns)
    hook: Any = ns["admit"]
    hook.inline = (lines, names)
    return hook  # type: ignore[no-any-return]
