"""examples/quickstart.py runs as the README says, and its counts repeat from run to run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What the quickstart's own summary prints, but for its times. Its fault schedule is seeded per
# applicant and attempt, and its hangs outlast the timeout, so these lines do not depend on timing
# or thread interleaving; model.report()'s wording is not asserted here.
EXPECTED_SUMMARY = [
    "  calls by outcome     {'error': 143, 'fallback': 31, 'ok': 2826}  ('error': all of them rejected inputs)",
    "  calls by server      {'constant': 9, 'primary': 2826, 'rule_baseline': 22}",
    "  failures by reason   {'exception': 149, 'invalid_input': 143, 'invalid_output': 31, 'timeout': 27}"
    "  (one per failed attempt or rejected input)",
    "  rejected inputs      143 {'NaN income': 23, 'huge string': 29, 'missing field': 20, 'not a record': 20,"
    " 'unknown region': 29, 'wrong types': 22}; misjudged: 0",
    "  example error        InputValidationError: credit-risk: invalid input: 2 errors",
    "                         age: Input should be a valid integer, unable to parse string as an integer"
    " [type=int_parsing] input='forty'",
    "                         income: Input should be a valid number, unable to parse string as a number"
    " [type=float_parsing] input='lots'",
    "  timeouts             27 attempts ran out of their 250 ms; 27 abandoned"
    " (left to end on their worker thread, late results discarded)",
    "  fallback rate        1.09% of 2857 served calls",
    "  predict_detailed     956 calls; primary attempts per call {1: 897, 2: 57, 3: 2}",
    "  e.g. {'customer': 'bank-0', 'request_id': 'r-0'}: ['OutputValidationError'] -> rule_baseline 0.087",
]


def _quickstart(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    # The worktree's prodwrap, whichever checkout the interpreter has installed; warnings are errors.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / "quickstart.py"), *flags],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_quickstart_runs_and_prints_its_deterministic_summary(tmp_path: Path) -> None:
    result = _quickstart(tmp_path)
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"3000 calls from 16 threads in \d+\.\d\d s", lines[0]), lines[0]
    summary = lines[1 : lines.index("")]
    assert re.fullmatch(r"  latency p50/95/99    (\d+\.\d\d ms / ){2}\d+\.\d\d ms", summary.pop(8)), summary
    assert summary == EXPECTED_SUMMARY
    assert "\nmodel.report():\n" in result.stdout
    assert list(tmp_path.iterdir()) == []  # the quickstart writes no files


def test_quickstart_with_telemetry_prints_the_metrics_summary(tmp_path: Path) -> None:
    result = _quickstart(tmp_path, "--telemetry")
    tail = result.stdout[result.stdout.index("model.describe()") :]
    assert "prodwrap.predictions" in tail and "prodwrap.prediction.duration" in tail, tail


# examples/test_credit_model.py: the "Testing models" example module (issue 14, item 9).

BROKEN_RULE = ("young = 0.1 if a.age < 25 else 0.0", "young = 0.1 if a.age > 25 else 0.0")


def _run_credit_example(tmp_path: Path, broken: bool) -> subprocess.CompletedProcess[str]:
    from importlib.metadata import entry_points

    source = (ROOT / "examples" / "test_credit_model.py").read_text(encoding="utf-8")
    if broken:
        assert BROKEN_RULE[0] in source
        source = source.replace(*BROKEN_RULE)
    (tmp_path / "test_credit_model.py").write_text(source, encoding="utf-8")
    (tmp_path / "credit_golden.jsonl").write_bytes((ROOT / "examples" / "credit_golden.jsonl").read_bytes())
    installed = any(ep.value == "prodwrap.testing._plugin" for ep in entry_points(group="pytest11"))
    plugin = [] if installed else ["-p", "prodwrap.testing._plugin"]
    # hypothesis keeps its character tables where the suite's runs keep them (built once)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HYPOTHESIS_STORAGE_DIRECTORY": str(ROOT / ".hypothesis")}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio", "-W", "error"]
    return subprocess.run(
        [*command, *plugin, "test_credit_model.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_credit_model_example_passes_under_pytest(tmp_path: Path) -> None:
    result = _run_credit_example(tmp_path, broken=False)
    assert result.returncode == 0 and "9 passed" in result.stdout, result.stdout + result.stderr


def test_a_broken_credit_model_fails_with_a_message_naming_the_failing_case(tmp_path: Path) -> None:
    result = _run_credit_example(tmp_path, broken=True)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "FAILED test_credit_model.py::test_known_cases" in out
    assert "expect_cases(credit-risk): 3 of 4 cases failed (min_pass_rate=1)" in out
    row = next(line for line in out.splitlines() if "'age': 22" in line and "pass rate" not in line)
    assert "{'age': 22, 'income': 30000, 'debt': 15000, 'region': 'south'}" in row
    assert "Score(probability=0.45)" in row and "Score(probability=0.35)" in row and "0/1 = 0%" in row
    assert "lambda s: s.probability == 0.05" in out  # a predicate shown as its source
    assert "FAILED test_credit_model.py::test_outputs_match_the_golden_file" in out
