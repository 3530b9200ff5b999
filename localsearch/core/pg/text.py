"""Words for PostgreSQL's full-text search, cut and stemmed exactly as the SQLite index's
FTS5 tokenizer does it (`porter unicode61 remove_diacritics 2`, through snippets.stem),
so that a word matches the same passages on both backends and BM25 reads the same
counts. PostgreSQL stores them as a `tsvector` (GIN-indexed) and is asked with a
`tsquery` built from the FTS5 expression the searcher writes (query.ParsedQuery.fts)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from localsearch.core.snippets import stem

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)  # unicode61 splits words at "_" too
# tsvector limits: positions 1..16383, 256 positions a lexeme, lexemes under 2 KB.
_MAX_POSITION = 16383
_MAX_POSITIONS = 256
_MAX_LEXEME_BYTES = 2000


def tokens(text: str) -> list[str]:
    """The text's tokens, stemmed, in order: what FTS5 indexes for it."""
    return [stem(word) for word in _TOKEN.findall(text)]


def _lexeme(token: str) -> str:
    # Tokens are letters and digits only: no quote or backslash to escape.
    return "'" + token + "'"


def tsvector_literal(token_list: Iterable[str]) -> str:
    """A tsvector in PostgreSQL's input syntax, with each token's positions."""
    positions: dict[str, list[int]] = {}
    for position, token in enumerate(token_list, start=1):
        if len(token.encode("utf-8")) >= _MAX_LEXEME_BYTES:
            continue
        found = positions.setdefault(token, [])
        if len(found) < _MAX_POSITIONS:
            found.append(min(position, _MAX_POSITION))
    return " ".join(f"{_lexeme(t)}:{','.join(map(str, p))}" for t, p in positions.items())


_EXPRESSION = re.compile(r'"([^"]*)"|(\()|(\))|\b(AND|OR)\b')


class Phrase(tuple[str, ...]):
    """The stemmed tokens of one quoted string of an FTS5 expression."""


def translate(match: str) -> tuple[str, list[Phrase]]:
    """An FTS5 expression of quoted strings, AND, OR and parentheses (what ParsedQuery.fts
    writes) as a tsquery, and its phrases in order (each counts in BM25, as in FTS5).
    A quoted string of several tokens is a phrase (<->); one of none matches nothing."""
    out: list[str] = []
    phrases: list[Phrase] = []
    for m in _EXPRESSION.finditer(match):
        quoted, opening, closing, operator = m.groups()
        if quoted is not None:
            phrase = Phrase(tokens(quoted))
            if not phrase:
                out.append("'no match'")  # a lexeme no token can be (tokens hold no space)
                continue
            phrases.append(phrase)
            out.append("(" + " <-> ".join(_lexeme(t) for t in phrase) + ")")
        elif opening:
            out.append("(")
        elif closing:
            out.append(")")
        else:
            out.append("&" if operator == "AND" else "|")
    return " ".join(out), phrases
