"""The one record a call fills as it flows, and the frozen views users read.

``CallRecord`` is mutable and slotted; each stage writes what it knows once. It becomes a
public :class:`Prediction` only when someone reads it (``predict_detailed``, an observer),
so the success path of ``predict`` never builds one.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from prodwrap._context import TAGS

if TYPE_CHECKING:
    from prodwrap.cost._charge import Charge

Outcome = Literal["ok", "fallback", "cached", "error"]

_ZERO = Decimal(0)
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<missing>"})()  # "no value here"
_ID_PREFIX = os.urandom(4).hex()
_ids = itertools.count(1)


def new_id() -> str:
    """A process-unique prediction id: a random per-process prefix and a counter."""
    return f"{_ID_PREFIX}-{next(_ids):x}"


_NO_KWARGS: dict[str, Any] = {}


class CallRecord:
    """Everything one call has learned so far. Internal; see :class:`Prediction`."""

    __slots__ = (
        "admitted",
        "args",
        "attempts",
        "began",
        "bill",
        "built",
        "deadline",
        "detailed",
        "drift",
        "errors",
        "escalated",
        "extra",
        "gate",
        "input",
        "kwargs",
        "late",
        "latency",
        "limit",
        "now",
        "ok",
        "outcome",
        "phase",
        "raced",
        "racing",
        "reasons",
        "refused",
        "result",
        "routed",
        "seconds",
        "served_by",
        "slept",
        "spans",
        "start",
        "started_at",
        "state",
        "tags",
        "target",
        "valid_input",
        "value",
        "wait",
        "watch",
        "won",
    )

    def __init__(self, start: float, watch: Any = None) -> None:
        self.start = start  # perf_counter() at entry, for latency
        self.watch = watch  # what a stage's ``watch`` opened for the call (its span), or None
        self.routed: Any = None  # where the primary's attempts go (None: the primary; set by the walk)
        # Every success-path admission hook let the call through before it left that path (its
        # first attempt failed): a hook that draws (a shadow's sampling) has drawn already.
        self.admitted = False
        self.attempts = 0  # attempts of the primary (not fallbacks)
        self.phase = -1  # -1: primary; i >= 0: fallback i is being tried
        self.errors: list[Exception] | None = None
        self.reasons: list[str] | None = None
        self.deadline: float | None = None  # absolute, on the clock's monotonic scale
        self.started_at = 0.0  # clock monotonic at entry, when retries or deadlines need it
        self.slept = 0.0  # seconds slept between attempts
        self.outcome: Outcome = "ok"
        self.served_by = "primary"
        self.value: Any = None
        self.latency = 0.0
        self.drift: tuple[Any, ...] = ()
        self.input: Any = None  # the validated input (the raw one when validation refused it)
        self.valid_input = True
        self.detailed = False  # the caller wants the Prediction (predict_detailed)
        self.built: Prediction | None = None
        self.bill: Any = None  # what the call was charged (``prodwrap.cost``), when it has a cost model
        self.refused: str | None = None  # the reason an admission stage refused the call
        self.late: Any = None  # the job of the last attempt, when its caller abandoned it
        self.racing = False  # a hedge's race is under way (its extra attempts ask the stages)
        self.state: dict[Any, Any] | None = None  # what stages keep for this call (keyed by stage)
        self.escalated = False  # handed to a human reviewer (an escalation stage, before the Prediction is built)
        self.args: tuple[Any, ...] = ()  # passed through to the predict after the input
        self.kwargs: dict[str, Any] = _NO_KWARGS  # (shared when empty: read, never written)
        # Set by the walk before they are read (left unset here: a record costs less):
        # target, seconds, limit (the current act's), wait (seconds to sleep), now, ok, result.

    target: Any
    gate: Any  # the permit a WAIT act waits for
    began: float  # the clock's reading when the current attempt began (the walk's)
    extra: int  # how many more attempts a RACE may start
    raced: int  # how many attempts the last RACE started
    won: int  # which of them won (0: the first; -1: none)
    spans: list[float]  # each attempt's own seconds in the last RACE (prodwrap._race)
    seconds: float | None
    limit: float | None
    wait: float
    now: float
    ok: bool
    result: Any

    def version_of(self, default: str | None) -> str | None:
        """The call's version: its routed target's own (a canary's candidate), else ``default``
        (the model's)."""
        routed = self.routed
        if routed is None or routed.version is None:
            return default
        return str(routed.version)

    def fail(self, exc: Exception, reason: str) -> None:
        if self.errors is None:
            self.errors = [exc]
            self.reasons = [reason]
        else:
            self.errors.append(exc)
            self.reasons.append(reason)  # type: ignore[union-attr]

    def public(self, model: str, version: str | None) -> Prediction:
        """The call's ``Prediction``: built on first use, the same object afterwards (a call
        routed to a target with a version of its own, a canary's candidate, carries that one)."""
        if self.built is not None:
            return self.built
        version = self.version_of(version)
        bill = self.bill
        cost, charges = (_ZERO, ()) if bill is None else bill.settle()
        prediction: Any = _Filling(
            new_id(),
            self.value,
            self.outcome,
            self.served_by,
            model,
            version,
            self.attempts,
            self.latency,
            cost,
            tuple(self.errors or ()),
            None if self.watch is None else self.watch.trace_id,
            TAGS.get(),  # the tags in force, read-only (a mapping proxy)
            self.drift,
            self.escalated,
            charges,
        )
        prediction.__class__ = Prediction  # frozen from here on (see _Filling)
        built: Prediction = prediction
        self.built = built
        return built


def served_prediction(value: Any, model: str, version: str | None, latency: float) -> Prediction:
    """The ``Prediction`` of a call the primary served at its first attempt, made without a
    record: what :meth:`CallRecord.public` gives for such a call (no cost, no drift alert, no
    trace, not escalated: a model with a stage that adds one makes a record)."""
    prediction: Any = _Filling(
        new_id(), value, "ok", "primary", model, version, 1, latency, _ZERO, (), None, TAGS.get(), (), False
    )
    prediction.__class__ = Prediction  # frozen from here on (see _Filling)
    built: Prediction = prediction
    return built


class _PredictionSlots:
    """The storage of a :class:`Prediction`: its fields as slots."""

    __slots__ = (
        "attempts",
        "charges",
        "cost",
        "drift",
        "errors",
        "escalated",
        "id",
        "latency",
        "model",
        "outcome",
        "served_by",
        "tags",
        "trace_id",
        "value",
        "version",
    )


@dataclass(frozen=True)
class Prediction(_PredictionSlots):
    """One finished call, as users, observers and tests see it.

    Attributes:
        id: process-unique id (pass it to ``model.feedback``).
        value: the output served (None when ``outcome == "error"``).
        outcome: ``"ok"`` (the primary served), ``"fallback"``, ``"cached"`` or ``"error"``.
        served_by: ``"primary"``, ``"candidate"``, a fallback's name, or ``"cache"``.
        model: the model's name. version: its version (or None).
        attempts: attempts made by the primary (fallbacks not included).
        latency: seconds from entry to result.
        cost: USD (``Decimal``): every charge of the call (failed attempts and fallbacks
            included); 0 when no cost model is configured.
        errors: every exception met on the way, in order.
        trace_id: hex trace id of the prediction's span, or None without tracing.
        tags: the ``pw.context(...)`` tags in force.
        drift: drift alerts raised by this call.
        escalated: whether the output was handed to a human reviewer.
        charges: one ``pw.Charge`` per attempt charged (model, version, served_by, attempt,
            amount, tokens); empty when nothing was charged.
    """

    id: str
    value: Any
    outcome: Outcome
    served_by: str
    model: str
    version: str | None
    attempts: int
    latency: float
    cost: Decimal
    errors: tuple[BaseException, ...]
    trace_id: str | None
    tags: Mapping[str, Any]
    drift: tuple[Any, ...]
    escalated: bool
    charges: tuple[Charge, ...] = ()

    __slots__ = ()

    @property
    def unpriced(self) -> bool:
        """Whether some attempt's cost could not be determined (a token price and no usage
        reported): its charge says ``unpriced``, and ``cost`` is then not the whole cost."""
        return any(charge.unpriced for charge in self.charges)

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in _PredictionSlots.__slots__}
        state["tags"] = dict(self.tags)  # a read-only view does not pickle; its contents do
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, MappingProxyType(value) if name == "tags" else value)


