"""Highlight stemming against the index's own: snowballstemmer's Porter and FTS5's porter.

A snippet marks the passage words whose stem is a query word's stem. The keyword lane
matches by the stems FTS5's `porter unicode61 remove_diacritics 2` tokenizer makes, so
highlights agree with it only if the snippet stems the same way. This stems every distinct
word of the SciFact corpus (5,183 abstracts) both ways, FTS5's through the index's own
tokenizer (Index.index_tokens), ours through localsearch.core.snippets.stem (snowballstemmer,
algorithm "porter", the original Porter), and reports the agreement, by distinct word and
by occurrence, with every disagreement.

It then reads the SciFact train claims as queries and, for each content word, compares
which corpus words each highlighter marks with the words FTS5 files under the same stem:
the highlighter before this one (the word's first letters, all but two kept, plus up to
four more) and the current one. Precision and recall are by corpus occurrence. Finally it
times the marking of SciFact abstracts for those queries, both ways.

    python bench/highlight_stemming.py [--queries 809] [--timed 2000]
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import snowballstemmer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from localsearch.core.query import parse_query  # noqa: E402
from localsearch.core.snippets import FILLER, fold, highlight_spans, stem  # noqa: E402
from localsearch.core.storage import Index  # noqa: E402

EVALDATA = Path(os.environ.get("LOCALSEARCH_EVALDATA", ROOT.parent / "shared" / "evaldata"))
RESULTS = ROOT / "bench" / "results"
TOKEN = re.compile(r"[^\W_]+", re.UNICODE)  # unicode61's cut: letters and digits


def load() -> tuple[list[str], list[str]]:
    folder = EVALDATA / "scifact"
    with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
        docs = [f"{d['title']}\n\n{d['text']}" for d in map(json.loads, handle)]
    with open(folder / "queries_train.jsonl", encoding="utf-8") as handle:
        queries = [q["text"] for q in map(json.loads, handle)]
    return docs, queries


def fts5_stems(words: list[str]) -> list[list[str]]:
    with tempfile.TemporaryDirectory() as scratch:
        index = Index.open(Path(scratch) / "stems.sqlite3")
        try:
            return index.index_tokens(words)
        finally:
            index.close()


# The highlighter this replaced: a word's first letters, all but the last two (at least
# four), marked wherever a word starts with them and runs on for at most four more.
def _old_stem(word: str) -> str:
    return word[: max(4, len(word) - 2)] if len(word) > 4 else word


def old_marks(text: str, query: str) -> list[tuple[int, int]]:
    parsed = parse_query(query)
    stems = sorted({_old_stem(t) for t in parsed.terms if len(t) > 1}, key=len, reverse=True)
    if not stems:
        return []
    marker = re.compile("|".join(rf"\b{re.escape(s)}\w{{0,4}}\b" for s in stems), re.IGNORECASE)
    return [(m.start(), m.end()) for m in marker.finditer(text)]


def agreement(counts: Counter[str]) -> tuple[dict[str, object], dict[str, str]]:
    words = sorted(counts)
    theirs = fts5_stems(words)
    fts: dict[str, str] = {}
    split: list[str] = []
    disagree: list[dict[str, object]] = []
    same_words = same_occurrences = 0
    for word, tokens in zip(words, theirs, strict=True):
        if len(tokens) != 1:  # unicode61 cut the word otherwise than the snippet's regex
            split.append(word)
            continue
        fts[word] = tokens[0]
        if stem(word) == tokens[0]:
            same_words += 1
            same_occurrences += counts[word]
        else:
            disagree.append({"word": word, "fts5": tokens[0], "snowball": stem(word), "count": counts[word]})
    total_occurrences = sum(counts[w] for w in fts)
    disagree.sort(key=lambda d: -int(str(d["count"])))
    # Porter2 ("english"), snowballstemmer's other English stemmer, on the same words.
    english = snowballstemmer.stemmer("english")
    same = [w for w in fts if english.stemWord(fold(w)) == fts[w]] if fts else []
    return {
        "distinct_words": len(words),
        "compared_words": len(fts),
        "cut_differently": split[:50],
        "cut_differently_count": len(split),
        "agreement_by_word": round(same_words / len(fts), 6),
        "agreement_by_occurrence": round(same_occurrences / total_occurrences, 6),
        "disagreements": disagree,
        "english_porter2_agreement_by_word": round(len(same) / len(fts), 6),
        "english_porter2_agreement_by_occurrence": round(sum(counts[w] for w in same) / total_occurrences, 6),
    }, fts


def highlight_accuracy(queries: list[str], counts: Counter[str], fts: dict[str, str]) -> dict[str, object]:
    """Per content word of the claims: the corpus words each highlighter marks against
    those FTS5 files under the word's stem, weighted by corpus occurrences."""
    lower = sorted({w.lower() for w in fts})
    lower_counts: Counter[str] = Counter()
    by_fts_stem: dict[str, set[str]] = {}
    by_our_stem: dict[str, set[str]] = {}
    for word, n in counts.items():
        if word in fts:
            lower_counts[word.lower()] += n
            by_fts_stem.setdefault(fts[word], set()).add(word.lower())
            by_our_stem.setdefault(stem(word), set()).add(word.lower())
    query_words: Counter[str] = Counter()
    filler_marked_before = 0
    for q in queries:
        for term in parse_query(q).terms:
            for word in TOKEN.findall(term):
                if fold(word) in FILLER:
                    filler_marked_before += len(word) > 1
                    continue
                query_words[word] += 1
    tallies = {"old": [0, 0, 0], "new": [0, 0, 0]}  # true positives, marked, relevant
    for word, times in query_words.items():
        if word not in fts:
            continue
        relevant = by_fts_stem.get(fts[word], set())
        prefix = _old_stem(word)
        start = bisect.bisect_left(lower, prefix)
        old: set[str] = set()
        for candidate in lower[start:]:
            if not candidate.startswith(prefix):
                break
            if len(word) > 1 and len(candidate) - len(prefix) <= 4:
                old.add(candidate)
        new = by_our_stem.get(stem(word), set())
        for name, marked in (("old", old), ("new", new)):
            tally = tallies[name]
            tally[0] += times * sum(lower_counts[w] for w in marked & relevant)
            tally[1] += times * sum(lower_counts[w] for w in marked)
            tally[2] += times * sum(lower_counts[w] for w in relevant)
    out: dict[str, object] = {
        "query_content_words": sum(query_words.values()),
        "distinct_query_content_words": len(query_words),
        "query_filler_words_the_old_highlighter_marked": filler_marked_before,
    }
    for name, (hits, marked, relevant) in tallies.items():
        out[name] = {
            "precision": round(hits / marked, 4) if marked else None,
            "recall": round(hits / relevant, 4) if relevant else None,
        }
    return out


