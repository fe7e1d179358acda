"""Categorical labels as a drift check compares them: secrets by their value, and one canonical
form per category, for sealing.

``ChiSquare`` counts labels with ``==`` and ``hash``, so ``1``, ``1.0``, ``True`` and
``Decimal("1")`` are one category, ``"<missing>"`` is the category None and NaN are counted
under, and ``b"x"`` is not ``"x"``. A sealed label (``_sensitive.sealed_column``) is a keyed
hash of a text, so it needs a text that is equal exactly when the labels are: :func:`canonical`
gives one, a JSON-able value (a string as itself, an integral number as an int, a number a
float holds exactly as that float, anything else tagged in a mapping no label can be), the
same whatever order the labels come in. A label of a type whose equality is its own (an object
of a class of the user's) has no such form: :class:`Unsealable`.

A pydantic secret (``SecretStr``, ``SecretBytes``, ``Secret``) in a drift column is a
:class:`Revealed`: equal to, and hashed as, its secret value, so a live ``SecretStr`` meets the
reference's label of that value (a ``SecretStr`` equals no string), and shown masked as a
secret is.
"""

from __future__ import annotations

import datetime
import numbers
import uuid
from fractions import Fraction
from typing import Any

import numpy as np
import pydantic

from prodwrap.policies._redact import _secret_types

SECRETS: tuple[type[Any], ...] = _secret_types()


class Revealed(pydantic.SecretStr):
    """A secret label: equal to, and hashed as, its secret value; shown as ``SecretStr('**********')``.

    A ``SecretStr`` subclass, so every redaction path of prodwrap (fault-line masks, keyed
    stand-ins, audit lines) treats it as the secret it is.
    """

    def __eq__(self, other: object) -> bool:
        value = other.get_secret_value() if isinstance(other, SECRETS) else other
        return bool(self.get_secret_value() == value)

    def __hash__(self) -> int:
        return hash(self.get_secret_value())

    def __repr__(self) -> str:
        return "SecretStr('**********')"


def revealed(value: Any) -> Any:
    """``value`` as a drift column holds it: a pydantic secret as a :class:`Revealed`."""
    if isinstance(value, SECRETS) and not isinstance(value, Revealed):
        return Revealed(value.get_secret_value())
    return value


class Unsealable(ValueError):
    """A label with no canonical form: its type decides its equality (the message names the type)."""

    def __init__(self, label: Any) -> None:
        super().__init__(
            f"labels of type {type(label).__name__} have no canonical form to seal (str, bytes, numbers, "
            f"bools, tuples and frozensets of them, dates, times, timedeltas and UUIDs have one)"
        )


def canonical(label: Any) -> Any:
    """A JSON-able form of ``label``, equal for two labels exactly when they are equal (``==``).

    None and NaN are not given one here (they are the missing category, ``sealed_column``'s).

    Raises:
        Unsealable: a label of another type, or one that equals nothing (a NaN inside a tuple,
            ``Decimal("NaN")``).
    """
    if isinstance(label, SECRETS):
        label = label.get_secret_value()
    if isinstance(label, np.generic):
        label = label.item()
    if isinstance(label, str):
        return str.__str__(label)  # (a str subclass as the text it compares by)
    if label is None:
        return None  # (inside a tuple: None equals None)
    if isinstance(label, bytes):
        return {"bytes": label.hex()}
    if isinstance(label, numbers.Number):
        return _number(label)
    if isinstance(label, tuple):
        return {"tuple": [canonical(item) for item in label]}
    if isinstance(label, frozenset):
        return {"frozenset": sorted((canonical(item) for item in label), key=repr)}
    if isinstance(label, datetime.datetime):  # (before date: a datetime never equals a date)
        if label.utcoffset() is None:
            return {"datetime": label.isoformat()}
        return {"instant": label.astimezone(datetime.UTC).isoformat()}  # aware: equal at one instant
    if isinstance(label, datetime.date):
        return {"date": label.isoformat()}
    if isinstance(label, datetime.time) and label.utcoffset() is None:
        return {"time": label.isoformat()}
    if isinstance(label, datetime.timedelta):
        return {"timedelta": [label.days, label.seconds, label.microseconds]}
    if isinstance(label, uuid.UUID):
        return {"uuid": str(label)}
    raise Unsealable(label)


def _number(value: Any) -> Any:
    """Numbers compare by exact value across types (``1 == 1.0 == True == Decimal(1)``)."""
    if isinstance(value, complex):
        if value.imag:
            return {"complex": [_number(value.real), _number(value.imag)]}
        value = value.real
    try:
        exact = Fraction(value)
    except OverflowError:  # +/-inf (a float or a Decimal: they are equal)
        return {"number": "inf" if value > 0 else "-inf"}
    except (TypeError, ValueError):  # NaN, or a number type of its own
        raise Unsealable(value) from None
    if exact.denominator == 1:
        return int(exact)
    if Fraction(float(exact)) == exact:
        return float(exact)
    return {"number": f"{exact.numerator}/{exact.denominator}"}
