"""Which failures retrying may cure, and how long a failure asks to wait before the next try."""

from __future__ import annotations

import numbers

from prodwrap.policies._numbers import as_float

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def _status(obj: object) -> object:
    for name in ("status_code", "status"):
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def is_transient(exc: BaseException) -> bool:
    """The default retry predicate: failures that retrying may cure.

    ``ConnectionError``, ``TimeoutError`` (``PredictionTimeout`` included), an exception with
    a ``retry_after`` attribute, or one whose ``status_code``/``status`` (on itself or on its
    ``.response``, as openai, httpx and requests errors carry them) is 408, 425, 429, 500, 502,
    503 or 504. A bug in the predict (``ValueError``, ``KeyError``, ...) is not transient.
    """
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if getattr(exc, "retry_after", None) is not None:
        return True
    for source in (exc, getattr(exc, "response", None)):
        status = _status(source) if source is not None else None
        if isinstance(status, numbers.Integral) and int(status) in TRANSIENT_STATUS:
            return True
    return False


def retry_after(exc: BaseException) -> float | None:
    """The seconds an exception asks to wait (``retry_after``, any real number), or None.

    A number past a float's range is +-infinity and a Decimal NaN (signalling too) is NaN:
    this never raises. A bool, a str or any other non-number is None (it asks no wait).
    """
    after = getattr(exc, "retry_after", None)
    if after is None:  # (most exceptions: no ABC check)
        return None
    return as_float(after)
