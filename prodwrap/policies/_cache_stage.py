"""The cache on the seam: a lookup on the admission seam and a store on the observer seam,
sharing one :class:`CacheCore` (a cachetools cache behind one lock, and the single flights).

A call's key is computed once. On the success path, ``fast_admit`` (or the hook
``_cache_hit`` compiles for the model's declared input class) looks it up without the lock
in an LRU table's ``front`` (``_cache_tables``): a hit is served there and then. Otherwise
``claim`` looks again under the lock (a TTL table is only read there): a miss registers the
call as the one that fills the key (its *claim*) and stays on the success path, and
``fast_observe`` stores the output and ends the flight; a key already in flight, or one it
cannot compute, sends the call to the walk (handing the key on, so ``admit`` does not compute
it again), where ``admit`` has the call wait for the flight. The claim is found again by the
input's identity: no two success-path claims share an input object (a second call with the
same object takes the walk), so no lock or record is needed per call. A first attempt that
fails hands the call to the walk, and the store's ``observe`` ends its flight when the call
ends, whatever happened.

On the walk, ``call.state[core]`` holds the call's :class:`Ticket`: its key, its claim if it
fills the key, and whether it already waited. A waiter is asked again when its flight ends: a
hit is served; otherwise (the flight failed, or the wait ran out at the deadline) it calls the
predict itself, without waiting again.
"""

from __future__ import annotations

import copy
import math
import threading
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

from prodwrap._copies import immutable
from prodwrap._gates import Flight
from prodwrap._log import Throttle, logger
from prodwrap._stage import Seam, Serve, Stage, Wait
from prodwrap.cost._money import money
from prodwrap.errors import PredictionTimeout
from prodwrap.policies._cache_claims import Claim, Ticket, Unkeyed
from prodwrap.policies._cache_hit import compile_admit
from prodwrap.policies._cache_keys import KEYERS, call_key, flat_key
from prodwrap.policies._cache_tables import FOLD_EVERY, LRU, TTL, Entry
from prodwrap.policies._canonical import canonical_form
from prodwrap.policies.cache import CacheStats

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from prodwrap._record import CallRecord
    from prodwrap._stage import Build
    from prodwrap.policies._cache_hit import Admit
    from prodwrap.policies.cache import Cache

_faults = Throttle(logger("cache"))
_MISSING: Any = object()
_UNUSED = PredictionTimeout("cache: the single flight was not done in time")  # (admission asks again)


def compile_cache(policy: Cache, build: Build) -> tuple[CacheLookup, CacheStore]:
    core = CacheCore(policy, build)
    return CacheLookup(core, compile_admit(core, getattr(build.settings, "input", None))), CacheStore(core)


