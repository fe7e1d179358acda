"""Quality gates run with the suite: ruff lint, ruff format check, mypy --strict."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PATHS = [p for p in ("prodwrap", "tests", "examples", "benchmarks") if (ROOT / p).exists()]


def _run(*args: str) -> None:
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
    reason="ruff is in the test extra",
)
def test_ruff_lint_and_format() -> None:
    ruff = str(Path(sys.executable).parent / "ruff")
    ruff = ruff if Path(ruff).exists() else "ruff"
    _run(ruff, "check", *PATHS)
    _run(ruff, "format", "--check", *PATHS)


def test_mypy_strict() -> None:
    _run(sys.executable, "-m", "mypy", "--strict", "prodwrap", "tests/typing")


def test_the_installed_package_is_visible_to_mypy(tmp_path: Path) -> None:
    """Type-checking an application outside this checkout finds prodwrap's types (the editable
    install the README uses must not hide them behind an import hook)."""
    app = tmp_path / "app.py"
    app.write_text(
        "import prodwrap as pw\n"
        "from pydantic import BaseModel\n\n\n"
        "class A(BaseModel):\n    age: int\n\n\n"
        "def score(a: A) -> float:\n    return a.age / 100\n\n\n"
        "model = pw.ProductionModel(score, input=A)\n"
        "y: float = model({'age': 40})\n"
        "z: str = model({'age': 40})  # type: ignore[assignment]\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(app)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "prodwrap").rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}, f"split these by responsibility: {long}"
