"""``ProductionModel``: one predict function, one compiled pipeline, two drivers."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from time import monotonic
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, Unpack, overload

from prodwrap import _report
from prodwrap._compile import batch_of, compile_engine
from prodwrap._engine import Engine
from prodwrap._kept import Kept
from prodwrap._options import CommonOptions, Options, Settings
from prodwrap._record import Prediction, Stats
from prodwrap._target import NO_INPUT, keyword_input
from prodwrap.errors import ConfigurationError, InputValidationError

if TYPE_CHECKING:
    from prodwrap.cost import Ledger
    from prodwrap.policies.circuit import Circuit
    from prodwrap.rollout._versions import VersionEvent
    from prodwrap.rollout.canary import CanaryHandle

In = TypeVar("In")  # what the model accepts as its input
X = TypeVar("X")  # the predict's own input type
P = ParamSpec("P")  # the predict's further (pass-through) parameters
R = TypeVar("R")
T = TypeVar("T")


class ProductionModel(Generic[In, P, R]):
    """A predict function made production-ready: validation, timeouts, retries, fallbacks,
    drift monitoring and observers, in one compiled pipeline.

    Args:
        predict: any callable, sync or async, taking the input as its first argument
            (further arguments pass through unvalidated to it and to every fallback).
        name: the model's name in stats, errors and logs (default: the function's name).
        version: free-form version string (non-empty, at most 256 characters).
        input: pydantic model, any type (validated with ``TypeAdapter``) or ``pw.ArraySpec``.
        output: same kinds, for the output; optional.
        check: a predicate (or several) the output must satisfy; optional.
        timeout: seconds per attempt, or ``pw.Timeout(attempt=, total=)``.
        retry: attempt count or ``pw.Retry(...)`` (``retry=3`` retries transient failures).
        fallback: one fallback or a sequence: callables, ``ProductionModel``s, ``pw.Constant``.
        bulkhead: ``pw.Bulkhead(max_concurrent, max_wait=0.0)``: at most that many attempts of
            the primary at once (full: the fallbacks, else ``BulkheadFullError``).
        circuit: a ``pw.CircuitBreaker`` around the primary's attempts (``model.circuit``
            reads and steers it).
        on_invalid: ``"raise"`` (default) raises ``InputValidationError``; ``"fallback"``
            sends invalid inputs to the fallback chain (raw, unvalidated).
        batch: the predict takes a list of inputs and returns a list of outputs of the same
            length; each item is validated, the list is one call.
        drift: a ``pw.DriftMonitor`` watching inputs and outputs.
        shadow: a ``pw.Shadow`` (or a list): candidates run on the primary's traffic in the
            background and compared, never served (``model.shadow_report()``).
        escalate: a ``pw.Escalate``: predictions whose output matches its ``when`` are marked
            ``escalated`` and handed to its ``to`` in the background.
        observers: callables, each given every finished call's ``pw.Prediction`` (a raising
            observer is counted in ``stats().observer_errors`` and logged, never raised).

    The model is a context manager: ``close()`` (or leaving the ``with`` block) stops what it
    owns (the drift monitor's checker thread).

    Raises:
        ConfigurationError: for options that make no sense (checked here, not at call time).
    """

    __prodwrap_model__ = True  # (how is_async_callable knows a model of an async predict)

    @overload
    def __init__(
        self: ProductionModel[X, P, R],
        predict: Callable[Concatenate[X, P], R],
        /,
        *,
        input: None = None,
        **options: Unpack[CommonOptions],
    ) -> None: ...

    @overload
    def __init__(
        self: ProductionModel[Any, P, R],
        predict: Callable[Concatenate[X, P], R],
        /,
        *,
        input: Any,
        **options: Unpack[CommonOptions],
    ) -> None: ...

    def __init__(self, predict: Callable[..., Any], /, **options: Unpack[Options]) -> None:
        if not callable(predict):
            raise ConfigurationError(f"predict must be callable, got {predict!r}")
        if isinstance(predict, ProductionModel):
            raise ConfigurationError("predict is already a ProductionModel: use model.with_options(...)")
        name = options.get("name")
        if name is None:
            name = getattr(predict, "__name__", None) or type(predict).__name__
            options = {**options, "name": name}
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"name must be a non-empty string, got {name!r}")
        self._fn = predict
        self._settings = Settings.of(dict(options))
        self._kept = Kept()  # the policies' stages, whose state outlives an engine (prodwrap._kept)
        self._swap(compile_engine(predict, self._settings, kept=self._kept))
        self.__wrapped__ = predict
        self.__name__ = name
        self.__doc__ = getattr(predict, "__doc__", None)
        from prodwrap.rollout._versions import Rollouts  # (it compiles engines: imported here)

        self._rollouts = Rollouts(self)
        self._closed = False

    @property
    def name(self) -> str:
        return self._engine.name

    @property
    def version(self) -> str | None:
        return self._engine.version

    @property
    def is_async(self) -> bool:
        """Whether the wrapped function is async (then ``predict`` returns an awaitable)."""
        return self._engine.is_async

    def _swap(self, engine: Engine) -> None:
        """Make ``engine`` the one calls start on (a call in flight ends on the engine it
        began with; ``model(x)`` reads its entry, the other entry points the engine: each
        call reads one attribute, so it runs on one engine whole)."""
        self._engine = engine
        self.__call__ = engine.call  # type: ignore[method-assign]  # (a slot at run time)

    # -- calling ----------------------------------------------------------------------------

    def _predict(self, x: Any = NO_INPUT, /, *args: Any, **kwargs: Any) -> Any:
        if x is NO_INPUT:
            x = keyword_input(self._engine, kwargs)
        return self._engine.run_sync(x, args, kwargs)

    def _predict_detailed(self, x: Any = NO_INPUT, /, *args: Any, **kwargs: Any) -> Any:
        if x is NO_INPUT:
            x = keyword_input(self._engine, kwargs)
        from prodwrap._detailed import detailed_sync  # (loaded with the first detailed call)

        return detailed_sync(self._engine, x, args, kwargs)

    def _apredict(self, x: Any = NO_INPUT, /, *args: Any, **kwargs: Any) -> Any:
        if x is NO_INPUT:
            x = keyword_input(self._engine, kwargs)
        return self._engine.run_async(x, args, kwargs)

    def _apredict_detailed(self, x: Any = NO_INPUT, /, *args: Any, **kwargs: Any) -> Any:
        if x is NO_INPUT:
            x = keyword_input(self._engine, kwargs)
        from prodwrap._detailed import detailed_async

        return detailed_async(self._engine, x, args, kwargs)

    if TYPE_CHECKING:
        # With input= the model accepts every form its validator takes (dict, JSON text, the
        # schema's instance, an object with attributes); without, the predict's own type.
        # At run time the input may also be passed by keyword under the predict's first
        # parameter name; a ParamSpec cannot say so, so the types keep it positional.

        def __call__(self, x: In, /, *args: P.args, **kwargs: P.kwargs) -> R:
            """Run the pipeline; return the output (awaitable for an async model)."""

        def predict(self, x: In, /, *args: P.args, **kwargs: P.kwargs) -> R:
            """Run the pipeline; return the output (awaitable for an async model)."""

        @overload
        def predict_detailed(  # type: ignore[overload-overlap]
            self: ProductionModel[In, P, Awaitable[T]], x: In, /, *args: P.args, **kwargs: P.kwargs
        ) -> Coroutine[Any, Any, Prediction]: ...

        @overload
        def predict_detailed(self, x: In, /, *args: P.args, **kwargs: P.kwargs) -> Prediction: ...

        def predict_detailed(self, x: In, /, *args: P.args, **kwargs: P.kwargs) -> Any:
            """Run the pipeline; return the whole :class:`Prediction` (awaitable if async)."""

        @overload
        def apredict(
            self: ProductionModel[In, P, Awaitable[T]], x: In, /, *args: P.args, **kwargs: P.kwargs
        ) -> Coroutine[Any, Any, T]: ...

        @overload
        def apredict(
            self: ProductionModel[In, P, T], x: In, /, *args: P.args, **kwargs: P.kwargs
        ) -> Coroutine[Any, Any, T]: ...

        def apredict(self, x: In, /, *args: P.args, **kwargs: P.kwargs) -> Any:
            """Async: await the output; a sync predict runs on a worker thread."""

        async def apredict_detailed(self, x: In, /, *args: P.args, **kwargs: P.kwargs) -> Prediction:
            """Async: await the whole :class:`Prediction`."""

    else:
        # model(x) runs the engine's compiled entry: an instance's own __call__ (a slot, which
        # the call reads without a method frame of the model's in between).
        __slots__ = ("__call__", "__dict__", "__weakref__")
        predict = _predict
        predict_detailed = _predict_detailed
        apredict = _apredict
        apredict_detailed = _apredict_detailed

    def predict_batch(self, xs: Sequence[Any], /) -> Any:
        """Predict a batch: one call when ``batch=True`` was given, else one call per item.

        Every item is validated before any is predicted, and an ``InputValidationError``
        lists the problems of all items (``loc[0]`` is the item's index). For an async model
        this returns an awaitable; items then run concurrently.
        """
        engine = self._engine
        if self._settings.batch:  # one call (text, a mapping or a scalar: refused by it, as a batch)
            whole = isinstance(xs, str | bytes | bytearray | Mapping) or not isinstance(xs, Iterable)
            return self._predict(xs if whole else list(xs))
        if engine.validate_input is not None and engine.on_invalid == "raise":
            batch_of(engine.validate_input, InputValidationError, self.name)(xs)
        if engine.is_async:
            return self._apredict_batch(xs)
        return [self._predict(x) for x in xs]

    async def _apredict_batch(self, xs: Sequence[Any]) -> list[Any]:
        import asyncio  # imported by then: an event loop is running

        return list(await asyncio.gather(*(self._apredict(x) for x in xs)))

    # -- deriving and inspecting --------------------------------------------------------------

    def with_options(self, **options: Unpack[Options]) -> ProductionModel[In, P, R]:
        """A new model around the same function with some options changed (fresh stats)."""
        return ProductionModel(self._fn, **self._settings.replaced(dict(options)).given())

    def _stacked(self, options: dict[str, Any]) -> ProductionModel[In, P, R]:
        """A new model with a stacked decorator's options merged in (fallbacks extend)."""
        return ProductionModel(self._fn, **self._settings.merged(options).given())

    def stats(self) -> Stats:
        """A snapshot of this model's counters and latency percentiles."""
        snapshot = self._engine.stats.snapshot()
        sections = {}
        for stage in self._engine.stages:
            section = stage.stats()
            if section is not None and stage.section is not None:
                sections[stage.section] = section
        return dataclasses.replace(snapshot, **sections) if sections else snapshot

    @property
    def circuit(self) -> Circuit | None:
        """The circuit breaker (``.state``, ``.open()``, ``.close()``, ``.listeners``), or
        None when the model has no ``circuit=``."""
        for stage in self._engine.stages:
            handle = getattr(stage, "handle", None)
            if handle is not None and stage.section == "circuit":
                return handle  # type: ignore[no-any-return]
        return None

    @property
    def ledger(self) -> Ledger | None:
        """The ledger this model's calls are recorded in (its own unless ``ledger=`` shares
        one), or None when it has no ``cost=``."""
        for stage in self._engine.stages:
            charger = getattr(stage, "charger", None)
            if charger is not None and stage.section == "cost":
                return charger.ledger  # type: ignore[no-any-return]
        return None

    def shadow_report(self, name: str | None = None, *, wait: float | None = 0.0) -> Any:
        """How the shadows compare with the primary: a ``pw.ShadowReport``, or with several
        shadows a dict candidate name -> ``ShadowReport`` (``name``: that one's report).

        Args:
            name: one shadow's candidate name.
            wait: seconds to wait first for a sync candidate's pending runs (None: until
                they are done; default 0: report at once).

        Raises:
            ConfigurationError: the model has no ``shadow=``.
            KeyError: no shadow has that name.
        """
        for stage in self._engine.stages:
            if stage.section == "shadow":
                return stage.report(name, wait)  # type: ignore[attr-defined]
        raise ConfigurationError(f"{self.name}: shadow_report needs shadow=pw.Shadow(candidate)")

    @property
    def canary(self) -> CanaryHandle | None:
        """The running canary (``.state``, ``.fraction``, ``.listeners``, ``.halt()``), or None
        when no candidate is staged as one."""
        for stage in self._engine.stages:
            handle = getattr(stage, "handle", None)
            if handle is not None and stage.section == "canary":
                return handle  # type: ignore[no-any-return]
        return None

    # -- versions --------------------------------------------------------------------------------

    def stage(
        self,
        candidate: Any,
        *,
        version: str | None = None,
        mode: Literal["shadow", "canary"] = "shadow",
        by: str | None = None,
        reason: str | None = None,
        **opts: Any,
    ) -> None:
        """Put ``candidate`` on trial beside the primary: as a ``pw.Shadow`` (``mode="shadow"``,
        compared, never served) or a ``pw.Canary`` (``mode="canary"``: ``fraction=`` and the
        canary's other options in ``opts``). A candidate staged already is replaced.

        Raises:
            ConfigurationError: an unknown mode, or options the policy refuses.
        """
        self._rollouts.stage(candidate, version, mode, by, reason, opts)

    def promote(self, *, by: str | None = None, reason: str | None = None) -> None:
        """Make the staged candidate the primary (its version the model's); the one it replaces
        is kept for :meth:`rollback`.

        Raises:
            ConfigurationError: nothing is staged, or the guard rolled the candidate back.
        """
        self._rollouts.promote(by, reason)

    def rollback(self, *, by: str | None = None, reason: str | None = None) -> None:
        """Remove the staged candidate; with none staged, restore the primary the last
        :meth:`promote` replaced.

        Raises:
            ConfigurationError: nothing to roll back.
        """
        self._rollouts.rollback(by, reason)

    @property
    def versions(self) -> tuple[VersionEvent, ...]:
        """The history: deployed, staged, promoted, rolled back (who, when, why), oldest first."""
        with self._rollouts.lock:
            return tuple(self._rollouts.history)

    def feedback(self, prediction_id: str, actual: Any) -> bool:
        """Ground truth for an earlier prediction (by ``Prediction.id``), for performance monitoring.

        Returns False when the prediction's output is no longer held (too old, or unknown).

        Raises:
            ConfigurationError: the model has no ``drift=`` monitor with ``performance=``.
        """
        for stage in self._engine.stages:
            feedback = getattr(stage, "feedback", None)
            if feedback is not None:
                return bool(feedback(prediction_id, actual))
        raise ConfigurationError(f"{self.name}: feedback needs drift=pw.DriftMonitor(..., performance=...)")

    def describe(self) -> dict[str, Any]:
        """The pipeline, stage by stage, and every policy, as a JSON-able dict (``"ledger"``:
        the ledger the calls are recorded in, the model's own when ``ledger=`` was not given)."""
        info = _report.describe(self._engine, self._settings)
        ledger = self.ledger
        if info.get("ledger") is None and ledger is not None:
            info["ledger"] = ledger.describe()
        return info

    def report(self, *, html: bool = False) -> str:
        """A readable summary of configuration and stats; ``html=True`` a self-contained page."""
        return _report.report(self.describe(), self.stats(), html=html)

    def _repr_html_(self) -> str:
        return _report.report(self.describe(), self.stats(), html=True, fragment=True)

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self, timeout: float | None = None) -> None:
        """Stop what the model owns (the drift monitor's thread, the audit log's writer, ...);
        idempotent. What is still queued (audit lines, escalations) is handed on first: this
        waits for it up to ``timeout`` seconds in all (None: the audit log waits as long as its
        sink takes, so a sink that hangs holds it, and counts the lines a timeout leaves; the
        escalation worker waits 1 s at most). The model still predicts afterwards, without
        what was closed."""
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout >= 0  # (NaN included)
        ):
            raise ConfigurationError(f"{self.name}: close(timeout=) must be None or seconds >= 0, got {timeout!r}")
        self._closed = True
        deadline = None if timeout is None else monotonic() + timeout  # (real time: threads are waited for)
        for stage in self._engine.stages:
            stage.close(None if deadline is None else max(0.0, deadline - monotonic()))

    def __enter__(self) -> ProductionModel[In, P, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        version = "" if self.version is None else f" version={self.version!r}"
        return f"<ProductionModel {self.name!r}{version}{' async' if self.is_async else ''}>"
