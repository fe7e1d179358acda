"""``ProductionModel``: one predict function, one compiled pipeline, two drivers."""

from __future__ import annotations

import copy
import dataclasses
import functools
import itertools
from collections.abc import Callable, Sequence
from decimal import Decimal
from time import perf_counter
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

import pydantic

from prodwrap import _report
from prodwrap._context import TAGS
from prodwrap._drivers import apredict as apredict_fast
from prodwrap._drivers import predict_sync, run_async, run_sync
from prodwrap._engine import ASYNC, CONSTANT, MODEL, SYNC, Engine, Target, is_async_callable
from prodwrap._record import CallRecord, Prediction, Stats
from prodwrap.errors import ConfigurationError, InputValidationError, OutputValidationError
from prodwrap.policies.fallback import Constant, fallback_name
from prodwrap.policies.retry import Retry
from prodwrap.policies.timeout import Timeout
from prodwrap.policies.validation import Check, compile_output, compile_spec, fast_validator

if TYPE_CHECKING:
    from prodwrap.drift._monitor import DriftMonitor

P = ParamSpec("P")
R = TypeVar("R")

OPTIONS = (
    "name",
    "version",
    "input",
    "output",
    "check",
    "timeout",
    "retry",
    "fallback",
    "on_invalid",
    "batch",
    "drift",
)


def _batch_of(
    validate: Callable[[Any], Any], error: type[InputValidationError | OutputValidationError], model: str
) -> Callable[[Any], Any]:
    """Validate every item of a batch; one error listing every item's problems (loc[0] = index)."""

    def validate_batch(items: Any) -> Any:
        if not isinstance(items, Sequence) or isinstance(items, str | bytes):
            raise error([{"type": "list_type", "loc": ("batch",), "msg": "a batch must be a sequence"}], model=model)
        out: list[Any] = []
        problems: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            try:
                out.append(validate(item))
            except error as exc:
                problems.extend({**e, "loc": (i, *e["loc"])} for e in exc.errors)
        if problems:
            raise error(problems, model=model)
        return out

    return validate_batch


_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, Decimal, frozenset)


def _server(value: Any) -> Callable[[], Any]:
    """What serves a Constant: the value itself if immutable, else a fresh deep copy each
    time (a caller mutating what it was served must not change what the next one gets)."""
    if isinstance(value, _IMMUTABLE) or (isinstance(value, pydantic.BaseModel) and value.model_config.get("frozen")):
        return itertools.repeat(value).__next__
    return functools.partial(copy.deepcopy, value)


def _compile_fallbacks(
    fallbacks: Sequence[Any], validate_output: Callable[[Any], Any] | None, model_is_async: bool
) -> tuple[Target, ...]:
    targets: list[Target] = []
    seen: dict[str, int] = {}
    for fb in fallbacks:
        name = fallback_name(fb)
        if name in ("primary", "candidate", "cache"):
            name = f"fallback:{name}"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}#{seen[name]}"
        if isinstance(fb, Constant):
            value = fb.value
            if validate_output is not None:
                try:
                    value = validate_output(value)
                except OutputValidationError as exc:
                    raise ConfigurationError(f"fallback {name!r} fails output validation: {exc}") from exc
            targets.append(Target(_server(value), CONSTANT, name, False))
        elif isinstance(fb, ProductionModel):
            if fb.is_async and not model_is_async:
                raise ConfigurationError(f"fallback {name!r} is an async model; a sync model cannot await it")
            targets.append(Target(fb, MODEL, name, True))
        elif callable(fb):
            is_async = is_async_callable(fb)
            if is_async and not model_is_async:
                raise ConfigurationError(f"fallback {name!r} is async; a sync model cannot await it")
            targets.append(Target(fb, ASYNC if is_async else SYNC, name, True))
        else:
            raise ConfigurationError(f"fallback must be a callable, a ProductionModel or pw.Constant, got {fb!r}")
    return tuple(targets)


