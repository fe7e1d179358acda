"""Cost accounting (grows into cost models, the ledger and budgets): token usage as the
providers report it, read once for the rate limiter and, later, the cost models."""

from prodwrap.cost._usage import Usage, usage_of

__all__ = ["Usage", "usage_of"]
