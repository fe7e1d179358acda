"""Cost models: what one attempt costs (``cost=``).

``pw.PerCall``, ``pw.PerSecond``, ``pw.PerItem`` and ``pw.PerToken`` add up with ``+``; any
callable (or object with a ``price`` method) following :class:`CostModel` is a custom one.
Inside, an attempt's cost is an ``int`` of pico-dollars (``prodwrap.cost._money``); at the
API it is a ``Decimal`` of USD.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sized
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol, runtime_checkable

from prodwrap.cost._money import Price, dollars, money, price, units
from prodwrap.cost._usage import Usage, usage_of
from prodwrap.errors import ConfigurationError

Charged = tuple[int, Usage | None, bool]  # (pico-dollars, tokens, unpriced)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt, as a cost model sees it.

    Attributes:
        input: the validated input the attempt was given (a list for a batch).
        output: what it returned (validated), or None when it failed.
        error: the exception it failed with, or None when it succeeded.
        seconds: how long it took, on prodwrap's clock.
    """

    input: Any
    output: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


@runtime_checkable
class CostModel(Protocol):
    """A custom cost model: ``price(attempt)`` says what one attempt cost.

    It returns the cost in USD (a ``Decimal``, ``int`` or ``str``; a ``float`` is read
    through its ``repr``), rounded to the pico-dollar, or None when the cost cannot be
    determined: the attempt is then *unpriced* (counted in ``stats().unpriced``, never a
    silent 0). A plain callable ``(attempt) -> Decimal | None`` is one too. It may also have
    ``estimate(input) -> Decimal | None``: the cost of one attempt before it runs (budgets
    use it; None when unknown). A model that raises is counted as a fault and the attempt
    is unpriced; the prediction is never affected.
    """

    def price(self, attempt: Attempt) -> Decimal | None: ...


class Priced:
    """The built-in cost models' base: ``+``, ``price``, ``estimate`` and ``describe``.

    Internally ``charge`` returns ``(pico-dollars, usage, unpriced)`` and ``estimated``
    pico-dollars or None; ``needs_output``, ``needs_seconds`` and ``fixed`` (the cost of
    every attempt when it depends on nothing, else None) tell the stage what to read.
    """

    __slots__ = ()
    needs_output: bool = False
    needs_seconds: bool = False

    @property
    def fixed(self) -> int | None:
        return None

    def charge(self, input: Any, output: Any, error: BaseException | None, seconds: float) -> Charged:
        raise NotImplementedError

    def estimated(self, input: Any) -> int | None:
        return None

    def price(self, attempt: Attempt) -> Decimal | None:
        """What ``attempt`` costs in USD; None when it cannot be priced (a token price whose
        output reports no usage)."""
        amount, _, unpriced = self.charge(attempt.input, attempt.output, attempt.error, attempt.seconds)
        return None if unpriced else money(amount)

    def estimate(self, input: Any) -> Decimal | None:
        """The cost of one attempt on ``input`` before it runs, in USD: known for
        ``PerCall`` and ``PerItem``; for ``PerToken`` with ``max_output_tokens=`` when the
        input's tokens can be counted (the worst case: every output token used, no input
        cached); None otherwise (``PerSecond``: the duration is not known in advance). A sum
        is known when every part is."""
        amount = self.estimated(input)
        return None if amount is None else money(amount)

    def describe(self) -> Any:
        raise NotImplementedError

    def parts(self) -> tuple[Priced, ...]:
        return (self,)

    def __add__(self, other: object) -> CostSum:
        return CostSum((*self.parts(), *cost_model(other).parts()))

    def __radd__(self, other: object) -> Priced:
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self  # sum([...]) starts from 0
        return CostSum((*cost_model(other).parts(), *self.parts()))


@dataclass(frozen=True, slots=True, eq=True)
class PerCall(Priced):
    """A price per attempt (USD), whatever it did."""

    price_per_call: Price

    def __post_init__(self) -> None:
        object.__setattr__(self, "price_per_call", price(self.price_per_call, "PerCall"))
        object.__setattr__(self, "_units", units(self.price_per_call, "PerCall"))  # type: ignore[arg-type]

    _units: int = field(init=False, repr=False, compare=False, default=0)

    @property
    def fixed(self) -> int | None:
        return self._units

    def charge(self, input: Any, output: Any, error: BaseException | None, seconds: float) -> Charged:
        return self._units, None, False

    def estimated(self, input: Any) -> int | None:
        return self._units

    def describe(self) -> Any:
        return {"per_call": dollars(self.price_per_call)}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True, eq=True)
class PerSecond(Priced):
    """A price per second of the attempt's wall time (USD), rounded to the pico-dollar."""

    price_per_second: Price
    needs_seconds = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "price_per_second", price(self.price_per_second, "PerSecond"))
        object.__setattr__(self, "_units", units(self.price_per_second, "PerSecond"))  # type: ignore[arg-type]

    _units: int = field(init=False, repr=False, compare=False, default=0)

    def charge(self, input: Any, output: Any, error: BaseException | None, seconds: float) -> Charged:
        return int(seconds * self._units + 0.5) if seconds > 0 else 0, None, False

    def describe(self) -> Any:
        return {"per_second": dollars(self.price_per_second)}  # type: ignore[arg-type]


