"""How an ``ArraySpec`` validates: numpy arrays, converted only when no value changes.

Loaded with the first ``ArraySpec`` validator, so that ``import prodwrap`` loads no numpy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from prodwrap.errors import InputValidationError, OutputValidationError

if TYPE_CHECKING:
    from prodwrap.policies.validation import ArraySpec

_MAX_POSITIONS = 20  # NaN/inf positions listed one by one before a summary error


def array_validator(
    spec: ArraySpec, error: type[InputValidationError | OutputValidationError], model: str
) -> Callable[[Any], Any]:
    """Compile ``spec`` into a function ``value -> numpy array`` raising ``error``."""
    target = None if spec.dtype is None else np.dtype(spec.dtype)
    shape = spec.shape

    def validate_array(value: Any) -> Any:
        problems: list[dict[str, Any]] = []
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            message = f"not convertible to an array: {exc}"
            problems.append({"type": "array_type", "loc": ("array",), "msg": message})
        if problems:  # raised here, outside the handler: numpy's error is not chained
            raise error(problems, model=model)
        if arr.dtype.kind in "OUSV" and (target is None or target.kind not in "OUSV"):
            problems.append({"type": "dtype", "loc": ("dtype",), "msg": f"array of {arr.dtype} is not numeric"})
        elif target is not None and arr.dtype != target:
            converted = convert(arr, target)
            if isinstance(converted, str):
                problems.append({"type": "dtype", "loc": ("dtype",), "msg": converted})
            else:
                arr = converted
        if shape is not None:
            problems.extend(_shape_problems(arr, shape))
        if not spec.allow_nan and arr.dtype.kind in "fc" and arr.size:
            problems.extend(_nan_problems(arr))
        if problems:
            raise error(problems, model=model)
        return arr

    return validate_array


def _shape_problems(arr: np.ndarray, shape: tuple[int | None, ...]) -> list[dict[str, Any]]:
    if arr.ndim != len(shape):
        message = f"expected {len(shape)} dimensions {shape}, got {arr.ndim} {arr.shape}"
        return [{"type": "shape", "loc": ("shape",), "msg": message}]
    return [
        {"type": "shape", "loc": ("shape", axis), "msg": f"expected length {want} on axis {axis}, got {got}"}
        for axis, (want, got) in enumerate(zip(shape, arr.shape, strict=True))
        if want is not None and want != got
    ]


def _nan_problems(arr: np.ndarray) -> list[dict[str, Any]]:
    finite = np.isfinite(arr)
    if finite.all():
        return []
    bad = np.argwhere(~finite)
    problems: list[dict[str, Any]] = []
    for pos in bad[:_MAX_POSITIONS]:
        where = tuple(int(i) for i in pos)
        message = f"NaN or infinite value not allowed: {arr[where]!r}"
        problems.append({"type": "finite_number", "loc": ("values", *where), "msg": message})
    if len(bad) > _MAX_POSITIONS:
        problems.append(
            {"type": "finite_number", "loc": ("values",), "msg": f"{len(bad)} NaN or infinite values in all"}
        )
    return problems


def _mantissa_bits(target: np.dtype[Any]) -> int:
    return int(np.finfo(target).nmant) + 1


def _value_bits(source: np.dtype[Any]) -> int:
    return np.iinfo(source).bits - (source.kind == "i")


def convert(arr: np.ndarray, target: np.dtype[Any]) -> np.ndarray | str:
    """``arr`` as ``target`` when no value changes, or why not (never a numpy warning).

    numpy's "safe" casts include two that round: 64-bit integers to float64 (or complex128)
    beyond 2**53, and any integer wider than the target's mantissa. Those, and every
    narrowing numpy allows within a kind, are checked value by value; a cast that is exact
    for every value of the source type (int32 to float64, float32 to float64) is not.
    """
    source = arr.dtype
    ints_to_inexact = source.kind in "iu" and target.kind in "fc"
    if np.can_cast(source, target, casting="safe") and not (
        ints_to_inexact and _value_bits(source) > _mantissa_bits(target)
    ):
        return arr.astype(target)
    if not np.can_cast(source, target, casting="same_kind"):
        return f"cannot convert {source} to {target} safely"
    if not arr.size:
        return arr.astype(target)
    if target.kind in "iu":
        info = np.iinfo(target)
        low, high = arr.min(), arr.max()
        if low < info.min or high > info.max:
            return f"values from {low} to {high} do not fit {target} ({info.min} to {info.max})"
        return arr.astype(target)
    if ints_to_inexact:
        return _ints_to_inexact(arr, target)
    return _narrow_inexact(arr, target)


def _ints_to_inexact(arr: np.ndarray, target: np.dtype[Any]) -> np.ndarray | str:
    low, high = int(arr.min()), int(arr.max())
    if max(-low, high) > np.finfo(target).max:
        return f"values from {low} to {high} do not fit {target}"
    exact = 2 ** _mantissa_bits(target)  # every integer up to this is exact in the target
    out = arr.astype(target)
    if -exact <= low and high <= exact:
        return out
    big = np.flatnonzero(arr > exact if arr.dtype.kind == "u" else (arr > exact) | (arr < -exact))
    originals = arr.ravel()[big]
    values = out.ravel()[big].real
    changed = np.ones(values.shape, dtype=bool)
    beyond = float(2 ** _value_bits(arr.dtype))  # the first float the source type cannot hold
    fits = values.astype(np.float64) < beyond  # in float64: beyond may not fit a float16
    changed[fits] = values[fits].astype(arr.dtype) != originals[fits]
    return _unless_changed(out, changed, big, arr, target)


def _narrow_inexact(arr: np.ndarray, target: np.dtype[Any]) -> np.ndarray | str:
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        out = arr.astype(target)
        back = out.astype(arr.dtype)
    changed = back != arr
    if not changed.any():
        return out
    changed &= ~np.isnan(arr)  # NaN stays NaN, though it never equals itself
    beyond = changed & np.isinf(back)  # finite values past the target's range
    if beyond.any():
        return f"values up to {np.abs(arr[beyond]).max():g} do not fit {target}"
    return _unless_changed(out, changed.ravel(), None, arr, target)


def _unless_changed(
    out: np.ndarray, changed: np.ndarray, positions: np.ndarray | None, arr: np.ndarray, target: np.dtype[Any]
) -> np.ndarray | str:
    """``out``, or a message naming the first value that would change.

    ``changed[i]`` tells whether the value at flat position ``positions[i]`` of ``arr``
    (position ``i`` when ``positions`` is None) changes in ``out``.
    """
    if not changed.any():
        return out
    first = int(np.argmax(changed))
    flat = first if positions is None else int(positions[first])
    where = tuple(int(i) for i in np.unravel_index(flat, arr.shape))
    count = int(changed.sum())
    before, after = arr.ravel()[flat].item(), out.ravel()[flat].item()
    return (
        f"{count} value{'s' if count != 1 else ''} would change as {target}: {before!r} at {where} "
        f"would become {after!r} (convert the array yourself to accept the rounding)"
    )
