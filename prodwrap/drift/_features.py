"""Turning references and live inputs into feature columns.

A reference may be a numpy array (columns are features 0..d-1), a list of dicts (keys), a
list of pydantic instances (fields), a dict of columns, anything with ``.columns`` (a data
frame), or a list of scalars (one feature, 0). Live inputs are read the same way, adapting
to their own type, so a monitor fitted on ``X_train`` columns can watch pydantic inputs.
A feature's kind (numeric or categorical) is decided once, from the reference's values, and a
live window's column is built of that kind whatever values the window holds. A value absent
from a record (a key a dict omits) is read as None, in the reference as live. A numeric value
that is NaN or +/-inf, and a None in a numeric feature, is left out of its column and counted,
in the reference (``Reference.missing``) as in a live window (``Window.missing``): no detector
is given a value it cannot place in a distribution. In a categorical feature None and NaN are
values (ChiSquare's category ``"<missing>"``) on both sides.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pydantic

from prodwrap._record import MISSING
from prodwrap.drift._labels import Revealed, revealed
from prodwrap.errors import ConfigurationError

Key = str | int
OUTPUT = "output"  # the feature name of the model's output


def _plain(value: Any) -> Any:
    value = getattr(value, "value", value) if hasattr(type(value), "__members__") else value  # Enum
    if isinstance(value, np.generic):
        return value.item()
    return revealed(value)  # (a pydantic secret compares by its value)


_BUILTIN = frozenset((int, float, str, bool))  # values of these types are plain already
_NUMBERS = frozenset((int, float))


def column(values: Sequence[Any], numeric: bool | None = None) -> np.ndarray:
    """A feature's values as a column of the kind ``numeric`` says: the reference's, for a live
    window (None: numeric exactly when every present value is a number, bools excluded, as the
    reference's kind is decided).

    A numeric column is float64, its None and MISSING (an absent value) left out, or, when a
    value is no number, an object column of the values (which its detector refuses: a counted
    fault). A categorical column is an object column of every value, None kept (the category
    ``"<missing>"``) and an absent value read as None.
    """
    plain = [v for v in values if v is not MISSING and v is not None]
    kinds = set(map(type, plain))
    builtin = kinds <= _BUILTIN  # (the common case: no value to convert, one look at each type)
    if builtin:
        numbers = kinds <= _NUMBERS
    else:
        plain = list(map(_plain, plain))
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in plain)
    if numeric if numeric is not None else numbers:
        return np.asarray(plain, dtype=np.float64 if numbers else object)
    if len(plain) < len(values):  # a None or an absent value among them: the category None
        plain = [None if v is MISSING or v is None else v if builtin else _plain(v) for v in values]
    return np.asarray(plain, dtype=object)


def is_numeric(col: np.ndarray) -> bool:
    return col.dtype.kind in "iuf"


class Reference(NamedTuple):
    """A reference's feature columns, and per feature the values left out of them: None, NaN
    and +/-inf in a numeric feature (0 for a categorical one, which keeps them as categories);
    ``marked``: the features a reference of pydantic instances marks sensitive (its model's
    ``pw.Sensitive``, secret types, ``json_schema_extra={"sensitive": True}``)."""

    columns: dict[Key, np.ndarray]
    missing: dict[Key, int]
    marked: frozenset[Key] = frozenset()


def reference_columns(reference: Any, option: str = "reference") -> Reference:
    """Split a reference data set into feature columns (at least one), a numeric column's
    None, NaN and +/-inf left out and counted, as a live window's are.

    Raises:
        ConfigurationError: not a data set, empty, without features, or an array of more than
            two dimensions; the message names ``option`` (the constructor argument).
    """
    raw, model = _split(reference, option)
    if not raw:
        raise ConfigurationError(f"DriftMonitor: {option} has no features (no columns, keys or fields)")
    missing: dict[Key, int] = {}
    columns = {
        k: _finite(v.astype(np.float64), k, missing)
        if isinstance(v, np.ndarray) and v.dtype.kind in "iuf"
        else _present(list(v), k, missing)
        for k, v in raw.items()
    }
    if model is None:
        return Reference(columns, missing)
    from prodwrap.drift._sensitive import features_marked  # (its model's marks, known before any is attached)

    return Reference(columns, missing, frozenset(features_marked(list(columns), model, None)))


def both_references(reference: Any, output_reference: Any) -> Reference:
    """``reference_columns(reference)``, with the output's as feature ``"output"`` when given."""
    found = reference_columns(reference)
    if output_reference is not None:
        output = output_column(output_reference)
        found.columns.update(output.columns)
        found.missing.update(output.missing)
    return found


def output_column(reference: Any) -> Reference:
    """The one column of ``output_reference``, as feature ``"output"``: an array, a sequence or
    iterable of scalars (a list, a tuple, an object array, a generator, ...), or of one-field
    dicts or pydantic models (read through, as a live output is), or a one-column table.

    Raises:
        ConfigurationError: anything ``reference_columns`` refuses, or a reference of more
            than one column (a 2-D array, rows of several fields): the output is one feature,
            and no column is chosen silently.
    """
    if isinstance(reference, np.ndarray) and reference.dtype == object and reference.ndim == 1:
        reference = reference.tolist()  # (its items may be records: read through as a list's)
    table = isinstance(reference, Mapping) or hasattr(reference, "columns")
    if isinstance(reference, Iterable) and not (table or isinstance(reference, str | bytes | np.ndarray)):
        reference = [unwrap_output(row) for row in reference]
    elif not table:
        reference = np.asarray(reference)  # (a string is refused as the 0-d array it makes)
    found = reference_columns(reference, "output_reference")
    columns, missing = found.columns, found.missing
    if len(columns) != 1:
        raise ConfigurationError(
            f"DriftMonitor: output_reference has {len(columns)} columns {list(columns)}; the output is monitored "
            f"as one feature: give the reference of that one output (an array, or one-field dicts or models)"
        )
    key = next(iter(columns))
    return Reference({OUTPUT: columns[key]}, {OUTPUT: missing[key]})


def _split(reference: Any, option: str) -> tuple[dict[Key, np.ndarray | list[Any]], type[pydantic.BaseModel] | None]:
    """The reference's columns as given (arrays, or lists of the values), and the model of a
    reference of pydantic instances."""
    if isinstance(reference, np.ndarray):
        if reference.ndim == 1:
            return {0: reference}, None
        if reference.ndim == 2:
            return {i: reference[:, i] for i in range(reference.shape[1])}, None
        raise ConfigurationError(f"DriftMonitor: {option} array must be 1-D or 2-D, got shape {reference.shape}")
    if hasattr(reference, "columns") and hasattr(reference, "__getitem__"):  # a data frame
        return {str(c): np.asarray(reference[c]) for c in reference.columns}, None
    if isinstance(reference, Mapping):
        return {k: v if isinstance(v, np.ndarray) and v.ndim == 1 else list(v) for k, v in reference.items()}, None
    rows = list(reference) if isinstance(reference, Iterable) else None
    if not rows:
        raise ConfigurationError(f"DriftMonitor: {option} is empty or not a data set, got {type(reference).__name__}")
    keys = row_keys(rows[0])
    if keys is None:
        return {0: rows}, None
    if isinstance(rows[0], Mapping):  # a key the first record omits (a null field left out) is one too
        keys = list(dict.fromkeys(itertools.chain.from_iterable(r for r in rows if isinstance(r, Mapping))))
    model = type(rows[0]) if isinstance(rows[0], pydantic.BaseModel) else None
    return {k: [read(r, k) for r in rows] for k in keys}, model


def row_keys(row: Any) -> list[Key] | None:
    """The feature keys of one record, or None for a scalar."""
    if isinstance(row, pydantic.BaseModel):
        return list(type(row).model_fields)
    if isinstance(row, Mapping):
        return list(row)
    if isinstance(row, np.ndarray | list | tuple):
        return list(range(len(row)))
    return None


def read(obj: Any, key: Key) -> Any:
    """Feature ``key`` of a live input, or MISSING."""
    try:
        if isinstance(obj, pydantic.BaseModel):
            if isinstance(key, int):
                key = list(type(obj).model_fields)[key]
            return getattr(obj, key, MISSING)
        if isinstance(obj, Mapping):
            if key in obj:
                return obj[key]
            return list(obj.values())[key] if isinstance(key, int) else MISSING
        if isinstance(obj, np.ndarray | list | tuple):
            return obj[key] if isinstance(key, int) else MISSING
    except (IndexError, KeyError, TypeError):
        return MISSING
    return obj if key == 0 else MISSING


def unwrap_output(out: Any) -> Any:
    """The output as one value: a one-field model or dict is read through."""
    if isinstance(out, pydantic.BaseModel):
        fields = type(out).model_fields
        if len(fields) == 1:
            return getattr(out, next(iter(fields)))
    elif isinstance(out, Mapping) and len(out) == 1:
        return next(iter(out.values()))
    return out


class Window(NamedTuple):
    """The columns of one window, and per numeric feature the values left out as NaN, +/-inf,
    None or absent (0 for a categorical feature, which keeps them as categories)."""

    columns: dict[Key, np.ndarray]
    missing: dict[Key, int]


def window_columns(
    snapshot: Sequence[tuple[Any, Any]],
    keys: Sequence[Key],
    numeric: Mapping[Key, bool],
    positions: Mapping[Key, int] | None = None,
) -> Window:
    """The feature columns of a window of ``(input, output)`` pairs, each of the kind
    ``numeric`` says (the reference's), a numeric one's NaN, +/-inf, None and absent values left
    out and counted. An output that is MISSING (served by a fallback) is not observed.

    Inputs all of one pydantic model or all dicts are read at C speed: the numeric features
    of every input in one pass (one ``attrgetter``/``itemgetter`` of all their names, chained
    into one array), the others one feature at a time; anything else value by value.
    ``positions`` maps a named feature to its column, for array and list inputs (a monitor
    fitted on an array whose features were named after the model's input fields).
    """
    inputs = list(map(_first, snapshot))
    input_keys = [k for k in keys if k != OUTPUT]
    missing: dict[Key, int] = {}
    columns = _read_at_once(inputs, input_keys, numeric, missing)
    if columns is None:
        missing.clear()
        columns = {k: _present(_read_each(inputs, k, positions), k, missing, numeric[k]) for k in input_keys}
    if OUTPUT in keys:
        outputs = [pair[1] for pair in snapshot if pair[1] is not MISSING]  # (MISSING: not observed)
        if not set(map(type, outputs)) <= _BUILTIN:  # (a plain output needs no unwrapping)
            outputs = list(map(unwrap_output, outputs))
        columns[OUTPUT] = _present(outputs, OUTPUT, missing, numeric.get(OUTPUT))
    return Window(columns, missing)


_first = operator.itemgetter(0)


def _read_at_once(
    inputs: list[Any], keys: list[Key], numeric: Mapping[Key, bool], missing: dict[Key, int]
) -> dict[Key, np.ndarray] | None:
    if not keys or not inputs:
        return {k: np.empty(0) for k in keys}
    kinds = set(map(type, inputs))
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    getter: Any
    if issubclass(kind, pydantic.BaseModel):
        fields = list(kind.model_fields)
        if any(isinstance(k, int) and not 0 <= k < len(fields) for k in keys):
            return None
        getter = operator.attrgetter
        names: dict[Key, Any] = {k: fields[k] if isinstance(k, int) else k for k in keys}
    elif kind is dict:
        getter = operator.itemgetter
        names = {k: k for k in keys}
    else:
        return None
    columns: dict[Key, np.ndarray] = {}
    try:
        numbers = [k for k in keys if numeric[k]]
        if len(numbers) > 1:  # every numeric feature in one pass: no list, no transpose
            try:
                flat = np.fromiter(
                    itertools.chain.from_iterable(map(getter(*(names[k] for k in numbers)), inputs)),
                    dtype=np.float64,
                    count=len(inputs) * len(numbers),
                )
            except (TypeError, ValueError):  # a None or a string somewhere: feature by feature
                pass
            else:
                table = flat.reshape(len(inputs), len(numbers))
                for i, key in enumerate(numbers):
                    columns[key] = _finite(table[:, i], key, missing)
        for key in keys:
            if key in columns:
                continue
            col = None
            if numeric[key]:
                try:
                    col = np.fromiter(map(getter(names[key]), inputs), dtype=np.float64, count=len(inputs))
                except (TypeError, ValueError):
                    col = None
            if col is not None:
                columns[key] = _finite(col, key, missing)
            else:
                columns[key] = _present(list(map(getter(names[key]), inputs)), key, missing, numeric[key])
    except (AttributeError, KeyError):
        return None  # a missing field somewhere: read value by value
    return {k: columns[k] for k in keys}


def _read_each(inputs: list[Any], key: Key, positions: Mapping[Key, int] | None) -> list[Any]:
    at = key if positions is None else positions.get(key, key)
    values: list[Any] = []
    for value in inputs:
        if isinstance(value, np.ndarray) and value.ndim == 2:
            if isinstance(at, int):
                values.extend(value[:, at].tolist())
        elif isinstance(value, np.ndarray | list | tuple):
            values.append(read(value, at))
        else:
            values.append(read(value, key))
    return values  # (an absent value, MISSING, is read as None: missing, as in the reference)


def _present(values: list[Any], key: Key, missing: dict[Key, int], numeric: bool | None = None) -> np.ndarray:
    """``column(values, numeric)`` with NaN and +/-inf left out of a numeric column; those and
    the None and absent values it left out are counted in ``missing`` (a categorical column
    keeps them all, as categories, and counts 0)."""
    col = column(values, numeric)
    if numeric if numeric is not None else col.dtype.kind == "f":
        return _finite(col, key, missing, sum(1 for v in values if v is None or v is MISSING))
    return _finite(col, key, missing)


def _finite(col: np.ndarray, key: Key, missing: dict[Key, int], already: int = 0) -> np.ndarray:
    """A numeric column without its NaN and +/-inf (counted: a detector refuses them, and one
    such value would stop the feature's check); a categorical one as it is (its detector
    takes NaN as a category)."""
    count = 0
    if col.dtype.kind == "f":
        finite = np.isfinite(col)
        count = col.size - int(np.count_nonzero(finite))
        if count:
            col = col[finite]
    missing[key] = count + already
    return col


def fingerprint(columns: Mapping[Key, np.ndarray], config: Mapping[str, Any]) -> str:
    """sha256 over the configuration (JSON, keys sorted) and every reference column (name,
    type and values), in a stable order: a changed window or threshold changes it as a changed
    value does."""
    digest = hashlib.sha256()
    digest.update(json.dumps(config, sort_keys=True, default=repr).encode())
    for key in sorted(columns, key=lambda k: (isinstance(k, str), str(k))):
        col = columns[key]
        digest.update(json.dumps([key, col.dtype.kind, len(col)]).encode())
        if col.dtype.kind == "f":
            digest.update(np.ascontiguousarray(col, dtype="<f8").tobytes())
        else:
            digest.update(
                json.dumps([str(v.get_secret_value() if isinstance(v, Revealed) else v) for v in col]).encode()
            )
    return digest.hexdigest()
