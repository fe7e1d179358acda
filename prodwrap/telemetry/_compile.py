"""Compiling a model's telemetry options into its :class:`TelemetryStage`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prodwrap.errors import ConfigurationError
from prodwrap.policies.fallback import Constant, fallback_names
from prodwrap.telemetry._rollouts import RolloutTelemetry
from prodwrap.telemetry._stage import TelemetryStage

if TYPE_CHECKING:
    from prodwrap._stage import Build, Stage


def compile_telemetry(build: Build, stages: Sequence[Stage], stats: Any = None) -> TelemetryStage:
    """The model's telemetry stage, hooked to the transitions of its circuit breaker, its
    rollouts' events and its drift monitor's scores (``stats``: the model's
    ``StatsRecorder``, which counts telemetry's faults)."""
    settings = build.settings
    for key in ("remote", "capture_content", "telemetry"):
        if not isinstance(getattr(settings, key), bool):
            raise ConfigurationError(f"{key} must be True or False, got {getattr(settings, key)!r}")
    for key, method in (("tracer_provider", "get_tracer"), ("meter_provider", "get_meter")):
        given = getattr(settings, key)
        if given is not None and not callable(getattr(given, method, None)):
            raise ConfigurationError(f"{key}= takes an OpenTelemetry provider (with .{method}()), got {given!r}")
    fallbacks = settings.fallback
    constants = frozenset(
        name for fb, name in zip(fallbacks, fallback_names(fallbacks), strict=True) if isinstance(fb, Constant)
    )
    redactor = None
    if settings.capture_content:
        from prodwrap._audit_lines import Redactor
        from prodwrap.policies.validation import _sensitive

        found_in, found_out = _sensitive(settings.input), _sensitive(settings.output)
        redactor = Redactor(found_in.names | found_out.names, os.urandom(16), found_in.everywhere, found_out.everywhere)
    stage = TelemetryStage(build, constants, redactor)
    if stats is not None:
        stage.counted = stats.telemetry_failed
    rollouts = RolloutTelemetry(stage)
    for other in stages:
        listeners = getattr(other, "listeners", None)
        if other.section == "circuit" and isinstance(listeners, list):
            # A breaker kept from an earlier engine (prodwrap._kept) has that engine's
            # telemetry listening: this one takes its place, so a transition is reported once
            # (in one assignment: a transition announced meanwhile hears one or the other).
            ours = [isinstance(getattr(f, "__self__", None), TelemetryStage) for f in listeners]
            if any(ours):
                listeners[:] = [stage.transition if o else f for f, o in zip(listeners, ours, strict=True)]
            else:
                listeners.append(stage.transition)
        elif other.section == "canary" and isinstance(listeners, list):
            listeners.append(rollouts.canary_event)
        for experiment in getattr(other, "experiments", ()):  # a shadow's
            experiment.telemetry = rollouts
        if other.section == "escalation":
            other.telemetry = rollouts  # type: ignore[attr-defined]
        if other.section == "drift":  # its prodwrap.drift.score goes where the model's metrics go
            other.monitor._scores.attach(settings.meter_provider)  # type: ignore[attr-defined]
    return stage
