"""Rollouts: a candidate earns its place inside the application (DESIGN §3).

- :class:`Shadow`: the candidate runs on the primary's traffic in the background and is
  compared (``pw.compare``), never served; ``model.shadow_report()``.
- :class:`Canary`: the candidate serves a sticky share of real traffic, and its
  :class:`Guard` takes it out of traffic when it does significantly worse than the primary.
- Versions: ``model.stage()``, ``promote()``, ``rollback()``, ``model.versions``.
- :class:`Escalate`: predictions whose output matches ``when`` go to a person.

Each name loads its module on first use: a model reads ``_versions`` when it is made, and
the rest of the package (shadow and canary machinery, hashing) only when a rollout is used.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prodwrap.rollout import compare
    from prodwrap.rollout._shadow_report import Comparison, ShadowReport
    from prodwrap.rollout._versions import VersionEvent
    from prodwrap.rollout.canary import Canary, CanaryEvent, CanaryHandle, CanaryStats, Guard, VariantStats
    from prodwrap.rollout.escalate import Escalate, EscalationStats
    from prodwrap.rollout.shadow import Shadow

_LAZY = {
    "compare": "prodwrap.rollout.compare",
    "Comparison": "prodwrap.rollout._shadow_report",
    "ShadowReport": "prodwrap.rollout._shadow_report",
    "VersionEvent": "prodwrap.rollout._versions",
    "Canary": "prodwrap.rollout.canary",
    "CanaryEvent": "prodwrap.rollout.canary",
    "CanaryHandle": "prodwrap.rollout.canary",
    "CanaryStats": "prodwrap.rollout.canary",
    "Guard": "prodwrap.rollout.canary",
    "VariantStats": "prodwrap.rollout.canary",
    "Escalate": "prodwrap.rollout.escalate",
    "EscalationStats": "prodwrap.rollout.escalate",
    "Shadow": "prodwrap.rollout.shadow",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if name == "compare" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'prodwrap.rollout' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Canary",
    "CanaryEvent",
    "CanaryHandle",
    "CanaryStats",
    "Comparison",
    "Escalate",
    "EscalationStats",
    "Guard",
    "Shadow",
    "ShadowReport",
    "VariantStats",
    "VersionEvent",
    "compare",
]
