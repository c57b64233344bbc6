"""Every relative link of the README, docs/ and the results' READMEs and TABLE.md points at a file
that exists (the README's sections moved to docs/ once; a moved file must not leave a dead link)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "plugins" / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "results").glob("*/README.md")), *sorted((ROOT / "results").glob("*/TABLE*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page):
    dead = [t for t in LINK.findall(page.read_text()) if "://" not in t and not (page.parent / t).exists()]
    assert not dead, f"{page.relative_to(ROOT)}: links to missing files {dead}"


def test_the_suite_format_page_names_every_key_the_harness_accepts():
    from harness.suite.spec import REFERENCE_KEYS, RUN_KEYS, TABLE_KEYS, TOP_KEYS

    text = (ROOT / "docs" / "suite-format.md").read_text()
    rows = set(re.findall(r"^\| `([\w.]+)` \|", text, re.M))
    missing = [k for k in [*TOP_KEYS, *RUN_KEYS, *REFERENCE_KEYS, *TABLE_KEYS] if k not in rows]
    assert not missing, f"docs/suite-format.md has no row for {missing}"
