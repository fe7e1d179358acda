"""Cost accounting: cost models (``cost=``), the charges of each call, the ledger, budgets.

``pw.PerCall``, ``pw.PerSecond``, ``pw.PerItem`` and ``pw.PerToken`` price one attempt and add
up with ``+``; a :class:`CostModel` (or a plain callable of a :class:`Attempt`) is a custom
one. Token usage is read as the providers report it (:func:`usage_of`). Every attempt is
charged (``Prediction.charges``, one :class:`Charge` each) and every call recorded in a
:class:`Ledger`; a :class:`Budget` (``budget=``) limits what a model spends per calendar
window. Amounts are ``Decimal`` USD at the API and integer pico-dollars inside.
"""

from prodwrap.cost._budget import Budget, BudgetStats
from prodwrap.cost._charge import Charge
from prodwrap.cost._ledger import Ledger
from prodwrap.cost._models import Attempt, CostModel, CostSum, PerCall, PerItem, PerSecond
from prodwrap.cost._tokens import PerToken
from prodwrap.cost._usage import Usage, usage_of

__all__ = [
    "Attempt",
    "Budget",
    "BudgetStats",
    "Charge",
    "CostModel",
    "CostSum",
    "Ledger",
    "PerCall",
    "PerItem",
    "PerSecond",
    "PerToken",
    "Usage",
    "usage_of",
]
