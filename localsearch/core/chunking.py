"""Cut extracted text into chunks measured in the model's own tokens.

Text is split into segments at paragraph and sentence ends, each segment is tokenized
once, and segments are packed greedily into chunks that fit the model, with trailing
segments repeated at the start of the next chunk as overlap. Chunks never cross pages,
so each keeps its page, and each names its nearest heading. The token ids travel with
the chunk so the engine never tokenizes the same text twice.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from localsearch.core.extract import Document, Heading

Tokenize = Callable[[str], list[int]]

# A paragraph break, or whitespace after a sentence end (Latin and CJK punctuation).
_BOUNDARY = re.compile(r"\n[ \t]*\n\s*|(?<=[.!?;:])\s+|(?<=[。！？])\s*|\n(?=\s*[-*•#>]|\s*\d+[.)]\s)")
_WORD_GAP = re.compile(r"\s+")
HEADING_CHARS = 120


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str
    page: int | None
    start_char: int  # offsets into the page's text (the file's text when unpaged)
    end_char: int
    tokens: list[int]  # content tokens, without the model's special tokens
    heading: str | None = None  # the nearest heading (see _nearest_heading)
    # Leading tokens that repeat the previous chunk's tail (the carried overlap): late
    # chunking lays chunks back onto one token stream and must not read them twice.
    overlap_tokens: int = 0


@dataclass(frozen=True)
class _Segment:
    start: int
    end: int
    tokens: list[int]


def _segments(text: str) -> Iterator[tuple[int, int]]:
    """Spans of non-blank text between boundaries."""
    position = 0
    for match in _BOUNDARY.finditer(text):
        if match.start() > position:
            yield position, match.start()
        position = max(position, match.end())
    if position < len(text):
        yield position, len(text)


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# A segment longer than this many characters per allowed token is first cut, at word gaps,
# into pieces of about that size without tokenizing it whole: halving a 50 MB line with no
# sentence end would tokenize all of it again at every level (4 MB of words in one line,
# with tests/fuzz's stand-in tokenizer: 44 s before, 9 s with the pieces).
_PIECE_CHARS_PER_TOKEN = 16


def _split_long(text: str, start: int, end: int, tokenize: Tokenize, limit: int) -> list[_Segment]:
    """A segment over the limit is cut at word gaps, halving until every piece fits;
    a single word longer than the limit is cut by characters."""
    piece = limit * _PIECE_CHARS_PER_TOKEN
    if end - start > 2 * piece:
        segments: list[_Segment] = []
        position = start
        while position < end:
            stop = min(end, position + piece)
            after = stop
            if stop < end:
                gap = _WORD_GAP.search(text, stop, min(end, stop + piece))
                if gap is not None:
                    stop, after = gap.start(), gap.end()
            begin, finish = _strip_span(text, position, stop)
            if begin < finish:
                segments.extend(_halve(text, begin, finish, tokenize, limit))
            position = after
        return segments
    return _halve(text, start, end, tokenize, limit)


def _halve(text: str, start: int, end: int, tokenize: Tokenize, limit: int) -> list[_Segment]:
    tokens = tokenize(text[start:end])
    if len(tokens) <= limit:
        return [_Segment(start, end, tokens)] if tokens else []
    middle = (start + end) // 2
    gaps = [m for m in _WORD_GAP.finditer(text, start, end) if start < m.start() < end]
    if gaps:
        gap = min(gaps, key=lambda m: abs(m.start() - middle))
        left_end, right_start = gap.start(), gap.end()
    else:
        left_end = right_start = middle
    if left_end <= start or right_start >= end:
        left_end = right_start = middle
    if middle == start:  # one character that alone exceeds the limit: keep what fits
        return [_Segment(start, end, tokens[:limit])]
    return _halve(text, start, left_end, tokenize, limit) + _halve(text, right_start, end, tokenize, limit)


class _Headings:
    """The headings of one page, and the last heading of the pages before it."""

    def __init__(self, headings: tuple[Heading, ...], carried: str | None) -> None:
        self.headings = sorted(headings)
        self.offsets = [offset for offset, _, _ in self.headings]
        self.carried = carried

    def nearest(self, start: int, end: int) -> str | None:
        """The last heading at or before `start` on this page, else the last one of an
        earlier page, else the first one inside the chunk, else None; cut short."""
        before = bisect_right(self.offsets, start)
        if before:
            found: str | None = self.headings[before - 1][2]
        elif self.carried is not None:
            found = self.carried
        elif self.headings and self.offsets[0] < end:
            found = self.headings[0][2]
        else:
            found = None
        if found is None or len(found) <= HEADING_CHARS:
            return found
        return found[: HEADING_CHARS - 1].rstrip() + "…"

    def last(self) -> str | None:
        return self.headings[-1][2] if self.headings else self.carried

    def opens_section(self, text: str, start: int) -> bool:
        """Whether a heading begins at `start` (or where its markup, like '# ', begins)."""
        at = bisect_left(self.offsets, start)
        if at == len(self.offsets):
            return False
        between = text[start : self.offsets[at]]
        return len(between) <= 8 and not between.strip("#=-~*_ \t")


def _make_chunk(
    ordinal: int,
    text: str,
    page: int | None,
    segments: list[_Segment],
    headings: _Headings,
    carried: int,
) -> Chunk:
    start, end = segments[0].start, segments[-1].end
    return Chunk(
        ordinal=ordinal,
        text=text[start:end],
        page=page,
        start_char=start,
        end_char=end,
        tokens=[t for seg in segments for t in seg.tokens],
        heading=headings.nearest(start, end),
        overlap_tokens=carried,
    )


def chunk_document(document: Document, tokenize: Tokenize, *, max_tokens: int, overlap: int) -> list[Chunk]:
    """Chunks of at most max_tokens content tokens with about `overlap` tokens repeated."""
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    overlap = max(0, min(overlap, max_tokens // 2))
    chunks: list[Chunk] = []
    last_heading: str | None = None  # headings carry across pages
    for page in document.pages:
        text = page.text
        headings = _Headings(page.headings, last_heading)
        last_heading = headings.last()
        segments: list[_Segment] = []
        for raw_start, raw_end in _segments(text):
            start, end = _strip_span(text, raw_start, raw_end)
            if start < end:
                segments.extend(_split_long(text, start, end, tokenize, max_tokens))
        current: list[_Segment] = []
        size = 0
        shared = 0  # tokens at the head of `current` carried over from the previous chunk
        for segment in segments:
            if current and size >= max_tokens // 4 and headings.opens_section(text, segment.start):
                # A new section starts a new chunk, with nothing of the last one carried
                # over: each chunk then speaks of one section and is named after it.
                chunks.append(_make_chunk(len(chunks), text, page.number, current, headings, shared))
                current, size, shared = [], 0, 0
            if current and size + len(segment.tokens) > max_tokens:
                chunks.append(_make_chunk(len(chunks), text, page.number, current, headings, shared))
                # Carry the trailing segments that fit in the overlap budget.
                carried: list[_Segment] = []
                carried_size = 0
                for previous in reversed(current):
                    if carried_size + len(previous.tokens) > overlap:
                        break
                    carried.insert(0, previous)
                    carried_size += len(previous.tokens)
                if carried_size + len(segment.tokens) > max_tokens:
                    carried, carried_size = [], 0
                current, size, shared = carried, carried_size, carried_size
            current.append(segment)
            size += len(segment.tokens)
        if current:
            chunks.append(_make_chunk(len(chunks), text, page.number, current, headings, shared))
    return chunks
