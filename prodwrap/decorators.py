"""``@production`` and the single-purpose decorators.

Each decorator returns a :class:`ProductionModel`. Applied to a function it builds one;
applied to a model (another decorator's result) it derives a model with its options merged
in, so a stack of decorators is one model with one pipeline, never nested wrappers. How each
option merges (a stacked ``@fallback`` extends the chain, the rest replace) is part of the
option's declaration (``prodwrap._options``). A decorator whose options all have defaults
works bare (``@pw.retry``, ``@pw.production``); the others refuse bare use at decoration
time, naming themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar, Unpack, overload

from prodwrap._decorating import given_once, not_a_method
from prodwrap._model import ProductionModel
from prodwrap._options import CommonOptions
from prodwrap.errors import ConfigurationError
from prodwrap.policies.cache import Cache
from prodwrap.policies.circuit import CircuitBreaker, Record
from prodwrap.policies.ratelimit import Estimate, RateLimit, UsageReader
from prodwrap.policies.retry import Retry, RetryOn, StopStrategy, WaitStrategy
from prodwrap.policies.retry_budget import RetryBudget
from prodwrap.policies.timeout import Timeout
from prodwrap.policies.validation import Check

if TYPE_CHECKING:
    import tenacity

    from prodwrap.cost import Budget, Ledger
    from prodwrap.drift._monitor import DriftMonitor
    from prodwrap.state import StateStore

X = TypeVar("X")
P = ParamSpec("P")
R = TypeVar("R")


class Decorator(Protocol):
    """What the decorator factories return: function (or model) in, ``ProductionModel`` out."""

    def __call__(self, fn: Callable[Concatenate[X, P], R], /) -> ProductionModel[X, P, R]: ...


class Validating(Protocol):
    """A decorator that adds ``input=``: the model then accepts every form its validator takes."""

    def __call__(self, fn: Callable[Concatenate[X, P], R], /) -> ProductionModel[Any, P, R]: ...


def _apply(fn: Callable[..., Any], options: dict[str, Any]) -> Any:
    if isinstance(fn, ProductionModel):  # stacked: one model, options merged (fallbacks extend)
        given_once(fn, options)
        return fn._stacked(options)
    not_a_method(fn)
    return ProductionModel(fn, **options)


def _decorator(**options: Any) -> Any:
    def decorate(fn: Callable[..., Any], /) -> Any:
        return _apply(fn, options)

    return decorate


def _bare(decorator: str, fn: object, usage: str) -> None:
    """Decorators whose options have no defaults refuse bare use at decoration time."""
    if fn is not None:
        raise ConfigurationError(f"@pw.{decorator} needs options: {usage}")


@overload
def production(fn: Callable[Concatenate[X, P], R], /) -> ProductionModel[X, P, R]: ...


@overload
def production(*, input: None = None, **options: Unpack[CommonOptions]) -> Decorator: ...


@overload
def production(*, input: Any, **options: Unpack[CommonOptions]) -> Validating: ...


def production(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a :class:`ProductionModel`; takes every keyword the model takes.

    Usable bare (``@pw.production``) or with options (``@pw.production(timeout=0.5)``). The
    name defaults to the function's ``__name__``.
    """
    if fn is not None:
        return _apply(fn, options)
    return _decorator(**options)


@overload
def validate(
    fn: None = None,
    /,
    *,
    input: None = None,
    output: Any = None,
    check: Check | Sequence[Check] | None = None,
    on_invalid: Literal["raise", "fallback"] | None = None,
) -> Decorator: ...


@overload
def validate(
    fn: None = None,
    /,
    *,
    input: Any,
    output: Any = None,
    check: Check | Sequence[Check] | None = None,
    on_invalid: Literal["raise", "fallback"] | None = None,
) -> Validating: ...


def validate(
    fn: object = None,
    /,
    *,
    input: Any = None,
    output: Any = None,
    check: Check | Sequence[Check] | None = None,
    on_invalid: Literal["raise", "fallback"] | None = None,
) -> Any:
    """Validate the input and/or output (``input=``, ``output=``, ``check=`` of the model)."""
    _bare("validate", fn, "@pw.validate(input=Schema, output=..., check=...)")
    given = {"input": input, "output": output, "check": check, "on_invalid": on_invalid}
    options = {k: v for k, v in given.items() if v is not None}
    if not options.keys() - {"on_invalid"}:
        raise ConfigurationError("@pw.validate needs input=, output= or check=")
    return _decorator(**options)


def timeout(
    seconds: float | Timeout | None = None, /, *, attempt: float | None = None, total: float | None = None
) -> Decorator:
    """Limit each attempt to ``seconds`` (or give ``attempt=``/``total=`` as in ``pw.Timeout``)."""
    if callable(seconds) and not isinstance(seconds, Timeout):
        _bare("timeout", seconds, "@pw.timeout(0.5) or @pw.timeout(attempt=0.5, total=2.0)")
    if seconds is None:
        policy: float | Timeout = Timeout(attempt=attempt, total=total)
    elif attempt is not None or total is not None:
        raise ConfigurationError("@pw.timeout takes seconds or attempt=/total=, not both")
    else:
        policy = seconds
    return _decorator(timeout=policy)  # type: ignore[no-any-return]


