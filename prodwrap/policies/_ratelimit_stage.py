"""The rate limit's stage: the innermost attempt stage, taking a permit for every attempt of
the primary (fallbacks are other dependencies: they take none).

A calls-only limit keeps the success path: ``fast_admit`` takes the first attempt's permit
(one atomic ``take`` on the store) and ``fast_undo`` gives it back. A token limit needs the
output's reported usage to settle its reservation, which the success path does not hand a
stage, so :class:`TokenLimitStage` sees every call on the general path (``fast = False``).

A fault of the store (or of ``estimate=``/``usage=``) never costs the caller the prediction:
it is counted (``stats().rate_limit.faults``) and logged once per burst, and the attempt goes
on without a permit.
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import threading
from typing import TYPE_CHECKING, Any

from prodwrap import _clock
from prodwrap._context import TAGS, tag_text
from prodwrap._log import Throttle, logger
from prodwrap._stage import Pause, Seam, Stage, inline_admit
from prodwrap._stats import counted
from prodwrap.cost import Usage, usage_of
from prodwrap.errors import RateLimitedError
from prodwrap.policies.ratelimit import RateLimitStats
from prodwrap.state import MemoryStore, StateStore

if TYPE_CHECKING:
    from prodwrap._engine import Target
    from prodwrap._record import CallRecord
    from prodwrap._stage import Build
    from prodwrap.policies.ratelimit import RateLimit

log = logger("rate_limit")
_faults = Throttle(log)
_clocks = _clock.current

# The first attempt's permit, without waiting (see _stage.inline_admit): a store that raises
# is a fault, counted and logged, and the walk asks again (letting the attempt go if the store
# still fails); a permit not there at once is the walk's to wait for, or to refuse.
_TAKE = """\
try:
    {p}scoped = {p}key + {p}stage._scope() if {p}by else {p}key
    {p}wait = {p}store.take({p}scoped, 1.0, {p}calls, {p}rate, {p}clocks.clock.monotonic())
except Exception as {p}exc:
    {p}stage._fault({p}exc)
    said = False
else:
    if {p}wait:
        said = False
    else:
        next({p}taken)
        said = True
"""
MEAN_OVER = 100  # the running mean of reported usage weighs about the last this many calls


class _Held:
    """What one call's current attempt holds (kept in ``call.state``)."""

    __slots__ = ("extras", "paused", "permit", "reserved", "scope", "waited")

    def __init__(self) -> None:
        self.permit = False  # the attempt holds a permit (a call's, and its tokens if any)
        self.reserved = 0  # tokens reserved for it
        self.extras: list[int] = []  # tokens reserved for each extra attempt of a hedge's race
        self.scope = ""  # the buckets' key suffix (``by=``'s tag and value)
        self.waited = 0.0  # seconds this attempt has waited so far (as planned: what max_wait limits)
        self.paused: float | None = None  # the clock's reading when its pause began (None: not paused)


