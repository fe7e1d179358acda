"""Streaming change detectors: Page-Hinkley and DDM, in pure Python (KSWIN: ``_kswin``).

Each follows river's implementation (0.26) operation for operation, with river's parameter
names and defaults, so both report the same change points on the same stream; as in river,
the update after a detection starts afresh. ``update`` costs O(1).

Measured on seeded streams (``tests/drift/test_stream.py`` checks these bounds):

* PageHinkley. ``threshold`` and ``delta`` are in the stream's units. On N(0, 1) streams of
  100 000 values, river's default threshold 50 raises 45 to 70 false alarms (10 streams):
  with ``delta = 0.005`` the cumulative sum wanders past 50 every few thousand values.
  ``threshold=200`` raises 1 to 4 (50 streams, 2.5 on average), 250 raises 0 to 2. With 200,
  a mean step of +1 sd is detected 106 to 223 updates after it, -1 sd 93 to 219, +0.5 sd
  190 to 497 (10 streams each). Scale both with the stream's standard deviation.
* DDM on 0/1 errors. At an error rate of 0.1, 0 to 3 false alarms per 100 000 outcomes
  (10 streams), all within the first 20 000 (``p + s`` settles as outcomes accumulate); at
  0.3, none. A jump from 0.1 to 0.3 is detected 96 to 400 outcomes after it, to 0.5 within
  56 to 167, to 0.2 within 175 to 1232.
"""

from __future__ import annotations

import math
from typing import Any

from prodwrap.drift._base import register
from prodwrap.errors import ConfigurationError

__all__ = ["DDM", "PageHinkley", "finite_value", "integer_param", "number_param"]

_MODES = ("up", "down", "both")


def finite_value(value: Any, detector: str) -> float:
    """``value`` as a finite float, or a ValueError naming the detector.

    Raises:
        ValueError: ``value`` is not a real number (strings and sequences included), or is
            NaN or infinite.
    """
    if isinstance(value, str | bytes) or hasattr(value, "__len__"):
        raise ValueError(f"{detector}: update() takes one real number, got {type(value).__name__}")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{detector}: update() takes one real number, got {type(value).__name__}") from None
    if not math.isfinite(x):
        raise ValueError(f"{detector}: got {x}; NaN and infinite values cannot be tested, drop or impute them first")
    return x


def number_param(detector: str, name: str, value: Any) -> float:
    """A finite int or float parameter as a float, or a ConfigurationError naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{detector}: {name} must be a finite number, got {value!r}")
    return float(value)


def integer_param(detector: str, name: str, value: Any, low: int) -> int:
    """An int parameter ``>= low`` (bools refused), or a ConfigurationError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigurationError(f"{detector}: {name} must be an integer >= {low}, got {value!r}")
    return value