@overload
def retry(attempts: Callable[Concatenate[X, P], R], /) -> ProductionModel[X, P, R]: ...


@overload
def retry(
    attempts: int | Retry | None = None,
    *,
    on: RetryOn | None = None,
    wait: WaitStrategy | None = None,
    stop: StopStrategy | tenacity.stop.stop_base | None = None,
    max_retry_after: float | None = None,
    budget: RetryBudget | None = None,
) -> Decorator: ...


def retry(
    attempts: int | Retry | Callable[..., Any] | None = None,
    *,
    on: RetryOn | None = None,
    wait: WaitStrategy | None = None,
    stop: StopStrategy | tenacity.stop.stop_base | None = None,
    max_retry_after: float | None = None,
    budget: RetryBudget | None = None,
) -> Any:
    """Retry failed attempts: bare ``@pw.retry`` (``pw.Retry()``: 3 attempts, transient
    failures), ``@pw.retry(3)`` or ``@pw.retry(attempts=3, on=..., wait=..., budget=...)``."""
    if callable(attempts) and not isinstance(attempts, Retry):
        return _apply(attempts, {"retry": Retry()})
    if isinstance(attempts, Retry):
        policy = attempts
    else:
        given = {"on": on, "wait": wait, "stop": stop, "max_retry_after": max_retry_after, "budget": budget}
        kwargs: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if attempts is not None:
            kwargs["attempts"] = attempts
        elif stop is not None:
            kwargs["attempts"] = None
        policy = Retry(**kwargs)
    return _decorator(retry=policy)


def fallback(*fallbacks: Any) -> Decorator:
    """Serve from these, in order, when the primary fails: ``@pw.fallback(f1, pw.Constant(v))``."""
    if not fallbacks:
        raise ConfigurationError("@pw.fallback needs at least one fallback")
    return _decorator(fallback=list(fallbacks))  # type: ignore[no-any-return]


@overload
def circuit(policy: Callable[Concatenate[X, P], R], /) -> ProductionModel[X, P, R]: ...


@overload
def circuit(
    policy: CircuitBreaker | None = None,
    /,
    *,
    failure_rate: float | None = None,
    slow_call_rate: float | None = None,
    slow_call: float | None = None,
    window: int | None = None,
    min_calls: int | None = None,
    open_for: float | None = None,
    half_open_calls: int | None = None,
    record: Record | None = None,
    store: StateStore | None = None,
) -> Decorator: ...


def circuit(
    policy: CircuitBreaker | Callable[..., Any] | None = None,
    /,
    *,
    failure_rate: float | None = None,
    slow_call_rate: float | None = None,
    slow_call: float | None = None,
    window: int | None = None,
    min_calls: int | None = None,
    open_for: float | None = None,
    half_open_calls: int | None = None,
    record: Record | None = None,
    store: StateStore | None = None,
) -> Any:
    """Put a circuit breaker around the primary's attempts: bare ``@pw.circuit``
    (``pw.CircuitBreaker()``'s defaults), ``@pw.circuit(failure_rate=0.5, window=50, ...)``
    (the keywords of ``pw.CircuitBreaker``) or ``@pw.circuit(pw.CircuitBreaker(...))``."""
    given = {
        "failure_rate": failure_rate,
        "slow_call_rate": slow_call_rate,
        "slow_call": slow_call,
        "window": window,
        "min_calls": min_calls,
        "open_for": open_for,
        "half_open_calls": half_open_calls,
        "record": record,
        "store": store,
    }
    kwargs: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if isinstance(policy, CircuitBreaker):
        if kwargs:
            raise ConfigurationError("@pw.circuit takes a pw.CircuitBreaker or its keywords, not both")
        return _decorator(circuit=policy)
    if policy is not None:  # bare: @pw.circuit
        if not callable(policy):
            raise ConfigurationError(f"@pw.circuit takes a pw.CircuitBreaker or keywords, got {policy!r}")
        return _apply(policy, {"circuit": CircuitBreaker(**kwargs)})
    return _decorator(circuit=CircuitBreaker(**kwargs))


