"""Every ```python block in README.md and docs/*.md runs as it stands (DESIGN §3, Docs).

The convention, for whoever writes a page:

- Blocks run top to bottom. Every block starts in a fresh namespace, except a block whose
  first line is exactly ``# continued``: it goes on in the namespace of the block before it
  on the same page. The first block of a page cannot be ``# continued``.
- One test per chain: a block plus the ``# continued`` blocks that follow it. Its id is the
  page and the line of each block's opening fence, e.g. ``docs/drift.md:40+73``. A failure
  names the block's line, and tracebacks point at the page's own line numbers.
- Blocks run in a temporary working directory, so a block that writes files leaves nothing
  in the repository. Warnings are errors, as in the rest of the suite. A block that needs an
  event loop calls ``asyncio.run`` itself.
- Printed output: a comment line ``# -> <text>`` states one line the block prints, exactly
  (the text after ``# -> ``; a bare ``# ->`` is an empty line; trailing whitespace is not
  compared). Put it on its own line after the ``print(...)``; after several prints, several
  ``# ->`` lines. Stdout is captured per block, and when a block has ``# ->`` lines, the
  lines it printed must be those lines, in order, all of them. A block without ``# ->``
  lines still runs, but what it prints is not checked. A ``# ->`` comment at the end of a
  line of code is refused, so that no claim goes unchecked.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import tokenize
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Chains that fail on pages this branch does not own, by test id: each page's owner fixes
# them, and the lead empties this set when merging. Strict: a chain that passes fails here.
KNOWN_BROKEN: dict[str, str] = {}

CONTINUED = "# continued"
ARROW = "# ->"


@dataclass(frozen=True, slots=True)
class Block:
    """One ```python block: ``line`` is its opening fence's line (1-based) on the page."""

    page: str
    line: int
    source: str

    @property
    def continued(self) -> bool:
        first = self.source.split("\n", 1)[0]
        return first.strip() == CONTINUED

    def expected_output(self) -> list[str]:
        """The ``# ->`` lines, in order; a ``# ->`` after code on the same line is an error."""
        expected: list[str] = []
        lines = self.source.splitlines()
        tokens = tokenize.generate_tokens(io.StringIO(self.source).readline)
        for tok in tokens:
            if tok.type != tokenize.COMMENT or not tok.string.startswith(ARROW):
                continue
            row, col = tok.start
            if lines[row - 1][:col].strip():
                raise AssertionError(
                    f"{self.page}:{self.line + row}: put the '# ->' comment on its own line after the print"
                )
            text = tok.string[len(ARROW) :]
            expected.append(text[1:] if text.startswith(" ") else text)
        return expected


def parse_page(path: Path, page: str) -> list[Block]:
    """The page's ```python blocks, in order (fences must start at column 0)."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            opening, info = i, lines[i][3:].strip()
            i += 1
            while i < len(lines) and lines[i].rstrip() != "```":
                i += 1
            if i == len(lines):
                raise AssertionError(f"{page}:{opening + 1}: code fence never closed")
            if info == "python":
                blocks.append(Block(page, opening + 1, "\n".join(lines[opening + 1 : i]) + "\n"))
        i += 1
    return blocks


def chains(blocks: list[Block]) -> list[list[Block]]:
    """Blocks grouped by namespace: each chain is a block and the ``# continued`` ones after it."""
    grouped: list[list[Block]] = []
    for block in blocks:
        if block.continued:
            if not grouped:
                raise AssertionError(f"{block.page}:{block.line}: the first block of a page cannot be '# continued'")
            grouped[-1].append(block)
        else:
            grouped.append([block])
    return grouped


def chain_id(chain: list[Block]) -> str:
    return chain[0].page + ":" + "+".join(str(b.line) for b in chain)


