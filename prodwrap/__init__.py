"""prodwrap: make any model production-ready from inside the application.

Wrap any predict function (a scikit-learn estimator, a torch module, an LLM call) with
input/output validation, timeouts, retries and fallbacks, in one compiled pipeline::

    import prodwrap as pw

    model = pw.ProductionModel(predict, input=Applicant, timeout=0.25, retry=3,
                               fallback=pw.Constant(0.5))
    y = model(x)
"""

import importlib as _importlib
import typing as _typing  # (private names: only the public API is in the namespace)

from prodwrap._context import context, deadline
from prodwrap._model import ProductionModel
from prodwrap._record import Outcome, Prediction, Stats
from prodwrap.cost import (
    Attempt,
    Budget,
    BudgetStats,
    Charge,
    CostModel,
    Ledger,
    PerCall,
    PerItem,
    PerSecond,
    PerToken,
    Usage,
)
from prodwrap.decorators import (
    cache,
    circuit,
    fallback,
    metered,
    monitored,
    production,
    rate_limit,
    retry,
    shadowed,
    timeout,
    validate,
)
from prodwrap.errors import (
    BudgetExceededError,
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    ConfigurationWarning,
    FallbackExhausted,
    InputValidationError,
    OutputValidationError,
    PredictionTimeout,
    ProdwrapError,
    RateLimitedError,
    ShadowMismatchError,
    UnkeyableError,
)
from prodwrap.policies import (
    ArraySpec,
    Backoff,
    Bulkhead,
    BulkheadStats,
    Cache,
    CacheStats,
    CircuitBreaker,
    Constant,
    Hedge,
    RateLimit,
    Retry,
    RetryBudget,
    Sensitive,
    Timeout,
    backoff,
)

__version__ = "0.1.0"

if _typing.TYPE_CHECKING:
    from prodwrap import drift as drift
    from prodwrap import telemetry as telemetry
    from prodwrap._traced import traced
    from prodwrap.audit import AuditLog, AuditStats
    from prodwrap.drift import DriftMonitor
    from prodwrap.rollout import (
        Canary,
        CanaryEvent,
        CanaryHandle,
        CanaryStats,
        Comparison,
        Escalate,
        EscalationStats,
        Guard,
        Shadow,
        ShadowReport,
        VariantStats,
        VersionEvent,
    )
    from prodwrap.rollout import compare as compare

_LAZY = {  # loaded on first use: drift is numpy-heavy, audit only for who writes one, telemetry for who sets it up
    "drift": "prodwrap.drift",
    "telemetry": "prodwrap.telemetry",
    "DriftMonitor": "prodwrap.drift",
    "AuditLog": "prodwrap.audit",
    "AuditStats": "prodwrap.audit",
    "compare": "prodwrap.rollout.compare",
    "traced": "prodwrap._traced",
    "Canary": "prodwrap.rollout",
    "CanaryEvent": "prodwrap.rollout",
    "CanaryHandle": "prodwrap.rollout",
    "CanaryStats": "prodwrap.rollout",
    "Comparison": "prodwrap.rollout",
    "Escalate": "prodwrap.rollout",
    "EscalationStats": "prodwrap.rollout",
    "Guard": "prodwrap.rollout",
    "Shadow": "prodwrap.rollout",
    "ShadowReport": "prodwrap.rollout",
    "VariantStats": "prodwrap.rollout",
    "VersionEvent": "prodwrap.rollout",
}

_MODULES = {"compare", "drift", "telemetry"}  # names in _LAZY that are modules themselves


def __getattr__(name: str) -> _typing.Any:
    if name in _LAZY:
        module = _importlib.import_module(_LAZY[name])
        value = module if name in _MODULES else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'prodwrap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ArraySpec",
    "Attempt",
    "AuditLog",
    "AuditStats",
    "Backoff",
    "Budget",
    "BudgetExceededError",
    "BudgetStats",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadStats",
    "Cache",
    "CacheStats",
    "Canary",
    "CanaryEvent",
    "CanaryHandle",
    "CanaryStats",
    "Charge",
    "CircuitBreaker",
    "CircuitOpenError",
    "Comparison",
    "ConfigurationError",
    "ConfigurationWarning",
    "Constant",
    "CostModel",
    "DriftMonitor",
    "Escalate",
    "EscalationStats",
    "FallbackExhausted",
    "Guard",
    "Hedge",
    "InputValidationError",
    "Ledger",
    "Outcome",
    "OutputValidationError",
    "PerCall",
    "PerItem",
    "PerSecond",
    "PerToken",
    "Prediction",
    "PredictionTimeout",
    "ProductionModel",
    "ProdwrapError",
    "RateLimit",
    "RateLimitedError",
    "Retry",
    "RetryBudget",
    "Sensitive",
    "Shadow",
    "ShadowMismatchError",
    "ShadowReport",
    "Stats",
    "Timeout",
    "UnkeyableError",
    "Usage",
    "VariantStats",
    "VersionEvent",
    "__version__",
    "backoff",
    "cache",
    "circuit",
    "context",
    "deadline",
    "fallback",
    "metered",
    "monitored",
    "production",
    "rate_limit",
    "retry",
    "shadowed",
    "timeout",
    "traced",
    "validate",
]
