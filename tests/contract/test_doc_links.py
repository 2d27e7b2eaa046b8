"""The documentation a clone holds links only to itself.

Every relative link in the README, docs/*.md and the services' READMEs must name a file or
folder inside the repository (a clone has nothing beside it), and every `#anchor` into a doc
that others link by section must exist there, as an `<a id="...">` or a GitHub heading slug.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]

DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "services").glob("*/README.md")]
)

# Docs whose sections are linked by anchor; an anchor into any of them must exist.
ANCHORED = {ROOT / "docs" / "performance.md", ROOT / "docs" / "architecture.md"}

# Inline links and images: [text](target) or [text](target "title"), target possibly <...>.
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$")
_HTML_ID = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (links there are examples, not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def _without_code_spans(line: str) -> str:
    return re.sub(r"`[^`]*`", "", line)


def links(text: str) -> list[str]:
    found: list[str] = []
    for line in _prose_lines(text):
        line = _without_code_spans(line)
        found.extend(_LINK.findall(line))
        ref = _REF_DEF.match(line)
        if ref:
            found.append(ref.group(1))
    return found


def _slug(heading: str) -> str:
    """GitHub's heading anchor: markup dropped, lower case, punctuation out, spaces to '-'."""
    text = re.sub(r"<[^>]+>", "", heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = doc.read_text(encoding="utf-8")
    found = set(_HTML_ID.findall(text))
    seen: dict[str, int] = {}
    for line in _prose_lines(text):
        heading = _HEADING.match(line)
        if not heading:
            continue
        slug = _slug(heading.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _is_external(target: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) is not None or target.startswith("//")


def broken_links(doc: Path, text: str | None = None) -> list[str]:
    """What is wrong with the links of ``doc`` (its text, or ``text`` read as if it were there)."""
    problems: list[str] = []
    for target in links(doc.read_text(encoding="utf-8") if text is None else text):
        if _is_external(target):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (doc.parent / unquote(path_part)).resolve() if path_part else doc
        if not dest.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
            continue
        if not dest.exists():
            problems.append(f"{target}: no such file in the repository")
            continue
        if anchor and dest in ANCHORED and unquote(anchor) not in anchors(dest):
            problems.append(f"{target}: no anchor #{anchor} in {dest.relative_to(ROOT)}")
    return problems


def test_the_documents_checked_are_there() -> None:
    names = {str(d.relative_to(ROOT)) for d in DOCS}
    assert {"README.md", "docs/architecture.md", "docs/performance.md"} <= names
    assert any(n.startswith("services/") for n in names)


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(doc: Path) -> None:
    assert broken_links(doc) == []


def test_the_checker_sees_broken_links() -> None:
    """The checks themselves catch what they are for, on a text written to fail."""
    text = (
        "[design](../../shared/DESIGN.md) [gone](missing.md) "
        "[bad](performance.md#no-such-section) [good](performance.md#tracing-cost) "
        "[slug](architecture.md#library-choices-and-why) [web](https://example.org/x)\n"
        "```\n[example](not-checked.md)\n```\n"
    )
    problems = broken_links(ROOT / "docs" / "probe.md", text)
    assert problems == [
        "../../shared/DESIGN.md: outside the repository",
        "missing.md: no such file in the repository",
        "performance.md#no-such-section: no anchor #no-such-section in docs/performance.md",
    ]