def run_chain(chain: list[Block], path: Path, workdir: Path) -> None:
    """Run the chain's blocks in ``workdir``, in one fresh module namespace, checking each block's ``# ->`` lines.

    The namespace is a real module registered in
    ``sys.modules`` while the chain runs, so classes defined in a block pickle and resolve
    their annotations as they would in a script.
    """
    module = types.ModuleType("_prodwrap_docs_block")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    try:
        for block in chain:
            expected = block.expected_output()
            # Padding keeps the page's line numbers in tracebacks (and linecache shows the page's lines).
            code = compile("\n" * block.line + block.source, str(path), "exec")
            out = io.StringIO()
            with contextlib.chdir(workdir), contextlib.redirect_stdout(out):
                try:
                    exec(code, module.__dict__)
                except BaseException as exc:
                    exc.add_note(f"in the block at {block.page}:{block.line}; it printed:\n{out.getvalue()}")
                    raise
            printed = [line.rstrip() for line in out.getvalue().splitlines()]
            wanted = [line.rstrip() for line in expected]
            if wanted and printed != wanted:
                raise AssertionError(
                    f"{block.page}:{block.line}: the block printed\n"
                    + "\n".join(f"    {line}" for line in printed)
                    + "\nbut its '# ->' lines say\n"
                    + "\n".join(f"    {line}" for line in wanted)
                )
    finally:
        del sys.modules[module.__name__]


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _collect() -> list[tuple[str, Path, list[Block]]]:
    found = []
    for path in _pages():
        page = path.relative_to(ROOT).as_posix()
        for chain in chains(parse_page(path, page)):
            found.append((chain_id(chain), path, chain))
    return found


CHAINS = _collect()


def _params() -> list[object]:
    params: list[object] = []
    for cid, path, chain in CHAINS:
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BROKEN[cid])] if cid in KNOWN_BROKEN else []
        params.append(pytest.param(path, chain, id=cid, marks=marks))
    return params


@pytest.mark.parametrize(("path", "chain"), _params())
def test_docs_block(path: Path, chain: list[Block], tmp_path: Path) -> None:
    run_chain(chain, path, tmp_path)


def test_every_page_with_code_is_collected() -> None:
    pages_with_python = {
        p.relative_to(ROOT).as_posix() for p in _pages() if "```python" in p.read_text(encoding="utf-8")
    }
    assert {"README.md", "docs/index.md"} <= pages_with_python
    assert {cid.split(":")[0] for cid, _, _ in CHAINS} == pages_with_python


COMMAND_PAGES = ["README.md", "docs/index.md", "benchmarks/README.md"]


def test_commands_in_pages_run_without_an_active_venv() -> None:
    """After the README's set-up nothing activates .venv: commands name .venv/bin/python (or pip)."""
    for page in COMMAND_PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        for bash in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
            for command in bash.splitlines():
                bare = re.search(r"(?:^|&&\s*)(python|pip|pytest)\b", command)
                assert bare is None, f"{page}: {command!r} runs {bare.group(1)!r} from PATH, not from .venv"
        for script in re.findall(r"\.venv/bin/python ([\w/]+\.py)", text):
            assert (ROOT / script).is_file(), f"{page} runs {script}, which does not exist"
        inline = re.search(r"`(python|pip|pytest) ", text)
        assert inline is None, f"{page}: an inline `{inline.group(1)} ...` command; name .venv/bin/{inline.group(1)}"


def test_known_broken_names_collected_chains() -> None:
    ids = {cid for cid, _, _ in CHAINS}
    assert set(KNOWN_BROKEN) <= ids, sorted(set(KNOWN_BROKEN) - ids)


# The harness itself, on a small synthetic page.

SYNTHETIC = """\
# A page

```python
x = 2
print(x * 21)
# -> 42
```

Text between blocks.

```bash
echo not python
```

```python
# continued
print(x, "again")
print()
# -> 2 again
# ->
```

```python
print("x" in globals())
# -> False
```
"""


def _synthetic(tmp_path: Path, text: str) -> tuple[Path, list[list[Block]]]:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page, chains(parse_page(page, "page.md"))


