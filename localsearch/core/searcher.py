"""Search: keyword (FTS5 BM25), semantic (nearest chunk vectors) and hybrid (both, each
read on an absolute scale and mixed). One result per file, carrying its best chunk, a snippet
with the query's words marked, and the file's other matching chunks."""

from __future__ import annotations

import functools
import math
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from localsearch.core.codes import CodeCache, binary_codes, shortlist
from localsearch.core.embedding import Embedder, truncate_dimensions
from localsearch.core.query import ParsedQuery, one_line, parse_query
from localsearch.core.snippets import make_snippet
from localsearch.core.storage import NO_FILTERS, ChunkHit, Filters, Index, Space
from localsearch.core.store_protocol import IndexStore, NearestChunks

MODES = ("hybrid", "semantic", "keyword")
METRICS = ("cosine", "dot", "euclidean")
SORTS = ("relevance", "date")
# How hybrid mode mixes its lanes: "calibrated" (the default; see _fuse_calibrated), and the
# two it was measured against, kept so bench/search_quality.py can rerun them: "minmax"
# (each lane scaled over the files it found) and "rrf" (reciprocal rank fusion, k = 60).
FUSIONS = ("calibrated", "minmax", "rrf")
# Hybrid relevance = MEANING_WEIGHT x the cosine read on the model's calibration + the rest
# x (the share of the query's term weight a passage holds) ** KEYWORD_POWER; see
# _fuse_calibrated. Chosen on SciFact train and the everyday set's tuning queries
# (bench/fusion_tuning.py, results/fusion_tuning*.json, in-sample): of weights 0.35-0.95,
# powers 1-3 and both scales, this kept everyday top-1 at its best (0.936) with SciFact
# nDCG@10 0.734; SciFact alone peaked at 0.738 (weight 0.5, power 1, quantile scale),
# where the everyday top-1 fell to 0.70.
MEANING_WEIGHT = 0.5
KEYWORD_POWER = 2.0
# How a cosine is read on the model's calibration: "linear" (evenly from the lowest to the
# highest cosine of its relevant pairs) or "quantile" (the share of relevant pairs that score
# no higher). Short everyday queries have lower cosines than SciFact's claims, and the
# quantile scale squeezes them where the linear one keeps them apart.
MEANING_SCALE = "linear"
# Min-max baseline: each lane scaled to 0..1 over the files it found, mixed half and half.
MINMAX_MEANING_WEIGHT = 0.5
RRF_K = 60
# Results under these are "weak": shown apart and collapsed in the window. The hybrid floor
# kept about 90% of the relevant files in the top 10 of the everyday tuning queries and
# about 5% of the others (on SciFact, whose wrong answers are on the same topic, no floor
# tells them apart).
RELEVANCE_FLOOR = 0.15
KEYWORD_FLOOR = 0.35  # keyword mode: share of the query's keyword weight matched
# A query of one word found in at most this share of chunks (or RARE_WORD_CHUNKS, on a small
# index) is a name or a code: files holding it literally rank first.
RARE_WORD_SHARE = 0.01
RARE_WORD_CHUNKS = 5


@dataclass(frozen=True)
class ChunkMatch:
    chunk: int
    page: int | None
    start_char: int
    end_char: int
    score: float
    heading: str | None = None  # the chunk's nearest heading


