"""Saving and loading a DriftMonitor's reference: numpy ``.npz`` holding JSON, never pickle.

The file holds each numeric reference column as a float64 array, categorical columns and
the configuration (window, check_every, correction, each feature's detector by registered
name with its parameters) as JSON, and the sha256 fingerprint of all of it (``config`` and
``fingerprint`` in ``_features``). ``load`` rebuilds the monitor, recomputes the fingerprint
and refuses anything but an intact file ``save`` wrote: a truncated or foreign file, a
malformed configuration, an edited array or an edited parameter all raise one error,
``ConfigurationError``, naming the file and the problem.

The file also lists the sensitive features, which ``load`` marks again. That list is outside
the fingerprint: it changes what results show, not what they say (and a model marks its
sensitive features again when the monitor is attached). A sensitive categorical feature's
reference labels are written sealed (``_sensitive.sealed_column``: keyed BLAKE2b stand-ins of their
canonical forms, the feature's random key beside them), never in clear; the loaded monitor seals
each window's labels with that key before testing, so it tests as the saved one did. The key in
the file lets its holder test guesses: sealing hides labels from a reader, not from a search of
a small space of values. Its fingerprint, that of the
clear labels, cannot be recomputed from the file: a file with sealed features (format 2) also
holds ``sealed_fingerprint``, over the columns as written, the configuration, the monitor's
fingerprint and the keys, which ``load`` checks before it gives the monitor the saved
fingerprint.

``save(path, key=...)`` keeps those keys out of the file: each feature's seal key is written
XORed with a keyed BLAKE2b pad of a random salt (format 3), and ``load(path, key=...)``
unwraps it; the file holds a check value of the key, so a missing or wrong key is refused by
name. A monitor loaded with a key saves with it again unless given another. Numeric columns are
written as numbers (a distribution is what a numeric detector
needs), sensitive ones included: the file is as sensitive as those columns of the training data.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import zipfile
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from prodwrap.drift._base import _REGISTRY
from prodwrap.drift._features import Key, fingerprint
from prodwrap.drift._labels import Unsealable
from prodwrap.drift._sensitive import sealed_column
from prodwrap.errors import ConfigurationError

if TYPE_CHECKING:
    from prodwrap.drift._monitor import DriftMonitor

FORMAT = 1
SEALED = 2  # a file with sealed columns (which a prodwrap that cannot read them refuses by format)
KEYED = 3  # sealed, the seals' keys wrapped with a key of the user's, which the file does not hold


class _Refused(ConfigurationError):
    """A problem ``_read`` found and described, the file named already."""


def registered_name(det: Any) -> str | None:
    """The name ``det``'s class is registered under, or None."""
    for name, factory in _REGISTRY.items():
        if factory is type(det):
            return name
    return None