def test_harness_chains_blocks_and_checks_output(tmp_path: Path) -> None:
    page, grouped = _synthetic(tmp_path, SYNTHETIC)
    assert [chain_id(c) for c in grouped] == ["page.md:3+15", "page.md:23"]
    assert grouped[0][1].expected_output() == ["2 again", ""]
    for chain in grouped:
        run_chain(chain, page, tmp_path)


def test_harness_fails_on_a_wrong_arrow_line(tmp_path: Path) -> None:
    page, grouped = _synthetic(tmp_path, SYNTHETIC.replace("# -> 42", "# -> 43"))
    wrong = r"page\.md:3: the block printed\n    42\nbut its '# ->' lines say\n    43"
    with pytest.raises(AssertionError, match=wrong):
        run_chain(grouped[0], page, tmp_path)


def test_harness_fails_on_an_unclaimed_or_missing_line(tmp_path: Path) -> None:
    page, grouped = _synthetic(tmp_path, SYNTHETIC.replace('print(x, "again")\n', 'print(x, "again")\nprint(1)\n'))
    with pytest.raises(AssertionError, match=r"page\.md:15: the block printed"):
        run_chain(grouped[0], page, tmp_path)
    page, grouped = _synthetic(tmp_path, SYNTHETIC.replace("print(x * 21)\n", ""))
    with pytest.raises(AssertionError, match=r"page\.md:3: the block printed"):
        run_chain(grouped[0], page, tmp_path)


def test_harness_starts_each_chain_fresh(tmp_path: Path) -> None:
    page, grouped = _synthetic(tmp_path, SYNTHETIC.replace("# continued\n", ""))
    assert [chain_id(c) for c in grouped] == ["page.md:3", "page.md:15", "page.md:22"]
    with pytest.raises(NameError) as info:
        run_chain(grouped[1], page, tmp_path)
    assert "in the block at page.md:15" in "".join(info.value.__notes__)
    tb = info.value.__traceback__
    lines = []
    while tb is not None:
        lines.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    assert lines[-1] == (str(page), 16)  # the page's own line number


def test_harness_runs_blocks_in_the_working_directory_given(tmp_path: Path) -> None:
    page, grouped = _synthetic(tmp_path, '```python\nopen("out.txt", "w").close()\n```\n')
    workdir = tmp_path / "work"
    workdir.mkdir()
    run_chain(grouped[0], page, workdir)
    assert (workdir / "out.txt").exists()
    assert not (ROOT / "out.txt").exists()


def test_harness_refuses_unchecked_or_misplaced_markers(tmp_path: Path) -> None:
    page, grouped = _synthetic(tmp_path, "```python\nprint(1)  # -> 1\n```\n")
    with pytest.raises(AssertionError, match=r"page\.md:2: put the '# ->' comment on its own line"):
        run_chain(grouped[0], page, tmp_path)
    with pytest.raises(AssertionError, match=r"page\.md:1: the first block of a page cannot be '# continued'"):
        _synthetic(tmp_path, "```python\n# continued\nx = 1\n```\n")
    with pytest.raises(AssertionError, match=r"page\.md:1: code fence never closed"):
        _synthetic(tmp_path, "```python\nx = 1\n")


def test_the_cache_stats_table_lists_every_field() -> None:
    import dataclasses

    from prodwrap.policies.cache import CacheStats

    table = (ROOT / "docs" / "cache.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", table, re.M))
    documented = {name for row in rows for name in row if name}
    assert {f.name for f in dataclasses.fields(CacheStats)} <= documented


def test_the_telemetry_table_lists_every_console_value() -> None:
    from typing import get_args, get_type_hints

    from prodwrap.telemetry._settings import Settings

    row = next(
        line
        for line in (ROOT / "docs" / "observability.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `console` |")
    )
    values = [v for arg in get_args(get_type_hints(Settings)["console"]) for v in get_args(arg)]
    assert values and all(f'`"{v}"`' in row for v in values)