@dataclass(frozen=True)
class SearchHit:
    path: str
    name: str
    folder: str
    # What the list is ordered by, on a readable scale: relevance 0..1 in hybrid mode, the
    # share of the query's keyword weight matched (0..1) in keyword mode, the best chunk's
    # similarity (cosine by default; see metric) in semantic mode.
    score: float
    snippet: str
    page: int | None
    start_char: int
    end_char: int
    chunk: int
    modified: float = 0.0
    highlights: list[tuple[int, int]] = field(default_factory=list)  # spans of snippet to mark
    rank_score: float = 0.0  # the raw ordering key: fused score, BM25 (keyword mode) or cosine
    matches: list[ChunkMatch] = field(default_factory=list)  # the file's other matching chunks
    heading: str | None = None  # the best chunk's nearest heading
    cosine: float = 0.0  # the best chunk's cosine to the query, in every mode
    keyword: float | None = None  # share of the query's keyword weight matched; None: no match
    bm25: float | None = None  # the file's best BM25 (higher is better); None: no match
    weak: bool = False  # under the relevance floor: shown apart, as a weaker match
    # What score is: "relevance" (0..1), or the metric of a similarity ("cosine", "dot",
    # "euclidean"), or "fused" for the baseline fusions measured in bench/search_quality.py.
    scale: str = "relevance"
    host: str = ""  # the machine the file is on, in a shared index; "" on this machine's own index

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class CosineCalibration:
    """What a cosine means for one model: the cosines at evenly spaced quantiles of its
    relevant query-passage pairs (SciFact train, measured by bench/fusion_calibration.py).
    A cosine reads as the share of relevant pairs that score no higher, the same on any
    folder however many other files match."""

    quantiles: tuple[float, ...]  # ascending cosines at shares 0, 1/n, ..., 1

    def relevance(self, cosine: float) -> float:
        if MEANING_SCALE == "linear":  # evenly from the lowest relevant cosine to the highest
            low, high = self.quantiles[0], self.quantiles[-1]
            return min(1.0, max(0.0, (cosine - low) / (high - low)))
        shares = np.linspace(0.0, 1.0, len(self.quantiles))
        return float(np.interp(cosine, self.quantiles, shares))

    def cosine_at(self, share: float) -> float:
        shares = np.linspace(0.0, 1.0, len(self.quantiles))
        return float(np.interp(share, shares, self.quantiles))


# Per model (the space's model name); models not listed use the default model's.
CALIBRATIONS: dict[str, CosineCalibration] = {
    # bench/results/fusion_calibration.json: 919 relevant pairs of the SciFact train split.
    "all-minilm-l6-v2": CosineCalibration(
        (
            0.1343,
            0.3358,
            0.3986,
            0.4280,
            0.4619,
            0.5009,
            0.5233,
            0.5520,
            0.5749,
            0.5933,
            0.6069,
            0.6243,
            0.6442,
            0.6639,
            0.6826,
            0.6998,
            0.7218,
            0.7502,
            0.7700,
            0.8095,
            0.9072,
        )
    ),
}
DEFAULT_CALIBRATION = "all-minilm-l6-v2"
# Semantic mode marks a result weak when its cosine is below this share of relevant pairs.
COSINE_FLOOR_SHARE = 0.05


@functools.lru_cache(maxsize=16)
def _cosine_floor(calibration: CosineCalibration) -> float:
    """Semantic mode's weak floor: worked out once per model, not once per result."""
    return calibration.cosine_at(COSINE_FLOOR_SHARE)


def calibration_for(model: str) -> CosineCalibration:
    name = re.split(r"[@+#]", model, maxsplit=1)[0]
    return CALIBRATIONS.get(name, CALIBRATIONS[DEFAULT_CALIBRATION])


def _metric_score(cosine: float, metric: str) -> float:
    if metric == "euclidean":  # distance between unit vectors: lower is closer
        return round(math.sqrt(max(0.0, 2.0 - 2.0 * cosine)), 6)
    return round(cosine, 6)  # vectors are unit length, so the dot product is the cosine


@dataclass
class _FileCandidate:
    best: ChunkHit
    cosine: float | None = None
    semantic_rank: int | None = None
    keyword_rank: int | None = None
    bm25: float | None = None
    fused: float = 0.0  # hybrid score, 0..1
    chunks: dict[int, tuple[ChunkHit, float]] = field(default_factory=dict)  # id -> (hit, cosine)
    chunk_bm25: dict[int, float] = field(default_factory=dict)  # id -> FTS5 BM25 (lower is better)
    chunk_cover: dict[int, float] = field(default_factory=dict)  # id -> share of the query's IDF held
    keyword: float | None = None  # share of the query's keyword weight its best chunk matches
    literal: bool = False  # holds a rare one-word query literally