@register("pagehinkley")
class PageHinkley:
    """Page-Hinkley test: a CUSUM of deviations from the running mean, both directions.

    The cumulative sums ``S+ = alpha S+ + (x - mean) - delta`` and
    ``S- = alpha S- + (x - mean) + delta`` are compared with their running extremes; a change
    is reported when ``S+ - min S+`` (an increase) or ``max S- - S-`` (a decrease) exceeds
    ``threshold``, after ``min_instances`` values.

    Args:
        min_instances: values seen before a change can be reported (>= 1).
        delta: tolerated drift per value, in the stream's units (>= 0).
        threshold: the alarm level (lambda), in the stream's units (> 0); 50 suits a
            stream with standard deviation about 1.
        alpha: forgetting factor of the sums, in (0, 1].
        mode: ``"up"`` (increases only), ``"down"`` or ``"both"``.

    Raises:
        ConfigurationError: a parameter is out of range.
    """

    __slots__ = (
        "_detected",
        "_down",
        "_max_decrease",
        "_mean",
        "_min_increase",
        "_n",
        "_sum_decrease",
        "_sum_increase",
        "_up",
        "alpha",
        "delta",
        "min_instances",
        "mode",
        "threshold",
    )

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
    ) -> None:
        self.min_instances = integer_param("PageHinkley", "min_instances", min_instances, 1)
        self.delta = number_param("PageHinkley", "delta", delta)
        self.threshold = number_param("PageHinkley", "threshold", threshold)
        self.alpha = number_param("PageHinkley", "alpha", alpha)
        if self.delta < 0.0:
            raise ConfigurationError(f"PageHinkley: delta must be >= 0, got {delta!r}")
        if self.threshold <= 0.0:
            raise ConfigurationError(f"PageHinkley: threshold must be > 0, got {threshold!r}")
        if not 0.0 < self.alpha <= 1.0:
            raise ConfigurationError(f"PageHinkley: alpha is a forgetting factor in (0, 1], got {alpha!r}")
        if mode not in _MODES:
            raise ConfigurationError(f"PageHinkley: mode must be one of {', '.join(_MODES)}, got {mode!r}")
        self.mode = mode
        self._up = mode != "down"
        self._down = mode != "up"
        self._clear()

    def _clear(self) -> None:
        self._detected = False
        self._n = 0.0
        self._mean = 0.0
        self._sum_increase = 0.0
        self._sum_decrease = 0.0
        self._min_increase = math.inf
        self._max_decrease = -1.0  # river's starting value (not -inf); kept for identical results

    def reset(self) -> None:
        """Forget everything, as if newly constructed."""
        self._clear()

    def update(self, value: float) -> bool:
        """Add one value; True when a change is detected at this update.

        Raises:
            ValueError: ``value`` is not a real number, or is NaN or infinite.
        """
        if value.__class__ is not float or value - value != 0.0:
            value = finite_value(value, "PageHinkley")
        if self._detected:
            self._clear()
        n = self._n + 1.0
        self._n = n
        mean = self._mean
        mean += (1.0 / n) * (value - mean)
        self._mean = mean
        dev = value - mean
        alpha = self.alpha
        up = alpha * self._sum_increase + dev - self.delta
        down = alpha * self._sum_decrease + dev + self.delta
        self._sum_increase = up
        self._sum_decrease = down
        # Plain ifs, not min()/max(): a builtin call per update costs more than the compare.
        if up < self._min_increase:  # noqa: PLR1730
            self._min_increase = up
        if down > self._max_decrease:  # noqa: PLR1730
            self._max_decrease = down
        if n < self.min_instances:
            return False
        threshold = self.threshold
        if (self._up and up - self._min_increase > threshold) or (self._down and self._max_decrease - down > threshold):
            self._detected = True
            return True
        return False

    @property
    def drift_detected(self) -> bool:
        """Whether the last update detected a change."""
        return self._detected

    @property
    def n(self) -> int:
        """Values seen since the start or the last restart."""
        return int(self._n)

    @property
    def mean(self) -> float:
        """Running mean of the values seen."""
        return self._mean

    @property
    def sum_increase(self) -> float:
        """The cumulative sum S+ that grows when the mean increases."""
        return self._sum_increase

    @property
    def sum_decrease(self) -> float:
        """The cumulative sum S- that falls when the mean decreases."""
        return self._sum_decrease

    @property
    def increase_statistic(self) -> float:
        """``S+ - min S+``: an increase is reported when it exceeds the threshold."""
        return self._sum_increase - self._min_increase if self._n else 0.0

    @property
    def decrease_statistic(self) -> float:
        """``max S- - S-``: a decrease is reported when it exceeds the threshold."""
        return self._max_decrease - self._sum_decrease if self._n else 0.0

    def __repr__(self) -> str:
        return (
            f"PageHinkley(min_instances={self.min_instances}, delta={self.delta}, "
            f"threshold={self.threshold}, alpha={self.alpha}, mode={self.mode!r})"
        )


