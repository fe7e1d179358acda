"""Comparators: does a candidate's output agree with the primary's? (``Shadow(compare=)``)

A comparator is any callable ``compare(primary, candidate) -> bool``; these cover the usual
cases:

- :func:`equal` (the default): equality, recursively through mappings, sequences, numpy
  arrays (same shape, same values) and pydantic models; NaN equals NaN.
- :func:`close`: numbers within a tolerance (``math.isclose``'s symmetric rule:
  ``|a - b| <= max(rtol * max(|a|, |b|), atol)``), element-wise for numpy arrays, field-wise
  for pydantic models and dataclasses, recursively through mappings and sequences; other
  values must be equal.
- :func:`same_label`: classification: the same predicted label (see its docstring for how a
  label is read).
- :func:`top_k`: rankings: the same set of top ``k`` items.

A comparator that raises counts as a disagreement (counted and logged by the shadow stage).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import pydantic

from prodwrap.policies._numbers import amount, count

__all__ = ["Close", "Comparator", "TopK", "close", "equal", "same_label", "top_k"]


class Comparator(Protocol):
    """``(primary, candidate) -> bool``: True when the candidate agrees with the primary."""

    def __call__(self, primary: Any, candidate: Any, /) -> bool: ...


def _is_array(value: Any) -> bool:
    kind = type(value)
    return kind.__module__ == "numpy" and hasattr(value, "shape") and hasattr(value, "dtype")


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float | Decimal):
        return True
    return _is_array(value) and value.shape == () and value.dtype.kind in "iuf"


def _fields(value: Any) -> dict[str, Any] | None:
    """A pydantic model's or a dataclass's fields by name (None for other values)."""
    if isinstance(value, pydantic.BaseModel):
        return {name: getattr(value, name) for name in type(value).model_fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return None


def _alike(a: Any, b: Any, leaf: Any) -> bool:
    """Walk two values together; ``leaf(a, b)`` decides numbers and arrays."""
    if _is_array(a) or _is_array(b) or (_is_number(a) and _is_number(b)):
        return bool(leaf(a, b))
    fa, fb = _fields(a), _fields(b)
    if fa is not None or fb is not None:
        return type(a) is type(b) and fa is not None and fb is not None and _alike(fa, fb, leaf)
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_alike(a[k], b[k], leaf) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_alike(x, y, leaf) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _same(a: Any, b: Any) -> bool:
    if _is_array(a) or _is_array(b):
        import numpy as np

        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape:
            return False
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            return bool(np.array_equal(x, y, equal_nan=True))
        return bool(np.array_equal(x, y))
    if isinstance(a, float | Decimal) and isinstance(b, float | Decimal) and a != a and b != b:  # noqa: PLR0124
        return True
    return bool(a == b)


def equal(primary: Any, candidate: Any, /) -> bool:
    """Equality, recursively (mappings, sequences, arrays, pydantic models); NaN equals NaN."""
    return _alike(primary, candidate, _same)


def close(rtol: float = 1e-9, atol: float = 0.0) -> Close:
    """A comparator of numbers within a tolerance (:class:`Close`): ``pw.compare.close(atol=0.01)``."""
    return Close(rtol, atol)


class Close:
    """Numbers within a tolerance: ``|a - b| <= max(rtol * max(|a|, |b|), atol)``.

    Args:
        rtol: relative tolerance (>= 0), default ``1e-9``.
        atol: absolute tolerance (>= 0), default 0 (give one when values may be near zero).

    Numpy arrays agree when their shapes match and every element does; pydantic models and
    dataclasses field by field (and of the same type); mappings with the same keys; lists and
    tuples of the same length. NaN agrees with NaN; other values must be equal.

    Raises:
        ConfigurationError: a tolerance that is not a finite number >= 0.
    """

    __slots__ = ("atol", "rtol")

    def __init__(self, rtol: float = 1e-9, atol: float = 0.0) -> None:
        self.rtol = amount("compare.close", "rtol", rtol, zero=True)
        self.atol = amount("compare.close", "atol", atol, zero=True)

    def __call__(self, primary: Any, candidate: Any, /) -> bool:
        return _alike(primary, candidate, self._leaf)

    def _leaf(self, a: Any, b: Any) -> bool:
        if _is_array(a) or _is_array(b):
            import numpy as np

            x, y = np.asarray(a), np.asarray(b)
            if x.shape != y.shape or x.dtype.kind not in "iufb" or y.dtype.kind not in "iufb":
                return _same(a, b)
            u, v = x.astype(float), y.astype(float)
            with np.errstate(invalid="ignore", over="ignore"):
                limit = np.maximum(self.rtol * np.maximum(np.abs(u), np.abs(v)), self.atol)
                ok = (np.abs(u - v) <= limit) | (u == v) | (np.isnan(u) & np.isnan(v))
            return bool(np.all(ok))
        p, q = float(a), float(b)
        if math.isnan(p) or math.isnan(q):
            return math.isnan(p) and math.isnan(q)
        return p == q or math.isclose(p, q, rel_tol=self.rtol, abs_tol=self.atol)

    def __repr__(self) -> str:
        return f"compare.close(rtol={self.rtol!r}, atol={self.atol!r})"


def _label(value: Any) -> Any:
    """The label an output predicts: its ``label`` attribute or ``"label"`` key; else the
    index of the largest score of a probability (or score) vector, row by row for a batch; else
    the value itself (a plain label)."""
    if isinstance(value, Mapping):
        if "label" in value:
            return value["label"]
    else:
        label = getattr(value, "label", _NONE)
        if label is not _NONE and not callable(label):
            return label
    if _is_array(value) or (isinstance(value, list | tuple) and value and all(_is_number(v) for v in value)):
        import numpy as np

        scores = np.asarray(value)
        if scores.ndim >= 1 and scores.dtype.kind in "iuf" and scores.shape[-1] > 0:
            return np.argmax(scores, axis=-1).tolist()
    return value


_NONE: Any = object()


def same_label(primary: Any, candidate: Any, /) -> bool:
    """Classification: the same predicted label.

    A label is read as, in order: the output's ``label`` attribute (a pydantic model, a
    dataclass, any object) or ``"label"`` key (a mapping); the argmax of a vector of
    probabilities or scores (a list, tuple or numpy array of numbers; a 2-D array is a batch,
    compared row by row, ties to the first index); else the output itself (``"spam"``, ``3``).
    """
    return _alike(_label(primary), _label(candidate), _same)


def top_k(k: int) -> TopK:
    """A comparator of rankings (:class:`TopK`): the same set of top ``k`` items."""
    return TopK(k)


class TopK:
    """Rankings: the same set of top ``k`` items (their order within the top ``k`` aside).

    A vector of scores (a list, tuple or numpy array of numbers) ranks its indices by score
    (ties to the lower index); a mapping ``{item: score}`` ranks its keys; any other sequence
    is a ranking already (best first: ids, documents) and its first ``k`` items are taken.

    Raises:
        ConfigurationError: ``k`` is not an int >= 1.
    """

    __slots__ = ("k",)

    def __init__(self, k: int) -> None:
        self.k = count("compare.top_k", "k", k)

    def __call__(self, primary: Any, candidate: Any, /) -> bool:
        return self.top(primary) == self.top(candidate)

    def top(self, ranked: Any) -> frozenset[Any]:
        """The set of the top ``k`` items of one output."""
        if isinstance(ranked, Mapping):
            best = sorted(ranked, key=lambda item: -float(ranked[item]))
            return frozenset(best[: self.k])
        if _is_array(ranked) or (isinstance(ranked, Sequence) and ranked and all(_is_number(v) for v in ranked)):
            import numpy as np

            scores = np.asarray(ranked, dtype=float).ravel()
            order = np.argsort(-scores, kind="stable")
            return frozenset(int(i) for i in order[: self.k])
        if isinstance(ranked, Sequence) and not isinstance(ranked, str | bytes):
            return frozenset(list(ranked)[: self.k])
        raise TypeError(f"compare.top_k: cannot rank {type(ranked).__name__}")

    def __repr__(self) -> str:
        return f"compare.top_k({self.k})"