@dataclass(frozen=True)
class _KeywordFound:
    hits: list[ChunkHit]  # best BM25 first
    # BM25 of a passage of average length holding every query term once: the sum of the
    # terms' inverse document frequencies. 0 when nothing can match.
    full_match: float = 0.0
    rare_word: bool = False  # the query is one word that few chunks hold
    idf: dict[str, float] = field(default_factory=dict)  # each query term's weight (no phrases)
    # What the fusion reads of the hits, read on the keyword lane's thread while the query
    # is embedded (see Searcher._lane_keyword): their vectors, and the query terms their
    # texts hold (terms_held of every hit; `held_ids` says which were looked at).
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    held: dict[int, set[str]] = field(default_factory=dict)
    held_ids: frozenset[int] = frozenset()


def _dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Row-by-vector dot products without BLAS: for a few thousand rows NumPy's own loop
    is quicker (0.9 ms against 4.3 ms on a busy 2-core machine) and starts no threads."""
    return np.einsum("ij,j->i", matrix, vector)


def _keyword_share(bm25: float | None, full_match: float) -> float | None:
    """BM25 (FTS5's sign: lower is better) as a share of a full match, at most 1."""
    if bm25 is None:
        return None
    return min(1.0, -bm25 / full_match) if full_match > 0 else 0.0


def _words_signal(f: _FileCandidate, chunk_id: int, found: _KeywordFound) -> float:
    """A chunk's keyword evidence, 0..1: the share of the query's term weight it holds;
    for a quoted phrase (whose weight is unknown), its BM25 against the best hit's."""
    if found.idf:
        return f.chunk_cover.get(chunk_id, 0.0)
    return _keyword_share(f.chunk_bm25.get(chunk_id), found.full_match) or 0.0


def _literal_first(ranked: list[_FileCandidate]) -> None:
    """Files holding a rare one-word query literally are already first; the others' scores
    are held below the lowest of them so the scores still fall down the list."""
    literal = [f.fused for f in ranked if f.literal]
    if not literal:
        return
    ceiling = min(literal)
    for f in ranked:
        if not f.literal:
            f.fused = min(f.fused, max(0.0, ceiling - 0.001))


class _KeywordLane:
    """The keyword lane on a thread of its own with its own connection to the index.
    SQLite and llama.cpp both let go of Python's lock while they work, so the words are
    searched while the query is embedded and the vectors are scanned: on two idle cores
    a hybrid search costs about the slower lane, not both."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="keyword-lane")
        self._index: Index | None = None

    def _here(self) -> Index:  # runs on the lane's thread: the connection stays there
        if self._index is None:
            self._index = Index.open(self._path)
        return self._index

    def submit(self, work: Callable[[IndexStore], _KeywordFound]) -> Future[_KeywordFound]:
        return self._pool.submit(lambda: work(self._here()))

    def close(self) -> None:
        def close_here() -> None:
            if self._index is not None:
                self._index.close()
                self._index = None

        self._pool.submit(close_here).result()
        self._pool.shutdown()


class Searcher:
    """One per thread: holds the query-embedding cache of its lane and, for long-lived
    lanes (the window, batch searches), a CodeCache.

    Semantic retrieval has two stages: binary codes (hamming distance) pick candidates,
    then the stored full-precision vectors rescore them exactly."""

    # Chunks rescored with full vectors per query at the least, and how many times as many
    # the hamming stage hands to the asymmetric one (see bench/search_latency.py).
    CANDIDATES = 2000
    PRESELECT = 4
    # Chunks the keyword lane's matching terms may hold between them (see _keyword).
    KEYWORD_POSTINGS = 5000

    def __init__(
        self,
        index: IndexStore,
        embedder: Embedder,
        space: Space,
        *,
        cache_size: int = 256,
        keep_vectors: bool = False,
        earlier: Sequence[Space] = (),
    ) -> None:
        """earlier: other spaces whose vectors answer the same query vector (the same
        model and dimensions, passages read another way), searched for the files not yet
        embedded into `space`: after a change of setting, or an upgrade that made a new
        space, meaning search goes on while the files are embedded again."""
        self.index = index
        self.embedder = embedder
        self.space = space
        self.earlier = tuple(s for s in earlier if s.dimensions == space.dimensions and s.id != space.id)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._codes = CodeCache() if keep_vectors else None
        # Long-lived lanes search words and meaning at once; a one-shot search would pay
        # more to open a second connection than it saves.
        self._keyword_lane = _KeywordLane(index.path) if keep_vectors and index.path else None
        self._totals: dict[int, tuple[int, int]] = {}  # id(index) -> (data version, chunks)

    def close(self) -> None:
        if self._keyword_lane is not None:
            self._keyword_lane.close()
            self._keyword_lane = None

    def embed_query(self, text: str) -> np.ndarray:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        tokens = self.embedder.tokenize(text)
        embedded = self.embedder.embed_tokens([tokens], role="query")  # with the query prompt
        vector = truncate_dimensions(embedded, self.space.dimensions)[0]
        self._cache[text] = vector
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return vector

    # -- retrieval lanes -----------------------------------------------------
    def _semantic(self, vector: np.ndarray, want_files: int, filters: Filters) -> list[ChunkHit]:
        """Nearest chunks by cosine, best first: in this searcher's space, and in the
        earlier spaces (whose chunks are those of files not yet embedded again)."""
        hits = self._semantic_in(self.space, vector, want_files, filters)
        if self.earlier:
            for space in self.earlier:
                hits += self._semantic_in(space, vector, want_files, filters)
            hits.sort(key=lambda h: h.distance)
        return hits

    def _semantic_in(
        self, space: Space, vector: np.ndarray, want_files: int, filters: Filters
    ) -> list[ChunkHit]:
        """Nearest chunks of one space by cosine, best first, widened until they cover
        enough distinct files: candidates from binary codes, rescored with the stored vectors."""
        if isinstance(self.index, NearestChunks):  # the backend's own nearest-neighbour index
            return self.index.nearest_chunks(space, vector, want_files, filters)
        code = binary_codes(vector)[0]
        cache = (
            self._codes.current(self.index, space)
            if self._codes and not filters.active and space is self.space
            else None
        )
        rescored = self.CANDIDATES
        if cache is not None:
            # A smaller index needs fewer: 1,000 kept 0.995 of the exact top 10 files at
            # 100,000 SciFact-like chunks, and each costs a read of its vector.
            rescored = min(rescored, max(rescored // 2, len(cache.ids) // 100))
        n = max(rescored, want_files * 16)
        while True:
            # Stage 1: hamming distance over every code picks PRESELECT × n chunks; the
            # asymmetric code score keeps n; stage 2 rescores those with full vectors.
            wide = self.PRESELECT * n
            if cache is not None:
                # Hamming ranks grow coarser as the index grows: a million SciFact-like
                # chunks needed 1/32 of them to keep 0.99 of the exact top 10 files.
                wide = max(wide, len(cache.ids) // 32)
                ids, codes = cache.nearest(code, wide)
            else:
                ids, codes = self.index.coarse_candidates(space, code.tobytes(), wide, filters)
            found, matrix = self.index.chunk_vector_matrix(space, shortlist(ids, codes, vector, n))
            if not len(found):
                return []
            scores = _dot(matrix, vector)
            order = np.argsort(-scores, kind="stable")
            hits: list[ChunkHit] = []
            files: set[str] = set()
            # Rows (with text) only for the best-scored chunks until enough files are covered.
            for start in range(0, len(order), 128):
                block = order[start : start + 128]
                rows = self.index.chunk_hits(
                    [int(found[i]) for i in block], filters, distances=[1.0 - float(scores[i]) for i in block]
                )
                for i in block:
                    row = rows.get(int(found[i]))
                    if row is not None:
                        hits.append(row)
                        files.add(row.path)
                if len(files) >= want_files:
                    break
            if len(files) >= want_files or len(ids) < wide:
                return hits
            n *= 4

    def _chunk_vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        vectors = self.index.chunk_vectors(self.space, chunk_ids)
        for space in self.earlier:
            if len(vectors) == len(set(chunk_ids)):
                break
            vectors.update(self.index.chunk_vectors(space, [c for c in chunk_ids if c not in vectors]))
        return vectors

    def _chunk_total(self, index: IndexStore) -> int:
        version = index.data_version()
        cached = self._totals.get(id(index))
        if cached is None or cached[0] != version:
            cached = self._totals[id(index)] = (version, index.chunk_total())
        return cached[1]

    def _lane_keyword(
        self, parsed: ParsedQuery, want_files: int, filters: Filters, index: IndexStore, evidence: bool
    ) -> _KeywordFound:
        """The keyword lane's work: the hits and, for the calibrated fusion (`evidence`),
        what it reads of them, their vectors and the query terms they hold. On two cores
        this runs while the other thread embeds the query and scans the codes, instead of
        after both lanes; each passage's answers are its own, so they are the same."""
        found = self._keyword(parsed, want_files, filters, index)
        if not evidence or not found.hits:
            return found
        ids = [h.chunk_id for h in found.hits]
        vectors = index.chunk_vectors(self.space, ids)
        if not found.idf or found.full_match <= 0:  # _fill_keyword reads no terms then
            return replace(found, vectors=vectors)
        held = index.terms_held(list(found.idf), {h.chunk_id: h.text for h in found.hits})
        return replace(found, vectors=vectors, held=held, held_ids=frozenset(ids))

    def _keyword(
        self, parsed: ParsedQuery, want_files: int, filters: Filters, index: IndexStore | None = None
    ) -> _KeywordFound:
        index = index or self.index
        counts = index.term_counts(parsed.terms) if parsed.terms else {}
        total = self._chunk_total(index)
        # FTS5's inverse document frequency, so the sum is on BM25's own scale. Terms the
        # index lacks count at their full weight: a query whose words mostly miss the
        # folder gets little from the one that hits.
        idf = {
            t: max(1e-6, math.log((total - n + 0.5) / (n + 0.5)))
            for t in parsed.terms
            for n in (counts.get(t, 0),)
        }
        full_match = sum(idf.values())
        words = one_line(parsed.text).strip()
        rare_word = (
            not parsed.phrases
            and bool(parsed.terms)
            and " " not in words
            and 0
            < min(counts.get(t, 0) for t in parsed.terms)
            <= max(RARE_WORD_CHUNKS, total * RARE_WORD_SHARE)
        )
        selective: list[str] | None = None
        if len(parsed.terms) > 1 and not parsed.phrases:
            # The rarest terms, up to a budget of postings, decide which chunks match:
            # BM25 ranks every match, about 1 µs each here, so "patients cancer" over a
            # million chunks would rank hundreds of thousands. Common words add little to
            # BM25 (low IDF) and still count in the rank of the chunks that match.
            present = sorted((counts.get(t, 0), t) for t in parsed.terms if counts.get(t, 0))
            if not present:
                return _KeywordFound([], full_match, idf=idf)
            selective, postings = [], 0
            for count, term in present:
                if selective and postings + count > self.KEYWORD_POSTINGS:
                    break
                selective.append(term)
                postings += count
            parsed = replace(parsed, terms=tuple(t for _, t in present))
        expression = parsed.fts(selective)
        if expression is None:
            return _KeywordFound([], full_match, idf=idf)
        hits = index.keyword_chunks(expression, max(want_files * 8, 200), filters)
        if parsed.phrases:
            hits = [h for h in hits if parsed.has_phrases(h.text)]
            # A phrase's weight is unknown without reading its postings; every hit holds it,
            # so the best of them stands for a full match.
            full_match = max([full_match, *(-h.distance for h in hits)])
            idf = {}  # a phrase's weight is unknown: its hits are read by BM25 alone
        return _KeywordFound(hits, full_match, rare_word, idf)

    # -- the search ----------------------------------------------------------
    def search(
        self,
        query: str,
        limit: int = 10,
        *,
        mode: str = "hybrid",
        filters: Filters = NO_FILTERS,
        metric: str = "cosine",
        sort: str = "relevance",
        fusion: str = "calibrated",
    ) -> list[SearchHit]:
        if mode not in MODES or metric not in METRICS or sort not in SORTS or fusion not in FUSIONS:
            raise ValueError(f"unknown mode, metric, sort or fusion: {mode}, {metric}, {sort}, {fusion}")
        parsed = parse_query(query)
        if limit <= 0 or not (parsed.text or parsed.phrases):
            return []
        want = max(limit, 10) * 3
        keyword_future: Future[_KeywordFound] | None = None
        if mode in ("keyword", "hybrid") and self._keyword_lane is not None:
            evidence = mode == "hybrid" and fusion == "calibrated"
            keyword_future = self._keyword_lane.submit(
                lambda index: self._lane_keyword(parsed, want, filters, index, evidence)
            )
        # Embedded in every mode: keyword results report a cosine score too.
        vector = self.embed_query(parsed.text or " ".join(parsed.phrases))
        files: dict[str, _FileCandidate] = {}

        if mode in ("semantic", "hybrid"):
            if parsed.phrases:
                # A quoted phrase restricts every mode: rank the chunks that contain it.
                pool = self._keyword(parsed, want * 4, filters).hits
                vectors = self._chunk_vectors([h.chunk_id for h in pool])
                scored = sorted(
                    ((h, float(vectors[h.chunk_id] @ vector)) for h in pool if h.chunk_id in vectors),
                    key=lambda pair: -pair[1],
                )
            else:
                scored = [(h, 1.0 - h.distance) for h in self._semantic(vector, want, filters)]
            for hit, cosine in scored:
                entry = files.get(hit.path)
                if entry is None:
                    files[hit.path] = _FileCandidate(
                        best=hit,
                        cosine=cosine,
                        semantic_rank=len(files) + 1,
                        chunks={hit.chunk_id: (hit, cosine)},
                    )
                else:
                    entry.chunks.setdefault(hit.chunk_id, (hit, cosine))

        found = _KeywordFound([])
        if mode in ("keyword", "hybrid"):
            keyword_files: dict[str, None] = {}  # insertion-ordered set
            found = (
                keyword_future.result()
                if keyword_future is not None
                else self._keyword(parsed, want, filters)
            )
            for hit in found.hits:
                entry = files.get(hit.path)
                if hit.path not in keyword_files:
                    keyword_files[hit.path] = None
                    if entry is None:
                        entry = files[hit.path] = _FileCandidate(best=hit)
                    entry.keyword_rank = len(keyword_files)
                    entry.bm25 = hit.distance
                if entry is not None:
                    entry.chunks.setdefault(hit.chunk_id, (hit, float("nan")))
                    entry.chunk_bm25.setdefault(hit.chunk_id, hit.distance)
            if found.rare_word:
                self._mark_literal(files.values(), parsed.text)

        calibration = calibration_for(self.space.model)
        if mode == "semantic":
            ranked = sorted(
                (f for f in files.values() if f.semantic_rank), key=lambda f: f.semantic_rank or 0
            )
        elif mode == "keyword":
            ranked = sorted((f for f in files.values() if f.keyword_rank), key=lambda f: f.keyword_rank or 0)
            for f in ranked:
                f.keyword = _keyword_share(f.bm25, found.full_match)
        else:
            if fusion == "calibrated":
                # Both signals for every candidate before they are mixed: the true cosine of
                # chunks only the keyword lane found, the BM25 of chunks only meaning found.
                self._fill_cosines(files.values(), vector, found.vectors)
                self._fill_keyword(files.values(), found)
                self._fuse_calibrated(files.values(), calibration, found)
            elif fusion == "minmax":
                self._fuse_minmax(files.values())
            else:
                self._fuse_rrf(files.values())
            ranked = sorted(files.values(), key=lambda f: (not f.literal, -f.fused))
            if fusion == "calibrated" and found.rare_word:
                _literal_first(ranked)
        ranked = ranked[:limit]
        self._fill_cosines(ranked, vector, found.vectors)
        if sort == "date":
            ranked.sort(key=lambda f: -f.best.mtime)
        return [self._result(f, query, mode, metric, calibration, found.full_match, fusion) for f in ranked]

    @staticmethod
    def _mark_literal(candidates: Iterable[_FileCandidate], word: str) -> None:
        """Files whose keyword chunks hold the one-word query as it was typed (a code such
        as KX-4471 is several index tokens, which may also occur apart)."""
        literal = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
        for f in candidates:
            f.literal = any(
                literal.search(hit.text) for cid, (hit, _) in f.chunks.items() if cid in f.chunk_bm25
            )

    def _fill_keyword(self, candidates: Iterable[_FileCandidate], found: _KeywordFound) -> None:
        """The share of the query's term weight (IDF) held by each chunk the keyword lane
        found and by each file's closest chunk by meaning; a file's other chunks count by
        meaning alone (reading every one would cost more than it changes)."""
        candidates = list(candidates)
        if not found.idf or found.full_match <= 0:
            return
        texts: dict[int, str] = {}
        for f in candidates:
            closest = max(f.chunks.items(), key=lambda item: -2.0 if math.isnan(item[1][1]) else item[1][1])
            texts[closest[0]] = closest[1][0].text
            texts.update((cid, f.chunks[cid][0].text) for cid in f.chunk_bm25)
        # The keyword hits were looked at on the lane already: only the rest is read here.
        rest = {cid: text for cid, text in texts.items() if cid not in found.held_ids}
        held = self.index.terms_held(list(found.idf), rest) if rest else {}
        held.update((cid, terms) for cid, terms in found.held.items() if cid in texts)
        for f in candidates:
            f.chunk_cover = {
                cid: min(1.0, sum(found.idf[t] for t in held[cid]) / found.full_match)
                for cid in f.chunks
                if cid in held
            }

    @staticmethod
    def _fuse_calibrated(
        candidates: Iterable[_FileCandidate], calibration: CosineCalibration, found: _KeywordFound
    ) -> None:
        """Each chunk's relevance, on scales that do not depend on what else matched: its
        cosine read on the model's calibration, and the keyword evidence as the share of
        the query's term weight (IDF) it holds, raised to KEYWORD_POWER so that one common
        word of five counts for little and a passage holding every term for all. A file
        scores as its best chunk, which becomes the one shown."""
        for f in candidates:
            best_score, best_id = -1.0, f.best.chunk_id
            for cid, (_, cosine) in f.chunks.items():
                meaning = calibration.relevance(cosine) if not math.isnan(cosine) else 0.0
                words = _words_signal(f, cid, found)
                score = MEANING_WEIGHT * meaning + (1 - MEANING_WEIGHT) * words**KEYWORD_POWER
                if score > best_score:
                    best_score, best_id = score, cid
            f.fused = best_score
            f.best = f.chunks[best_id][0]
            f.cosine = f.chunks[best_id][1]
            f.bm25 = f.chunk_bm25.get(best_id)
            words = _words_signal(f, best_id, found)
            f.keyword = words if words > 0 or f.bm25 is not None else None

    @staticmethod
    def _fuse_minmax(candidates: Iterable[_FileCandidate]) -> None:
        """Baseline: each lane's file scores scaled to 0..1 over the files that lane found
        (so the weakest keyword match of a few is a full 1.0), mixed half and half."""
        candidates = list(candidates)
        meaning = {id(f): f.cosine for f in candidates if f.semantic_rank and f.cosine is not None}
        words = {id(f): -f.bm25 for f in candidates if f.keyword_rank and f.bm25 is not None}

        def scaled(values: dict[int, float]) -> dict[int, float]:
            if not values:
                return {}
            low, high = min(values.values()), max(values.values())
            return {k: (v - low) / (high - low) if high > low else 1.0 for k, v in values.items()}

        meaning, words = scaled(meaning), scaled(words)
        for f in candidates:
            f.fused = MINMAX_MEANING_WEIGHT * meaning.get(id(f), 0.0) + (
                1 - MINMAX_MEANING_WEIGHT
            ) * words.get(id(f), 0.0)

    @staticmethod
    def _fuse_rrf(candidates: Iterable[_FileCandidate]) -> None:
        """Baseline: reciprocal rank fusion, the sum of 1 / (k + rank) over the lanes."""
        for f in candidates:
            f.fused = sum(1.0 / (RRF_K + rank) for rank in (f.semantic_rank, f.keyword_rank) if rank)

    def _fill_cosines(
        self,
        candidates: Iterable[_FileCandidate],
        vector: np.ndarray,
        known: dict[int, np.ndarray] | None = None,
    ) -> None:
        """Keyword-only chunks get their true cosine too, so every score means the same.
        `known`: vectors already read (by the keyword lane)."""
        candidates = list(candidates)
        missing = [
            chunk_id for f in candidates for chunk_id, (_, cosine) in f.chunks.items() if math.isnan(cosine)
        ]
        if missing:
            vectors = {c: known[c] for c in missing if c in known} if known else {}
            unread = [c for c in missing if c not in vectors]
            if unread:
                vectors.update(self._chunk_vectors(unread))
            for f in candidates:
                for chunk_id, (hit, cosine) in list(f.chunks.items()):
                    if math.isnan(cosine) and chunk_id in vectors:
                        f.chunks[chunk_id] = (hit, float(vectors[chunk_id] @ vector))
        for f in candidates:
            if f.cosine is None:
                f.cosine = f.chunks[f.best.chunk_id][1]

    def _result(
        self,
        f: _FileCandidate,
        query: str,
        mode: str,
        metric: str,
        calibration: CosineCalibration | None = None,
        full_match: float = 0.0,
        fusion: str = "calibrated",
    ) -> SearchHit:
        hit = f.best
        snippet, highlights = make_snippet(hit.text, query)
        cosine = f.cosine if f.cosine is not None and not math.isnan(f.cosine) else float("nan")
        others = sorted(
            (pair for cid, pair in f.chunks.items() if cid != hit.chunk_id),
            key=lambda pair: -(pair[1] if not math.isnan(pair[1]) else -1.0),
        )[:5]
        similarity = _metric_score(cosine, metric) if not math.isnan(cosine) else 0.0
        keyword = f.keyword if f.keyword is not None else _keyword_share(f.bm25, full_match)
        scale = "relevance"
        if mode == "keyword":
            rank_score = round(-(f.bm25 or 0.0), 6)
            score = round(keyword or 0.0, 6)
            weak = score < KEYWORD_FLOOR
        elif mode == "hybrid":
            rank_score = score = round(f.fused, 6)
            weak = score < RELEVANCE_FLOOR
            scale = "relevance" if fusion == "calibrated" else "fused"
        else:
            scale = metric
            rank_score = _metric_score(cosine, "cosine") if not math.isnan(cosine) else 0.0
            score = similarity
            floor = _cosine_floor(calibration or calibration_for(self.space.model))
            weak = math.isnan(cosine) or cosine < floor
        return SearchHit(
            path=hit.path,
            name=os.path.basename(hit.path),
            folder=os.path.dirname(hit.path),
            score=score,
            snippet=snippet,
            page=hit.page,
            start_char=hit.start_char,
            end_char=hit.end_char,
            chunk=hit.ordinal,
            modified=hit.mtime,
            highlights=highlights,
            rank_score=rank_score,
            matches=[
                ChunkMatch(
                    o.ordinal,
                    o.page,
                    o.start_char,
                    o.end_char,
                    _metric_score(c, metric) if not math.isnan(c) else 0.0,
                    o.heading,
                )
                for o, c in others
            ],
            heading=hit.heading,
            cosine=round(cosine, 6) if not math.isnan(cosine) else 0.0,
            keyword=None if keyword is None else round(keyword, 6),
            bm25=None if f.bm25 is None else round(-f.bm25, 6),
            weak=weak,
            scale=scale,
            host=hit.host,
        )

    def more_like(
        self,
        path: str,
        limit: int = 10,
        *,
        chunk: int | None = None,
        filters: Filters = NO_FILTERS,
        metric: str = "cosine",
    ) -> list[SearchHit]:
        """Files similar to a file (the mean of its chunk vectors) or to one of its chunks."""
        ids = self.index.file_chunk_ids(path)
        if not ids:
            return []
        chosen = [ids[chunk]] if chunk is not None and 0 <= chunk < len(ids) else ids
        vectors = self._chunk_vectors(chosen)
        if not vectors:
            return []
        mean = np.mean(np.stack(list(vectors.values())), axis=0)
        query = (mean / (np.linalg.norm(mean) or 1.0)).astype(np.float32)
        hits = [h for h in self._semantic(query, limit + 1, filters) if h.path != path]
        files: dict[str, _FileCandidate] = {}
        for h in hits:
            if h.path not in files:
                files[h.path] = _FileCandidate(best=h, cosine=1.0 - h.distance, semantic_rank=len(files) + 1)
            files[h.path].chunks.setdefault(h.chunk_id, (h, 1.0 - h.distance))
        ranked = list(files.values())[:limit]
        return [self._result(f, "", "semantic", metric) for f in ranked]