@register("ddm")
class DDM:
    """Drift Detection Method (Gama et al., 2004) for a stream of 0/1 errors.

    With ``p`` the error rate so far and ``s = sqrt(p (1 - p) / n)``, the detector remembers
    the ``(p_min, s_min)`` where ``p + s`` was lowest; after ``warm_start`` values it warns
    when ``p + s > p_min + warning_threshold * s_min`` and reports a change when
    ``p + s > p_min + drift_threshold * s_min``.

    Args:
        warm_start: values seen before a warning or change can be reported (>= 0).
        warning_threshold: warning level, in units of ``s_min`` (> 0).
        drift_threshold: change level, in units of ``s_min`` (>= ``warning_threshold``).

    Raises:
        ConfigurationError: a parameter is out of range.
    """

    __slots__ = (
        "_detected",
        "_n",
        "_p",
        "_p_min",
        "_ps_min",
        "_s",
        "_s_min",
        "_warning",
        "drift_threshold",
        "warm_start",
        "warning_threshold",
    )

    def __init__(self, warm_start: int = 30, warning_threshold: float = 2.0, drift_threshold: float = 3.0) -> None:
        self.warm_start = integer_param("DDM", "warm_start", warm_start, 0)
        self.warning_threshold = number_param("DDM", "warning_threshold", warning_threshold)
        self.drift_threshold = number_param("DDM", "drift_threshold", drift_threshold)
        if self.warning_threshold <= 0.0:
            raise ConfigurationError(f"DDM: warning_threshold must be > 0, got {warning_threshold!r}")
        if self.drift_threshold < self.warning_threshold:
            raise ConfigurationError(
                f"DDM: drift_threshold ({drift_threshold!r}) must be >= warning_threshold ({warning_threshold!r})"
            )
        self._clear()

    def _clear(self) -> None:
        self._detected = False
        self._warning = False
        self._n = 0.0
        self._p = 0.0
        self._s = 0.0
        self._p_min = 0.0
        self._s_min = 0.0
        self._ps_min = math.inf

    def reset(self) -> None:
        """Forget everything, as if newly constructed."""
        self._clear()

    def update(self, value: float) -> bool:
        """Add one outcome: 1 (or True) for an error, 0 (or False) for a success.

        Returns:
            True when a change is detected at this update.

        Raises:
            ValueError: ``value`` is not 0 or 1.
        """
        if value not in (0, 1):
            raise ValueError(f"DDM: update() takes 0 or 1 (an error indicator), got {value!r}")
        x = 1.0 if value else 0.0
        if self._detected:
            self._clear()
        n = self._n + 1.0
        self._n = n
        p = self._p
        p += (1.0 / n) * (x - p)
        self._p = p
        var = p * (1 - p) / n
        s = math.sqrt(var) if var > 0.0 else 0.0
        self._s = s
        if n <= self.warm_start:
            return False
        ps = p + s
        if ps <= self._ps_min:
            self._p_min = p
            self._s_min = s
            self._ps_min = p + s
        if ps > self._p_min + self.drift_threshold * self._s_min:
            self._warning = False
            self._detected = True
            return True
        self._warning = ps > self._p_min + self.warning_threshold * self._s_min
        return False

    @property
    def drift_detected(self) -> bool:
        """Whether the last update detected a change."""
        return self._detected

    @property
    def warning_detected(self) -> bool:
        """Whether the last update is in the warning zone (False at a detection)."""
        return self._warning

    @property
    def n(self) -> int:
        """Outcomes seen since the start or the last restart."""
        return int(self._n)

    @property
    def error_rate(self) -> float:
        """Error rate ``p`` over the outcomes seen."""
        return self._p

    @property
    def error_std(self) -> float:
        """``s = sqrt(p (1 - p) / n)``, the standard error of the error rate."""
        return self._s

    @property
    def min_error_rate(self) -> float:
        """``p_min``, the error rate where ``p + s`` was lowest after the warm start."""
        return self._p_min

    @property
    def min_error_std(self) -> float:
        """``s_min``, the standard error recorded with ``p_min``."""
        return self._s_min

    def __repr__(self) -> str:
        return (
            f"DDM(warm_start={self.warm_start}, warning_threshold={self.warning_threshold}, "
            f"drift_threshold={self.drift_threshold})"
        )
