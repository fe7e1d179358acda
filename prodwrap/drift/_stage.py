"""The drift monitor on the observer seam: every valid input (and the primary's output) is
observed once the call is final, on every path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic

from prodwrap._record import MISSING
from prodwrap._stage import Seam, Stage

if TYPE_CHECKING:
    from prodwrap._record import CallRecord, Prediction
    from prodwrap.drift._monitor import DriftMonitor


class DriftStage(Stage):
    """Feeds a :class:`DriftMonitor` (``drift=``) and holds outputs for ``feedback``."""

    name = "drift monitor"
    seam = Seam.OBSERVER
    section = "drift"

    def __init__(self, monitor: DriftMonitor) -> None:
        self.monitor = monitor
        self.fast_observe = monitor.observe  # the success path hands it (input, output)

    @classmethod
    def of(cls, monitor: Any, input_spec: Any, output_spec: Any = None) -> DriftStage:
        """The stage of ``drift=monitor`` on a model with these specs: the monitor's features
        are named after a pydantic input's fields, then those the specs mark sensitive are
        marked so on the monitor (its results never show their values)."""
        from prodwrap.drift._monitor import DriftMonitor
        from prodwrap.drift._sensitive import features_marked
        from prodwrap.errors import ConfigurationError

        if not isinstance(monitor, DriftMonitor):
            raise ConfigurationError(f"drift= takes a pw.DriftMonitor, got {monitor!r}")
        if isinstance(input_spec, type) and issubclass(input_spec, pydantic.BaseModel):
            monitor.name_features(tuple(input_spec.model_fields))
        marked = features_marked(list(monitor.detectors), input_spec, output_spec)
        if marked:
            monitor.mark_sensitive(marked)
        return cls(monitor)

    def observe(self, call: CallRecord) -> None:
        if call.valid_input and call.outcome != "error":
            # every served call's valid input is observed; the output only when the primary served it
            call.drift = self.monitor.observe(call.input, call.value if call.phase < 0 else MISSING)

    def keep(self, prediction: Prediction) -> None:
        """Called for predictions someone asked for (``needs_prediction`` is False): their
        outputs wait for ``feedback`` by id."""
        if prediction.outcome == "ok":
            self.monitor.remember(prediction.id, prediction.value)

    def feedback(self, prediction_id: str, actual: Any) -> bool:
        return self.monitor.feedback(prediction_id, actual)

    def stats(self) -> Any:
        return self.monitor.stats()

    def describe(self) -> Any:
        return self.monitor.describe()

    def close(self, timeout: float | None = None) -> None:
        close = getattr(self.monitor, "close", None)
        if close is not None:
            close() if timeout is None else close(timeout)  # (a monitor of the user's may take none)
