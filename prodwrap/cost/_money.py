"""Money, exactly: prices in, integer pico-dollars inside, ``Decimal`` out.

Every amount prodwrap adds up is an ``int`` of pico-dollars (1 unit = 10**-12 USD), so sums
are exact, cheap and free of ``Decimal`` arithmetic on the success path; ``Decimal`` appears
only at the API (a price given, an amount read). A price is a ``str``, an ``int`` or a
``Decimal``; a ``float`` is accepted with a :class:`~prodwrap.errors.ConfigurationWarning` (a
float is not exact: ``0.1`` is not one tenth) and converted through its ``repr`` (``0.1`` ->
``Decimal("0.1")``).
"""

from __future__ import annotations

import warnings
from decimal import Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext

from prodwrap.errors import ConfigurationError, ConfigurationWarning

UNIT = 10**12  # pico-dollars per dollar
_CENT = Decimal("0.01")

Price = str | int | Decimal | float


def price(value: object, name: str) -> Decimal:
    """A price given to a cost model, as an exact ``Decimal`` (USD, >= 0).

    Raises:
        ConfigurationError: not a number, negative, not finite, or finer than a pico-dollar
            where that matters (see :func:`units`).
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal | float):
        raise ConfigurationError(f"{name} takes a price as a str, int or Decimal (USD), got {value!r}")
    if isinstance(value, float):
        text = repr(float(value))  # (numpy's float64 is a float, and its repr is not a number)
        warnings.warn(
            f"{name}={value!r}: a float price is not exact; give it as a str or Decimal "
            f"({name}={text!r}); it is read as Decimal({text!r})",
            ConfigurationWarning,
            stacklevel=4,
        )
        value = text
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        raise ConfigurationError(f"{name} must be a number of USD, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigurationError(f"{name} must be a finite price >= 0 USD, got {value!r}")
    return amount


# Money arithmetic runs in a context of its own: exact to far beyond any total prodwrap keeps
# (pico-dollar units of up to 10**15 USD take 28 digits), whatever the caller's context is.
_EXACT = Context(prec=60, Emax=999_999, Emin=-999_999, traps=[InvalidOperation, Overflow, DivisionByZero])
_LARGEST = 14  # prices and limits below 10**15 USD


def units(amount: Decimal, name: str) -> int:
    """``amount`` (USD) in pico-dollars, which must be whole.

    Raises:
        ConfigurationError: the amount has more than 12 decimal places.
    """
    if amount.adjusted() > _LARGEST:
        raise ConfigurationError(f"{name}={amount} is more than prodwrap counts (below 10**{_LARGEST + 1} USD)")
    with localcontext(_EXACT):  # the caller's decimal context never rounds money
        scaled = amount.scaleb(12)
    whole = int(scaled)
    if scaled != whole:
        raise ConfigurationError(f"{name}={amount} is finer than a pico-dollar (10**-12 USD), which prodwrap counts in")
    return whole


def money(amount: int) -> Decimal:
    """Pico-dollars as USD: exact, with at least two decimal places and no trailing zeros
    beyond them (``100.00``, ``0.0001``, ``0.00000015``)."""
    with localcontext(_EXACT):  # the caller's decimal context never rounds money
        value = Decimal(amount).scaleb(-12)
        cents = value.quantize(_CENT)
        return cents if cents == value else value.normalize()


def dollars(amount: Decimal) -> str:
    """A ``Decimal`` written out in full, never in exponent form (``0.00000015``)."""
    return f"{amount:f}"