class CallLimitStage(Stage):
    """A rate limit of calls per period (and the base of the token limit)."""

    name = "rate limit"
    seam = Seam.ATTEMPT
    section = "rate_limit"

    def __init__(self, policy: RateLimit, build: Build) -> None:
        self.policy = policy
        self.model = build.name
        self.store: StateStore = policy.store if policy.store is not None else MemoryStore()
        self.calls_key = f"{build.name}:rate_limit:calls"
        self.tokens_key = f"{build.name}:rate_limit:tokens"
        self.by = policy.by
        self.max_wait = policy.max_wait
        # (floats: a bucket's refill compares them with float token counts, which costs an
        # int as large as 10**12 many times what a float costs)
        self.calls = None if policy.calls is None else float(policy.calls)
        self.call_rate = 0.0 if policy.calls is None else policy.calls / policy.per
        self.tokens = None if policy.tokens is None else float(policy.tokens)
        self.token_rate = 0.0 if policy.tokens is None else policy.tokens / policy.per
        # Refusals are logged here only when no fallback will log the call (the finish point does).
        self.quiet = bool(getattr(build.settings, "fallback", ()))
        self._taken = itertools.count()
        self._given = itertools.count()
        self._waits = itertools.count()
        self._refusals = itertools.count()
        self._unreported = itertools.count()
        self._faults = itertools.count()
        self._lock = threading.Lock()  # the sums below (general path only)
        self._seconds = 0.0
        self._reserved = 0
        self._settled = 0
        self._mean = 0.0  # running mean of reported usage (tokens per attempt)
        self._seen = 0
        if policy.tokens is None:
            names = {"stage": self, "store": self.store, "key": self.calls_key, "clocks": _clocks}
            names.update(by=self.by, calls=self.calls, rate=self.call_rate, taken=self._taken)
            self.fast_admit = inline_admit(_TAKE, names)  # (its lines run inline on the success path)
            self.fast_undo = self._give_fast

    # -- the success path (calls only) -------------------------------------------------------

    def _give_fast(self) -> None:
        self._give(self._scope() if self.by else "", 0, _clocks.clock.monotonic())

    # -- the general path --------------------------------------------------------------------

    def _scope(self) -> str:
        """The buckets' key suffix for this call: ``:<tag>=<value>`` with ``by=`` (none without the tag)."""
        value = TAGS.get().get(self.by) if self.by else None
        return "" if value is None else f":{self.by}={tag_text(value)}"  # (a text that raises: its stand-in)

    def before_attempt(self, call: CallRecord, target: Target) -> Pause | RateLimitedError | None:
        if call.phase >= 0:
            return None  # a fallback: another dependency
        state = call.state
        if state is None:
            state = call.state = {}
        held = state.get(self)
        if held is None:
            held = state[self] = _Held()
        if call.racing and held.permit:
            return self._extra(call, held)
        held.permit = False  # a new attempt (or the same one asking again after a pause)
        held.extras.clear()  # an earlier round's race: its extra attempts reached the dependency (spent)
        held.scope = self._scope() if self.by else ""
        now = _clocks.clock.monotonic()
        if held.paused is not None:
            self._resumed(held, now)
        try:
            wait, bucket = self._take(call, held, now)
        except Exception as exc:
            self._fault(exc)
            return None  # the store failed: the attempt goes on without a permit
        if not wait:
            held.waited = 0.0
            return None
        left = self.max_wait - held.waited
        if call.deadline is not None:
            left = min(left, call.deadline - now)
        if wait <= left:  # the permit comes in time: sleep until then, then ask again
            if call.racing:
                return Pause(wait)  # a race asking for one more attempt: no hedge (it never sleeps)
            if not held.waited:
                next(self._waits)
            held.waited += wait
            held.paused = now  # the seconds waited are counted when the pause ends
            return Pause(wait)
        next(self._refusals)
        held.waited = 0.0
        scope = bucket + held.scope
        allowed = max(0.0, left)
        if not self.quiet and log.isEnabledFor(logging.INFO):
            log.info(
                "%s: attempt %d refused: no rate-limit permit (%s) within %.3g s",
                self.model,
                call.attempts + 1,
                scope,
                allowed,
                extra={"model": self.model, "outcome": "error", "reason": "rate_limited"},
            )
        return RateLimitedError(
            f"{self.model}: rate limited ({scope}): no permit within {allowed:.3g} s (the next in {wait:.3g} s)",
            scope=scope,
            wait=wait,
        )

    def _resumed(self, held: _Held, now: float) -> None:
        """The attempt's pause ended at ``now`` (asked again, or the call ended in it): count
        the seconds it really waited, which a cancelled or interrupted sleep cuts short."""
        waited, held.paused = now - held.paused, None  # type: ignore[operator]
        if waited > 0:
            with self._lock:
                self._seconds += waited

    def _take(self, call: CallRecord, held: _Held, now: float) -> tuple[float, str]:
        """Take the attempt's permit (0.0), or the seconds until there is one and which bucket."""
        store, scope = self.store, held.scope
        if self.calls is not None:
            wait = store.take(self.calls_key + scope, 1.0, self.calls, self.call_rate, now)
            if wait:
                return wait, "calls"
        if self.tokens is not None:
            amount = self._estimate(call)
            wait = store.take(self.tokens_key + scope, amount, self.tokens, self.token_rate, now)
            if wait:
                if self.calls is not None:  # both or neither
                    store.give(self.calls_key + scope, 1.0, self.calls, self.call_rate, now)
                return wait, "tokens"
            held.reserved = amount
            with self._lock:
                self._reserved += amount
        held.permit = True
        next(self._taken)
        return 0.0, ""

    def _extra(self, call: CallRecord, held: _Held) -> RateLimitedError | None:
        """One more attempt of a hedge's race: a permit of its own now, or no hedge (never a wait)."""
        first = held.reserved
        try:
            wait, bucket = self._take(call, held, _clocks.clock.monotonic())
        except Exception as exc:
            self._fault(exc)
            return None
        extra, held.reserved, held.permit = held.reserved, first, True
        if wait:  # no hedge this time (not a refused attempt: the race goes on without it)
            return RateLimitedError(f"{self.model}: rate limited ({bucket}): no permit for a hedge", wait=wait)
        held.extras.append(extra)
        return None

    def undo_attempt(self, call: CallRecord, target: Target) -> None:
        held = None if call.phase >= 0 or call.state is None else call.state.get(self)
        if held is not None and held.paused is not None:  # the call ended in this stage's pause
            self._resumed(held, _clocks.clock.monotonic())
        if held is not None and held.extras and call.racing:  # a hedge's extra attempt not started
            self._give(held.scope, held.extras.pop(), _clocks.clock.monotonic())
            return
        if held is not None and held.permit:  # a later stage refused it, or the call ended mid-attempt
            held.permit = False
            reserved, held.reserved = held.reserved, 0
            now = _clocks.clock.monotonic()
            self._give(held.scope, reserved, now)
            while held.extras:  # the extra attempts of a race the call ended in
                self._give(held.scope, held.extras.pop(), now)

    def _give(self, scope: str, tokens: int, now: float) -> None:
        """Give back an attempt's permit and the tokens reserved for it (never raises)."""
        try:
            if self.calls is not None:
                self.store.give(self.calls_key + scope, 1.0, self.calls, self.call_rate, now)
            if tokens:
                self.store.give(self.tokens_key + scope, tokens, self.tokens, self.token_rate, now)  # type: ignore[arg-type]
        except Exception as exc:
            self._fault(exc)
            return
        next(self._given)
        if tokens:
            with self._lock:
                self._reserved -= tokens

    # -- tokens ------------------------------------------------------------------------------

    def _estimate(self, call: CallRecord) -> int:
        """Tokens to reserve for this attempt (at most the bucket's size). A cost model's
        estimate (``PerToken(max_output_tokens=)`` plus the input's) comes in as ``estimate=``."""
        estimate = self.policy.estimate
        value = self._mean
        if isinstance(estimate, float):
            value = estimate
        elif estimate is not None:
            try:
                value = _tokens(estimate(call.input), "estimate=")
            except Exception as exc:
                self._fault(exc, "estimate=")
        return min(math.ceil(value), int(self.tokens))  # type: ignore[arg-type]

    def _used(self, output: Any) -> int | None:
        """The tokens ``output`` reports using (None: it reports none); raises when ``usage=``
        raises or returns what is not a number of tokens."""
        reader = self.policy.usage
        found = usage_of(output) if reader is None else reader(output)
        if found is None:
            return None
        return found.total if isinstance(found, Usage) else math.ceil(_tokens(found, "usage="))

    # -- faults and stats --------------------------------------------------------------------

    def _fault(self, exc: Exception, part: str = "store") -> None:
        next(self._faults)
        _faults.warning(
            f"{self.model}:rate_limit",
            "%s: the rate limit's %s raised %s: %s (the attempt goes on)",
            self.model,
            part,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"model": self.model, "reason": "rate_limit_fault"},
        )

    def stats(self) -> RateLimitStats:
        with self._lock:
            seconds, reserved, settled = self._seconds, self._reserved, self._settled
        return RateLimitStats(
            permits=counted(self._taken) - counted(self._given),
            waits=counted(self._waits),
            seconds_waited=seconds,
            refusals=counted(self._refusals),
            tokens_reserved=reserved,
            tokens_settled=settled,
            unreported=counted(self._unreported),
            faults=counted(self._faults),
        )


