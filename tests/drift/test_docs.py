"""docs/drift.md runs as written: every ```python block, top to bottom, and what it says it prints.

A block that starts with the line ``# continued`` runs in the namespace of the block before it;
any other block starts afresh. A line ``# -> text`` after a ``print`` is the exact line it
prints; every printed line must be announced so. (The rule is DESIGN's for README.md and every
page of docs/; this module holds it for the drift page.)
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks(page: Path) -> list[str]:
    return FENCE.findall(page.read_text(encoding="utf-8"))


def expected_output(block: str) -> list[str]:
    return [line.strip()[len("# -> ") :] for line in block.splitlines() if line.strip().startswith("# -> ")]


def run_page(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run every block of ``page`` in a scratch directory; the number of blocks run."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    found = blocks(page)
    for number, block in enumerate(found, start=1):
        if not block.startswith("# continued\n"):
            namespace = {"__name__": f"docs_block_{number}"}
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"{page.name} block {number}", "exec", dont_inherit=True), namespace)
        assert out.getvalue().splitlines() == expected_output(block), f"{page.name} block {number} printed otherwise"
    return len(found)


def test_the_drift_page_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_page(ROOT / "docs" / "drift.md", tmp_path, monkeypatch) >= 5


def test_the_runner_catches_a_wrong_comment_and_a_fragment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(1 + 1)\n# -> 3\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="printed otherwise"):
        run_page(page, tmp_path, monkeypatch)
    page.write_text("```python\nx = 1\n```\n\n```python\nprint(x)\n# -> 1\n```\n", encoding="utf-8")
    with pytest.raises(NameError):
        run_page(page, tmp_path, monkeypatch)
    page.write_text("```python\nx = 1\n```\n\n```python\n# continued\nprint(x)\n# -> 1\n```\n", encoding="utf-8")
    assert run_page(page, tmp_path, monkeypatch) == 2