class CacheCore:
    """The cache, its flights and its counters (every shared structure under ``lock``)."""

    def __init__(self, policy: Cache, build: Build) -> None:
        self.model = build.name
        self.masking = build.masking  # what a fault line may show of the input
        self.version = build.version
        self.user_key = policy.key
        self.copy = policy.copy
        self.cache_fallbacks = policy.cache_fallbacks
        self.maxsize = policy.maxsize
        self.lock = threading.Lock()
        ttl = policy.ttl
        self.cache: LRU | TTL = LRU(policy.maxsize) if ttl is None else TTL(policy.maxsize, ttl)
        # An LRU table's entries, read without the lock (None: a TTL table, read under it)
        self.front = self.cache.front if isinstance(self.cache, LRU) else None
        self.served = self.cache.served  # the hits, counted by the next fold
        self.flights: dict[Hashable, Claim] = {}  # key -> the call filling it
        self.pending: dict[int, Claim] = {}  # id(validated input) -> its success-path claim
        self.carried: dict[int, tuple[Any, Any, Any, Any]] = {}  # thread -> key handed to the walk
        self.undone: dict[int, bool] = {}  # thread -> its success-path claim was given back
        self.plain = canonical_form(self.version, (), {})  # the key's tail without arguments
        self.misses = self.waits = self.unkeyable = self.errors = 0  # (the hits: the table's)
        self.spent: Callable[[CallRecord | None], int] | None = None  # a call's cost (set with cost=)

    # -- keys -----------------------------------------------------------------------------

    def key_of(self, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        """The call's key (``_cache_keys.call_key``).

        Raises:
            UnkeyableError: no key (``key=`` raising or returning something unhashable included).
        """
        return call_key(value, args, kwargs, self.user_key, self.version, self.plain)

    # -- the success path -----------------------------------------------------------------

    def fast_admit(self, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool | Serve:
        """A hit is served; a miss stays on the success path as the key's claim; a key in
        flight (or none) takes the walk. (``_cache_hit`` compiles one that keys the model's
        declared input class inline, and calls this for any other input.)"""
        key: Any = None
        if not args and not kwargs and self.user_key is None:
            keyer = KEYERS.get(type(value))  # (flat_key without its call layer; type(): no __getattr__ hook)
            key = flat_key(value) if keyer is None else keyer(value)
        if key is None:
            try:
                key = self.key_of(value, args, kwargs)
            except Exception as exc:
                self.carried[threading.get_ident()] = (value, args, kwargs, Unkeyed(exc))  # admit counts it
                return False
        front = self.front
        if front is not None:
            entry = front.get(key)  # (without the lock: one dict lookup, see _cache_tables)
            if entry is not None:  # a hit: served here, on the success path (a mutable output: a copy)
                served = self.served
                served.append(entry)  # (counted, and its recency applied, by the next fold)
                if len(served) > FOLD_EVERY:
                    self.fold()
                return entry.decision or self.serve(entry)
        return self.claim(value, args, kwargs, key)

    def claim(self, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any], key: Hashable) -> bool | Serve:
        """Under the lock, ``key`` not found without it: a hit after all (filled meanwhile, or a
        TTL table, read under the lock), or the key's claim (True), or the walk (False: the key
        is in flight, or another success-path call holds this input object)."""
        lock = self.lock
        lock.acquire()  # (not ``with``: on Python 3.11 it costs more than the lookup)
        try:
            entry = self.cache.lookup(key)
            if entry is None:
                ident = id(value)
                if key not in self.flights and ident not in self.pending:
                    claim = Claim(key, perf_counter())
                    self.flights[key] = claim
                    self.pending[ident] = claim
                    self.misses += 1
                    return True
            else:
                self.cache.count(entry)
        finally:
            lock.release()
        if entry is not None:
            return self.serve(entry)
        self.carried[threading.get_ident()] = (value, args, kwargs, key)  # admit takes it next
        return False

    def fold(self) -> None:
        """Count the hits served so far (``_cache_tables``)."""
        with self.lock:
            self.cache.fold()

    def fast_undo(self) -> None:
        """A later stage sent the call to the walk after this one claimed its key (the walk's
        ``admit`` takes the claim over), or the call was cancelled (``observe`` ends it)."""
        self.undone[threading.get_ident()] = True

    def fast_observe(self, value: Any, out: Any) -> None:
        claim = self.pending.pop(id(value), None)
        if claim is not None:
            self.settle(claim, out, perf_counter() - claim.start)

    # -- the walk -------------------------------------------------------------------------

    def ticket(self, call: CallRecord, value: Any) -> Ticket:
        """A new ticket: a claim the success path gave back, or the key handed on, or computed."""
        thread = threading.get_ident()
        if self.undone and self.undone.pop(thread, False):
            with self.lock:
                claim = self.pending.pop(id(value), None)
            if claim is not None:
                try:
                    mine = self.key_of(value, call.args, call.kwargs) == claim.key
                except Exception:
                    mine = False
                if mine:
                    return Ticket(claim.key, claim)
                self.settle(claim, _MISSING, 0.0)  # another call's claim, left behind: end it
        carried = self.carried.pop(thread, None) if self.carried else None
        key: Any
        if carried is not None and carried[0] is value and carried[1] is call.args and carried[2] is call.kwargs:
            key = carried[3]
        else:
            try:
                key = self.key_of(value, call.args, call.kwargs)
            except Exception as exc:
                key = Unkeyed(exc)
        if isinstance(key, Unkeyed):
            with self.lock:
                self.unkeyable += 1
            _faults.warning(
                (self.model, "unkeyable"),
                "%s: a call is not cached: %s (pw.Cache(key=...) can key such inputs)",
                self.model,
                key.error,
                extra={"model": self.model, "version": self.version},
                masked=partial(self.masking.mask_for, value),  # (key= may quote the input)
            )
            return Ticket(None)
        return Ticket(key)

    def admit(self, call: CallRecord, value: Any) -> Serve | Wait | None:
        state = call.state
        ticket: Ticket | None = None if state is None else state.get(self)
        if ticket is None:
            ticket = self.ticket(call, value)
            if state is None:
                call.state = {self: ticket}
            else:
                state[self] = ticket
            if ticket.claim is not None:
                return None  # it fills the key it claimed on the success path
        key = ticket.key
        if key is None:
            return None
        with self.lock:
            entry = self.cache.lookup(key)
            if entry is not None:
                self.cache.count(entry)
            elif ticket.waited:  # its flight did not fill the key: it calls the predict itself
                self.misses += 1
                return None
            else:
                claim = self.flights.get(key)
                if claim is None:
                    ticket.claim = self.flights[key] = Claim(key, 0.0)
                    self.misses += 1
                    return None
                if claim.flight is None:
                    claim.flight = Flight()
                flight = claim.flight
                ticket.waited = True
                self.waits += 1
        if entry is None:
            return Wait(flight, math.inf, _UNUSED)  # (the driver cuts it to the call's deadline)
        ticket.served = True
        return self.serve(entry)

    def observe(self, call: CallRecord) -> None:
        state = call.state
        ticket: Ticket | None = None if state is None else state.get(self)
        if ticket is None:  # the success path's call: handed over, cancelled, or on a record
            if not call.valid_input or not (call.attempts or call.reasons == ["cancelled"]):
                return
            if self.undone:
                self.undone.pop(threading.get_ident(), None)
            claim = self.pending.pop(id(call.input), None)
            if claim is not None:
                self.settle(claim, call.value if self.storable(call) else _MISSING, perf_counter() - claim.start, call)
            return
        if ticket.served or ticket.key is None:
            return
        if ticket.claim is not None:
            self.settle(ticket.claim, call.value if self.storable(call) else _MISSING, call.latency, call)
        elif self.storable(call):  # a waiter that went on: it fills the key all the same
            entry = self.entry(ticket.key, call.value, call.latency, 0 if self.spent is None else self.spent(call))
            if entry is not None:
                with self.lock:
                    self.cache[ticket.key] = entry

    # -- entries --------------------------------------------------------------------------

    def storable(self, call: CallRecord) -> bool:
        if call.outcome == "ok":
            return call.served_by == "primary"
        return self.cache_fallbacks and call.outcome == "fallback"

    def entry(self, key: Hashable, value: Any, seconds: float, cost: int = 0) -> Entry | None:
        """What the cache holds for an output (None: a mutable one that cannot be copied,
        counted and logged); an output served as it is has its hits' decision: none allocates."""
        if not self.copy or immutable(value):
            return Entry(key, value, False, seconds, cost)
        try:
            return Entry(key, copy.deepcopy(value), True, seconds, cost)
        except Exception as exc:
            with self.lock:
                self.errors += 1
            _faults.warning(
                (self.model, "copy"),
                "%s: an output of type %s is not cached: it cannot be copied (%s: %s); pw.Cache(copy=False) "
                "stores outputs as they are",
                self.model,
                type(value).__name__,
                type(exc).__name__,
                exc,
                extra={"model": self.model, "version": self.version},
            )
            return None

    def fault(self, call: CallRecord, exc: Exception) -> None:
        """The lookup failed: counted and logged; the call goes on as though not cached (a
        claim it holds is still ended when it ends)."""
        with self.lock:
            self.errors += 1
        ticket = None if call.state is None else call.state.get(self)
        if ticket is None:
            call.state = {**(call.state or {}), self: Ticket(None)}
        _faults.warning(
            (self.model, "lookup"),
            "%s: the cache lookup failed (%s: %s); the call goes on uncached",
            self.model,
            type(exc).__name__,
            exc,
            exc_info=exc,
            extra={"model": self.model, "version": self.version},
        )

    def serve(self, entry: Entry) -> Serve:
        return entry.decision or Serve(copy.deepcopy(entry.output), "cached", "cache")  # (a copy each time)

    def settle(self, claim: Claim, out: Any, seconds: float, call: CallRecord | None = None) -> None:
        """The call filling ``claim`` ended (``call``: its record; None on the success path):
        store ``out`` (unless ``_MISSING``) with what the call cost, end the flight."""
        cost = 0 if self.spent is None or out is _MISSING else self.spent(call)
        entry = None if out is _MISSING else self.entry(claim.key, out, seconds, cost)
        with self.lock:
            if entry is not None:
                self.cache[claim.key] = entry
            if self.flights.get(claim.key) is claim:
                del self.flights[claim.key]
            flight = claim.flight
        if flight is not None:
            flight.done()  # the waiters are asked again: a hit, or they call the predict themselves

    def stats(self) -> CacheStats:
        with self.lock:
            table = self.cache
            table.fold()
            if isinstance(table, TTL):
                table.expire()
            keyed = table.hits + self.misses
            return CacheStats(
                hits=table.hits,
                misses=self.misses,
                hit_rate=table.hits / keyed if keyed else None,
                waits=self.waits,
                size=len(table),
                maxsize=self.maxsize,
                evictions=table.evicted,
                expired=table.expired,
                unkeyable=self.unkeyable,
                errors=self.errors,
                saved_seconds=table.saved,
                saved_cost=money(table.saved_cost),
            )


class CacheLookup(Stage):
    """The cache's admission stage: a hit serves the call; a miss in flight waits for it."""

    name = "cache"
    seam = Seam.ADMISSION
    section = "cache"
    serves = (("cached", "cache"),)

    def __init__(self, core: CacheCore, fast_admit: Admit) -> None:
        self.core = core
        self.fast_admit = fast_admit  # (``core.fast_admit``, or one keying the declared input inline)
        self.fast_undo = core.fast_undo

    def admit(self, call: CallRecord, value: Any) -> Serve | Wait | None:
        try:
            return self.core.admit(call, value)
        except Exception as exc:  # a fault of the cache: the call goes on, uncached
            self.core.fault(call, exc)
            return None

    def stats(self) -> CacheStats:
        return self.core.stats()


class CacheStore(Stage):
    """The cache's observer: stores what the primary served and ends the key's flight."""

    name = "cache"
    seam = Seam.OBSERVER
    ignores_served = True  # a hit stores nothing

    def __init__(self, core: CacheCore) -> None:
        self.core = core
        self.fast_observe = core.fast_observe

    def observe(self, call: CallRecord) -> None:
        self.core.observe(call)
