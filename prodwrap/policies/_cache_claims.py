"""What the cache knows of the calls filling a key or waiting for one (``_cache_stage``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Hashable

    from prodwrap._gates import Flight


class Claim:
    """A key being filled by one call; ``flight`` is made when a second call has to wait."""

    __slots__ = ("flight", "key", "start")

    def __init__(self, key: Hashable, start: float) -> None:
        self.key = key
        self.start = start  # perf_counter() when the key was looked up
        self.flight: Flight | None = None


class Ticket:
    """What the cache knows of one call on the walk (``call.state[core]``)."""

    __slots__ = ("claim", "key", "served", "waited")

    def __init__(self, key: Hashable | None, claim: Claim | None = None) -> None:
        self.key = key  # None: this call is not cached (no key)
        self.claim = claim  # this call fills the key
        self.waited = False
        self.served = False


class Unkeyed:
    """A key that could not be computed on the success path (the walk counts it)."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error
