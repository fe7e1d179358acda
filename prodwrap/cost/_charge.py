"""What one call was charged: a :class:`Charge` per attempt, as ``Prediction.charges`` holds them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from prodwrap.cost._money import money
from prodwrap.cost._usage import Usage

if TYPE_CHECKING:
    from prodwrap.cost._ledger import Ledger

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Charge:
    """One attempt's charge.

    Attributes:
        model: the name of the model whose cost model charged it (a fallback's own name when
            a fallback that is a ``ProductionModel`` charged it through its own pipeline).
        version: that model's version (or None).
        served_by: who made the attempt, as the calling model names it: ``"primary"``,
            ``"candidate"`` or the fallback's name.
        attempt: the attempt's number (1-based) among that model's attempts in this call.
        amount: USD; the part that could be priced when ``unpriced``.
        tokens: the token usage the attempt reported (None: none read).
        unpriced: the attempt's cost could not be determined in full (a token price and no
            usage reported): ``amount`` holds only the parts that could be priced.
    """

    model: str
    version: str | None
    served_by: str
    attempt: int
    amount: Decimal
    tokens: Usage | None = None
    unpriced: bool = False


class Line(NamedTuple):
    """A charge inside prodwrap: its amount in pico-dollars, and the ledger that recorded it
    already (None: not yet; a fallback model's charges arrive recorded by their own ledger)."""

    model: str
    version: str | None
    served_by: str
    attempt: int
    units: int
    tokens: Usage | None
    unpriced: bool
    ledger: Ledger | None

    def public(self) -> Charge:
        return Charge(
            self.model, self.version, self.served_by, self.attempt, money(self.units), self.tokens, self.unpriced
        )


class Bill:
    """A call's charges so far (``CallRecord.bill``); ``settle`` gives ``Prediction.cost``
    and ``Prediction.charges``."""

    __slots__ = ("lines", "pending")

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.pending: Any = None  # (COLLECT's token, TAGS' or None, collected) while a fallback model's attempt runs

    @property
    def units(self) -> int:
        return sum(line.units for line in self.lines)

    @property
    def unpriced(self) -> bool:
        return any(line.unpriced for line in self.lines)

    def settle(self) -> tuple[Decimal, tuple[Charge, ...]]:
        if not self.lines:
            return _ZERO, ()
        return money(self.units), tuple(line.public() for line in self.lines)
