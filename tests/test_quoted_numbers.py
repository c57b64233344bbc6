"""Numbers quoted in the README, docs/*.md and results/*/TABLE.md cannot go stale: a block between

    <!-- numbers from: bench table SUITE [--table NAME] [--set ...] -->
    ...
    <!-- end numbers -->

is checked against what that command prints from the committed results: every number in the block
(a decimal such as 2.04, or a mean ± std such as 1.93 ± 0.07, taken whole) must be a cell of the
output. Edit a quoted cell, or rerun a row, and this test names the block and the number."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.commands import main

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- numbers from: (bench table [^>]*?) -->(.*?)<!-- end numbers -->", re.S)
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?: ± \d+\.\d+)?(?![\w.])")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "results").glob("*/TABLE.md"))]


def quoted_blocks(text: str) -> list[tuple[str, str]]:
    return [(m.group(1).strip(), m.group(2)) for m in BLOCK.finditer(text)]


def stale_numbers(command: str, block: str, output: str) -> list[str]:
    """The numbers of a quoted block that the command's output does not print."""
    cells = set(NUMBER.findall(output))
    return [n for n in NUMBER.findall(block) if n not in cells]


_OUTPUTS: dict[str, str] = {}


def bench_output(command: str) -> str:
    if command not in _OUTPUTS:
        args = shlex.split(command)[1:]  # drop "bench"
        result = CliRunner().invoke(main, args + ["--results-dir", str(ROOT / "results")], catch_exceptions=False)
        assert result.exit_code == 0, f"`{command}` failed: {result.output}"
        _OUTPUTS[command] = result.output
    return _OUTPUTS[command]


def test_some_document_quotes_checked_numbers():
    assert sum(len(quoted_blocks(p.read_text())) for p in DOCS) >= 2


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_quoted_numbers_are_what_bench_table_prints(doc):
    for command, block in quoted_blocks(doc.read_text()):
        assert NUMBER.findall(block), f"{doc.name}: the block of `{command}` quotes no number"
        stale = stale_numbers(command, block, bench_output(command))
        assert not stale, (f"{doc.relative_to(ROOT)}: `{command}` does not print {stale} (quoted in the block "
                           "that names it); rerun the command and copy its cells")


def test_an_edited_cell_is_caught():
    """The check on the README's Table 1 block, with one cell changed by 0.01."""
    command, block = next((c, b) for c, b in quoted_blocks((ROOT / "README.md").read_text())
                          if "table1.toml" in c)
    first = NUMBER.findall(block)[0]
    value = first.split(" ± ")[0]
    edited = block.replace(first, first.replace(value, f"{float(value) + 0.01:.{len(value.split('.')[1])}f}", 1), 1)
    assert stale_numbers(command, block, bench_output(command)) == []
    assert stale_numbers(command, edited, bench_output(command)) != []
