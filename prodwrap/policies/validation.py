"""Input and output validation: pydantic models, any type via ``TypeAdapter``, ``ArraySpec``.

Each spec compiles once, at model construction, into a plain function ``value -> value``
that raises :class:`~prodwrap.errors.InputValidationError` (or ``OutputValidationError``)
listing every problem found. Error dicts never carry the value of a sensitive field
(``SecretStr``/``SecretBytes`` or ``Field(json_schema_extra={"sensitive": True})``), never
a whole record, and never more than a short prefix of a long value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, get_args

import numpy as np
import pydantic

from prodwrap.errors import ConfigurationError, InputValidationError, OutputValidationError

Validator = Callable[[Any], Any]
Check = Callable[[Any], object]

_MAX_SHOWN = 80  # characters of a rejected value kept in an error
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


def _shown(value: Any) -> Any:
    """A short, safe stand-in for a rejected value."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, str | bytes):
        if len(value) <= _MAX_SHOWN:
            return value
        return f"<{type(value).__name__} of {len(value)} chars: {value[:_MAX_SHOWN]!r}...>"
    return f"<{type(value).__name__}>"


_RAW_TEXT_ERRORS = frozenset({"json_invalid", "json_type"})  # their input is the raw payload


def sensitive_fields(spec: Any) -> frozenset[str]:
    """Names of fields marked sensitive anywhere in ``spec`` (nested models, containers and
    optionals included): ``SecretStr``/``SecretBytes`` or ``json_schema_extra={"sensitive": True}``."""
    secret_types = (pydantic.SecretStr, pydantic.SecretBytes)  # not at import: they load much of pydantic
    names: set[str] = set()
    seen: set[int] = set()

    def walk(tp: Any) -> bool:
        """Collect from ``tp``; True when ``tp`` itself is a secret type."""
        if id(tp) in seen:
            return False
        seen.add(id(tp))
        if isinstance(tp, type) and issubclass(tp, secret_types):
            return True
        if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
            for name, field in tp.model_fields.items():
                extra = field.json_schema_extra
                marked = isinstance(extra, dict) and bool(extra.get("sensitive"))
                if walk(field.annotation) or marked:
                    names.add(name)
            return False
        secret_args = [walk(arg) for arg in get_args(tp)]  # walk every argument, no short cut
        return any(secret_args)

    walk(spec)
    return frozenset(names)


