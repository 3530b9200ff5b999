"""The one line of a passage shown under a result, with the query's words marked.

A passage word is marked when it has the stem of one of the query's content words, by
the Porter algorithm the full-text index's tokenizer uses (`porter unicode61
remove_diacritics 2`, see migrations.py): what is marked is what the keyword lane
matches, so "renewing" marks "renewal" and "pasta" does not mark "paste". Filler words
("should", "before", "our") are not marked; quoted phrases are marked as typed."""

from __future__ import annotations

import functools
import re
import threading
import unicodedata

from localsearch.core.query import STOPWORDS, one_line, parse_query

SNIPPET_CHARS = 320
# Markdown heading marks and underlines, which read as noise in a one-line snippet.
_MARKUP = re.compile(r"(?m)^[ \t]*#{1,6}[ \t]+|^[ \t]*([=\-~^*#])\1{2,}[ \t]*$")
# A token as FTS5's unicode61 tokenizer cuts them: letters and digits (it splits at "_").
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# Words that carry no topic of their own: never marked, unless a query holds nothing else.
# Wider than query.STOPWORDS, which the keyword lane drops and whose ranking is tuned.
FILLER = STOPWORDS | frozenset(
    "about above after again against all also am any because been before being below between both "
    "but could doing down during each either else ever every few further had he her here hers "
    "herself him himself his however if into just may might mine more most much must myself "
    "neither no nor not now off once only other our ours ourselves out over own per rather same "
    "shall she should since so some such than their theirs them themselves then there these they "
    "those though through thus too under until up upon us very via well whether while whom whose "
    "within without would yet yours yourself yourselves itself".split()
)
# FTS5's Porter step leaves tokens shorter than 3 or longer than 64 bytes as they are.
_STEMMED_BYTES = range(3, 65)

_stemmers = threading.local()  # a snowballstemmer stemmer keeps state between calls


def fold(word: str) -> str:
    """Case-folded without diacritics, as unicode61 with remove_diacritics folds a token:
    one character for one (the micro sign becomes mu, but "ß" stays)."""
    folded = "".join(_fold_char(c) for c in word)
    decomposed = unicodedata.normalize("NFD", folded)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


@functools.lru_cache(maxsize=4096)
def _initial(char: str) -> str:
    return fold(char)[:1]


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    folded = char.casefold()
    return folded if len(folded) == 1 else char.lower()


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The index's stem of one token: folded, then cut by the Porter algorithm."""
    folded = fold(word)
    if len(folded.encode("utf-8")) not in _STEMMED_BYTES:
        return folded
    stemmer = getattr(_stemmers, "porter", None)
    if stemmer is None:
        import snowballstemmer  # on first use: its 36 languages load at once (about 20 ms)

        stemmer = _stemmers.porter = snowballstemmer.stemmer("porter")
    return str(stemmer.stemWord(folded))


@functools.lru_cache(maxsize=256)
def query_stems(query: str) -> frozenset[str]:
    """The stems of the words to mark for a query: its content words (all of its words
    when it has nothing else), phrases apart."""
    words = [t for word in parse_query(query).words for t in _TOKEN.findall(word)]
    content = [w for w in words if fold(w) not in FILLER] or words
    return frozenset(stem(w) for w in content)


def highlight_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Spans of `text` to mark for the query, in order and apart."""
    parsed = parse_query(query)
    phrases = [one_line(p).strip() for p in parsed.phrases]
    spans: list[tuple[int, int]] = []
    if phrases:
        literal = re.compile("|".join(re.escape(p) for p in phrases), re.IGNORECASE)
        spans = [(m.start(), m.end()) for m in literal.finditer(text)]
    stems = query_stems(query)
    if stems:
        # Porter rewrites only endings, so a word's stem starts with its first letter:
        # only words sharing one with a query stem are stemmed (a stem costs far more).
        initials = {s[0] for s in stems}
        taken = iter(spans)
        phrase = next(taken, None)
        words: list[tuple[int, int]] = []
        for m in _TOKEN.finditer(text):
            word = m.group()
            if _initial(word[0]) not in initials:
                continue
            while phrase is not None and phrase[1] <= m.start():
                phrase = next(taken, None)
            inside = phrase is not None and phrase[0] <= m.start() < phrase[1]
            if not inside and stem(word) in stems:
                words.append((m.start(), m.end()))
        spans = sorted(spans + words)
    return spans


def make_snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> tuple[str, list[tuple[int, int]]]:
    """The chunk on one line (the window with most query words when long) and the spans
    of query words in it."""
    flat = one_line(_MARKUP.sub(" ", text)).strip()
    if len(flat) <= width:
        return flat, highlight_spans(flat, query)
    all_spans = highlight_spans(flat, query)
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
    shift = len(prefix) - start  # the window's spans, moved to where the window now starts
    return prefix + flat[start:end] + suffix, [
        (s + shift, e + shift) for s, e in all_spans if start <= s and e <= end
    ]