class ProductionModel(Generic[P, R]):
    """A predict function made production-ready: validation, timeouts, retries, fallbacks.

    Args:
        predict: any callable, sync or async, taking the input as its first positional
            argument (further arguments are passed through unvalidated).
        name: the model's name in stats, errors and spans (default: the function's name).
        version: free-form version string.
        input: pydantic model, any type (validated with ``TypeAdapter``) or ``pw.ArraySpec``.
        output: same kinds, for the output; optional.
        check: a predicate (or several) the output must satisfy; optional.
        timeout: seconds per attempt, or ``pw.Timeout(attempt=, total=)``.
        retry: attempt count or ``pw.Retry(...)``.
        fallback: one fallback or a sequence: callables, ``ProductionModel``s, ``pw.Constant``.
        on_invalid: ``"raise"`` (default) raises ``InputValidationError``; ``"fallback"``
            sends invalid inputs to the fallback chain (raw, unvalidated).
        batch: the predict takes a list of inputs and returns a list of outputs; each item is
            validated, the list is one call.

    Raises:
        ConfigurationError: for options that make no sense (checked here, not at call time).
    """

    def __init__(
        self,
        predict: Callable[P, R],
        *,
        name: str | None = None,
        version: str | None = None,
        input: Any = None,
        output: Any = None,
        check: Check | Sequence[Check] | None = None,
        timeout: Timeout | float | None = None,
        retry: Retry | int | None = None,
        fallback: Any = None,
        on_invalid: Literal["raise", "fallback"] = "raise",
        batch: bool = False,
        drift: DriftMonitor | None = None,
    ) -> None:
        if not callable(predict):
            raise ConfigurationError(f"predict must be callable, got {predict!r}")
        if isinstance(predict, ProductionModel):
            raise ConfigurationError("predict is already a ProductionModel: use model.with_options(...)")
        if drift is not None:
            from prodwrap.drift._monitor import DriftMonitor  # the drift package loads when used

            if not isinstance(drift, DriftMonitor):
                raise ConfigurationError(f"drift= takes a pw.DriftMonitor, got {drift!r}")
        if on_invalid not in ("raise", "fallback"):
            raise ConfigurationError(f'on_invalid must be "raise" or "fallback", got {on_invalid!r}')
        name = name if name is not None else getattr(predict, "__name__", None) or type(predict).__name__
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"name must be a non-empty string, got {name!r}")
        fallbacks = _as_list(fallback)
        self._fn = predict
        self._options: dict[str, Any] = {
            "name": name,
            "version": version,
            "input": input,
            "output": output,
            "check": check,
            "timeout": timeout,
            "retry": retry,
            "fallback": fallbacks,
            "on_invalid": on_invalid,
            "batch": batch,
            "drift": drift,
        }
        self.name = name
        self.version = version
        validate_input = None if input is None else compile_spec(input, InputValidationError, name)
        validate_fast = None if validate_input is None else fast_validator(input, validate_input)
        validate_output = compile_output(output, check, name)
        if batch:
            validate_input = None if validate_input is None else _batch_of(validate_input, InputValidationError, name)
            validate_fast = validate_input
            validate_output = (
                None if validate_output is None else _batch_of(validate_output, OutputValidationError, name)
            )
        is_async = is_async_callable(predict)
        self._engine = Engine(
            fn=predict,
            name=name,
            is_async=is_async,
            validate_input=validate_input,
            validate_fast=validate_fast,
            validate_output=validate_output,
            timeout=Timeout.coerce(timeout),
            retry=Retry.coerce(retry),
            fallbacks=_compile_fallbacks(fallbacks, validate_output, is_async),
            on_invalid=on_invalid,
            drift=drift,
        )
        fast = self._engine.fast
        self._sync_fast = None if is_async else fast
        self._async_fast = fast if is_async and fast[-1] is None else None  # untimed only
        self.__wrapped__ = predict
        self.__name__ = name
        self.__doc__ = getattr(predict, "__doc__", None)

    @property
    def is_async(self) -> bool:
        """Whether the wrapped function is async (then ``predict`` returns an awaitable)."""
        return self._engine.is_async

    # -- calling ----------------------------------------------------------------------------

    _predict = predict_sync  # the sync driver's success path is this method itself

    def _predict_detailed(self, x: Any, /, *args: Any, **kwargs: Any) -> Any:
        if self._engine.is_async:
            return self._apredict_detailed(x, *args, **kwargs)
        rec = CallRecord(perf_counter())
        rec.tags = TAGS.get()
        run_sync(self._engine, rec, x, args, kwargs)
        return self._prediction(rec)

    def _prediction(self, rec: CallRecord) -> Prediction:
        prediction = rec.prediction(model=self.name, version=self.version)
        if self._engine.drift is not None and rec.outcome == "ok":
            self._engine.drift.remember(prediction.id, prediction.value)
        return prediction

    _apredict = apredict_fast  # the async driver's success path is this method itself

    async def _apredict_detailed(self, x: Any, /, *args: Any, **kwargs: Any) -> Prediction:
        rec = CallRecord(perf_counter())
        rec.tags = TAGS.get()
        await run_async(self._engine, rec, x, args, kwargs)
        return self._prediction(rec)

    if TYPE_CHECKING:

        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
            """Run the pipeline; return the output (awaitable for an async model)."""

        def predict(self, *args: P.args, **kwargs: P.kwargs) -> R:
            """Run the pipeline; return the output (awaitable for an async model)."""

        def predict_detailed(self, *args: P.args, **kwargs: P.kwargs) -> Prediction:
            """Run the pipeline; return the whole :class:`Prediction` (awaitable if async)."""

        async def apredict(self, *args: P.args, **kwargs: P.kwargs) -> Any:
            """Async: await the output; a sync predict runs on a worker thread."""

        async def apredict_detailed(self, *args: P.args, **kwargs: P.kwargs) -> Prediction:
            """Async: await the whole :class:`Prediction`."""

    else:
        __call__ = predict = _predict
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
        if self._options["batch"]:
            return self._predict(list(xs))
        if engine.validate_input is not None and engine.on_invalid == "raise":
            _batch_of(engine.validate_input, InputValidationError, self.name)(xs)
        if engine.is_async:
            return self._apredict_batch(xs)
        return [self._predict(x) for x in xs]

    async def _apredict_batch(self, xs: Sequence[Any]) -> list[Any]:
        import asyncio  # imported by then: an event loop is running

        return list(await asyncio.gather(*(self._apredict(x) for x in xs)))

    # -- deriving and inspecting --------------------------------------------------------------

    def with_options(self, **options: Any) -> ProductionModel[P, R]:
        """A new model around the same function with some options changed (fresh stats)."""
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise ConfigurationError(f"unknown option(s): {', '.join(sorted(unknown))}")
        return ProductionModel(self._fn, **{**self._options, **options})

    def stats(self) -> Stats:
        """A snapshot of this model's counters and latency percentiles."""
        snapshot = self._engine.stats.snapshot()
        if self._engine.drift is not None:
            snapshot = dataclasses.replace(snapshot, drift=self._engine.drift.stats())
        return snapshot

    def feedback(self, prediction_id: str, actual: Any) -> bool:
        """Ground truth for an earlier prediction (by ``Prediction.id``), for performance monitoring.

        Returns False when the prediction's output is no longer held (too old, or unknown).

        Raises:
            ConfigurationError: the model has no ``drift=`` monitor with ``performance=``.
        """
        if self._engine.drift is None:
            raise ConfigurationError(f"{self.name}: feedback needs drift=pw.DriftMonitor(..., performance=...)")
        return self._engine.drift.feedback(prediction_id, actual)

    def describe(self) -> dict[str, Any]:
        """The pipeline, stage by stage, and every policy, as a JSON-able dict."""
        return _report.describe(self._engine, self._options)

    def report(self, *, html: bool = False) -> str:
        """A readable summary of configuration and stats; ``html=True`` a self-contained page."""
        return _report.report(self.describe(), self.stats(), html=html)

    def _repr_html_(self) -> str:
        return _report.report(self.describe(), self.stats(), html=True, fragment=True)

    def __repr__(self) -> str:
        version = "" if self.version is None else f" version={self.version!r}"
        return f"<ProductionModel {self.name!r}{version}{' async' if self.is_async else ''}>"


def _as_list(fallback: Any) -> list[Any]:
    if fallback is None:
        return []
    if isinstance(fallback, list | tuple):
        return list(fallback)
    return [fallback]
