"""The ``prodwrap.drift.score`` gauge of one monitor: which meter providers a check's results
go to, and the gauge made on each (once per provider).

The monitor's own ``meter_provider=`` when it has one; else that of each model with telemetry
the monitor is attached to (``attach``, when the model's telemetry is compiled: the model's
``meter_provider=``, or None for the test scope's or the global one), each resolved at check
time and used once; a monitor attached to no such model uses the scope's or the global one.
"""

from __future__ import annotations

from typing import Any


class Scores:
    """Where one monitor's drift scores go (see the module docstring)."""

    __slots__ = ("gauges", "models")

    def __init__(self) -> None:
        self.models: tuple[Any, ...] = ()  # the attached models' meter_provider= (None: the default)
        self.gauges: dict[int, tuple[Any, Any]] = {}  # id(provider) -> (provider, gauge)

    def attach(self, meter_provider: Any) -> None:
        """A model with telemetry uses the monitor: its ``meter_provider=`` (None: the default)
        gets the scores too, unless the monitor has one of its own. Kept once, for the
        monitor's life."""
        if not any(own is meter_provider for own in self.models):
            self.models = (*self.models, meter_provider)  # (replaced whole: a check may be reading it)

    def providers(self, own: Any) -> list[Any]:
        """The meter providers in force now, each once (``own``: the monitor's ``meter_provider=``)."""
        from prodwrap.telemetry._providers import meter_provider  # (the OTel API, loaded by then)

        owners = (own,) if own is not None or not self.models else self.models
        found: list[Any] = []
        for given in owners:
            provider = meter_provider(given)
            if provider is not None and not any(p is provider for p in found):
                found.append(provider)
        return found

    def set(self, own: Any, statistic: float, feature: str, detector: str) -> None:
        """One result's score, on the gauge of each provider (one check at a time calls this)."""
        for provider in self.providers(own):
            held = self.gauges.get(id(provider))
            if held is None or held[0] is not provider:
                gauge = provider.get_meter("prodwrap").create_gauge(
                    "prodwrap.drift.score", description="drift statistic of the latest check", unit="1"
                )
                held = self.gauges[id(provider)] = (provider, gauge)
            held[1].set(statistic, {"feature": feature, "detector": detector})
