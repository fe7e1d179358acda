"""The digest of a canonical form or of raw bytes: the cache's keys and the canonical forms of
arrays and long byte strings."""

from __future__ import annotations

from typing import Any


def digest(data: Any) -> str:
    """The 16-byte BLAKE2b digest of ``data`` (bytes or a buffer), in hex; ``hashlib`` loads
    with the first digest, not with prodwrap."""
    from hashlib import blake2b

    return blake2b(data, digest_size=16).hexdigest()
