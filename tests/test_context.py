from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

import prodwrap as pw
from prodwrap._context import EVER, tag_text
from prodwrap.testing import FakeClock, no_sleep
from tests.support import Raising


def test_context_nests_and_restores() -> None:
    with pw.context(a=1) as outer:
        assert dict(outer) == {"a": 1}
        with pw.context(b=2, a=3) as inner:
            assert dict(inner) == {"a": 3, "b": 2}
        assert pw.ProductionModel(lambda x: x).predict_detailed(0).tags == {"a": 1}
    assert pw.ProductionModel(lambda x: x).predict_detailed(0).tags == {}


def test_tags_are_isolated_between_threads() -> None:
    model = pw.ProductionModel(lambda x: x)
    barrier = threading.Barrier(8)

    def call(i: int) -> object:
        with pw.context(worker=i):
            barrier.wait()
            return model.predict_detailed(i).tags

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(call, range(8))) == [{"worker": i} for i in range(8)]


def test_deadline_uses_the_current_clock() -> None:
    seen = []

    def predict(x: int) -> int:
        seen.append(pw.deadline())
        return x

    with no_sleep(FakeClock(start=50.0)):
        pw.ProductionModel(predict, timeout=3.0)(1)
    assert seen == [3.0]  # the fake clock did not move while the attempt ran


def test_fake_clock_records_sleeps() -> None:
    clock = FakeClock()
    clock.sleep(1.5)
    clock.advance(2)
    assert clock.monotonic() == 1003.5 and clock.sleeps == [1.5] and clock.slept == 1.5


def test_any_tag_value_is_kept_as_given(bad_tag: tuple[Callable[[], object], str]) -> None:
    """pw.context refuses no value: what cannot be hashed or printed is keyed by its text."""
    value = bad_tag[0]()
    with pw.context(customer=value):
        assert pw.ProductionModel(lambda x: x).predict_detailed(0).tags["customer"] is value


def test_tag_text_stands_in_for_a_value_that_cannot_be_shown() -> None:
    assert tag_text(("acme", ["eu-west"])) == "('acme', ['eu-west'])" and tag_text("acme", repr) == "'acme'"
    assert tag_text(Raising()) == tag_text(Raising(), repr) == "<Raising>"


def _untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a process where no tag has been set yet (tests before this one set some)."""
    monkeypatch.setattr(EVER, "set", False)


def test_setting_tags_marks_them_ever_set(monkeypatch: pytest.MonkeyPatch) -> None:
    _untouched(monkeypatch)
    with pw.context(customer="acme"):
        assert EVER.set
    assert EVER.set  # (never back: see the next test)


def test_a_priced_call_is_tagged_once_tags_are_first_set(monkeypatch: pytest.MonkeyPatch) -> None:
    _untouched(monkeypatch)
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("0.5"))
    assert "ever0_0.set" in model._engine.run_sync.__source__  # the success path reads the slot first
    model(1)
    with pw.context(customer="acme"):
        model(2)
        model(3)
    model(4)
    assert model.ledger.total(by="customer") == {"acme": Decimal("1.0"), None: Decimal("1.0")}


def test_tags_kept_in_a_copied_context_after_the_block_are_still_read(monkeypatch: pytest.MonkeyPatch) -> None:
    _untouched(monkeypatch)
    model = pw.ProductionModel(lambda x: x, cost=pw.PerCall("0.5"))
    with pw.context(customer="acme"):
        copied = contextvars.copy_context()
    copied.run(model, 1)  # the block has ended; the copy still holds its tags
    assert model.ledger.total(by="customer") == {"acme": Decimal("0.5")}
