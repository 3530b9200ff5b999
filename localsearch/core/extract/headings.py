"""Headings of plain text, read from the text's own markup: Markdown (ATX `# Title` lines
outside fenced code, setext titles underlined by === or ---) and reStructuredText section
titles (underlined, maybe overlined, by a repeated punctuation character). Formats with a
real structure (HTML, DOCX, ODT, EPUB) report their headings from their extractors."""

from __future__ import annotations

import re

from localsearch.core.extract.document import Heading

# A plain .txt file with "# " lines is read as Markdown: that is how most are written.
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdown", ".txt", ".text"})
RST_SUFFIXES = frozenset({".rst"})

_ATX = re.compile(r" {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)$")
_SETEXT = re.compile(r" {0,3}(={2,}|-{3,})[ \t]*$")
# A line of one repeated ASCII punctuation character: a reStructuredText adornment.
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1+[ \t]*$")
_NOT_A_TITLE = re.compile(r" {4}|\t|[>|]|[-*+][ \t]|\d+[.)][ \t]")  # code, quotes, tables, lists
_SPACES = re.compile(r"\s+")


def text_headings(text: str, suffix: str) -> tuple[Heading, ...]:
    """(offset, level, text) of each heading in `text`, by offset, for the text-like
    file types (others give none). A title must follow a blank line, another heading or
    the start, so a paragraph's last line above a rule of dashes is not taken for one."""
    suffix = suffix.lower()
    if suffix not in MARKDOWN_SUFFIXES and suffix not in RST_SUFFIXES:
        return ()
    rst = suffix in RST_SUFFIXES
    lines = text.split("\n")
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)
    found: list[Heading] = []
    styles: list[tuple[str, bool]] = []  # reStructuredText: adornment styles, first use first

    def add(line: int, level: int, title: str) -> None:
        title = _SPACES.sub(" ", title).strip()
        if title:
            first = lines[line]
            found.append((starts[line] + len(first) - len(first.lstrip()), min(level, 6), title))

    def rst_level(char: str, overlined: bool) -> int:
        if (char, overlined) not in styles:
            styles.append((char, overlined))
        return styles.index((char, overlined)) + 1

    i = 0
    fence: tuple[str, int] | None = None  # the character and length of an open code fence
    if not rst and lines[0].rstrip() == "---":  # YAML front matter
        end = next((j for j in range(1, len(lines)) if lines[j].rstrip() in ("---", "...")), None)
        i = end + 1 if end is not None else 0
    boundary = True  # the line before lines[i] is blank, a heading, or the start
    while i < len(lines):
        line = lines[i]
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if fence is not None:
            match = _FENCE.match(line)
            closes = match and match.group(1)[0] == fence[0] and len(match.group(1)) >= fence[1]
            if closes and match and not match.group(2).strip():
                fence = None
            i += 1
            boundary = fence is None
            continue
        if not rst:
            match = _FENCE.match(line)
            if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
                fence = (match.group(1)[0], len(match.group(1)))
                i += 1
                continue
            match = _ATX.match(line)
            if match:
                add(i, len(match.group(1)), match.group(2))
                i, boundary = i + 1, True
                continue
            match = _SETEXT.match(following)
            if boundary and line.strip() and match and not _NOT_A_TITLE.match(line):
                add(i, 1 if match.group(1)[0] == "=" else 2, line)
                i, boundary = i + 2, True
                continue
        elif boundary and line.strip():
            over = _ADORNMENT.match(line)
            title = following.strip()
            width = len(line.rstrip())
            closed = i + 2 < len(lines) and lines[i + 2].rstrip() == line.rstrip()
            if over and title and closed and width >= len(title) and not _ADORNMENT.match(following):
                add(i, rst_level(over.group(1), True), title)
                i, boundary = i + 3, True
                continue
            under = _ADORNMENT.match(following)
            if under and not over and not line[0].isspace() and len(following.rstrip()) >= width:
                add(i, rst_level(under.group(1), False), line)
                i, boundary = i + 2, True
                continue
        boundary = not line.strip()
        i += 1
    return tuple(found)
