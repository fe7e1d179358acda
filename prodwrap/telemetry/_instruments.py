"""The instruments one model records with, per meter provider (DESIGN §3 "Telemetry").

Metric attributes are the span attribute keys, without the tags (a metric's attributes stay
low-cardinality); the dicts handed to the SDK are built once per (outcome, served_by) and
kept, so recording allocates none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prodwrap.telemetry._buckets import DURATION, GENAI_DURATION, GENAI_TOKENS

STATES = {"closed": 0, "half_open": 1, "open": 2}  # prodwrap.circuit.state's values


def histogram(meter: Any, name: str, unit: str, description: str, buckets: Sequence[float]) -> Any:
    """A histogram with explicit bucket boundaries, or the provider's defaults where the
    installed API does not take the advisory (the configure() helper then sets a View)."""
    try:
        return meter.create_histogram(
            name, unit=unit, description=description, explicit_bucket_boundaries_advisory=list(buckets)
        )
    except TypeError:  # an API older than 1.23
        return meter.create_histogram(name, unit=unit, description=description)


class Instruments:
    """A model's instruments on one meter provider."""

    __slots__ = (
        "_by",
        "_reasons",
        "attempt_failures",
        "base",
        "circuit",
        "cost",
        "duration",
        "genai_duration",
        "meter",
        "more",
        "predictions",
        "tokens",
    )

    def __init__(self, provider: Any, base: dict[str, Any]) -> None:
        from prodwrap import __version__

        meter = self.meter = provider.get_meter("prodwrap", __version__)
        self.base = base
        self.predictions = meter.create_counter("prodwrap.predictions", unit="{prediction}", description="predictions")
        self.duration = histogram(
            meter, "prodwrap.prediction.duration", "s", "time from a call's entry to its result", DURATION
        )
        self.attempt_failures = meter.create_counter(
            "prodwrap.attempt.failures", unit="{failure}", description="failed attempts and refusals, by reason"
        )
        self.cost = meter.create_counter("prodwrap.cost", unit="USD", description="cost charged")
        self.tokens = histogram(
            meter, "gen_ai.client.token.usage", "{token}", "number of input and output tokens used", GENAI_TOKENS
        )
        self.genai_duration = histogram(
            meter, "gen_ai.client.operation.duration", "s", "GenAI operation duration", GENAI_DURATION
        )
        create_gauge = getattr(meter, "create_gauge", None)
        self.circuit = None if create_gauge is None else create_gauge("prodwrap.circuit.state", unit="1")
        self.more: dict[str, Any] = {}  # the rollout stages' counters, by name
        self._by: dict[tuple[str, str, str | None], dict[str, Any]] = {}
        self._reasons: dict[str, dict[str, Any]] = {}

    def by(self, outcome: str, served_by: str, version: str | None = None) -> dict[str, Any]:
        """The labels of a call (``version``: a routed call's own, a canary candidate's)."""
        key = (outcome, served_by, version)
        attrs = self._by.get(key)
        if attrs is None:
            attrs = {**self.base, "prodwrap.outcome": outcome, "prodwrap.served_by": served_by}
            if version is not None:
                attrs["prodwrap.model.version"] = version
            self._by[key] = attrs
        return attrs

    def reason(self, reason: str) -> dict[str, Any]:
        attrs = self._reasons.get(reason)
        if attrs is None:
            attrs = self._reasons[reason] = {**self.base, "prodwrap.failure.reason": reason}
        return attrs
