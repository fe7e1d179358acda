"""Sensitive features: what a drift result, and a detector's fault line, may show of them.

A feature is sensitive when ``DriftMonitor(sensitive=...)`` names it, or when a model the
monitor is attached to marks it so in its ``input=``/``output=`` spec (:func:`features_marked`,
from ``prodwrap.policies._redact.find_sensitive``: a ``SecretStr``/``SecretBytes`` type,
``pw.Sensitive`` or ``json_schema_extra={"sensitive": True}``, on the field or anywhere below
it), or when a reference of pydantic instances marks it so in its model, or holds secrets in it.
Such a feature is still tested (its distribution drifting is worth an alert); only what is
shown changes:

- ``details["unseen_examples"]`` keeps its counts, each label replaced by a stand-in,
  ``"redacted:<32 hex digits>"``: a BLAKE2b hash keyed with a random salt of the monitor's own
  (never saved, never shown), as the audit log writes sensitive values. One unseen value that
  recurs shows as the same stand-in check after check; nothing can be read back.
- The other ``details`` of a built-in detector hold counts, parameters and statistics: kept.
  Of any other detector, every detail that is not a number, a bool or None is replaced by its
  stand-in (the keys of a mapping in them too, and the name of a detail that is one of the
  window's values): a detector of your own must not report a sensitive feature's values as
  numbers.
- The WARNING line of a detector that fails on the feature has the texts of the window's values
  of that feature masked (``"**********"``, values of 4 characters or more) in its message and
  traceback, as a call's fault lines are; a detector refusing its reference raises a
  ``ConfigurationError`` whose message has them masked (:func:`masked_message`), no cause chained.
- ``DriftMonitor.save`` writes a sensitive categorical feature's reference values sealed
  (:func:`sealed_column`): each label as ``"redacted:<32 hex digits>"``, a BLAKE2b hash of its
  canonical form (``_labels.canonical``: equal exactly when the labels are equal, as ChiSquare
  counts them) keyed with a random key drawn for that feature, which the file holds (None, NaN
  and ``"<missing>"`` stay the missing category). A loaded monitor keeps the key
  (``Hidden.sealed``) and seals each window's values the same way before its detector tests
  them (``Hidden.tested``), so equal labels still meet and the counts are those of the clear
  values. A label with no canonical form (an object of a class of the user's) is refused by
  ``save``. No label is in the file in clear, but sealing is no encryption: whoever holds the
  file holds the key, and can recover a label from a small space (a PIN, an ssn) by hashing
  every candidate, unless the file was saved with a key of the user's (``save(path, key=)``,
  ``Hidden.master``), which wraps the seals' keys.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pydantic

from prodwrap.drift._base import DriftResult
from prodwrap.drift._features import OUTPUT, Key
from prodwrap.drift._labels import Unsealable, canonical

EXAMPLES = "unseen_examples"  # the detail in which ChiSquare lists live labels


class Hidden:
    """The sensitive features of one monitor, and the salt of their stand-ins."""

    __slots__ = ("_redactor", "_salt", "keys", "master", "sealed")

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self.keys = frozenset(keys)
        self._salt = os.urandom(16)
        self._redactor: Any = None
        self.sealed: dict[Key, bytes] = {}  # feature -> the key its reference labels are sealed with (a loaded file's)
        self.master: bytes | None = None  # the user's key that file wrapped those keys with, if any

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def add(self, keys: Iterable[Key]) -> frozenset[Key]:
        """Mark ``keys`` sensitive; returns those that were not already."""
        new = frozenset(keys) - self.keys
        self.keys |= new
        return new

    def rename(self, rename: Mapping[Key | None, Key]) -> None:
        self.keys = frozenset(rename.get(k, k) for k in self.keys)
        self.sealed = {rename.get(k, k): v for k, v in self.sealed.items()}

    def tested(self, key: Key, values: np.ndarray) -> np.ndarray:
        """A window's column of ``key`` as its detector is to test it: sealed with the key its
        reference was sealed with (a feature loaded so), else as it is."""
        return sealed_column(values, self.sealed[key]) if key in self.sealed else values

    def stand_in(self, value: Any) -> str:
        """``"redacted:<32 hex digits>"`` for ``value``: equal values, equal stand-ins."""
        if self._redactor is None:
            from prodwrap._audit_lines import Redactor  # (the audit log's keyed hash)

            self._redactor = Redactor(frozenset(), self._salt)
        stand_in: str = self._redactor.hash_of(value)
        return stand_in

    def result(self, result: DriftResult, det: Any, values: Any = None) -> DriftResult:
        """``result`` of sensitive feature with no value of the feature in its ``details``
        (``values``: the window's, when known: a detail named after one gets a stand-in name)."""
        if not result.details:
            return result
        ours = type(det).__module__.startswith("prodwrap.drift.")
        seen = set() if ours or values is None else {_text(v) for v in _items(values)}
        details = {}
        for name, value in result.details.items():
            shown = self._examples(value) if name == EXAMPLES else value if ours else self._leaves(value)
            details[self.stand_in(name) if str(name) in seen else name] = shown
        return dataclasses.replace(result, details=details)

    def _examples(self, examples: Any) -> Any:
        if not isinstance(examples, list | tuple):
            return self._leaves(examples)
        return tuple(
            (self.stand_in(item[0]), self._leaves(item[1]))
            if isinstance(item, tuple) and len(item) == 2
            else self._leaves(item)
            for item in examples
        )

    def _leaves(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | np.bool_ | np.number):
            return value
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            return value
        if isinstance(value, Mapping):
            return {self.stand_in(key): self._leaves(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset | np.ndarray):
            return tuple(self._leaves(item) for item in value)
        return self.stand_in(value)


def sealed_column(values: Any, key: bytes, *, strict: bool = False) -> np.ndarray:
    """``values`` (a categorical column) with each label replaced by its stand-in keyed with
    ``key``: the hash of its canonical form (``_labels.canonical``), so labels ChiSquare counts
    as one category (``1``, ``1.0`` and ``True``; a secret and its value) get one stand-in, and
    unequal ones different stand-ins, whatever their order. None, NaN and ``"<missing>"`` become
    None (the missing category, as ChiSquare counts them).

    A label with no canonical form (an object of a class of the user's) gets a stand-in no other
    label gets, equal ones alike: it meets no reference label, as it would meet none sealed.

    Raises:
        Unsealable: with ``strict`` (a reference being saved), a label with no canonical form.
    """
    from prodwrap._audit_lines import Redactor  # (the audit log's keyed hash)
    from prodwrap.drift._chisquare import MISSING, _is_missing

    hash_of = Redactor(frozenset(), key).hash_of
    seen: dict[tuple[type, Any], Any] = {}  # (by type too: True and 1 are sealed alike, each in its own right)
    unsealable: dict[Any, str] = {}  # (by value: equal labels of other types alike)
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(_items(values)):
        try:
            out[i] = seen[type(value), value]
            continue
        except KeyError:
            pass
        if _is_missing(value):
            sealed = None
        else:
            try:
                form = canonical(value)
            except Unsealable:
                if strict:
                    raise
                sealed = unsealable.get(value)
                if sealed is None:  # a random stand-in: no other label, sealed or not, gets it
                    sealed = unsealable[value] = "redacted:" + os.urandom(16).hex()
            else:
                sealed = None if form == MISSING else hash_of(form)
        out[i] = seen[type(value), value] = sealed
    return out


def window_mask(values: Any) -> Callable[[], Callable[[str], str] | None]:
    """For ``Throttle.warning(masked=)``: a mask of the texts of ``values`` (a feature's
    column in one window), built only when a line is logged."""

    def mask() -> Callable[[str], str] | None:
        from prodwrap.policies._redact import _MIN_MASKED, _masked, _values_under

        items = _items(values)
        found = {_text(item) for item in items}  # and every scalar an object among them holds:
        found |= _values_under({"": [v for v in items if not isinstance(v, str)]}, frozenset({""}))
        texts = {text for text in found if len(text) >= _MIN_MASKED}
        if not texts:
            return None
        secrets = sorted(texts, key=len, reverse=True)
        return lambda text: _masked(text, secrets)

    return mask


def masked_message(text: str, values: Any) -> str:
    """``text`` (an error's message) with the texts of ``values`` masked as a fault line's are
    (4 characters or more), and every string value's repr too, whatever its length (an error
    quoting a value, ``'12'``, shows it quoted)."""
    from prodwrap.policies._redact import _masked

    mask = window_mask(values)()
    text = mask(text) if mask is not None else text
    quoted = {repr(v) for v in _items(values) if isinstance(v, str | bytes)}
    return _masked(text, sorted(quoted, key=len, reverse=True))


def _items(values: Any) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def _text(value: Any) -> str:
    revealed = getattr(value, "get_secret_value", None)
    if callable(revealed):
        value = revealed()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def features_marked(keys: Iterable[Key], input_spec: Any, output_spec: Any) -> set[Key]:
    """Which of a monitor's features a model's ``input=``/``output=`` specs mark sensitive.

    The output (feature ``"output"``) is, when the output spec has any sensitive field or is
    secret itself. An input feature is, when the input spec is secret itself, when the feature's
    key is the name or alias of a sensitive field, or when the input is a pydantic model and the
    feature is a field (by name, or by position for a numbered feature) holding a secret type or
    a sensitive field anywhere below it. For another spec with sensitive fields, a numbered
    feature is taken as sensitive (its position cannot be matched to a field).
    """
    from prodwrap.policies.validation import _sensitive

    found_in, found_out = _sensitive(input_spec), _sensitive(output_spec)
    if not (found_in or found_out):
        return set()
    fields = _holding(input_spec, found_in.names) if found_in else None
    marked: set[Key] = set()
    for key in keys:
        if key == OUTPUT:
            if found_out:
                marked.add(key)
        elif not found_in:
            continue
        elif found_in.everywhere or key in found_in.names:
            marked.add(key)
        elif fields is not None:
            order, hidden = fields
            name = order[key] if isinstance(key, int) and 0 <= key < len(order) else key
            if name in hidden:
                marked.add(key)
        elif isinstance(key, int):
            marked.add(key)
    return marked


def _holding(spec: Any, names: frozenset[str]) -> tuple[list[str], set[str]] | None:
    """A pydantic model's fields in order, and those holding a sensitive value (None for any
    other spec)."""
    if not (isinstance(spec, type) and issubclass(spec, pydantic.BaseModel)):
        return None
    from prodwrap.policies.validation import _sensitive

    order = list(spec.model_fields)
    hidden = set()
    for name, info in spec.model_fields.items():
        if name in names or info.alias in names:
            hidden.add(name)
            continue
        try:
            below = bool(_sensitive(info.annotation))
        except Exception:  # a type pydantic cannot adapt alone: taken as sensitive, to be safe
            below = True
        if below:
            hidden.add(name)
    return order, hidden