def timing(docs: list[str], queries: list[str], n: int) -> dict[str, object]:
    pairs = [(docs[i % len(docs)], queries[i % len(queries)]) for i in range(n)]
    result: dict[str, object] = {"pairs": n}
    for name, mark in (("old", old_marks), ("new", highlight_spans)):
        stem.cache_clear()
        times = []
        for text, query in pairs:
            started = time.perf_counter()
            mark(text, query)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        result[name] = {
            "mean_ms": round(statistics.fmean(times), 4),
            "p50_ms": round(times[len(times) // 2], 4),
            "p95_ms": round(times[int(len(times) * 0.95)], 4),
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=809)
    parser.add_argument("--timed", type=int, default=2000, help="abstracts marked in the timing")
    args = parser.parse_args()
    docs, queries = load()
    queries = queries[: args.queries]
    counts: Counter[str] = Counter(w for d in docs for w in TOKEN.findall(d))
    stems, fts = agreement(counts)
    accuracy = highlight_accuracy(queries, counts, fts)
    speed = timing(docs, queries, args.timed)
    report = {
        "benchmark": "highlight_stemming",
        "corpus": "SciFact corpus, 5,183 abstracts (title and text)",
        "queries": f"SciFact train claims, first {len(queries)}",
        "fts5_tokenizer": "porter unicode61 remove_diacritics 2",
        "library": "snowballstemmer, algorithm porter",
        "stems": stems,
        "highlights": accuracy,
        "marking_time": speed,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "highlight_stemming.json"
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(
        f"stems: {stems['compared_words']:,} distinct words, agreement {stems['agreement_by_word']:.4%} "
        f"by word, {stems['agreement_by_occurrence']:.4%} by occurrence"
    )
    print(f"{'highlighter':<12} {'precision':>10} {'recall':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for name in ("old", "new"):
        a, t = accuracy[name], speed[name]
        assert isinstance(a, dict) and isinstance(t, dict)
        print(f"{name:<12} {a['precision']:>10} {a['recall']:>8} {t['p50_ms']:>8} {t['p95_ms']:>8}")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