def rate_limit(
    policy: RateLimit | None = None,
    /,
    *,
    calls: float | None = None,
    per: float = 1.0,
    tokens: float | None = None,
    max_wait: float = 0.0,
    by: str | None = None,
    store: Any = None,
    estimate: Estimate | None = None,
    usage: UsageReader | None = None,
) -> Decorator:
    """Limit the primary's attempts (and tokens) per period: ``@pw.rate_limit(calls=500,
    per=60.0)`` (what ``pw.RateLimit`` takes) or ``@pw.rate_limit(pw.RateLimit(...))``."""
    if policy is not None and not isinstance(policy, RateLimit):
        _bare("rate_limit", policy, "@pw.rate_limit(calls=..., per=..., tokens=..., max_wait=..., by=...)")
    if policy is None:
        policy = RateLimit(
            calls=calls, per=per, tokens=tokens, max_wait=max_wait, by=by, store=store, estimate=estimate, usage=usage
        )
    return _decorator(rate_limit=policy)  # type: ignore[no-any-return]


def metered(
    fn: object = None,
    /,
    *,
    cost: Any = None,
    ledger: Ledger | None = None,
    budget: Budget | Sequence[Budget] | None = None,
) -> Decorator:
    """Charge every attempt: ``@pw.metered(cost=pw.PerCall("0.0001"))`` (what ``cost=`` takes),
    recorded in the model's ledger or in ``ledger=``; ``budget=`` limits the spend
    (``pw.Budget("25.00", per="day")``, or a list of them)."""
    _bare("metered", fn, '@pw.metered(cost=pw.PerCall("0.0001"))')
    if cost is None:
        raise ConfigurationError('@pw.metered needs cost= (a cost model, such as pw.PerCall("0.0001"))')
    options: dict[str, Any] = {"cost": cost}
    if ledger is not None:
        options["ledger"] = ledger
    if budget is not None:
        options["budget"] = budget
    return _decorator(**options)  # type: ignore[no-any-return]


def monitored(fn: object = None, /, *, drift: DriftMonitor | None = None) -> Decorator:
    """Watch inputs and output for drift: ``@pw.monitored(drift=pw.DriftMonitor(X_train))``."""
    _bare("monitored", fn, "@pw.monitored(drift=pw.DriftMonitor(reference))")
    if drift is None:
        raise ConfigurationError("@pw.monitored needs drift=pw.DriftMonitor(reference)")
    return _decorator(drift=drift)  # type: ignore[no-any-return]


@overload
def cache(policy: Callable[Concatenate[X, P], R], /) -> ProductionModel[X, P, R]: ...


@overload
def cache(
    policy: Cache | int | None = None,
    /,
    *,
    maxsize: int | None = None,
    ttl: float | None = None,
    key: Callable[[Any], Hashable] | None = None,
    cache_fallbacks: bool = False,
    copy: bool = True,
) -> Decorator: ...


def cache(
    policy: Cache | int | Callable[..., Any] | None = None,
    /,
    *,
    maxsize: int | None = None,
    ttl: float | None = None,
    key: Callable[[Any], Hashable] | None = None,
    cache_fallbacks: bool = False,
    copy: bool = True,
) -> Any:
    """Serve repeated inputs from memory: bare ``@pw.cache`` (``pw.Cache()``: 1024 entries, no
    expiry), ``@pw.cache(maxsize=10_000, ttl=300)``, ``@pw.cache(10_000)`` or
    ``@pw.cache(pw.Cache(...))``."""
    given = maxsize is not None or ttl is not None or key is not None or cache_fallbacks or not copy
    if isinstance(policy, Cache):
        if given:
            raise ConfigurationError("@pw.cache takes a pw.Cache or its settings, not both")
        return _decorator(cache=policy)
    if callable(policy):
        return _apply(policy, {"cache": Cache()})
    if policy is not None:
        if maxsize is not None:
            raise ConfigurationError("@pw.cache takes maxsize once (positionally or as maxsize=)")
        maxsize = policy
    return _decorator(cache=Cache(1024 if maxsize is None else maxsize, ttl, key, cache_fallbacks, copy))


def shadowed(
    candidate: Any,
    /,
    *,
    sample: float = 1.0,
    key: str | Callable[[Any], Any] | None = None,
    compare: Callable[[Any, Any], bool] | None = None,
    timeout: float | None = None,
    max_pending: int = 1000,
    on_mismatch: Callable[[Any, Any, Any], object] | None = None,
    ignore: Callable[[Any, Any, Any], bool] | None = None,
    enabled: Callable[[], bool] | None = None,
    name: str | None = None,
    workers: int = 4,
    seed: int | None = None,
) -> Decorator:
    """Shadow the function with ``candidate``: ``@pw.shadowed(new_predict, sample=0.1)`` (what
    ``pw.Shadow`` takes); stacked ``@pw.shadowed`` decorators add candidates."""
    from prodwrap.rollout.shadow import Shadow  # (rollouts load when used)

    if isinstance(candidate, Shadow):
        raise ConfigurationError("@pw.shadowed takes the candidate and Shadow's options; for a pw.Shadow use shadow=")
    policy = Shadow(
        candidate, sample, key, compare, timeout, max_pending, on_mismatch, ignore, enabled, name, workers, seed
    )
    return _decorator(shadow=policy)  # type: ignore[no-any-return]
