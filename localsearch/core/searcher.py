"""Semantic search: embed the query, find the nearest chunks, one result per file."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass

from localsearch.core.embedding import Embedder, truncate_dimensions
from localsearch.core.storage import ChunkHit, Index, Space

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACES = re.compile(r"\s+")
SNIPPET_CHARS = 320


@dataclass(frozen=True)
class SearchHit:
    path: str
    name: str
    folder: str
    score: float  # cosine similarity of the best-matching chunk
    snippet: str
    page: int | None
    start_char: int
    end_char: int
    chunk: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def make_snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> str:
    """The chunk's text on one line; when it is long, the window holding most query words."""
    flat = _SPACES.sub(" ", text).strip()
    if len(flat) <= width:
        return flat
    words = {w.lower() for w in _WORD.findall(query) if len(w) > 2}
    best_start, best_hits = 0, -1
    step = max(20, width // 4)
    for start in range(0, max(1, len(flat) - width + step), step):
        window = flat[start : start + width].lower()
        hits = sum(window.count(w) for w in words)
        if hits > best_hits:
            best_start, best_hits = start, hits
    start = best_start
    if start > 0:  # begin at a word
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    end = min(len(flat), start + width)
    if end < len(flat):
        space = flat.rfind(" ", start, end)
        end = space if space > start + width // 2 else end
    prefix = "… " if start > 0 else ""
    suffix = " …" if end < len(flat) else ""
    return prefix + flat[start:end] + suffix


class Searcher:
    def __init__(self, index: Index, embedder: Embedder, space: Space) -> None:
        self.index = index
        self.embedder = embedder
        self.space = space

    def embed_query(self, query: str) -> object:
        vector = self.embedder.embed_tokens([self.embedder.tokenize(query)])
        return truncate_dimensions(vector, self.space.dimensions)[0]

    def search(self, query: str, limit: int = 10) -> list[SearchHit]:
        if limit <= 0 or not query.strip():
            return []
        vector = self.embed_query(query)
        total_chunks = self.index.counts()["chunks"]
        k = min(max(limit * 8, 64), 4096)
        while True:
            best: dict[str, ChunkHit] = {}
            hits = self.index.nearest_chunks(self.space, vector, k)  # type: ignore[arg-type]
            for hit in hits:
                if hit.path not in best:
                    best[hit.path] = hit
            # Many chunks of a few files can crowd the k nearest: widen until enough files.
            if len(best) >= limit or k >= min(total_chunks, 4096):
                break
            k = min(k * 4, 4096)
        ranked = sorted(best.values(), key=lambda h: h.distance)[:limit]
        return [
            SearchHit(
                path=h.path,
                name=os.path.basename(h.path),
                folder=os.path.dirname(h.path),
                score=round(1.0 - h.distance, 6),
                snippet=make_snippet(h.text, query),
                page=h.page,
                start_char=h.start_char,
                end_char=h.end_char,
                chunk=h.ordinal,
            )
            for h in ranked
        ]