class TokenLimitStage(CallLimitStage):
    """A rate limit with ``tokens=``: reservations settle to the reported usage after each
    attempt, so every call takes the general path."""

    fast = False

    def after_attempt(self, call: CallRecord, target: Target, error: Exception | None, seconds: float) -> None:
        held = None if call.phase >= 0 or call.state is None else call.state.get(self)
        if held is None or not held.permit:
            return
        held.permit = False
        reserved, held.reserved = held.reserved, 0
        if held.extras:  # a hedge's race: the winner's reservation settles, the others stand
            reservations = [reserved, *held.extras]
            held.extras = []
            won = call.won if error is None and 0 <= call.won < len(reservations) else -1
            reserved = reservations.pop(won) if won >= 0 else reservations.pop()
            with self._lock:
                self._settled += sum(reservations)
            if won < 0:
                error = error or RuntimeError("no winner")
        used = None
        if error is None:
            try:
                used = self._used(call.result)
            except Exception as exc:  # a fault (counted there), not an output without usage
                self._fault(exc, "usage=")
            else:
                if used is None:
                    next(self._unreported)
        if used is None:  # a failed attempt, no usage reported, or usage= failed: the reservation stands
            charged = reserved
        else:
            charged = used
            try:
                self.store.give(
                    self.tokens_key + held.scope,
                    reserved - used,  # negative: more than reserved was used (the bucket owes it)
                    self.tokens,  # type: ignore[arg-type]
                    self.token_rate,
                    _clocks.clock.monotonic(),
                )
            except Exception as exc:
                self._fault(exc)
            self._seen = seen = min(self._seen + 1, MEAN_OVER)
            self._mean += (used - self._mean) / seen
        with self._lock:
            self._settled += charged


def _tokens(value: object, source: str) -> float:
    """A number of tokens a callback returned (a ValueError for anything else)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and float(value) >= 0:
        return float(value)
    raise ValueError(f"{source} returned {value!r}, not a number of tokens >= 0")