def clean_errors(errors: Sequence[Any], sensitive: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """pydantic's error dicts without urls, whole records, raw payloads, long values or the
    value of any field marked sensitive (at any depth of ``loc``)."""
    out = []
    for err in errors:
        item = {"type": err["type"], "loc": tuple(err["loc"]), "msg": err["msg"]}
        loc = item["loc"]
        hidden = err["type"] in _RAW_TEXT_ERRORS or any(part in sensitive for part in loc)
        if "input" in err and not hidden:
            item["input"] = _shown(err["input"])
        if "ctx" in err and not hidden:
            item["ctx"] = {k: _shown(v) for k, v in err["ctx"].items()}
        out.append(item)
    return out


def _type_name(spec: Any) -> str:
    return getattr(spec, "__name__", None) or repr(spec)


def compile_spec(spec: Any, error: type[InputValidationError | OutputValidationError], model: str) -> Validator:
    """Compile ``input=``/``output=`` into one validating function."""
    if isinstance(spec, ArraySpec):
        return _array_validator(spec, error, model)
    if isinstance(spec, type) and issubclass(spec, pydantic.BaseModel):
        validator = spec.__pydantic_validator__
        sensitive = sensitive_fields(spec)
        validate_python = validator.validate_python
        validate_json = validator.validate_json

        def validate_model(value: Any) -> Any:
            try:
                if isinstance(value, str | bytes | bytearray):
                    return validate_json(value)
                return validate_python(value, from_attributes=True)
            except pydantic.ValidationError as exc:
                raise error(clean_errors(exc.errors(), sensitive), model=model) from None

        return validate_model
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(spec)
    except Exception as exc:  # pydantic raises several kinds for types it cannot handle
        raise ConfigurationError(f"cannot validate against {spec!r}: {exc}") from exc
    validate_any = adapter.validate_python
    hidden = sensitive_fields(spec)

    def validate_type(value: Any) -> Any:
        try:
            return validate_any(value, from_attributes=True)
        except pydantic.ValidationError as exc:
            raise error(clean_errors(exc.errors(), hidden), model=model) from None

    return validate_type


def fast_validator(spec: Any, validator: Validator) -> Validator:
    """What the success path tries first: pydantic's own validator for a plain record (no
    wrapper frame); for other specs the compiled validator itself. A failure of either is
    handed to the full validator, which accepts every input form and collects every error."""
    if isinstance(spec, type) and issubclass(spec, pydantic.BaseModel):
        # plain mode: the general walk retries a failure with from_attributes=True, so objects
        # with attributes are still accepted (only slower), at no cost to plain records
        return spec.__pydantic_validator__.validate_python
    return validator


def _array_validator(
    spec: ArraySpec, error: type[InputValidationError | OutputValidationError], model: str
) -> Validator:
    target = None if spec.dtype is None else np.dtype(spec.dtype)
    shape = spec.shape

    def validate_array(value: Any) -> Any:
        problems: list[dict[str, Any]] = []
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise error(
                [{"type": "array_type", "loc": ("array",), "msg": f"not convertible to an array: {exc}"}],
                model=model,
            ) from None
        if arr.dtype.kind in "OUSV" and (target is None or target.kind not in "OUSV"):
            problems.append({"type": "dtype", "loc": ("dtype",), "msg": f"array of {arr.dtype} is not numeric"})
        elif target is not None and arr.dtype != target:
            converted = _convert(arr, target)
            if isinstance(converted, str):
                problems.append({"type": "dtype", "loc": ("dtype",), "msg": converted})
            else:
                arr = converted
        if shape is not None:
            if arr.ndim != len(shape):
                problems.append(
                    {
                        "type": "shape",
                        "loc": ("shape",),
                        "msg": f"expected {len(shape)} dimensions {shape}, got {arr.ndim} {arr.shape}",
                    }
                )
            else:
                for axis, (want, got) in enumerate(zip(shape, arr.shape, strict=True)):
                    if want is not None and want != got:
                        problems.append(
                            {
                                "type": "shape",
                                "loc": ("shape", axis),
                                "msg": f"expected length {want} on axis {axis}, got {got}",
                            }
                        )
        if not spec.allow_nan and arr.dtype.kind in "fc" and arr.size:
            finite = np.isfinite(arr)
            if not finite.all():
                bad = np.argwhere(~finite)
                for pos in bad[:_MAX_POSITIONS]:
                    where = tuple(int(i) for i in pos)
                    problems.append(
                        {
                            "type": "finite_number",
                            "loc": ("values", *where),
                            "msg": f"NaN or infinite value not allowed: {arr[where]!r}",
                        }
                    )
                if len(bad) > _MAX_POSITIONS:
                    problems.append(
                        {
                            "type": "finite_number",
                            "loc": ("values",),
                            "msg": f"{len(bad)} NaN or infinite values in all",
                        }
                    )
        if problems:
            raise error(problems, model=model)
        return arr

    return validate_array


def _convert(arr: np.ndarray, target: np.dtype[Any]) -> np.ndarray | str:
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


def _check_name(check: Check) -> str:
    return getattr(check, "__qualname__", None) or repr(check)


def compile_output(spec: Any, checks: Check | Sequence[Check] | None, model: str) -> Validator | None:
    """Compile ``output=`` and ``check=`` into one function, or None when neither is given."""
    typed = None if spec is None else compile_spec(spec, OutputValidationError, model)
    if checks is None:
        return typed
    check_list = tuple(checks) if isinstance(checks, Sequence) else (checks,)
    for check in check_list:
        if not callable(check):
            raise ConfigurationError(f"check= takes callables, got {check!r}")

    def validate_output(value: Any) -> Any:
        if typed is not None:
            value = typed(value)
        for check in check_list:
            try:
                passed = check(value)
            except Exception as exc:
                raise OutputValidationError(
                    [
                        {
                            "type": "check_error",
                            "loc": ("output",),
                            "msg": f"check {_check_name(check)} raised {type(exc).__name__}: {exc}",
                        }
                    ],
                    model=model,
                ) from exc
            if not passed:
                raise OutputValidationError(
                    [
                        {
                            "type": "check",
                            "loc": ("output",),
                            "msg": f"check {_check_name(check)} failed",
                            "input": _shown(value),
                        }
                    ],
                    model=model,
                )
        return value

    return validate_output


def describe_spec(spec: Any) -> Any:
    if spec is None:
        return None
    if isinstance(spec, ArraySpec):
        return spec.describe()
    if isinstance(spec, type) and issubclass(spec, pydantic.BaseModel):
        return {"kind": "pydantic", "model": spec.__name__, "fields": list(spec.model_fields)}
    return {"kind": "type", "type": _type_name(spec)}
