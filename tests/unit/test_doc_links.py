"""Every relative link of README.md and docs/*.md reaches a file, and a heading when it names one.

The README keeps how things work and the defaults; the measurements behind them live in docs/.
A heading renamed or a section moved must not leave a link pointing at nothing. Anchors are
GitHub's: the heading in lower case, punctuation dropped, spaces as hyphens, repeats numbered.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.M | re.S)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading's text."""
    text = heading.strip().replace("`", "").replace("*", "").lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} (.+)$", _FENCE.sub("", page.read_text()), flags=re.M):
        slug = anchor(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", _FENCE.sub("", page.read_text()))
    return [t for t in _LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_anchor_follows_github() -> None:
    assert (
        anchor("Icons: `iconpool/` joins the probe's pools")
        == "icons-iconpool-joins-the-probes-pools"
    )
    assert (
        anchor("Why the gated head loses photos at 224 px")
        == "why-the-gated-head-loses-photos-at-224-px"
    )
    assert anchor("Throughput: `bench/serve_bench.py`") == "throughput-benchserve_benchpy"
    assert anchor("Quiet-host check, 11:02–11:06") == "quiet-host-check-11021106"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT)}")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading #{fragment} in {dest.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


def test_docs_are_named_in_the_readme() -> None:
    """A write-up in docs/ that the README never links to or names is one nobody finds."""
    text = (ROOT / "README.md").read_text()
    orphans = [p.name for p in PAGES[1:] if f"docs/{p.name}" not in text]
    assert not orphans, f"README.md names none of {orphans}"
