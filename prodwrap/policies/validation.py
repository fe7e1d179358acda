"""Input and output validation: pydantic models, any type via ``TypeAdapter``, ``ArraySpec``.

Each spec compiles once, at model construction, into a plain function ``value -> value``
that raises :class:`~prodwrap.errors.InputValidationError` (or ``OutputValidationError``)
listing every problem found. Errors never carry the value of a sensitive field
(``SecretStr``/``SecretBytes`` or ``Field(json_schema_extra={"sensitive": True})``), never
a whole record, never more than a short prefix of a long value, and never chain pydantic's
own ``ValidationError`` (which holds every raw value) as their cause or context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic

from prodwrap.errors import ConfigurationError, InputValidationError, OutputValidationError
from prodwrap.policies._redact import Sensitive, clean_errors, find_sensitive, raise_alone, shown

__all__ = ["ArraySpec", "Check", "Validator", "compile_output", "compile_spec", "describe_spec", "fast_validator"]


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """What a numpy array input (or output) must look like.

    Args:
        shape: expected shape; ``None`` in a position accepts any length there
            (``(None, 4)``: any number of rows of 4 columns). ``None`` accepts any shape.
        dtype: target dtype; values are converted only when every value stays the same
            (int32 to float64 always; int64 to float64, float64 to float32 or int64 to int8
            only when each value is exactly representable in the target); anything else is
            an error. ``None`` keeps the dtype.
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
            import numpy as np  # loaded when an ArraySpec is made, not with prodwrap

            try:
                np.dtype(self.dtype)
            except TypeError as exc:
                raise ConfigurationError(f"ArraySpec.dtype {self.dtype!r} is not a numpy dtype") from exc

    def describe(self) -> dict[str, Any]:
        return {"kind": "array", "shape": self.shape, "dtype": self.dtype, "allow_nan": self.allow_nan}


Validator = Callable[[Any], Any]
Check = Callable[[Any], object]

_MAX_CHECK_TEXT = 200  # characters of a raising check's message kept in the error


def _type_name(spec: Any) -> str:
    return getattr(spec, "__name__", None) or repr(spec)


def _sensitive(spec: Any) -> Sensitive:
    """The sensitive fields of a compiled spec (none for an ``ArraySpec`` or no spec)."""
    if spec is None or isinstance(spec, ArraySpec):
        return Sensitive()
    if isinstance(spec, type) and issubclass(spec, pydantic.BaseModel):
        return find_sensitive(spec.__pydantic_core_schema__)
    return find_sensitive(pydantic.TypeAdapter(spec).core_schema)


def compile_spec(spec: Any, error: type[InputValidationError | OutputValidationError], model: str) -> Validator:
    """Compile ``input=``/``output=`` into one validating function."""
    if isinstance(spec, ArraySpec):
        from prodwrap.policies._arrays import array_validator

        return array_validator(spec, error, model)
    if isinstance(spec, type) and issubclass(spec, pydantic.BaseModel):
        validator = spec.__pydantic_validator__
        sensitive = find_sensitive(spec.__pydantic_core_schema__)
        validate_python = validator.validate_python
        validate_json = validator.validate_json

        def validate_model(value: Any) -> Any:
            try:
                if isinstance(value, str | bytes | bytearray):
                    return validate_json(value)
                return validate_python(value, from_attributes=True)
            except pydantic.ValidationError as exc:
                problems = clean_errors(exc.errors(), sensitive, value)
            return raise_alone(error(problems, model=model))  # raises: pydantic's error is not chained

        return validate_model
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(spec)
    except Exception as exc:  # pydantic raises several kinds for types it cannot handle
        raise ConfigurationError(f"cannot validate against {spec!r}: {exc}") from exc
    validate_any = adapter.validate_python
    hidden = find_sensitive(adapter.core_schema)

    def validate_type(value: Any) -> Any:
        try:
            return validate_any(value, from_attributes=True)
        except pydantic.ValidationError as exc:
            problems = clean_errors(exc.errors(), hidden, value)
        return raise_alone(error(problems, model=model))  # raises: pydantic's error is not chained

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


def _check_name(check: Check) -> str:
    return getattr(check, "__qualname__", None) or repr(check)


def compile_output(spec: Any, checks: Check | Sequence[Check] | None, model: str) -> Validator | None:
    """Compile ``output=`` and ``check=`` into one function, or None when neither is given.

    A check that raises makes an ``OutputValidationError`` whose ``__cause__`` is the check's
    exception and whose message quotes it, unless ``output=`` has sensitive fields: the
    check's exception may then repeat a sensitive value, so only its type is named and it
    is not chained.
    """
    typed = None if spec is None else compile_spec(spec, OutputValidationError, model)
    if checks is None:
        return typed
    check_list = tuple(checks) if isinstance(checks, Sequence) else (checks,)
    for check in check_list:
        if not callable(check):
            raise ConfigurationError(f"check= takes callables, got {check!r}")
    sensitive = _sensitive(spec)

    def raised(check: Check, exc: Exception) -> OutputValidationError:
        if sensitive:
            message = f"check {_check_name(check)} raised {type(exc).__name__} (message withheld: sensitive output)"
        else:
            message = f"check {_check_name(check)} raised {type(exc).__name__}: {str(exc)[:_MAX_CHECK_TEXT]}"
        problem = {"type": "check_error", "loc": ("output",), "msg": message}
        return OutputValidationError([problem], model=model)

    def validate_output(value: Any) -> Any:
        if typed is not None:
            value = typed(value)
        for check in check_list:
            try:
                passed = bool(check(value))  # a result with no truth value (a numpy array) raises here
            except Exception as exc:
                if not sensitive:
                    raise raised(check, exc) from exc
                failure = raised(check, exc)
            else:
                if passed:
                    continue
                problem = {"type": "check", "loc": ("output",), "msg": f"check {_check_name(check)} failed"}
                if not sensitive:
                    problem["input"] = shown(value)
                failure = OutputValidationError([problem], model=model)
            raise_alone(failure)
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
