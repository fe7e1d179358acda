"""Rollouts: a candidate earns its place beside the primary (canary, versions)."""

from prodwrap.rollout._versions import VersionEvent
from prodwrap.rollout.canary import Canary, CanaryEvent, CanaryHandle, CanaryStats, Guard, VariantStats

__all__ = ["Canary", "CanaryEvent", "CanaryHandle", "CanaryStats", "Guard", "VariantStats", "VersionEvent"]
