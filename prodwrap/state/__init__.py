"""Where the state of the breaker, the retry budget and the rate limiter lives.

The policies keep their shared state behind :class:`StateStore`, a small interface of atomic
operations, so a store shared across processes can replace :class:`MemoryStore` (the
default, one per process) without touching them. The bulkhead keeps its permits in the
process: concurrency is a local resource.
"""

from prodwrap.state._store import MemoryStore, StateStore

__all__ = ["MemoryStore", "StateStore"]