def detector_params(det: Any, *, strict: bool = True) -> dict[str, Any]:
    """The constructor arguments of ``det`` that it keeps as attributes of the same name.

    Raises:
        ValueError: with ``strict``, a parameter that is not JSON-able (without, its repr).
    """
    params: dict[str, Any] = {}
    for name, param in inspect.signature(type(det).__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or not hasattr(det, name):
            continue
        value = getattr(det, name)
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            if strict:
                raise ValueError(f"cannot save {type(det).__name__}.{name}={value!r}: not JSON-able") from None
            value = repr(value)
        params[name] = value
    return params


def config(monitor: DriftMonitor) -> dict[str, Any]:
    """Every parameter the fingerprint covers besides the data: window, check_every,
    correction, and each feature's detector (registered name, else class) and parameters."""
    return {
        "window": monitor.window,
        "check_every": monitor.check_every,
        "correction": monitor.correction,
        "detectors": [
            [
                str(key),
                type(key).__name__,
                registered_name(det) or type(det).__qualname__,
                detector_params(det, strict=False),
            ]
            for key, det in monitor.detectors.items()
        ],
        **_left_out(monitor.reference_missing),
    }


def _left_out(missing: Mapping[Key, int]) -> dict[str, Any]:
    """The reference values left out, per feature, when any was (a clean reference's
    configuration, and so its fingerprint, is what it was before they were counted)."""
    if not any(missing.values()):
        return {}
    return {"reference_missing": [[str(key), type(key).__name__, n] for key, n in missing.items()]}


def save(monitor: DriftMonitor, path: str | os.PathLike[str], users_key: bytes | None = None) -> None:
    """Write ``monitor`` to ``path`` (see the module docstring); ``users_key`` (``save(key=)``):
    16 to 64 bytes of the user's (``os.urandom(32)``, kept in a secret store) that the seals'
    keys are wrapped with, so the file alone does not let its holder test guesses of a sealed
    label (default: the key the monitor was loaded with, if any; else the seals' keys are
    written in the file).

    Raises:
        ValueError: a detector that is not registered, or one with a parameter that is not
            JSON-able; a sensitive categorical feature with a label that has no canonical form
            to seal (``_labels.Unsealable``: an object of a class of the user's); a key that is
            not 16 to 64 bytes (a ``ConfigurationError``).
    """
    hidden = monitor._hidden
    master = hidden.master if users_key is None else _master(users_key, "DriftMonitor.save")
    arrays: dict[str, np.ndarray] = {}
    features = []
    stored: dict[Key, np.ndarray] = {}  # the columns as written (sensitive labels sealed)
    sealed: dict[Key, bytes] = {}
    for i, (key, col) in enumerate(monitor.columns.items()):
        det = monitor.detectors[key]
        name = registered_name(det)
        if name is None:
            raise ValueError(
                f"cannot save detector {type(det).__name__}: it is not registered (prodwrap.drift.register)"
            )
        entry: dict[str, Any] = {"key": key, "detector": name, "params": detector_params(det)}
        if monitor.reference_missing.get(key):
            entry["missing"] = monitor.reference_missing[key]
        written = col
        if col.dtype.kind == "f":
            arrays[f"column{i}"] = col
            entry["column"] = f"column{i}"
        else:
            if key in hidden and key not in hidden.sealed:  # sealed with a key of its own
                sealed[key] = os.urandom(16)
                try:
                    written = sealed_column(col, sealed[key], strict=True)
                except Unsealable as exc:  # (its labels would not meet live ones as they do in clear)
                    raise ValueError(f"cannot save sensitive feature {key!r}: {exc}") from None
            elif key in hidden.sealed:  # loaded sealed: written as it was read
                sealed[key] = hidden.sealed[key]
            if key in sealed:
                entry.update(_seal_entry(sealed[key], master))
            entry["values"] = written.tolist()
        stored[key] = written
        features.append(entry)
    meta = {
        "format": (KEYED if master else SEALED) if sealed else FORMAT,
        "window": monitor.window,
        "check_every": monitor.check_every,
        "correction": monitor.correction,
        "fingerprint": monitor.fingerprint,
        "features": features,
        "sensitive": sorted(monitor.sensitive, key=lambda k: (isinstance(k, str), str(k))),
    }
    if sealed:
        meta["sealed_fingerprint"] = sealed_fingerprint(stored, config(monitor), monitor.fingerprint, sealed)
    if sealed and master:
        meta["key_check"] = _key_check(master)
    with open(path, "wb") as fh:
        np.savez(fh, allow_pickle=False, meta=np.array(json.dumps(meta)), **arrays)


def load(path: str | os.PathLike[str], **options: Any) -> DriftMonitor:
    """The monitor ``save`` wrote to ``path``; see the module docstring for what is refused.
    ``options["key"]``: the key a file was saved with (ignored for a file saved without one).

    Raises:
        ConfigurationError: the file is missing, unreadable, not one ``save`` wrote, or changed
            since, or it was saved with a key and is given none or another, or the key is not
            16 to 64 bytes (its message names the file and the problem; the cause is chained).
    """
    where = os.fspath(path)
    given = options.pop("key", None)
    master = None if given is None else _master(given, where)
    try:
        meta, columns, detectors = _read(where)
    except _Refused:
        raise
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigurationError(f"{where}: cannot read a drift reference: {exc}") from exc
    except Exception as exc:  # a foreign or damaged file can fail in numpy, zipfile or json
        raise ConfigurationError(f"{where}: not an intact prodwrap drift reference: {exc!r}") from exc
    from prodwrap.drift._monitor import DriftMonitor

    if meta["format"] == KEYED:
        if master is None:
            raise ConfigurationError(
                f"{where}: its sensitive features are sealed under a key of yours: load it with key="
            )
        if meta.get("key_check") != _key_check(master):
            raise ConfigurationError(f"{where}: the key given is not the one the file was saved with")
    sealed = {e["key"]: _seal_of(e, master) for e in meta["features"] if "sealed" in e or "wrapped" in e}
    try:
        monitor = DriftMonitor(
            columns,
            features=detectors,
            window=meta["window"],
            check_every=meta["check_every"],
            correction=meta["correction"],
            **{**options, "sensitive": _merged([*meta.get("sensitive", ()), *sealed], options.get("sensitive", ()))},
        )
    except Exception as exc:
        raise ConfigurationError(f"{where}: its configuration is refused: {exc}") from exc
    left_out = {e["key"]: e["missing"] for e in meta["features"] if "missing" in e}
    if left_out:  # (the columns were saved without them: counted again, and fingerprinted)
        monitor.reference_missing.update(left_out)
        if not sealed:  # (with seals, only the fingerprint of the file's seals can be checked: below)
            monitor.fingerprint = fingerprint(monitor.columns, config(monitor))
    if sealed:  # the fingerprint of the clear labels cannot be recomputed: that of the file's is
        monitor._hidden.sealed.update(sealed)
        monitor._hidden.master = master if meta["format"] == KEYED else None
        written = sealed_fingerprint(monitor.columns, config(monitor), meta["fingerprint"], sealed)
        if meta.get("sealed_fingerprint") == written:  # (else the fingerprint of the seals mismatches)
            monitor.fingerprint = meta["fingerprint"]
    if monitor.fingerprint != meta["fingerprint"]:
        monitor.close()
        raise ConfigurationError(
            f"{where}: the reference data or configuration does not match its fingerprint (the file was changed)"
        )
    return monitor


def sealed_fingerprint(
    columns: Mapping[Key, np.ndarray], configuration: Mapping[str, Any], identity: str, sealed: Mapping[Key, bytes]
) -> str:
    """The fingerprint of a file with sealed columns: of the columns as written, the
    configuration, the monitor's own fingerprint (that of the clear labels, which the loaded
    monitor keeps) and each seal's key."""
    keys = sorted([str(k), type(k).__name__, v.hex()] for k, v in sealed.items())
    return fingerprint(columns, {**configuration, "identity": identity, "sealed": keys})


def _read(where: str) -> tuple[dict[str, Any], dict[Key, Any], dict[Key, Any]]:
    with open(where, "rb") as fh:  # ours to close, whatever np.load makes of the bytes
        data = np.load(fh, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise _Refused(f"{where}: not a prodwrap drift reference (a single numpy array, not an .npz archive)")
        with data:
            return _parse(where, data)


def _parse(where: str, data: Any) -> tuple[dict[str, Any], dict[Key, Any], dict[Key, Any]]:
    from prodwrap.drift._base import detector

    if "meta" not in data.files:
        raise _Refused(f"{where}: not a prodwrap drift reference (no meta entry)")
    meta = json.loads(str(data["meta"]))
    if not isinstance(meta, dict) or meta.get("format") not in (FORMAT, SEALED, KEYED):
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise _Refused(f"{where}: not a prodwrap drift reference (format {found!r})")
    for field, kind in (
        ("window", int),
        ("correction", (str, type(None))),
        ("fingerprint", str),
        ("features", list),
    ):
        if field not in meta or not isinstance(meta[field], kind) or isinstance(meta[field], bool):
            raise _Refused(f"{where}: meta field {field!r} is missing or malformed")
    if not isinstance(meta.get("check_every"), int | None):
        raise _Refused(f"{where}: meta field 'check_every' is malformed")
    sensitive = meta.get("sensitive", [])
    if not isinstance(sensitive, list) or not all(isinstance(k, str | int) for k in sensitive):
        raise _Refused(f"{where}: meta field 'sensitive' is malformed")
    columns: dict[Key, Any] = {}
    detectors: dict[Key, Any] = {}
    for entry in meta["features"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str | int):
            raise _Refused(f"{where}: a feature entry is malformed: {entry!r:.80}")
        key = entry["key"]
        if "column" in entry:
            column = data[entry["column"]]
            if column.ndim != 1 or column.dtype != np.float64:
                raise _Refused(f"{where}: column of feature {key!r} is not a 1-D float64 array")
        elif isinstance(entry.get("values"), list):
            column = np.asarray(entry["values"], dtype=object)
        else:
            raise _Refused(f"{where}: feature {key!r} has no values")
        for part in ("sealed", "salt", "wrapped"):
            seal = entry.get(part, "0" * 32)
            if not isinstance(seal, str) or len(seal) != 32 or seal.strip("0123456789abcdef"):
                raise _Refused(f"{where}: feature {key!r} has a malformed seal")
        if ("salt" in entry) != ("wrapped" in entry) or ("sealed" in entry and "wrapped" in entry):
            raise _Refused(f"{where}: feature {key!r} has a malformed seal")
        count = entry.get("missing", 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise _Refused(f"{where}: feature {key!r} has a malformed count of missing values")
        if not isinstance(entry.get("detector"), str) or not isinstance(entry.get("params"), dict):
            raise _Refused(f"{where}: feature {key!r} has a malformed detector entry")
        columns[key] = column
        detectors[key] = detector(entry["detector"], **entry["params"])
    keyed, sealed = (any(part in e for e in meta["features"]) for part in ("wrapped", "sealed"))
    if meta["format"] != (KEYED if keyed and not sealed else SEALED if sealed and not keyed else FORMAT) or (
        keyed and not isinstance(meta.get("key_check"), str)
    ):
        raise _Refused(f"{where}: not a prodwrap drift reference (format {meta['format']!r} for its features)")
    return meta, columns, detectors


def _merged(saved: Any, given: Any) -> Any:
    """The sensitive features of a loaded monitor: those saved and those ``load`` was given (a
    string, or anything else not a collection of keys, is left for the constructor to refuse)."""
    return given if isinstance(given, str | bytes) or not isinstance(given, Iterable) else {*saved, *given}


def _master(key: Any, who: str) -> bytes:
    """``key`` as the user's key of a file's seals (never quoted in an error)."""
    if not isinstance(key, bytes) or not 16 <= len(key) <= 64:
        size = f"{len(key)} bytes" if isinstance(key, bytes) else type(key).__name__
        raise ConfigurationError(f"{who}: key must be 16 to 64 bytes (os.urandom(32), say), got {size}")
    return key


def _pad(master: bytes, salt: bytes) -> bytes:
    return hashlib.blake2b(salt, key=master, digest_size=16, person=b"prodwrap-seal").digest()


def _key_check(master: bytes) -> str:
    """What a file saved with ``master`` holds to tell a missing or wrong key from an edit."""
    return hashlib.blake2b(b"", key=master, digest_size=16, person=b"prodwrap-check").hexdigest()


def _seal_entry(seal: bytes, master: bytes | None) -> dict[str, str]:
    """A feature's seal key as a file holds it: in clear, or wrapped with ``master``."""
    if master is None:
        return {"sealed": seal.hex()}
    salt = os.urandom(16)
    return {"salt": salt.hex(), "wrapped": _wrap(seal, master, salt).hex()}


def _seal_of(entry: Mapping[str, Any], master: bytes | None) -> bytes:
    """The seal key of a feature entry (``master``: a keyed file's key, checked already)."""
    if "sealed" in entry or master is None:
        return bytes.fromhex(entry["sealed"])
    return _wrap(bytes.fromhex(entry["wrapped"]), master, bytes.fromhex(entry["salt"]))


def _wrap(key: bytes, master: bytes, salt: bytes) -> bytes:
    """``key`` XORed with ``master``'s pad for ``salt``: wrapped, or (again) unwrapped."""
    return bytes(a ^ b for a, b in zip(key, _pad(master, salt), strict=True))
