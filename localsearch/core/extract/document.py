"""What an extractor returns: a document's pages of text, with their headings."""

from __future__ import annotations

from dataclasses import dataclass

Heading = tuple[int, int, str]  # (character offset in the page's text, level 1-6, text)


@dataclass(frozen=True)
class Page:
    text: str
    number: int | None  # 1-based for paged formats, else None
    # The headings the page holds, by offset, where the format knows its structure.
    headings: tuple[Heading, ...] = ()


@dataclass(frozen=True)
class Document:
    pages: list[Page]
    warnings: tuple[str, ...] = ()

    @property
    def char_count(self) -> int:
        return sum(len(p.text) for p in self.pages)
