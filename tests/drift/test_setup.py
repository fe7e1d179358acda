"""What a DriftMonitor's constructor refuses (prodwrap/drift/_setup.py): one error type, naming the option."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import prodwrap as pw

X = np.random.default_rng(0).normal(size=(50, 2))


@pytest.mark.parametrize(
    ("reference", "options", "named"),
    [
        ([], {}, "reference is empty"),
        (None, {}, "reference is empty"),
        ({}, {}, "reference has no features"),
        (np.empty((5, 0)), {}, "reference has no features"),
        (np.zeros((2, 2, 2)), {}, "reference array must be 1-D or 2-D"),
        (X, {"output_reference": []}, "output_reference is empty"),
        (X, {"window": 1}, "window"),
        (X, {"correction": "sidak"}, "correction"),
        (X, {"features": 5}, "features must be"),
        (X, {"features": []}, "features is empty"),
        (X, {"features": {}}, "features is empty"),
        (X, {"features": ["nope"]}, "unknown feature"),
        (X, {"features": {0: 5}}, r"features\[0\] must be a detector"),
        (X, {"features": {0: pw.drift.KS}}, r"features\[0\] must be a detector instance"),
        (X, {"features": {0: "nope"}}, "unknown drift detector"),
        (X, {"on_drift": 5}, "on_drift must be a callable"),
        (X, {"metric": "abs"}, "metric must be a callable"),
        (X, {"performance": 5}, "performance must be a stream detector"),
        (X, {"sensitive": [7]}, "sensitive names unknown feature"),
        (X, {"sensitive": [[0]]}, "sensitive must hold feature keys"),
    ],
)
def test_a_bad_configuration_is_a_configuration_error_naming_the_option(
    reference: Any, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(pw.ConfigurationError, match=named) as info:
        pw.DriftMonitor(reference, **options)
    assert isinstance(info.value, ValueError)  # what an empty reference raised before


def test_features_may_be_any_collection_of_keys() -> None:
    assert list(pw.DriftMonitor(X, features=(1,)).detectors) == [1]
    assert list(pw.DriftMonitor(X, features={0}).detectors) == [0]


def test_an_empty_feature_list_is_refused_saying_it_monitors_nothing() -> None:
    with pytest.raises(pw.ConfigurationError, match=r"features is empty: .*monitors nothing.*None for every feature"):
        pw.DriftMonitor(X, features=[])
