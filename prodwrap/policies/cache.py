"""The cache: answers already computed, served without calling the predict again."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prodwrap.errors import ConfigurationError
from prodwrap.policies._numbers import count, seconds

if TYPE_CHECKING:
    from prodwrap._stage import Build, Stage


@dataclass(frozen=True, slots=True)
class Cache:
    """Serve repeated inputs from memory (``cache=pw.Cache(...)``, or ``@pw.cache``).

    The key of a call is the canonical key of its *validated* input (stable across dict
    order; pydantic models, dataclasses and numpy arrays by their contents: see
    ``prodwrap.policies.canonical_key``), the model's version and every argument passed
    through to the predict. Only the primary's successful results are stored. Concurrent
    misses on one key make one predict call (single flight); the others wait for it, within
    their deadline. A hit has ``outcome="cached"`` and ``served_by="cache"``.

    Args:
        maxsize: entries kept (the least recently used goes first), >= 1.
        ttl: seconds an entry lives (on prodwrap's clock, so a fake clock drives it), or None
            for no expiry.
        key: ``key(validated_input) -> Hashable`` replacing the input's canonical key (for
            inputs that have none, or to key on part of the input); the version and the
            pass-through arguments are still part of the key.
        cache_fallbacks: also store results a fallback served (served from the cache later,
            they stay ``"cached"``).
        copy: serve each hit a deep copy of a mutable output (and store a copy), so a caller
            mutating what it was served cannot change what the next caller gets; immutable
            outputs (numbers, strings, frozen pydantic models, ...) are never copied.
            ``copy=False`` hands every caller the stored object itself.

    Raises:
        ConfigurationError: a setting makes no sense (naming it).
    """

    maxsize: int = 1024
    ttl: float | None = None
    key: Callable[[Any], Hashable] | None = None
    cache_fallbacks: bool = False
    copy: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "maxsize", count("Cache", "maxsize", self.maxsize))
        if self.ttl is not None:  # (None: no expiry)
            object.__setattr__(self, "ttl", seconds("Cache", "ttl", self.ttl))
        if self.key is not None and not callable(self.key):
            raise ConfigurationError(f"Cache.key must be a function of the validated input, got {self.key!r}")
        for flag in ("cache_fallbacks", "copy"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigurationError(f"Cache.{flag} must be True or False, got {getattr(self, flag)!r}")

    def stages(self, build: Build) -> Sequence[Stage]:
        """The lookup (admission seam) and the store (observer seam), sharing one cache."""
        from prodwrap.policies._cache_stage import compile_cache  # cachetools loads when used

        return compile_cache(self, build)

    def describe(self) -> dict[str, Any]:
        key = None if self.key is None else getattr(self.key, "__qualname__", repr(self.key))
        return {
            "maxsize": self.maxsize,
            "ttl": self.ttl,
            "key": key,
            "cache_fallbacks": self.cache_fallbacks,
            "copy": self.copy,
        }


@dataclass(frozen=True, slots=True)
class CacheStats:
    """``model.stats().cache``: what the cache did since the model was built.

    Attributes:
        hits: calls served from the cache (after waiting for a single flight included).
        misses: calls the cache could have served but went on to the predict (keyable calls
            that found nothing, and waiters whose flight did not fill the entry).
        hit_rate: ``hits / (hits + misses)``; None before the first keyable call.
        waits: calls that waited for another call's predict of the same key (single flight).
        size: entries held now. maxsize: the most it holds.
        evictions: entries dropped to make room (least recently used first).
        expired: entries dropped because their ``ttl`` ran out.
        unkeyable: calls that were not cached because their input or a pass-through argument
            has no canonical key (or ``key=`` raised, or returned something unhashable).
        errors: faults of the cache itself (an output that cannot be copied, ...): the call
            was served, not stored.
        saved_seconds: seconds of predict time the hits saved (each hit counts the latency of
            the call that filled its entry).
        saved_cost: USD the hits saved (each hit counts what the call that filled its entry
            was charged; 0 without ``cost=``).
    """

    hits: int
    misses: int
    hit_rate: float | None
    waits: int
    size: int
    maxsize: int
    evictions: int
    expired: int
    unkeyable: int
    errors: int
    saved_seconds: float
    saved_cost: Decimal = Decimal(0)
