"""Saving and loading a DriftMonitor's reference: numpy ``.npz`` holding JSON, never pickle.

The file holds each numeric reference column as a float64 array, categorical columns and
the configuration (window, correction, each feature's detector by registered name with its
parameters) as JSON, and the sha256 fingerprint of the reference. Loading recomputes the
fingerprint and refuses a file whose data does not match it.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from prodwrap.drift._base import _REGISTRY
from prodwrap.drift._features import Key, fingerprint

if TYPE_CHECKING:
    from prodwrap.drift._monitor import DriftMonitor

FORMAT = 1


def registered_name(det: Any) -> str:
    for name, factory in _REGISTRY.items():
        if factory is type(det):
            return name
    raise ValueError(f"cannot save detector {type(det).__name__}: it is not registered (prodwrap.drift.register)")


def detector_params(det: Any) -> dict[str, Any]:
    """The constructor arguments of ``det`` that it keeps as attributes of the same name."""
    params: dict[str, Any] = {}
    for name, param in inspect.signature(type(det).__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or not hasattr(det, name):
            continue
        value = getattr(det, name)
        try:
            json.dumps(value)
        except TypeError:
            raise ValueError(f"cannot save {type(det).__name__}.{name}={value!r}: not JSON-able") from None
        params[name] = value
    return params


def save(monitor: DriftMonitor, path: str | os.PathLike[str]) -> None:
    arrays: dict[str, np.ndarray] = {}
    features = []
    for i, (key, col) in enumerate(monitor.columns.items()):
        det = monitor.detectors[key]
        entry: dict[str, Any] = {
            "key": key,
            "detector": registered_name(det),
            "params": detector_params(det),
        }
        if col.dtype.kind == "f":
            arrays[f"column{i}"] = col
            entry["column"] = f"column{i}"
        else:
            entry["values"] = col.tolist()
        features.append(entry)
    meta = {
        "format": FORMAT,
        "window": monitor.window,
        "check_every": monitor.check_every,
        "correction": monitor.correction,
        "fingerprint": monitor.fingerprint,
        "features": features,
    }
    with open(path, "wb") as fh:
        np.savez(fh, allow_pickle=False, meta=np.array(json.dumps(meta)), **arrays)


def load(path: str | os.PathLike[str], **options: Any) -> DriftMonitor:
    from prodwrap.drift._base import detector
    from prodwrap.drift._monitor import DriftMonitor

    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{os.fspath(path)}: not a prodwrap drift reference (format {meta.get('format')!r})")
        columns: dict[Key, Any] = {}
        detectors: dict[Key, Any] = {}
        for entry in meta["features"]:
            key = entry["key"]
            columns[key] = data[entry["column"]] if "column" in entry else np.asarray(entry["values"], dtype=object)
            detectors[key] = detector(entry["detector"], **entry["params"])
    monitor = DriftMonitor(
        columns,
        features=detectors,
        window=meta["window"],
        check_every=meta["check_every"],
        correction=meta["correction"],
        **options,
    )
    if fingerprint(monitor.columns) != meta["fingerprint"]:
        raise ValueError(f"{os.fspath(path)}: reference data does not match its fingerprint")
    return monitor
