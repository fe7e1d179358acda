"""The pytest plugin: fixtures, the golden-update option and the ``prodwrap`` marker (issue 14, item 8).

Each test runs pytest in a subprocess on a small test module of its own. The plugin loads
through its ``pytest11`` entry point when the installed prodwrap has it; otherwise (a venv
holding an older checkout) it is named with ``-p``, as this suite's conftest does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALLED = any(ep.value == "prodwrap.testing._plugin" for ep in entry_points(group="pytest11"))


def run_pytest(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_it.py").write_text(textwrap.dedent(source), encoding="utf-8")
    plugin = [] if INSTALLED else ["-p", "prodwrap.testing._plugin"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PRODWRAP_UPDATE_GOLDEN", None)
    # (-p no:asyncio: pytest-asyncio, when installed, warns about its own unset option here)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio", "-W", "error"]
    command += [*plugin, *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def passed(result: subprocess.CompletedProcess[str], n: int) -> bool:
    return result.returncode == 0 and f"{n} passed" in result.stdout


def test_the_fixtures(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path,
        """
        import prodwrap as pw
        from prodwrap import _clock
        from prodwrap._scope import SCOPE, emit

        def test_clock(prodwrap_clock):
            assert _clock.current.clock is prodwrap_clock
            wait = pw.backoff(initial=10.0, maximum=100.0, jitter=False)
            retry = pw.Retry(attempts=4, on=ZeroDivisionError, wait=wait)
            model = pw.ProductionModel(lambda x: 1 / 0, retry=retry, fallback=pw.Constant(0))
            assert model(1) == 0 and prodwrap_clock.sleeps == [10.0, 20.0, 40.0]

        def test_capture(prodwrap_capture):
            assert prodwrap_capture in SCOPE.captures
            emit("drift", "alert")
            assert prodwrap_capture.drift_alerts == ["alert"]

        def test_nothing_is_left_installed():
            assert type(_clock.current.clock).__name__ == "SystemClock" and not SCOPE.on
        """,
    )
    assert passed(result, 3), result.stdout + result.stderr


def test_the_marker(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path,
        """
        import time
        import pytest
        from prodwrap import _clock
        from prodwrap._scope import SCOPE

        @pytest.mark.prodwrap
        def test_bare_marker_installs_a_fake_clock():
            assert type(_clock.current.clock).__name__ == "FakeClock"
            assert not SCOPE.on

        @pytest.mark.prodwrap(capture=True, start=5.0, wall=86400.0)
        def test_options(prodwrap_clock, prodwrap_capture):
            assert _clock.current.clock is prodwrap_clock and prodwrap_capture in SCOPE.captures
            assert prodwrap_clock.monotonic() == 5.0 and prodwrap_clock.time() == 86400.0

        @pytest.mark.prodwrap(clock=False, capture=True)
        def test_capture_only():
            assert type(_clock.current.clock).__name__ == "SystemClock" and SCOPE.on

        @pytest.mark.prodwrap
        class TestOnAClass:
            def test_inherited(self):
                assert type(_clock.current.clock).__name__ == "FakeClock"

        def test_unmarked():
            assert type(_clock.current.clock).__name__ == "SystemClock" and not SCOPE.on
        """,
    )
    assert passed(result, 5), result.stdout + result.stderr


def test_the_marker_refuses_unknown_options(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path,
        """
        import pytest

        @pytest.mark.prodwrap(clocks=True)
        def test_typo():
            pass
        """,
    )
    assert result.returncode != 0 and "unknown option(s) clocks" in result.stdout + result.stderr


def test_the_option_updates_golden_files(tmp_path: Path) -> None:
    source = """
        from pathlib import Path
        from prodwrap.testing import expect_golden

        def test_golden():
            expect_golden(lambda x: x * 3, Path(__file__).with_name("golden.jsonl"), inputs=[1, 2])
        """
    first = run_pytest(tmp_path, source)
    assert first.returncode == 1 and "--prodwrap-update-golden" in first.stdout
    updated = run_pytest(tmp_path, source, "--prodwrap-update-golden")
    assert passed(updated, 1), updated.stdout + updated.stderr
    assert (tmp_path / "golden.jsonl").exists()
    again = run_pytest(tmp_path, source)
    assert passed(again, 1), again.stdout + again.stderr


def test_help_and_markers_list_the_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_it.py").write_text("", encoding="utf-8")
    plugin = [] if INSTALLED else ["-p", "prodwrap.testing._plugin"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plugin]
    helped = subprocess.run([*base, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert "--prodwrap-update-golden" in helped.stdout
    marked = subprocess.run([*base, "--markers"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert "@pytest.mark.prodwrap(clock=True, capture=False" in marked.stdout


@pytest.mark.skipif(
    os.environ.get("PRODWRAP_TEST_FRESH_VENV") != "1",
    reason="builds a venv and installs prodwrap from the index: set PRODWRAP_TEST_FRESH_VENV=1 to run it",
)
def test_a_plain_pytest_run_in_a_fresh_venv_discovers_the_plugin(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT), "pytest"], check=True, timeout=600)
    work = tmp_path / "project"
    work.mkdir()
    (work / "test_plain.py").write_text(
        "def test_fixture(prodwrap_clock):\n    assert prodwrap_clock.monotonic() == 1000.0\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [str(venv / "bin" / "pytest"), "-q"], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout + result.stderr
