"""The numeric settings of every policy, validated one way, with one set of messages.

- A **count** (``window=``, ``max_concurrent=``, ``attempts=``) is int-like: an ``int`` or
  anything ``operator.index`` takes (numpy's integers), never a bool (nor numpy's ``bool_``).
  It is kept as an ``int``.
- **Seconds** and **amounts** (rates, ratios, limits) are real numbers: ``int``, ``float``,
  ``Fraction``, ``Decimal``, numpy's floats and integers, never a bool; finite unless the
  setting gives infinity a meaning. They are kept as ``float``.

numpy is never imported: its scalars are recognised by what they implement (``__index__``,
the ``numbers.Real`` registration). A value a float cannot hold (an int or Fraction past
1e308) is infinity here, and a signalling ``Decimal`` NaN is NaN: nothing raises but
``ConfigurationError``.
"""

from __future__ import annotations

import math
import numbers
import operator
from decimal import Decimal

from prodwrap.errors import ConfigurationError


def as_float(value: object) -> float | None:
    """``value`` as a float when it is a real number (not a bool), else None. Too large for a
    float: +-infinity; ``Decimal("sNaN")``: NaN (``float`` raises for both)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | Decimal):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]
    except ValueError:  # Decimal("sNaN")
        return math.nan


def count(owner: str, name: str, value: object, *, least: int = 1, most: int | None = None, unit: str = "") -> int:
    """A whole number ``>= least`` (and ``<= most``), as an int.

    Raises:
        ConfigurationError: ``"<owner>.<name> must be an int >= <least>, got <value>"`` (or
            the upper limit, with ``unit`` naming what is counted).
    """
    n: int | None = None
    if not isinstance(value, bool):
        try:
            n = operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            n = None
    if n is None or n < least:
        raise ConfigurationError(f"{owner}.{name} must be an int >= {least}, got {value!r}")
    if most is not None and n > most:
        raise ConfigurationError(f"{owner}.{name} must be at most {most:,}{unit}, got {value!r}")
    return n


def seconds(
    owner: str, name: str, value: object, *, zero: bool = False, infinite: bool = False, least: float | None = None
) -> float:
    """Seconds ``> 0`` (``>= 0`` with ``zero``; ``>= least`` when given), finite (``math.inf``
    allowed with ``infinite``).

    Raises:
        ConfigurationError: ``"<owner>.<name> must be a finite number of seconds > 0, got ..."``.
    """
    x = as_float(value)
    low = (x is not None and x < least) if least is not None else False
    if x is None or math.isnan(x) or x < 0 or (x == 0 and not zero) or (x == math.inf and not infinite) or low:
        bound = f">= {least:g}" if least is not None else ">= 0" if zero else "> 0"
        kind = "a number of seconds" if infinite else "a finite number of seconds"
        tail = " (math.inf: no limit)" if infinite else ""
        raise ConfigurationError(f"{owner}.{name} must be {kind} {bound}{tail}, got {value!r}")
    return x


def amount(owner: str, name: str, value: object, *, zero: bool = False, least: float | None = None) -> float:
    """A finite number ``> 0`` (``>= 0`` with ``zero``; ``>= least`` when given).

    Raises:
        ConfigurationError: ``"<owner>.<name> must be a finite number > 0, got ..."``.
    """
    x = as_float(value)
    if least is not None:
        bound, ok = f">= {least:g}", x is not None and math.isfinite(x) and x >= least
    else:
        bound = ">= 0" if zero else "> 0"
        ok = x is not None and math.isfinite(x) and (x > 0 or (zero and x == 0))
    if not ok:
        raise ConfigurationError(f"{owner}.{name} must be a finite number {bound}, got {value!r}")
    return x  # type: ignore[return-value]


def fraction(owner: str, name: str, value: object, *, zero: bool = False, one: bool = True) -> float:
    """A fraction in (0, 1] (0.5 is 50 %); ``zero`` lets in 0, ``one=False`` keeps 1 out.

    Raises:
        ConfigurationError: ``"<owner>.<name> must be a fraction in (0, 1], got ..."`` (the
            interval as the setting has it: ``[0, 1)``, ``[0, 1]``).
    """
    x = as_float(value)
    if x is None or not (x >= 0 if zero else x > 0) or not (x <= 1 if one else x < 1):
        interval = ("[0" if zero else "(0") + (", 1]" if one else ", 1)")
        raise ConfigurationError(f"{owner}.{name} must be a fraction in {interval}, got {value!r}")
    return x
