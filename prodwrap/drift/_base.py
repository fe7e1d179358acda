"""Drift detection: the protocols, the result record, the registry, and input checks.

Two kinds of detector:

* ``DriftDetector`` (batch): ``fit(reference)`` once, then ``test(current) -> DriftResult``.
  Detectors with a p-value drift when ``p_value < threshold``; distance detectors when
  ``statistic > threshold``.
* ``StreamDetector``: ``update(value) -> bool`` (True when a change is detected), ``reset()``.

Detectors are registered by name (``register``) and found by ``detector(name, **params)``,
which also looks in the ``prodwrap.drift_detectors`` entry-point group.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from prodwrap.drift._features import is_numeric
from prodwrap.errors import ConfigurationError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ENTRY_POINT_GROUP = "prodwrap.drift_detectors"


@dataclass(frozen=True, slots=True)
class DriftResult:
    """The outcome of one drift test.

    Attributes:
        detector: the detector's registered name (``"ks"``, ``"psi"``, ...).
        feature: the feature tested (the monitor fills it when a detector leaves it None).
        statistic: the test statistic (KS D, PSI, distance, ...).
        p_value: the p-value, or None for distance detectors.
        threshold: the decision threshold (a significance level, or a distance).
        drifted: the decision.
        n_reference: reference sample size. n_current: current sample size.
        empty_bins: for binned detectors, bins empty in either sample (eps applied).
        details: anything else a detector reports.
        n_missing: values of a numeric feature in the monitor's window that were NaN, ±inf,
            None or absent and so left out of the test (``n_current`` counts the values tested;
            a categorical feature, by its reference's kind whatever the window holds, keeps
            None, NaN and an absent value as a category, and counts 0).
    """

    detector: str
    feature: str | int | None
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    empty_bins: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    n_missing: int = 0


@runtime_checkable
class DriftDetector(Protocol):
    """A batch test of a current sample against a reference fitted once."""

    def fit(self, reference: Any) -> None: ...

    def test(self, current: Any) -> DriftResult: ...


@runtime_checkable
class StreamDetector(Protocol):
    """An online change detector fed one value at a time."""

    def update(self, value: float) -> bool: ...

    def reset(self) -> None: ...


def as_sample(values: Any, *, detector: str, what: str) -> FloatArray:
    """A 1-D float64 array of finite values, or a ValueError saying what is wrong."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{detector}: {what} must be numbers: {exc}") from None
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 or (arr.ndim == 2 and 1 in arr.shape) else arr
        if arr.ndim != 1:
            raise ValueError(f"{detector}: {what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{detector}: {what} is empty")
    return require_finite(arr, detector=detector, what=what)


def require_finite(arr: FloatArray, *, detector: str, what: str) -> FloatArray:
    """``arr`` itself, or a ValueError counting its NaN and infinite values."""
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(arr.size - np.count_nonzero(finite))
        raise ValueError(f"{detector}: {what} contains {bad} NaN or infinite value(s); drop or impute them first")
    return arr


