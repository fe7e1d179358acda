"""Compiling a model's settings into its engine: validators, fallback targets and stages.

Each option is compiled here once, at construction, into what the engine runs; nothing is
decided per call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from prodwrap._copies import server
from prodwrap._engine import Engine
from prodwrap._kept import Kept
from prodwrap._masking import NO_MASKING, Masking
from prodwrap._options import Settings
from prodwrap._stage import Build, Compiles, Observers, Stage
from prodwrap._stats import StatsRecorder
from prodwrap._target import Kind, Target, input_name, is_async_callable, refuse_generator
from prodwrap.errors import ConfigurationError, InputValidationError, OutputValidationError
from prodwrap.policies.fallback import Constant, fallback_names
from prodwrap.policies.retry import Retry
from prodwrap.policies.timeout import Timeout
from prodwrap.policies.validation import _sensitive, compile_output, compile_spec, fast_validator


def batch_of(
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


def _compile_fallbacks(
    fallbacks: Sequence[Any], validate_output: Callable[[Any], Any] | None, model_is_async: bool, model_name: str
) -> tuple[Target, ...]:
    from prodwrap._model import ProductionModel  # the model module imports this one

    targets: list[Target] = []
    for fb, name in zip(fallbacks, fallback_names(fallbacks), strict=True):
        if isinstance(fb, Constant):
            value = fb.value
            if validate_output is not None:
                try:
                    value = validate_output(value)
                except OutputValidationError as exc:
                    raise ConfigurationError(f"fallback {name!r} fails output validation: {exc}") from exc
            serve = server(value)
            try:  # (a fresh copy for every call it serves: one that cannot be made fails here, once)
                serve()
            except Exception as exc:
                raise ConfigurationError(
                    f"fallback {name!r} cannot be served: its value cannot be copied for each call "
                    f"({type(exc).__name__}: {exc}); give pw.Constant an immutable or copyable value"
                ) from exc
            targets.append(Target(serve, Kind.CONSTANT, name, False))
        elif isinstance(fb, ProductionModel):
            if fb.is_async and not model_is_async:
                raise ConfigurationError(f"fallback {name!r} is an async model; a sync model cannot await it")
            targets.append(Target(fb, Kind.MODEL, name, True))
        elif callable(fb):
            refuse_generator(fb, model_name, f"fallback {name!r}")
            is_async = is_async_callable(fb)
            if is_async and not model_is_async:
                raise ConfigurationError(f"fallback {name!r} is async; a sync model cannot await it")
            targets.append(Target(fb, Kind.ASYNC if is_async else Kind.SYNC, name, True))
        else:
            raise ConfigurationError(f"fallback must be a callable, a ProductionModel or pw.Constant, got {fb!r}")
    return tuple(targets)


# The policies that compile into stages (``policy.stages(build)``), in DESIGN §1's order:
# admission (cache, budget, canary), then the attempt seam outermost first, then the observers.
ORDER = ("cache", "budget", "canary", "bulkhead", "circuit", "hedge", "rate_limit")


def _stages(
    settings: Settings,
    name: str,
    is_async: bool,
    ledger: Any = None,
    stats: Any = None,
    kept: Kept | None = None,
    masking: Masking = NO_MASKING,
) -> list[Stage]:
    """The stages the settings compile to, in DESIGN §1's order (the policies' stages that
    ``kept`` holds for the same policy are reused: their state goes on)."""
    stages: list[Stage] = []
    build = Build(name, settings.version, is_async, settings, masking)
    retry = Retry.coerce(settings.retry)
    kept = Kept() if kept is None else kept
    for key in ORDER:
        if key == "budget":  # several budgets compile into one pair of stages
            if settings.budget:
                from prodwrap.cost._budget_stage import compile_budgets

                value = settings.budget
                stages.extend(kept.stages(key, value, build, partial(compile_budgets, value, build)))
            continue
        policy: Compiles | None = getattr(settings, key, None)
        if policy is not None:
            if not callable(getattr(policy, "stages", None)):
                raise ConfigurationError(f"{key}= takes a prodwrap policy object, got {policy!r}")
            if key == "canary":  # a rollout's stage: compiled afresh with each engine
                stages.extend(policy.stages(build))
            else:
                stages.extend(kept.stages(key, policy, build, partial(policy.stages, build)))
        budget: Compiles | None = getattr(retry, "budget", None)
        if key == "bulkhead" and budget is not None:  # the retry budget: inside the bulkhead
            stages.extend(kept.stages("retry_budget", budget, build, partial(budget.stages, build)))
    if settings.drift is not None:
        from prodwrap.drift._stage import DriftStage  # the drift package loads when used

        stages.append(DriftStage.of(settings.drift, settings.input, settings.output))
    if settings.cost is not None or settings.ledger is not None or settings.fallback:
        from prodwrap.cost._stage import compile_cost

        compile_cost(settings, build, stages, ledger, stats)  # (model fallbacks may charge themselves)
        if settings.canary is not None:  # the variants' costs are the ledger's, by served_by
            from prodwrap.cost._stage import meter_of

            charger = meter_of(stages)
            core = next((getattr(s, "core", None) for s in stages if s.section == "canary"), None)
            if charger is not None and core is not None and charger.model is not None:
                core.bind_ledger(charger.ledger)
    if settings.shadow:
        from prodwrap.rollout._shadow_stage import compile_shadows

        stages.extend(compile_shadows(settings.shadow, build, stages))
    if settings.escalate is not None:
        from prodwrap.rollout.escalate import Escalate

        if not isinstance(settings.escalate, Escalate):
            raise ConfigurationError(f"escalate= takes a pw.Escalate, got {settings.escalate!r}")
        stages.extend(settings.escalate.stages(build))
    if settings.audit is not None:
        from prodwrap.audit import AuditLog

        if not isinstance(settings.audit, AuditLog):
            raise ConfigurationError(f"audit= takes a pw.AuditLog, got {settings.audit!r}")
        stages.extend(settings.audit.stages(build))
    if settings.observers:
        for observer in settings.observers:
            if not callable(observer):
                raise ConfigurationError(f"observers= takes callables (each given every Prediction), got {observer!r}")
            if is_async_callable(observer):  # (it would make a coroutine no one awaits)
                raise ConfigurationError(
                    f"observers= are called inline, as each call ends, and are never awaited: {observer!r} is "
                    "async; pass a plain function (one that hands slow work to a queue of its own)"
                )
        stages.append(Observers(tuple(settings.observers)))
    if settings.telemetry:
        from prodwrap.telemetry._compile import compile_telemetry  # the OTel API loads with the first model

        stages.append(compile_telemetry(build, stages, stats))
    return stages


def compile_engine(
    fn: Callable[..., Any], settings: Settings, stats: Any = None, ledger: Any = None, kept: Kept | None = None
) -> Engine:
    """The engine a model runs: every option compiled once, here, into its stage.

    Args:
        stats: the ``StatsRecorder`` to count in (a swapped engine keeps its model's counts).
        ledger: the ledger ``cost=`` records in when ``ledger=`` shares none (a swapped engine
            keeps its model's own ledger).
        kept: the model's kept stages (``prodwrap._kept``): a swapped engine for the same
            primary reuses its policies' stages, so their state goes on (None: all fresh).
    """
    name = settings.name
    if settings.on_invalid not in ("raise", "fallback"):
        raise ConfigurationError(f'on_invalid must be "raise" or "fallback", got {settings.on_invalid!r}')
    if not isinstance(settings.batch, bool):
        raise ConfigurationError(f"batch must be True or False, got {settings.batch!r}")
    validate_input = None if settings.input is None else compile_spec(settings.input, InputValidationError, name)
    validate_fast = None if validate_input is None else fast_validator(settings.input, validate_input)
    validate_output = compile_output(settings.output, settings.check, name)
    if settings.batch:
        validate_input = None if validate_input is None else batch_of(validate_input, InputValidationError, name)
        validate_fast = validate_input
        validate_output = None if validate_output is None else batch_of(validate_output, OutputValidationError, name)
    refuse_generator(fn, name, "the predict")
    is_async = is_async_callable(fn)
    stats = StatsRecorder() if stats is None else stats
    masking = Masking(_sensitive(settings.input), _sensitive(settings.output))
    masking = masking if masking else NO_MASKING  # (the engine's and its stages')
    return Engine(
        fn=fn,
        name=name,
        input_name=input_name(fn),
        version=settings.version,
        is_async=is_async,
        validate_input=validate_input,
        validate_fast=validate_fast,
        validate_output=validate_output,
        timeout=Timeout.coerce(settings.timeout),
        retry=Retry.coerce(settings.retry),
        fallbacks=_compile_fallbacks(settings.fallback, validate_output, is_async, name),
        on_invalid=settings.on_invalid,
        stages=_stages(settings, name, is_async, ledger, stats, kept, masking),
        stats=stats,
        batch=settings.batch,
        masking=masking,
    )
