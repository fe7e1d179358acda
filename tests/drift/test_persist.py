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
