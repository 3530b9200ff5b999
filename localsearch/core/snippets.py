"""The one line of a passage shown under a result, with the query's words marked."""

from __future__ import annotations

import re

from localsearch.core.query import one_line, parse_query

SNIPPET_CHARS = 320
# Markdown heading marks and underlines, which read as noise in a one-line snippet.
_MARKUP = re.compile(r"(?m)^[ \t]*#{1,6}[ \t]+|^[ \t]*([=\-~^*#])\1{2,}[ \t]*$")


def _stem(word: str) -> str:
    return word[: max(4, len(word) - 2)] if len(word) > 4 else word


def make_snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> tuple[str, list[tuple[int, int]]]:
    """The chunk on one line (the window with most query words when long) and the spans
    of query words in it, matched on word stems so "renewing" marks "renewal"."""
    flat = one_line(_MARKUP.sub(" ", text)).strip()
    parsed = parse_query(query)
    stems = sorted({_stem(t) for t in parsed.terms if len(t) > 1}, key=len, reverse=True)
    phrases = [one_line(p).strip() for p in parsed.phrases]
    alternatives = [re.escape(p) for p in phrases] + [rf"\b{re.escape(s)}\w{{0,4}}\b" for s in stems]
    marker = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None

    def spans(segment: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in marker.finditer(segment)] if marker else []

    if len(flat) <= width:
        return flat, spans(flat)
    all_spans = spans(flat)
    best_start, best_hits = 0, -1
    step = max(20, width // 4)
    for start in range(0, max(1, len(flat) - width + step), step):
        hits = sum(1 for s, _ in all_spans if start <= s < start + width)
        if hits > best_hits:
            best_start, best_hits = start, hits
    start = best_start
    if start > 0:
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    end = min(len(flat), start + width)
    if end < len(flat):
        space = flat.rfind(" ", start, end)
        end = space if space > start + width // 2 else end
    prefix = "… " if start > 0 else ""
    suffix = " …" if end < len(flat) else ""
    snippet = prefix + flat[start:end] + suffix
    return snippet, spans(snippet)