def items(value: Any) -> int:
    """How many items an input holds: a batch's length (a list, a tuple, an array), else 1."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sized) or hasattr(value, "model_fields"):
        return 1
    try:
        return len(value)
    except TypeError:  # a 0-d array
        return 1


@dataclass(frozen=True, slots=True, eq=True)
class PerItem(Priced):
    """A price per item of the attempt's input (USD): a batch's length, 1 for one record."""

    price_per_item: Price

    def __post_init__(self) -> None:
        object.__setattr__(self, "price_per_item", price(self.price_per_item, "PerItem"))
        object.__setattr__(self, "_units", units(self.price_per_item, "PerItem"))  # type: ignore[arg-type]

    _units: int = field(init=False, repr=False, compare=False, default=0)

    def charge(self, input: Any, output: Any, error: BaseException | None, seconds: float) -> Charged:
        return self._units * items(input), None, False

    def estimated(self, input: Any) -> int | None:
        return self._units * items(input)

    def describe(self) -> Any:
        return {"per_item": dollars(self.price_per_item)}  # type: ignore[arg-type]


class CostSum(Priced):
    """Cost models added with ``+``: each attempt costs the sum of their charges (unpriced
    when any part is)."""

    __slots__ = ("models", "needs_output", "needs_seconds")

    def __init__(self, models: tuple[Priced, ...]) -> None:
        self.models = models
        self.needs_output = any(m.needs_output for m in models)
        self.needs_seconds = any(m.needs_seconds for m in models)

    @property
    def fixed(self) -> int | None:
        parts = [m.fixed for m in self.models]
        return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)

    def parts(self) -> tuple[Priced, ...]:
        return self.models

    def charge(self, input: Any, output: Any, error: BaseException | None, seconds: float) -> Charged:
        total, tokens, unpriced = 0, None, False
        for model in self.models:
            amount, used, missing = model.charge(input, output, error, seconds)
            total += amount
            tokens = tokens if used is None else used
            unpriced = unpriced or missing
        return total, tokens, unpriced

    def estimated(self, input: Any) -> int | None:
        total = 0
        for model in self.models:
            amount = model.estimated(input)
            if amount is None:
                return None
            total += amount
        return total

    def describe(self) -> Any:
        return [m.describe() for m in self.models]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CostSum) and other.models == self.models

    def __hash__(self) -> int:
        return hash(self.models)

    def __repr__(self) -> str:
        return " + ".join(repr(m) for m in self.models)


class Custom(Priced):
    """A user's cost model (a :class:`CostModel`, or a plain callable of an :class:`Attempt`)."""

    __slots__ = ("fn", "guess")
    needs_output = True
    needs_seconds = True

    def __init__(self, model: Any) -> None:
        self.fn: Callable[[Attempt], Any] = model.price if isinstance(model, CostModel) else model
        guess = getattr(model, "estimate", None)
        self.guess: Callable[[Any], Any] | None = guess if callable(guess) else None

    def charge(self, input: Any, output: Any, error: BaseException | None, seconds: float) -> Charged:
        got = self.fn(Attempt(input, output, error, seconds))
        tokens = None if output is None else usage_of(output)
        if got is None:
            return 0, tokens, True
        return _to_units(got), tokens, False

    def estimated(self, input: Any) -> int | None:
        got = None if self.guess is None else self.guess(input)
        return None if got is None else _to_units(got)

    def describe(self) -> Any:
        return {"custom": str(getattr(self.fn, "__qualname__", None) or repr(self.fn))}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Custom) and other.fn == self.fn

    def __hash__(self) -> int:
        return hash(self.fn)


def _to_units(value: Any) -> int:
    """A custom model's USD amount in pico-dollars, to the nearest (a ValueError for nonsense)."""
    if isinstance(value, float):
        value = repr(float(value))  # (numpy's float64 too)
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(f"a cost model returned {value!r}, not an amount of USD")
    try:
        amount = Decimal(value)
    except ArithmeticError:  # (decimal.InvalidOperation: a text that is no number)
        raise ValueError(f"a cost model returned {value!r}, not an amount of USD") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"a cost model returned {value!r}, not an amount of USD >= 0")
    return int(amount.scaleb(12).to_integral_value(ROUND_HALF_EVEN))


def cost_model(value: object) -> Priced:
    """``cost=`` as a model: a built-in one as it is, a custom one wrapped."""
    if isinstance(value, Priced):
        return value
    if isinstance(value, CostModel) or callable(value):
        return Custom(value)
    raise ConfigurationError(
        f"cost= takes a cost model (pw.PerCall, pw.PerSecond, pw.PerItem, pw.PerToken, a sum of them, "
        f"or a callable of a pw.Attempt), got {value!r}"
    )
