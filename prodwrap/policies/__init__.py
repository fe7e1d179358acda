"""Policy objects: small, immutable, validated at construction."""

from prodwrap.policies._canonical import canonical_key
from prodwrap.policies.bulkhead import Bulkhead, BulkheadStats
from prodwrap.policies.cache import Cache, CacheStats
from prodwrap.policies.circuit import CircuitBreaker
from prodwrap.policies.fallback import Constant
from prodwrap.policies.hedge import Hedge
from prodwrap.policies.ratelimit import RateLimit
from prodwrap.policies.retry import Backoff, Retry, backoff
from prodwrap.policies.retry_budget import RetryBudget
from prodwrap.policies.sensitive import Sensitive
from prodwrap.policies.timeout import Timeout
from prodwrap.policies.validation import ArraySpec

__all__ = [
    "ArraySpec",
    "Backoff",
    "Bulkhead",
    "BulkheadStats",
    "Cache",
    "CacheStats",
    "CircuitBreaker",
    "Constant",
    "Hedge",
    "RateLimit",
    "Retry",
    "RetryBudget",
    "Sensitive",
    "Timeout",
    "backoff",
    "canonical_key",
]