# The dataclass keeps ``charges``' default for its ``__init__``; as a class attribute it would
# hide the slot it stands for.
del Prediction.charges  # type: ignore[misc]


class _Filling(_PredictionSlots):
    """A Prediction being filled in. A frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, about 0.15 µs a field, 2 µs for a Prediction; plain stores into the
    same slots take a tenth of that. Once filled, the object's class becomes ``Prediction``
    (the layout is the same: both add no slots to ``_PredictionSlots``)."""

    __slots__ = ()

    def __init__(
        self,
        id: str,
        value: Any,
        outcome: Outcome,
        served_by: str,
        model: str,
        version: str | None,
        attempts: int,
        latency: float,
        cost: Decimal,
        errors: tuple[BaseException, ...],
        trace_id: str | None,
        tags: Mapping[str, Any],
        drift: tuple[Any, ...],
        escalated: bool,
        charges: tuple[Charge, ...] = (),
    ) -> None:
        self.id = id
        self.value = value
        self.outcome = outcome
        self.served_by = served_by
        self.model = model
        self.version = version
        self.attempts = attempts
        self.latency = latency
        self.cost = cost
        self.errors = errors
        self.trace_id = trace_id
        self.tags = tags
        self.drift = drift
        self.escalated = escalated
        self.charges = charges


@dataclass(frozen=True, slots=True)
class Stats:
    """A snapshot of a model's counters since it was built.

    Latency percentiles are over the most recent calls (a window of 8192), in seconds; None
    before the first call. ``calls`` and ``outcomes`` count calls; ``failures`` counts failed
    attempts by reason (a call retried twice adds two). ``abandoned`` counts attempts the
    caller gave up on at their deadline (their threads run on until the predict returns);
    ``late_errors`` those of them that later raised. ``observer_errors`` counts observers that
    raised (never passed on to the caller); ``telemetry_errors`` the times telemetry raised
    (a span processor, a provider, an exporter called inline: the call went on without it).
    Sections of capabilities that are not configured are None.
    """

    calls: int
    outcomes: Mapping[str, int]
    served_by: Mapping[str, int]
    failures: Mapping[str, int]
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    abandoned: int
    observer_errors: int = 0
    late_errors: int = 0
    telemetry_errors: int = 0
    cost: Decimal = _ZERO
    unpriced: int = 0
    circuit: Any = None
    bulkhead: Any = None
    retry_budget: Any = None
    hedge: Any = None
    rate_limit: Any = None
    cache: Any = None
    budget: Any = None
    drift: Any = None
    shadow: Any = None
    canary: Any = None
    escalation: Any = None
    audit: Any = None
