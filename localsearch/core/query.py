"""A query as typed, read into what each search lane needs: the text for the embedding
model, the quoted phrases that must appear literally, and the keyword terms."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_QUERY_CHARS = 4000

_WORD = re.compile(r"\w+", re.UNICODE)
_PHRASE = re.compile(r'"([^"]*)"')
_SPACES = re.compile(r"\s+")
# Words too common to help a keyword match; dropped from OR-queries only.
STOPWORDS = frozenset(
    "a an and are as at be by for from has have how i in is it its of on or that the this to was "
    "were what when where which who why will with do does did my your can me we you".split()
)


def one_line(text: str) -> str:
    """Every run of whitespace as one space."""
    return _SPACES.sub(" ", text)


@dataclass(frozen=True)
class ParsedQuery:
    text: str  # the query for the embedding model: the user's words, quotes removed
    phrases: tuple[str, ...]  # must appear literally (case-insensitive)
    terms: tuple[str, ...]  # keyword terms, lower-case
    words: tuple[str, ...] = ()  # every word outside the phrases, lower-case, stop words too

    def fts(self, selective: Sequence[str] | None = None) -> str | None:
        """A safe FTS5 expression: every word quoted, so no user text is FTS5 syntax.

        `selective`: when given (the rarer of the terms), a chunk must hold one of them to
        match, and every term still counts in its BM25 rank. FTS5 ranks every chunk that
        matches, so common words would make a large index slow (see Searcher._keyword)."""
        phrases = [" ".join(_WORD.findall(p.lower())) for p in self.phrases]
        phrases = [p for p in phrases if p]
        quoted_terms = [f'"{t}"' for t in self.terms]
        if phrases:
            required = " AND ".join(f'"{p}"' for p in phrases)
            if quoted_terms:
                # The terms rank but do not restrict: the OR includes the phrases themselves.
                either = " OR ".join(quoted_terms + [f'"{p}"' for p in phrases])
                return f"({required}) AND ({either})"
            return required
        if selective is not None and 0 < len(selective) < len(self.terms):
            return "({}) AND ({})".format(" OR ".join(f'"{t}"' for t in selective), " OR ".join(quoted_terms))
        return " OR ".join(quoted_terms) or None

    def has_phrases(self, text: str) -> bool:
        flat = one_line(text).lower()
        return all(one_line(p).strip().lower() in flat for p in self.phrases)


def parse_query(raw: str) -> ParsedQuery:
    raw = raw[:MAX_QUERY_CHARS]
    phrases = tuple(p.strip() for p in _PHRASE.findall(raw) if p.strip())
    rest = _PHRASE.sub(" ", raw).replace('"', " ")
    words = [w.lower() for w in _WORD.findall(rest)]
    terms = [w for w in words if w not in STOPWORDS] or words
    unique = tuple(dict.fromkeys(terms))[:64]
    text = one_line(raw.replace('"', " ")).strip()
    return ParsedQuery(text=text, phrases=phrases, terms=unique, words=tuple(words))
