"""``ArraySpec``: numpy array inputs and outputs, converted only when no value changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from prodwrap.errors import ConfigurationError, InputValidationError, OutputValidationError

_MAX_POSITIONS = 20  # NaN/inf positions listed one by one before a summary error


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """What a numpy array input (or output) must look like.

    Args:
        shape: expected shape; ``None`` in a position accepts any length there
            (``(None, 4)``: any number of rows of 4 columns). ``None`` accepts any shape.
        dtype: target dtype; values are converted when numpy can do so within the same kind
            (int to float, float32 to float64); anything else is an error. ``None`` keeps it.
        allow_nan: whether NaN and +/-inf are accepted.
    """

    shape: tuple[int | None, ...] | None = None
    dtype: str | None = None
    allow_nan: bool = False

    def __post_init__(self) -> None:
        if self.shape is not None:
            if not isinstance(self.shape, tuple):
                raise ConfigurationError(f"ArraySpec.shape must be a tuple, got {self.shape!r}")
            for dim in self.shape:
                if dim is not None and (not isinstance(dim, int) or dim < 0):
                    raise ConfigurationError(f"ArraySpec.shape entries must be >= 0 or None, got {dim!r}")
        if self.dtype is not None:
            try:
                np.dtype(self.dtype)
            except TypeError as exc:
                raise ConfigurationError(f"ArraySpec.dtype {self.dtype!r} is not a numpy dtype") from exc

    def describe(self) -> dict[str, Any]:
        return {"kind": "array", "shape": self.shape, "dtype": self.dtype, "allow_nan": self.allow_nan}


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


def convert(arr: np.ndarray, target: np.dtype[Any]) -> np.ndarray | str:
    """``arr`` as ``target`` without losing values, or why not (never a numpy warning)."""
    if np.can_cast(arr.dtype, target, casting="safe"):
        return arr.astype(target)
    if not np.can_cast(arr.dtype, target, casting="same_kind"):
        return f"cannot convert {arr.dtype} to {target} safely"
    if arr.size:
        if target.kind in "iu":
            info = np.iinfo(target)
            low, high = arr.min(), arr.max()
            if low < info.min or high > info.max:
                return f"values from {low} to {high} do not fit {target} ({info.min} to {info.max})"
        elif target.kind == "f":
            finite = arr[np.isfinite(arr)]
            if finite.size and np.abs(finite).max() > np.finfo(target).max:
                return f"values up to {np.abs(finite).max():g} do not fit {target}"
    return arr.astype(target)
