"""``python -m prodwrap report``: an audit log summarised in one streaming pass; its totals
are the model's own (issue 11, item 6 and its acceptance bullet)."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import prodwrap as pw
from prodwrap._cli import main
from prodwrap.testing import FakeClock


def run(*argv: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def line(i: int, outcome: str = "ok", cost: str = "0.0001", **extra: Any) -> dict[str, Any]:
    served = {"ok": "primary", "fallback": "baseline", "error": "primary", "cached": "cache"}[outcome]
    return {
        "id": f"p-{i:x}",
        "time": f"2026-05-09T07:00:{i % 60:02d}.000000Z",
        "model": "m",
        "version": "1",
        "outcome": outcome,
        "served_by": served,
        "attempts": 1,
        "latency": 0.001 * (i % 100),
        "cost": cost,
        "tags": {},
        "reasons": [],
        **extra,
    }


def write(path: Path, lines: list[dict[str, Any]], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + extra, encoding="utf-8")
    return path


def test_the_report_of_a_models_log_matches_its_stats(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "predictions.jsonl"
    log = pw.AuditLog(path)

    def predict(x: int) -> int:
        if x % 7 == 0:
            raise ConnectionError("flaky")
        if x % 11 == 0:
            raise ValueError("bug")
        return x

    model = pw.ProductionModel(
        predict, name="m", version="2", retry=2, fallback=[pw.Constant(-1)], cache=pw.Cache(maxsize=100), audit=log
    )
    for i in range(300):
        with pw.context(customer=f"c{i % 3}"):
            model(i % 120)  # repeats: cache hits
    model.close()
    stats = model.stats()
    code, out, err = run("report", str(path), "--json", "--by", "customer")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["calls"] == stats.calls == 300
    assert data["outcomes"] == stats.outcomes and set(data["outcomes"]) == {"ok", "cached", "fallback"}
    assert data["served_by"] == stats.served_by
    assert data["failures"] == stats.failures
    assert (data["latency_p50"], data["latency_p95"], data["latency_p99"]) == (
        stats.latency_p50,
        stats.latency_p95,
        stats.latency_p99,
    )
    assert data["cost"] == str(stats.cost) == "0"
    assert data["fallback_rate"] == stats.outcomes["fallback"] / 300
    assert list(data["versions"]) == ["m 2"]
    assert {k: g["calls"] for k, g in data["by"]["customer"].items()} == {"c0": 100, "c1": 100, "c2": 100}


def test_a_100k_line_log_is_summarised_in_seconds_and_its_totals_are_exact(tmp_path: Path) -> None:
    rng = random.Random(7)
    customers = ["acme", "globex", "initech", "umbrella"]
    expected_cost: dict[str, Decimal] = dict.fromkeys(customers, Decimal(0))
    outcomes: dict[str, int] = {}
    lines = []
    for i in range(100_000):
        outcome = rng.choices(["ok", "fallback", "error", "cached"], [90, 5, 3, 2])[0]
        cost = "0" if outcome == "cached" else f"0.{rng.randrange(1, 10**6):06d}"
        customer = customers[i % 4]
        expected_cost[customer] += Decimal(cost)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        lines.append(line(i, outcome, cost, tags={"customer": customer}, version=str(i % 2)))
    path = write(tmp_path / "big.jsonl", lines)
    began = time.perf_counter()
    code, out, err = run("report", str(path), "--json", "--by", "customer")
    took = time.perf_counter() - began
    assert (code, err) == (0, "")
    assert took < 30, f"{took:.1f} s"  # seconds, not minutes: about 1 s here
    data = json.loads(out)
    assert data["calls"] == 100_000 and data["outcomes"] == dict(sorted(outcomes.items()))
    total = sum(expected_cost.values(), Decimal(0))
    assert Decimal(data["cost"]) == total and isinstance(data["cost"], str)
    assert {k: Decimal(g["cost"]) for k, g in data["by"]["customer"].items()} == expected_cost
    assert sum(Decimal(g["cost"]) for g in data["versions"].values()) == total
    assert data["error_rate"] == outcomes["error"] / 100_000


def test_json_has_the_keys_design_names_and_by_only_when_asked(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", [line(i) for i in range(10)])
    code, out, _ = run("report", str(path), "--json")
    data = json.loads(out)
    assert code == 0
    assert {"calls", "outcomes", "latency_p50", "latency_p95", "cost"} <= set(data) and "by" not in data
    assert data["cost"] == "0.0010" and data["latency_p50"] == pytest.approx(0.0045)
    assert (data["first"], data["last"]) == ("2026-05-09T07:00:00.000000Z", "2026-05-09T07:00:09.000000Z")


def test_lines_without_the_tag_are_grouped_apart(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", [line(0, tags={"customer": "acme"}), line(1), line(2, tags={"customer": 7})])
    _, out, _ = run("report", str(path), "--json", "--by", "customer", "--by", "region")
    by = json.loads(out)["by"]
    assert {k: g["calls"] for k, g in by["customer"].items()} == {"acme": 1, "(untagged)": 1, "7": 1}
    assert {k: g["calls"] for k, g in by["region"].items()} == {"(untagged)": 3}


def test_the_table_shows_totals_rates_and_breakdowns(tmp_path: Path) -> None:
    lines = [line(i, tags={"customer": "acme"}) for i in range(8)]
    lines += [line(8, "fallback", reasons=["timeout"]), line(9, "error", reasons=["exception"], unpriced=True)]
    path = write(tmp_path / "a.jsonl", lines)
    code, out, _ = run("report", str(path), "--by", "customer")
    assert code == 0
    rows = out.splitlines()
    assert rows[0] == f"audit log            {path}: 10 lines, 0 bad"
    assert "calls                10" in rows
    assert "  ok                 8 (80.0%)" in rows and "  error              1 (10.0%)" in rows
    assert "error rate           10.00%" in rows and "fallback rate        10.00%" in rows
    assert "cost                 0.0010  (unpriced calls: 1)" in rows
    assert "  timeout            1" in rows
    assert rows[rows.index("by customer") + 1].split() == [
        "customer",
        "calls",
        "errors",
        "fallbacks",
        "p50",
        "p95",
        "cost",
    ]
    assert rows[rows.index("by customer") + 2].split()[:4] == ["(untagged)", "2", "50.0%", "50.0%"]
    assert rows[rows.index("by customer") + 3].split()[:4] == ["acme", "8", "0.0%", "0.0%"]


def test_bad_lines_are_counted_and_reported_not_fatal(tmp_path: Path) -> None:
    bad = [
        "not json",
        "[1, 2]",
        json.dumps({**line(0), "cost": 0.1}),  # a float: not a decimal string
        json.dumps({**line(0), "latency": -1}),
        json.dumps({k: v for k, v in line(0).items() if k != "outcome"}),
        json.dumps({**line(0), "cost": "abc"}),
    ]
    path = write(tmp_path / "a.jsonl", [line(1), line(2)], "\n".join(bad) + "\n\n")
    code, out, err = run("report", str(path), "--json")
    data = json.loads(out)
    assert code == 0 and data["calls"] == 2 and data["bad_lines"] == 6
    assert data["bad_line_numbers"] == [3, 4, 5, 6, 7]
    assert err == "prodwrap report: 6 lines are not audit lines (line 3, 4, 5, 6, 7, ...); skipped\n"


def test_a_missing_file_or_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    code, out, err = run("report", str(tmp_path / "nope.jsonl"))
    assert (code, out) == (2, "")
    assert err == f"prodwrap report: cannot read {tmp_path / 'nope.jsonl'}: no such file\n"
    code, _, err = run("report", str(tmp_path))
    assert code == 2 and err.startswith(f"prodwrap report: cannot read {tmp_path}: ")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run()[0] == 2
    assert run("report")[0] == 2
    assert "usage: python -m prodwrap" in capsys.readouterr().err


def test_standard_input_is_read_with_a_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "".join(json.dumps(line(i)) + "\n" for i in range(3))
    code, out, _ = run("report", "-", "--json", stdin=text, monkeypatch=monkeypatch)
    assert code == 0 and json.loads(out)["calls"] == 3


def test_html_writes_a_self_contained_page_with_charts(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", [line(i, tags={"customer": "<acme>"}) for i in range(5)])
    code, _, _ = run("report", str(path), "--by", "customer", "--html", str(tmp_path / "out.html"))
    page = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert code == 0 and page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 4  # outcomes, latency, cost by version, cost by customer
    assert "&lt;acme&gt;" in page and "<acme>" not in page
    assert "<script" not in page and "http" not in page
    assert run("report", str(path), "--html", str(tmp_path / "no" / "dir" / "out.html"))[0] == 2


def test_python_dash_m_prodwrap_report_runs(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", [line(i) for i in range(4)])
    result = subprocess.run(
        [sys.executable, "-m", "prodwrap", "report", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "calls                4" in result.stdout.splitlines()


def test_lines_with_numbers_out_of_range_are_counted_bad_never_fatal(tmp_path: Path) -> None:
    bad = [line(1, cost="1e999999999"), line(2, cost="1e50"), {**line(3), "latency": float("inf")}]
    path = write(tmp_path / "log.jsonl", [line(0), *bad, line(4)])
    code, out, _ = run("report", str(path), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["calls"] == 2 and summary["cost"] == "0.0002"
    assert summary["bad_lines"] == 3
    tiny = write(tmp_path / "tiny.jsonl", [line(0, cost="0.00000015")])
    assert json.loads(run("report", str(tiny), "--json")[1])["cost"] == "0.00000015"  # never "1.5E-7"


def test_a_fallback_models_own_lines_are_not_counted_twice(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    log, ledger = pw.AuditLog(path), pw.Ledger()

    def broken(x: int) -> float:
        raise ConnectionError("down")

    baseline = pw.ProductionModel(lambda x: 0.5, name="baseline", cost=pw.PerCall("0.001"), audit=log)
    llm = pw.ProductionModel(broken, name="llm", cost=pw.PerCall("0.002"), fallback=baseline, audit=log, ledger=ledger)
    for i in range(11):
        llm(i)
    log.close()
    code, out, _ = run("report", str(path), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["calls"] == 22  # each model's own prediction has its line
    assert Decimal(summary["cost"]) == ledger.total() == Decimal("0.033")  # 11 x (0.002 + 0.001), once
