from __future__ import annotations

import pytest

import prodwrap as pw


def test_timeout_forms() -> None:
    assert pw.Timeout.coerce(0.25) == pw.Timeout(attempt=0.25)
    assert pw.Timeout.coerce(None) is None
    policy = pw.Timeout(attempt=1, total=3)
    assert pw.Timeout.coerce(policy) is policy
    assert isinstance(policy.attempt, float) and policy.describe() == {"attempt": 1.0, "total": 3.0}


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"attempt": 0}, {"attempt": -1}, {"total": float("inf")}, {"attempt": "1"}, {"attempt": True}],
)
def test_timeout_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(pw.ConfigurationError):
        pw.Timeout(**kwargs)  # type: ignore[arg-type]
