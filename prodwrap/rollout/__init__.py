"""Rollouts: a candidate earns its place inside the application (DESIGN §3).

- :class:`Shadow`: the candidate runs on the primary's traffic in the background and is
  compared (``pw.compare``), never served; ``model.shadow_report()``.
- :class:`Escalate`: predictions whose output matches ``when`` go to a person.
"""

from prodwrap.rollout import compare
from prodwrap.rollout._shadow_report import Comparison, ShadowReport
from prodwrap.rollout.escalate import Escalate, EscalationStats
from prodwrap.rollout.shadow import Shadow

__all__ = ["Comparison", "Escalate", "EscalationStats", "Shadow", "ShadowReport", "compare"]
