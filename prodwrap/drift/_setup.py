"""What a DriftMonitor's constructor checks and builds: its options, and one fitted detector per feature.

Every refusal is a ``ConfigurationError`` (a ``ValueError`` too) naming the option.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from prodwrap.drift._base import default_detector, detector
from prodwrap.drift._corrections import CORRECTIONS
from prodwrap.drift._features import Key
from prodwrap.drift._labels import Revealed
from prodwrap.errors import ConfigurationError


def check_options(
    window: Any, check_every: Any, max_pending: Any, correction: Any, on_drift: Any, performance: Any, metric: Any
) -> None:
    """Raise a ConfigurationError naming the first option that makes no sense."""
    for name, value, low in (
        ("window", window, 2),
        ("check_every", check_every, 1),
        ("max_pending", max_pending, 1),
    ):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise ConfigurationError(f"DriftMonitor: {name} must be an int >= {low}, got {value!r}")
    if correction not in CORRECTIONS:
        raise ConfigurationError(f"DriftMonitor: correction must be one of {CORRECTIONS}, got {correction!r}")
    for name, value in (("on_drift", on_drift), ("metric", metric)):
        if value is not None and not callable(value):
            raise ConfigurationError(f"DriftMonitor: {name} must be a callable or None, got {value!r}")
    if performance is not None and not all(callable(getattr(performance, m, None)) for m in ("update", "reset")):
        raise ConfigurationError(
            f"DriftMonitor: performance must be a stream detector (update, reset), got {performance!r}"
        )


def chosen_features(features: Any, columns: Mapping[Key, np.ndarray]) -> dict[Key, Any]:
    """``features=`` as a mapping key -> detector spec: at least one key, every key one of the reference's."""
    if features is None:
        chosen: dict[Key, Any] = dict.fromkeys(columns)
    elif isinstance(features, Mapping):
        chosen = dict(features)
    elif isinstance(features, Iterable) and not isinstance(features, str | bytes):
        chosen = dict.fromkeys(features)
    else:
        raise ConfigurationError(f"DriftMonitor: features must be None, a list of keys or a mapping, got {features!r}")
    if not chosen:
        raise ConfigurationError(
            f"DriftMonitor: features is empty: a monitor of no feature monitors nothing; name at least one of "
            f"{list(columns)}, or pass None for every feature"
        )
    unknown = [k for k in chosen if k not in columns]
    if unknown:
        raise ConfigurationError(f"DriftMonitor: unknown feature(s) {unknown}; the reference has {list(columns)}")
    return chosen


def fitted_detectors(
    chosen: Mapping[Key, Any],
    columns: Mapping[Key, np.ndarray],
    window: int,
    missing: Mapping[Key, int],
    sensitive: Iterable[Key] = (),
) -> dict[Key, Any]:
    """One detector per feature (the given one, a registered name's, or the default for its
    type), fitted on its reference column (``missing``: the values left out of each).

    Raises:
        ConfigurationError: a feature with no value, a spec that is no detector, or a column
            its detector refuses; for a ``sensitive`` feature, whatever its detector raised,
            the column's values masked in the message and no cause chained (the cause's
            message would quote them).
    """
    hidden = frozenset(sensitive)
    detectors: dict[Key, Any] = {}
    for key, spec in chosen.items():
        if not len(columns[key]) and missing.get(key):
            raise ConfigurationError(
                f"DriftMonitor: reference feature {key!r} has no value to fit on: "
                f"all {missing[key]} of its values are None, NaN or +/-inf"
            )
        det = detector(spec) if isinstance(spec, str) else spec
        det = default_detector(columns[key], window) if det is None else det
        if isinstance(det, type) or not all(callable(getattr(det, m, None)) for m in ("fit", "test")):
            raise ConfigurationError(
                f"DriftMonitor: features[{key!r}] must be a detector instance (fit, test), a registered name or None, "
                f"got {spec!r}"
            )
        try:
            det.fit(columns[key])
        except Exception as exc:
            if key in hidden:
                from prodwrap.drift._sensitive import masked_message

                what = masked_message(f"{type(exc).__name__}: {exc}", columns[key])
                raise ConfigurationError(f"DriftMonitor: sensitive reference feature {key!r}: {what}") from None
            if not isinstance(exc, ValueError):
                raise
            raise ConfigurationError(f"DriftMonitor: reference feature {key!r}: {exc}") from exc
        detectors[key] = det
    return detectors


def check_levels(correction: Any, detectors: Mapping[Key, Any]) -> None:
    """Holm and FDR need one significance level across the p-value detectors."""
    if correction in ("holm", "fdr"):
        levels = {d.threshold for d in detectors.values() if getattr(d, "uses_p_value", False)}
        if len(levels) > 1:
            raise ConfigurationError(
                f"DriftMonitor: {correction} needs one significance level across p-value detectors, "
                f"got {sorted(levels)}"
            )


def sensitive_keys(sensitive: Any, columns: Mapping[Key, np.ndarray]) -> frozenset[Key]:
    """``sensitive=`` as a set of feature keys, every one of them the reference's, and every
    feature whose reference holds a pydantic secret (``SecretStr``, ...): its values are too."""
    if isinstance(sensitive, str | bytes) or not isinstance(sensitive, Iterable):
        raise ConfigurationError(f"DriftMonitor: sensitive must be a collection of feature keys, got {sensitive!r}")
    try:
        keys = frozenset(sensitive)
    except TypeError:
        raise ConfigurationError(f"DriftMonitor: sensitive must hold feature keys, got {sensitive!r}") from None
    unknown = [k for k in keys if k not in columns]
    if unknown:
        raise ConfigurationError(
            f"DriftMonitor: sensitive names unknown feature(s) {unknown}; the reference has {list(columns)}"
        )
    secret = {k for k, c in columns.items() if c.dtype == object and any(isinstance(v, Revealed) for v in c.tolist())}
    return keys | secret