class BatchDetector:
    """Shared plumbing of the built-in batch detectors: fit state, decision rule, result.

    Subclasses set ``name`` and ``uses_p_value`` and implement ``_fit`` and ``_test``
    (returning statistic, p-value or None, and extra ``DriftResult`` fields).
    """

    name: ClassVar[str] = "detector"
    uses_p_value: ClassVar[bool] = True
    default_threshold: ClassVar[float] = 0.05

    def __init__(self, threshold: float | None = None) -> None:
        threshold = self.default_threshold if threshold is None else threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not np.isfinite(threshold):
            raise ConfigurationError(f"{self.name}: threshold must be a finite number, got {threshold!r}")
        if self.uses_p_value and not 0 < threshold < 1:
            raise ConfigurationError(f"{self.name}: threshold is a significance level in (0, 1), got {threshold}")
        if threshold < 0:
            raise ConfigurationError(f"{self.name}: threshold must be >= 0, got {threshold}")
        self.threshold = float(threshold)
        self.n_reference = 0

    @property
    def fitted(self) -> bool:
        return self.n_reference > 0

    def fit(self, reference: Any) -> None:
        self.n_reference = self._fit(reference)

    def test(self, current: Any, *, threshold: float | None = None) -> DriftResult:
        """Test ``current`` against the fitted reference.

        Args:
            threshold: override for this test (the monitor passes corrected levels).
        """
        if not self.fitted:
            raise RuntimeError(f"{self.name}: call fit(reference) before test()")
        level = self.threshold if threshold is None else threshold
        statistic, p_value, n_current, extra = self._test(current)
        drifted = (p_value < level) if p_value is not None else (statistic > level)
        return DriftResult(
            detector=self.name,
            feature=None,
            statistic=float(statistic),
            p_value=None if p_value is None else float(p_value),
            threshold=level,
            drifted=bool(drifted),
            n_reference=self.n_reference,
            n_current=n_current,
            **extra,
        )

    def _fit(self, reference: Any) -> int:
        raise NotImplementedError

    def _test(self, current: Any) -> tuple[float, float | None, int, dict[str, Any]]:
        raise NotImplementedError


_REGISTRY: dict[str, Callable[..., Any]] = {}
T = TypeVar("T", bound=Callable[..., Any])


def register(name: str) -> Callable[[T], T]:
    """Register a detector class (or factory) under ``name`` (case-insensitive)."""

    def add(factory: T) -> T:
        _REGISTRY[name.lower()] = factory
        return factory

    return add


def _load_entry_points() -> None:
    from importlib.metadata import entry_points  # slow to import: only when a name is unknown

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name.lower() not in _REGISTRY:
            _REGISTRY[ep.name.lower()] = ep.load()


def detector(name: str, **params: Any) -> Any:
    """A new detector by registered name: ``detector("ks", threshold=0.01)``."""
    key = name.lower()
    if key not in _REGISTRY:
        _load_entry_points()
    try:
        factory = _REGISTRY[key]
    except KeyError:
        raise ConfigurationError(f"unknown drift detector {name!r}; known: {', '.join(available())}") from None
    return factory(**params)


def available() -> list[str]:
    """Names of every registered detector (built-in and entry points)."""
    _load_entry_points()
    return sorted(_REGISTRY)


def binary_exponent(arr: FloatArray) -> int:
    """``e`` with ``max |arr|`` in ``[2**e, 2**(e + 1))`` (0 for an all-zero array).

    Dividing by ``2**e`` (``np.ldexp(arr, -e)``) brings every value into ``(-2, 2)`` exactly
    (a power of two changes no mantissa), so sums of squares and differences cannot overflow,
    whatever the data's magnitude: how the distance detectors stay exact near ``±1e308``.
    """
    largest = float(np.max(np.abs(arr))) if arr.size else 0.0
    return math.frexp(largest)[1] - 1 if largest > 0.0 else 0


def ldexp_or_inf(x: float, exponent: int) -> float:
    """``x * 2**exponent``, infinite (with ``x``'s sign) where that overflows, 0 where it underflows."""
    try:
        return math.ldexp(x, exponent)
    except OverflowError:
        return math.copysign(math.inf, x)


SMALL_WINDOW = 5000  # numeric features: KS up to this window, PSI above (binned, O(n))


def default_detector(col: np.ndarray, window: int) -> Any:
    """KS for numeric features in small windows, PSI in large ones, chi-square for categories.

    The default KS uses the asymptotic p-value (``method="asymp"``): a check then costs
    milliseconds whatever the reference size (pass ``features={key: pw.drift.KS()}`` for
    scipy's exact small-sample p-values).
    """
    if not is_numeric(col):
        return detector("chisquare")
    return detector("ks", method="asymp") if window <= SMALL_WINDOW else detector("psi")
