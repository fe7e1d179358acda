"""DriftMonitor.save / load: only an intact file it wrote loads; everything else is one error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import prodwrap as pw
from prodwrap.errors import ConfigurationError

REF = np.random.default_rng(0).normal(size=(60, 2))


def _saved(tmp: Path, **options: Any) -> Path:
    reference = {"x": REF[:, 0], "y": REF[:, 1], "kind": ["a", "b", "c"] * 20}
    features = {"x": pw.drift.KS(threshold=0.01), "y": "psi", "kind": pw.drift.ChiSquare(threshold=0.01)}
    monitor = pw.DriftMonitor(reference, features=features, **options)
    path = tmp / "reference.npz"
    monitor.save(path)
    monitor.close()
    return path


def _entries(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _refused(path: Path, problem: str = "") -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        pw.DriftMonitor.load(path)
    assert str(path) in str(info.value) and problem in str(info.value)
    return info.value


def test_an_intact_file_loads(tmp_path: Path) -> None:
    path = _saved(tmp_path, window=50, check_every=10, correction="holm")
    loaded = pw.DriftMonitor.load(path, background=False)
    assert (loaded.window, loaded.check_every, loaded.correction) == (50, 10, "holm")
    assert loaded.detectors["x"].threshold == 0.01


def test_missing_truncated_and_foreign_files_are_refused(tmp_path: Path) -> None:
    _refused(tmp_path / "nope.npz", "cannot read")
    path = _saved(tmp_path)
    whole = path.read_bytes()
    for cut in (0, 10, len(whole) // 2, len(whole) - 1):
        path.write_bytes(whole[:cut])
        _refused(path)
    path.write_bytes(b"\x80\x04\x95 pickle-looking bytes")
    _refused(path)
    np.save(path.with_suffix(".npy"), np.arange(3))
    _refused(path.with_suffix(".npy"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_random_bytes_are_refused(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "random.npz"
    path.write_bytes(blob)
    _refused(path)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.pop("window"),
        lambda m: m.update(window="1000"),
        lambda m: m.update(window=True),
        lambda m: m.update(format=2),
        lambda m: m.update(features="x"),
        lambda m: m.update(features=[{"key": "x"}]),
        lambda m: m["features"][0].update(detector="no-such-detector"),
        lambda m: m["features"][0].update(params={"bogus": 1}),
        lambda m: m["features"][0].update(column="column9"),
        lambda m: m.update(correction="sidak"),
    ],
)
def test_malformed_meta_is_refused(tmp_path: Path, edit: Any) -> None:
    path = _saved(tmp_path)
    entries = _entries(path)
    meta = json.loads(str(entries["meta"]))
    edit(meta)
    entries["meta"] = np.array(json.dumps(meta))
    np.savez(path, **entries)
    _refused(path)


def test_meta_that_is_not_json_or_not_an_object_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    for text in ("{not json", "[1, 2]", "null"):
        entries = _entries(path)
        entries["meta"] = np.array(text)
        np.savez(path, **entries)
        _refused(path)
    entries.pop("meta")
    np.savez(path, **entries)
    _refused(path, "meta")


@pytest.mark.parametrize(
    ("edit", "what"),
    [
        (lambda m: m.update(window=999), "window"),
        (lambda m: m.update(check_every=7), "check_every"),
        (lambda m: m.update(correction="fdr"), "correction"),
        (lambda m: m["features"][0]["params"].update(threshold=0.2), "a detector's threshold"),
        (lambda m: m["features"][1].update(detector="jensenshannon"), "a detector"),
    ],
)
def test_a_changed_parameter_is_refused_by_the_fingerprint(tmp_path: Path, edit: Any, what: str) -> None:
    path = _saved(tmp_path)
    entries = _entries(path)
    meta = json.loads(str(entries["meta"]))
    edit(meta)
    entries["meta"] = np.array(json.dumps(meta))
    np.savez(path, **entries)
    _refused(path, "fingerprint")


def test_edited_arrays_are_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    for edit in (
        lambda a: a + 1e-12,
        lambda a: a[:-1],
        lambda a: a.astype(np.float32),
        lambda a: a.reshape(-1, 1),
        lambda a: np.array(["text"] * a.size),
    ):
        entries = _entries(path)
        entries["column0"] = edit(entries["column0"])
        np.savez(path, **entries)
        _refused(path)
        _saved(tmp_path)


def test_a_pickled_entry_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    entries = _entries(path)
    entries["column0"] = np.array([object()], dtype=object)
    np.savez(path, **entries)  # np.savez pickles object arrays
    _refused(path)


KEY = bytes(range(32))  # the user's (os.urandom(32), in a secret store)


def _pins(tmp_path: Path, **save: Any) -> tuple[pw.DriftMonitor, Path]:
    reference = [{"pin": f"{i * 37 % 10_000:04d}", "x": float(i % 5)} for i in range(300)]
    monitor = pw.DriftMonitor(reference, window=30, background=False, sensitive=["pin"])
    monitor.save(tmp_path / "ref.npz", **save)
    return monitor, tmp_path / "ref.npz"


def _meta(path: Path) -> dict[str, Any]:
    with np.load(path, allow_pickle=False) as data:
        meta: dict[str, Any] = json.loads(str(data["meta"]))
    return meta


def test_a_file_saved_with_a_key_of_the_users_holds_no_seal_key(tmp_path: Path) -> None:
    monitor, path = _pins(tmp_path, key=KEY)
    meta = _meta(path)
    entry = next(e for e in meta["features"] if e["key"] == "pin")
    assert meta["format"] == 3 and "sealed" not in entry and {"salt", "wrapped"} <= set(entry)
    loaded = pw.DriftMonitor.load(path, key=KEY, background=False)
    seal = loaded._hidden.sealed["pin"]
    raw = path.read_bytes() + json.dumps(meta).encode()
    assert seal.hex().encode() not in raw and KEY.hex().encode() not in raw and KEY not in raw
    assert loaded.fingerprint == monitor.fingerprint and loaded.sensitive == frozenset({"pin"})
    for i in range(30):  # the reference's pins, then others: the loaded monitor finds what the saved one does
        row = {"pin": f"{i * 37 % 10_000:04d}" if i < 20 else "9999", "x": float(i % 5)}
        monitor.observe(row, None)
        loaded.observe(row, None)
    before, after = monitor.report()["pin"], loaded.report()["pin"]
    assert (after.drifted, after.statistic, after.details["unseen"]) == (before.drifted, before.statistic, 10)


@pytest.mark.parametrize(
    ("key", "refused"),
    [
        (None, r"sealed under a key of yours: load it with key="),
        (bytes(32), r"the key given is not the one the file was saved with"),
        (b"short", r"key must be 16 to 64 bytes .*got 5 bytes"),
        ("a passphrase", r"key must be 16 to 64 bytes .*got str"),
    ],
)
def test_a_keyed_file_is_refused_without_its_key(tmp_path: Path, key: Any, refused: str) -> None:
    _, path = _pins(tmp_path, key=KEY)
    with pytest.raises(pw.ConfigurationError, match=refused) as info:
        pw.DriftMonitor.load(path, **({} if key is None else {"key": key}))
    assert "passphrase" not in str(info.value)


def test_a_monitor_loaded_with_a_key_saves_with_it_unless_given_another(tmp_path: Path) -> None:
    monitor, path = _pins(tmp_path, key=KEY)
    loaded = pw.DriftMonitor.load(path, key=KEY)
    loaded.save(tmp_path / "again.npz")
    with pytest.raises(pw.ConfigurationError, match="load it with key="):
        pw.DriftMonitor.load(tmp_path / "again.npz")
    assert pw.DriftMonitor.load(tmp_path / "again.npz", key=KEY).fingerprint == monitor.fingerprint
    other = b"\x01" * 16
    loaded.save(tmp_path / "other.npz", key=other)
    assert pw.DriftMonitor.load(tmp_path / "other.npz", key=other).fingerprint == monitor.fingerprint
    with pytest.raises(pw.ConfigurationError, match="not the one"):
        pw.DriftMonitor.load(tmp_path / "other.npz", key=KEY)


def test_a_wrapped_seal_key_edited_is_refused(tmp_path: Path) -> None:
    _, path = _pins(tmp_path, key=KEY)
    meta = _meta(path)
    entry = next(e for e in meta["features"] if e["key"] == "pin")
    entry["wrapped"] = ("0" if entry["wrapped"][0] != "0" else "1") + entry["wrapped"][1:]
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
    np.savez(tmp_path / "edited.npz", meta=np.array(json.dumps(meta)), **arrays)
    with pytest.raises(pw.ConfigurationError, match="does not match its fingerprint"):
        pw.DriftMonitor.load(tmp_path / "edited.npz", key=KEY)


def test_a_key_is_refused_at_save_when_it_is_no_key_and_ignored_by_a_file_without_one(tmp_path: Path) -> None:
    with pytest.raises(pw.ConfigurationError, match=r"^DriftMonitor.save: key must be 16 to 64 bytes"):
        _pins(tmp_path, key=b"0000")
    monitor, path = _pins(tmp_path)  # the seals' keys in the file, as without key=
    assert _meta(path)["format"] == 2
    assert pw.DriftMonitor.load(path, key=KEY).fingerprint == monitor.fingerprint
    plain = pw.DriftMonitor({"x": [1.0, 2.0, 3.0]})
    plain.save(tmp_path / "plain.npz", key=KEY)  # nothing sealed: nothing to wrap
    assert _meta(tmp_path / "plain.npz")["format"] == 1
