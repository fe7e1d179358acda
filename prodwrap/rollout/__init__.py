"""Rollouts: a candidate earns its place inside the application (DESIGN §3).

- :class:`Shadow`: the candidate runs on the primary's traffic in the background and is
  compared (``pw.compare``), never served; ``model.shadow_report()``.
- :class:`Canary`: the candidate serves a sticky share of real traffic, and its
  :class:`Guard` takes it out of traffic when it does significantly worse than the primary.
- Versions: ``model.stage()``, ``promote()``, ``rollback()``, ``model.versions``.
- :class:`Escalate`: predictions whose output matches ``when`` go to a person.
"""

from prodwrap.rollout import compare
from prodwrap.rollout._shadow_report import Comparison, ShadowReport
from prodwrap.rollout._versions import VersionEvent
from prodwrap.rollout.canary import Canary, CanaryEvent, CanaryHandle, CanaryStats, Guard, VariantStats
from prodwrap.rollout.escalate import Escalate, EscalationStats
from prodwrap.rollout.shadow import Shadow

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
