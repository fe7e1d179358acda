"""Fault injection for tests: ``chaos(fn, ...)`` and ``FlakyFunction``/``AsyncFlaky``.

``chaos`` wraps a predict (or anything it calls) and, call by call, injects errors, latency
and hangs drawn from one seeded random stream. Every call takes exactly three draws (hang,
error, which error) under a lock, so with a seed the n-th call's fate depends on the seed
and n alone, whatever faults are switched on (a latency distribution draws from a second
stream). Latency sleeps on prodwrap's clock, so under
``no_sleep()`` it advances the fake clock and costs no real time. A hang blocks until
``release()`` (or the end of a ``with`` block over the wrapper), or until ``hang_for``
seconds pass on prodwrap's clock: under a fake clock, until the test advances it.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import random
import threading
import types
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, overload

from prodwrap import _clock
from prodwrap._target import is_async_callable
from prodwrap.errors import ConfigurationError

P = ParamSpec("P")
R = TypeVar("R")

_POLL = 0.005  # real seconds between looks at the clock while a call hangs
Latency = float | Callable[[random.Random], float]
FLAKY = ConnectionError("flaky")  # FlakyFunction's default error (raised as a copy)


def _copy(error: BaseException) -> BaseException:
    """A copy of ``error`` made without calling its ``__init__``: ``cls.__new__(cls, *args)``
    with the instance's attributes copied over, so an ``__init__`` taking keyword-only
    arguments (openai's ``APIStatusError``) or reformatting its message is not run again.
    The cause, context and traceback are not carried. Falls back to ``copy.copy``."""
    cls = type(error)
    try:
        fresh = cls.__new__(cls, *error.args)
    except Exception:
        return copy.copy(error)
    fresh.args = error.args
    for name in _builtin_fields(cls):  # (what the built-in __init__ would have set: errno, code, ...)
        try:
            value = getattr(error, name)
            if value is not None:  # (None is each one's default: set, OSError's text would show it)
                setattr(fresh, name, value)
        except (AttributeError, TypeError):
            pass
    attrs = dict(vars(error))
    if isinstance(attrs.get("__notes__"), list):
        attrs["__notes__"] = list(attrs["__notes__"])  # a note added to one copy stays on it
    vars(fresh).update(attrs)
    return fresh


_NOT_COPIED = frozenset({"args", "__traceback__", "__context__", "__cause__", "__suppress_context__", "__dict__"})


def _builtin_fields(cls: type) -> list[str]:
    """The fields built-in exception classes in ``cls``'s bases keep outside the instance's
    ``__dict__`` (``OSError.errno``, ``SystemExit.code``, ``StopIteration.value``, ...)."""
    return [
        name
        for base in cls.__mro__
        if base.__module__ == "builtins"
        for name, field in vars(base).items()
        if name not in _NOT_COPIED and isinstance(field, types.MemberDescriptorType | types.GetSetDescriptorType)
    ]


def _fresh(error: BaseException | type[BaseException], what: str) -> BaseException:
    """A new exception to raise: the class called with a message, or a copy of the instance
    (so one instance's traceback does not grow call after call)."""
    if isinstance(error, type):
        return error(what)
    return _copy(error)


def _errors(errors: Any) -> tuple[BaseException | type[BaseException], ...]:
    items = (errors,) if isinstance(errors, BaseException | type) else tuple(errors)
    for item in items:
        ok = isinstance(item, BaseException) or (isinstance(item, type) and issubclass(item, BaseException))
        if not ok:
            raise ConfigurationError(f"chaos errors= takes exception classes or instances, got {item!r}")
        if isinstance(item, BaseException):
            try:
                _copy(item)
            except Exception as exc:
                raise ConfigurationError(f"chaos cannot copy the error {item!r} to raise it: {exc!r}") from exc
    return items


def _rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigurationError(f"chaos {name}= must be a fraction in [0, 1], got {value!r}")
    return float(value)


class _Chaos:
    """What the sync and the async wrapper share: the decisions and the counters.

    Attributes:
        calls: calls made to the wrapper.
        errors: errors injected.
        delays: calls delayed by ``latency``; ``delayed``: seconds of latency injected.
        hangs: calls that hung; ``hanging``: calls hanging now.
        passed: calls that reached the wrapped function.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        error_rate: float,
        errors: Any,
        latency: Latency | None,
        hang_rate: float,
        seed: int | str | None,
        hang_for: float,
    ) -> None:
        if not callable(fn):
            raise ConfigurationError(f"chaos wraps a callable, got {fn!r}")
        self.fn = fn
        self.error_rate = _rate("error_rate", error_rate)
        self.hang_rate = _rate("hang_rate", hang_rate)
        self.choices = _errors(errors)
        if self.error_rate and not self.choices:
            raise ConfigurationError("chaos error_rate= needs at least one exception in errors=")
        fixed = isinstance(latency, int | float) and not isinstance(latency, bool)
        if latency is not None and not callable(latency) and not (fixed and latency >= 0):
            raise ConfigurationError(
                f"chaos latency= takes seconds >= 0 or a callable(rng) -> seconds, got {latency!r}"
            )
        if isinstance(hang_for, bool) or not isinstance(hang_for, int | float) or not hang_for > 0:
            raise ConfigurationError(f"chaos hang_for= must be seconds > 0, got {hang_for!r}")
        self.latency = latency
        self.hang_for = float(hang_for)
        self.seed = seed
        self._rng = random.Random(seed)
        # A distribution's draws come from a stream of their own, so they never shift the fates.
        self._latency_rng = random.Random(None if seed is None else f"{seed}:latency")
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.calls = self.errors = self.delays = self.hangs = self.hanging = self.passed = 0
        self.delayed = 0.0
        functools.update_wrapper(self, fn, updated=())  # type: ignore[arg-type]

    def _decide(self) -> tuple[threading.Event | None, BaseException | None, float]:
        """This call's fate: (the event it hangs on, the error to raise, seconds of latency)."""
        with self._lock:
            self.calls += 1
            hang, fail, pick = self._rng.random(), self._rng.random(), self._rng.random()
            latency = self.latency
            seconds = 0.0 if latency is None else float(latency(self._latency_rng) if callable(latency) else latency)
            error = None
            if fail < self.error_rate:
                self.errors += 1
                choice = self.choices[min(int(pick * len(self.choices)), len(self.choices) - 1)]
                error = _fresh(choice, f"chaos: injected {getattr(choice, '__name__', type(choice).__name__)}")
            event = None
            if hang < self.hang_rate:
                self.hangs += 1
                event = self._release
            if seconds > 0:
                self.delays += 1
                self.delayed += seconds
            return event, error, seconds

    def release(self) -> None:
        """End every hang under way (the calls go on as usual); later hangs wait again."""
        with self._lock:
            event, self._release = self._release, threading.Event()
        event.set()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def stats(self) -> dict[str, float]:
        """The counters, as one dict."""
        with self._lock:
            return {
                "calls": self.calls,
                "errors": self.errors,
                "delays": self.delays,
                "delayed": self.delayed,
                "hangs": self.hangs,
                "hanging": self.hanging,
                "passed": self.passed,
            }

    def _count(self, attr: str, by: int) -> None:
        with self._lock:
            setattr(self, attr, getattr(self, attr) + by)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return (
            f"<{type(self).__name__} {name} error_rate={self.error_rate} hang_rate={self.hang_rate} seed={self.seed!r}>"
        )


class Chaos(_Chaos, Generic[P, R]):
    """A sync function with faults injected (see :func:`chaos`)."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        event, error, seconds = self._decide()
        clock = _clock.current.clock
        if event is not None:
            self._count("hanging", 1)
            try:
                until = clock.monotonic() + self.hang_for
                while not event.wait(_POLL) and clock.monotonic() < until:
                    pass
            finally:
                self._count("hanging", -1)
        if seconds > 0:
            clock.sleep(seconds)
        if error is not None:
            raise error
        self._count("passed", 1)
        out: R = self.fn(*args, **kwargs)
        return out


class AsyncChaos(_Chaos, Generic[P, R]):
    """An async function with faults injected (see :func:`chaos`)."""

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        event, error, seconds = self._decide()
        clock = _clock.current.clock
        if event is not None:
            self._count("hanging", 1)
            try:
                until = clock.monotonic() + self.hang_for
                while not event.is_set() and clock.monotonic() < until:
                    await asyncio.sleep(_POLL)  # real time: the hang is cancelled at its timeout
            finally:
                self._count("hanging", -1)
        if seconds > 0:
            await clock.asleep(seconds)
        if error is not None:
            raise error
        self._count("passed", 1)
        out: R = await self.fn(*args, **kwargs)
        return out


@overload
def chaos(  # type: ignore[overload-overlap]
    fn: Callable[P, Awaitable[R]],
    *,
    error_rate: float = ...,
    errors: Sequence[BaseException | type[BaseException]] | BaseException | type[BaseException] = ...,
    latency: Latency | None = ...,
    hang_rate: float = ...,
    seed: int | str | None = ...,
    hang_for: float = ...,
) -> AsyncChaos[P, R]: ...


@overload
def chaos(
    fn: Callable[P, R],
    *,
    error_rate: float = ...,
    errors: Sequence[BaseException | type[BaseException]] | BaseException | type[BaseException] = ...,
    latency: Latency | None = ...,
    hang_rate: float = ...,
    seed: int | str | None = ...,
    hang_for: float = ...,
) -> Chaos[P, R]: ...


def chaos(
    fn: Callable[..., Any],
    *,
    error_rate: float = 0.0,
    errors: Sequence[BaseException | type[BaseException]] | BaseException | type[BaseException] = (ConnectionError,),
    latency: Latency | None = None,
    hang_rate: float = 0.0,
    seed: int | str | None = None,
    hang_for: float = 3600.0,
) -> Any:
    """``fn`` with faults injected, sync or async as ``fn`` is.

    Args:
        fn: the function to wrap (its name, docstring and signature are kept).
        error_rate: the fraction of calls that raise one of ``errors`` (drawn per call).
        errors: exception classes (called with a message) or instances (raised as copies made
            without calling their ``__init__``: same class, args and attributes);
            one is drawn per injected error.
        latency: seconds added to every call, or ``callable(rng) -> seconds`` drawing them
            from a seeded stream of its own (``lambda rng: rng.expovariate(10)``); slept on
            prodwrap's clock (instant under ``no_sleep()``).
        hang_rate: the fraction of calls that hang: they block until ``release()`` or until
            ``hang_for`` seconds pass on prodwrap's clock, then go on as usual.
        seed: makes the faults repeat from run to run (None: a fresh random stream).
        hang_for: the longest a hang lasts, in seconds on prodwrap's clock (default an hour).

    Returns:
        A :class:`Chaos` (or :class:`AsyncChaos`) with counters (``calls``, ``errors``,
        ``delays``, ``delayed``, ``hangs``, ``hanging``, ``passed``) and ``release()``; used
        as a context manager it releases every hang when the block ends.
    """
    kind = AsyncChaos if is_async_callable(fn) else Chaos
    return kind(fn, error_rate, errors, latency, hang_rate, seed, hang_for)


class _Flaky:
    def __init__(
        self, fn: Callable[..., Any] | None, fail_times: int, error: BaseException | type[BaseException], default: Any
    ) -> None:
        if fn is not None and not callable(fn):
            raise ConfigurationError(f"FlakyFunction fn= takes a callable or None, got {fn!r}")
        if isinstance(fail_times, bool) or not isinstance(fail_times, int) or fail_times < 0:
            raise ConfigurationError(f"FlakyFunction fail_times= must be an int >= 0, got {fail_times!r}")
        _errors(error)
        self.fn = fn
        self.fail_times = fail_times
        self.error = error
        self.default = default
        self.calls = 0
        self.failures = 0
        self._lock = threading.Lock()
        if fn is not None:
            functools.update_wrapper(self, fn, updated=())  # type: ignore[arg-type]

    def _fails(self) -> BaseException | None:
        with self._lock:
            self.calls += 1
            if self.calls > self.fail_times:
                return None
            self.failures += 1
        return _fresh(self.error, "flaky")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} fail_times={self.fail_times} calls={self.calls}>"


class FlakyFunction(_Flaky):
    """Fails its first ``fail_times`` calls, then calls ``fn`` (or returns ``default``).

    Args:
        fn: the sync function called once the failures are used up (None: return ``default``).
        fail_times: how many calls fail first.
        error: the exception raised (an instance is raised as a copy; a class is called).
        default: what is returned when there is no ``fn``.

    Attributes:
        calls: calls made so far; failures: calls that raised.

    For an async ``fn`` use :class:`AsyncFlaky` (a ``ConfigurationError`` says so).
    """

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        fail_times: int = 1,
        error: BaseException | type[BaseException] = FLAKY,
        default: Any = None,
    ) -> None:
        if fn is not None and is_async_callable(fn):
            raise ConfigurationError("FlakyFunction wraps sync functions: use AsyncFlaky for an async one")
        super().__init__(fn, fail_times, error, default)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        error = self._fails()
        if error is not None:
            raise error
        return self.default if self.fn is None else self.fn(*args, **kwargs)


class AsyncFlaky(_Flaky):
    """:class:`FlakyFunction` for async code: calling it returns a coroutine."""

    def __init__(
        self,
        fn: Callable[..., Any] | None = None,
        fail_times: int = 1,
        error: BaseException | type[BaseException] = FLAKY,
        default: Any = None,
    ) -> None:
        if fn is not None and not is_async_callable(fn):
            raise ConfigurationError("AsyncFlaky wraps async functions: use FlakyFunction for a sync one")
        super().__init__(fn, fail_times, error, default)

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        error = self._fails()
        if error is not None:
            raise error
        return self.default if self.fn is None else await self.fn(*args, **kwargs)
