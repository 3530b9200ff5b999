"""Headings found in plain text (Markdown, reStructuredText), and the nearest heading
each chunk gets."""

from __future__ import annotations

from pathlib import Path

from localsearch.core.chunking import HEADING_CHARS, chunk_document
from localsearch.core.extract import Document, Page, extract
from tests.fakes import FakeEmbedder


def _headings(name: str, text: str) -> list[tuple[int, str]]:
    page = extract(Path(name), text.encode()).pages[0]
    for offset, _, words in page.headings:
        # An offset is where the heading's markup starts: its text follows within a line or two.
        assert words.split()[0] in page.text[offset : offset + 2 * len(words) + 8], (offset, words)
    return [(level, words) for _, level, words in page.headings]


MARKDOWN = """---
title: front matter is not a heading
---
# Garden  notes

Plants need water.

```python
# not a heading
print("# nor this")
```

~~~
## not this either
~~~

Setext title
============

Some text right above a rule
----------------------------

Sub section
-----------

    # indented code, not a heading

## Closing ##
#hashtag is not a heading
"""


def test_markdown_atx_and_setext_headings_outside_code() -> None:
    assert _headings("notes.md", MARKDOWN) == [
        (1, "Garden notes"),
        (1, "Setext title"),
        (2, "Some text right above a rule"),
        (2, "Sub section"),
        (2, "Closing"),
    ]


def test_markdown_offsets_point_at_the_heading_lines() -> None:
    page = extract(Path("notes.md"), MARKDOWN.encode()).pages[0]
    starts = [page.text[offset : offset + 14] for offset, _, _ in page.headings]
    assert starts == [
        "# Garden  note",
        "Setext title\n=",
        "Some text righ",
        "Sub section\n--",
        "## Closing ##\n",
    ]


def test_a_rule_under_a_paragraph_line_is_not_a_setext_heading() -> None:
    text = "First line of a paragraph\nsecond line\n---\n\nAfter.\n"
    assert _headings("a.md", text) == []


def test_plain_text_with_markdown_headings_is_read_as_markdown() -> None:
    assert _headings("readme.txt", "# Install\n\nRun it.\n\n## Usage\n\nType.\n") == [
        (1, "Install"),
        (2, "Usage"),
    ]


def test_source_code_comments_are_not_headings() -> None:
    assert _headings("script.py", "# Install\n\nimport os\n") == []


RST = """==========
 User guide
==========

Installation
============

Run the installer.

Requirements
------------

Python.

Not a title
--

Usage
=====

----------

Type a query.
"""


def test_rst_titles_take_levels_in_order_of_their_adornment_styles() -> None:
    assert _headings("guide.rst", RST) == [
        (1, "User guide"),
        (2, "Installation"),
        (3, "Requirements"),
        (2, "Usage"),
    ]


def _chunks(pages: list[Page], max_tokens: int = 8) -> list[tuple[int | None, str, str | None]]:
    chunks = chunk_document(Document(pages), FakeEmbedder().tokenize, max_tokens=max_tokens, overlap=0)
    return [(c.page, c.text, c.heading) for c in chunks]


def test_each_chunk_gets_the_last_heading_before_it() -> None:
    text = (
        "Intro words come before any heading at all.\n\n# First\n\nalpha beta gamma delta epsilon zeta eta."
        "\n\n# Second\n\ntheta iota kappa."
    )
    page = extract(Path("a.md"), text.encode()).pages[0]
    assert _chunks([page]) == [
        (None, "Intro words come before any heading at all.", None),
        (None, "# First\n\nalpha beta gamma delta epsilon zeta eta.", "First"),
        (None, "# Second\n\ntheta iota kappa.", "Second"),
    ]
    # A new section starts a new chunk: no overlap carries the end of the last section
    # into it, so it starts at its own heading and is named after it.
    text = "# One\n\na b c d e f.\n\ng h i j k l.\n\n# Two words\n\nm n o p q r."
    page = extract(Path("a.md"), text.encode()).pages[0]
    chunks = chunk_document(Document([page]), FakeEmbedder().tokenize, max_tokens=14, overlap=6)
    assert [(c.text.split()[0], c.heading) for c in chunks] == [("#", "One"), ("#", "Two words")]
    assert chunks[1].text == "# Two words\n\nm n o p q r."


def test_a_chunk_before_every_heading_takes_the_first_inside_it() -> None:
    page = Page("Intro words. And more.\n\nTitle\n\nBody.", None, ((24, 1, "Title"),))
    assert _chunks([page], max_tokens=100) == [(None, page.text, "Title")]


def test_headings_carry_across_pages() -> None:
    pages = [
        Page("Preface text is here now.", 1),
        Page("Chapter one begins right here.\n\nIt goes on and on.", 2, ((0, 1, "Chapter one"),)),
        Page("More of chapter one here.", 3),
        Page("Tail of chapter one here.\n\nSection two starts right here.", 4, ((27, 2, "Section two"),)),
    ]
    assert _chunks(pages) == [
        (1, "Preface text is here now.", None),
        (2, "Chapter one begins right here.", "Chapter one"),
        (2, "It goes on and on.", "Chapter one"),
        (3, "More of chapter one here.", "Chapter one"),
        (4, "Tail of chapter one here.", "Chapter one"),
        (4, "Section two starts right here.", "Section two"),
    ]


def test_long_headings_are_cut_short() -> None:
    title = "word " * 60
    chunks = chunk_document(
        Document([Page(f"# {title}\n\nBody.", None, ((0, 1, title.strip()),))]),
        FakeEmbedder().tokenize,
        max_tokens=100,
        overlap=0,
    )
    heading = chunks[0].heading
    assert heading is not None and len(heading) == HEADING_CHARS and heading.endswith("…")


def test_a_section_starts_a_new_chunk() -> None:
    from localsearch.core.chunking import chunk_document
    from localsearch.core.extract import Document, Page
    from localsearch.core.extract.headings import text_headings

    body = " ".join(f"word{i}" for i in range(80))
    text = f"# Soil\n\n{body}.\n\n# Watering\n\n{body}.\n\n# Harvest\n\n{body}."
    page = Page(text, None, tuple(text_headings(text, ".md")))
    chunks = chunk_document(Document([page]), str.split, max_tokens=200, overlap=20)
    assert [c.heading for c in chunks] == ["Soil", "Watering", "Harvest"]
    assert [c.text.splitlines()[0] for c in chunks] == ["# Soil", "# Watering", "# Harvest"]
