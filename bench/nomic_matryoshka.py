"""The Matryoshka table on a model trained for it: nomic-embed-text-v1.5 against all-MiniLM-L6-v2.

`quality`: every SciFact document becomes a file, indexed through the application's own
pipeline (extraction, chunking, storage, the two search stages, hybrid fusion) once per
dimension size, and the train queries are searched semantic and hybrid: nDCG@10. The model
embeds each chunk ONCE per (model file, chunk size): vectors are cached at full size in
bench/scratch (git-ignored), and each smaller size is made from them the way the app makes
it (truncate, re-normalize). Also per size: index bytes per chunk, and the recall of the
binary first stage (the share of the exact top-10 chunks, by full-precision cosine, that
survive the hamming + asymmetric-code stages into the rescoring) at the app's own budget
for this index size and at a tight one. tokens/s is the engine's speed on the first pass
(cache misses only), measured on a shared machine: see `throughput` for a fair comparison.

`throughput`: the same chunks embedded by each model file in turn, rounds interleaved,
median tokens/s. `indexing`: wall time and peak memory of `localsearch index` on N SciFact
files (the CLI in a child process, its engine in a grandchild), models interleaved.

    # what produced the committed results (a sample: the whole split is ~1.8M tokens, hours for
    # nomic on 2 shared cores; the vectors cache makes a rerun cheap)
    python bench/nomic_matryoshka.py quality --model nomic-embed-text-v1-5.BF16 --queries 100 --docs 400
    python bench/nomic_matryoshka.py quality --model all-minilm-l6-v2.BF16 --dimensions 384 256 128 64 \
        --queries 100 --docs 400
    python bench/nomic_matryoshka.py indexing --model all-minilm-l6-v2.BF16 nomic-embed-text-v1-5.BF16 \
        --files 20 --rounds 2
    python bench/nomic_matryoshka.py cosine
    # also available: the whole split (drop --queries), --chunk-tokens 512, other weight types
    python bench/nomic_matryoshka.py throughput --model all-minilm-l6-v2.BF16 nomic-embed-text-v1-5.BF16
    python bench/nomic_matryoshka.py cosine          # BF16 and Q8_0 against F16, 30 sentences
    python bench/nomic_matryoshka.py table           # one table from the result files

Results: bench/results/nomic_matryoshka-<part>-....json. All SciFact figures are on the train
split, which nothing here was tuned on; the app's fusion weight and first-stage constants
were tuned on SciFact train, so hybrid and the recall figures are in-sample for those.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import common
import numpy as np
from common import PROJECT_DIR, ndcg_at_k, run_index, write_result

sys.path.insert(0, str(PROJECT_DIR))

from localsearch.core.codes import binary_codes, shortlist
from localsearch.core.embedding import LlamaEmbedder, truncate_dimensions
from localsearch.core.models.catalog import load_catalog
from localsearch.core.models.manager import find_model_file
from localsearch.core.searcher import Searcher
from localsearch.core.service import LocalSearch
from localsearch.settings import Settings

RESULTS = common.RESULTS_DIR
SCRATCH = common.SCRATCH_DIR / "nomic_matryoshka"
K = common.K
TIGHT_RESCORED = 100  # the tight first-stage budget: chunks rescored (x PRESELECT by hamming)


def load_scifact(limit_docs: int | None) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """Documents and the scored train queries by id, and their relevant documents."""
    data = common.read_scifact(limit_docs)
    docs = {d.id: d.text for d in data.documents}
    return docs, {q.id: q.text for q in data.queries}, {q.id: data.qrels[q.id] for q in data.queries}


def subset(
    docs: dict[str, str], queries: dict[str, str], qrels: dict[str, set[str]], n_queries: int, n_docs: int
) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """A seeded sample of `n_queries` train queries, their relevant documents, and seeded random
    other documents up to `n_docs` (the 2-core CPU budget cannot embed all 5,183 with a 137M
    model in a session). Larger samples contain smaller ones, so cached vectors carry over."""
    rng = np.random.default_rng(11)
    chosen = [list(queries)[i] for i in rng.permutation(len(queries))[:n_queries]]
    relevant = set().union(*(qrels[q] for q in chosen))
    others = [d for d in docs if d not in relevant]
    extra = [
        others[i]
        for i in np.random.default_rng(12).permutation(len(others))[: max(0, n_docs - len(relevant))]
    ]
    keep = relevant | set(extra)
    return (
        {d: t for d, t in docs.items() if d in keep},
        {q: queries[q] for q in chosen},
        {q: qrels[q] for q in chosen},
    )


def write_corpus(docs: dict[str, str], folder: Path) -> Path:
    """One <id>.txt per document, written once and reused (the index reads files)."""
    marker = folder / ".complete"
    if marker.is_file() and marker.read_text() == str(len(docs)):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for doc_id, text in docs.items():
        (folder / f"{doc_id}.txt").write_text(text, encoding="utf-8")
    marker.write_text(str(len(docs)))
    return folder


def machine() -> dict[str, Any]:
    return common.machine(note="2 cores shared with other work: timings are noisy")


# ---------------------------------------------------------------------------------------
# embeddings made once, kept on disk


class CachedEmbedder:
    """The real engine behind a cache of full-size vectors keyed by (role, tokens): the app's
    pipeline runs unchanged, and only the first pass pays for the model."""

    def __init__(self, engine: LlamaEmbedder, cache_file: Path) -> None:
        self.engine = engine
        self.name = engine.name
        self.dimensions = engine.dimensions
        self.max_tokens = engine.max_tokens
        self.special_tokens = engine.special_tokens
        self.query_prefix_tokens = engine.query_prefix_tokens
        self.document_prefix_tokens = engine.document_prefix_tokens
        self.cache_file = cache_file
        self.vectors: dict[bytes, np.ndarray] = {}
        self.miss_tokens = 0
        self.miss_seconds = 0.0
        self._unsaved = 0
        if cache_file.is_file():
            with np.load(cache_file) as data:
                keys, matrix = data["keys"], data["vectors"]
                self.vectors = {bytes(k): row for k, row in zip(keys, matrix, strict=True)}
                self.miss_tokens = int(data["miss_tokens"])
                self.miss_seconds = float(data["miss_seconds"])

    @staticmethod
    def _key(role: str, tokens: Sequence[int]) -> bytes:
        return hashlib.sha1(role.encode() + np.asarray(tokens, dtype=np.int32).tobytes()).digest()

    def tokenize(self, text: str) -> list[int]:
        return self.engine.tokenize(text)

    def embed_tokens(self, sequences: Sequence[Sequence[int]], role: str = "document") -> np.ndarray:
        keys = [self._key(role, s) for s in sequences]
        missing = [i for i, k in enumerate(keys) if k not in self.vectors]
        if missing:
            started = time.perf_counter()
            made = self.engine.embed_tokens([sequences[i] for i in missing], role=role)
            self.miss_seconds += time.perf_counter() - started
            room = self.max_tokens - self.special_tokens - getattr(self, f"{role}_prefix_tokens")
            self.miss_tokens += sum(
                min(len(sequences[i]), room) + self.special_tokens + getattr(self, f"{role}_prefix_tokens")
                for i in missing
            )
            for i, row in zip(missing, made, strict=True):
                self.vectors[keys[i]] = row
            self._unsaved += len(missing)
            # Often enough that a run stopped on a shared machine hands its work to the next.
            if self._unsaved >= 256:
                self.save()
        return (
            np.vstack([self.vectors[k] for k in keys]) if keys else np.zeros((0, self.dimensions), np.float32)
        )

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_tokens([self.tokenize(t) for t in texts])

    def save(self) -> None:
        if not self._unsaved and self.cache_file.is_file():
            return
        keys = np.array(list(self.vectors), dtype="S20")
        matrix = np.vstack(list(self.vectors.values())) if self.vectors else np.zeros((0, self.dimensions))
        tmp = self.cache_file.with_name(self.cache_file.name + ".tmp.npz")
        np.savez(
            tmp,
            keys=keys,
            vectors=matrix.astype(np.float32),
            miss_tokens=self.miss_tokens,
            miss_seconds=self.miss_seconds,
        )
        tmp.replace(self.cache_file)
        self._unsaved = 0

    def close(self) -> None:  # LocalSearch.close calls it; the engine outlives each index
        self.save()


def open_engine(label: str, chunk_tokens: int, threads: int) -> tuple[LlamaEmbedder, Any, Any]:
    catalog = load_catalog()
    whole = find_model_file(label, catalog=catalog, report=print)
    entry = catalog.find(whole.name)
    engine = LlamaEmbedder(
        whole.path,
        name=whole.name,
        threads=threads,
        max_tokens=chunk_tokens,
        query_prefix=entry.query_prompt if entry else "",
        document_prefix=entry.document_prompt if entry else "",
    )
    return engine, whole, entry


# ---------------------------------------------------------------------------------------
# quality


def first_stage_recall(vectors: np.ndarray, queries: np.ndarray, rescored: int, preselect: int) -> float:
    """Mean share of each query's exact top-10 chunks (full-precision cosine) that the binary
    stages hand to the rescoring: hamming keeps preselect x rescored, the asymmetric code
    score keeps `rescored` (Searcher._semantic with a code cache)."""
    codes = binary_codes(vectors)
    bits = np.unpackbits(codes, axis=1, bitorder="little")[:, : vectors.shape[1]].astype(np.int16)
    ids = np.arange(len(vectors), dtype=np.int64)
    recalls = []
    for query in queries:
        exact = set(np.argpartition(-(vectors @ query), K)[:K].tolist())
        qbits = (query > 0).astype(np.int16)
        hamming = (bits != qbits).sum(axis=1)
        wide = min(len(ids), preselect * rescored)
        near = np.argpartition(hamming, wide - 1)[:wide] if wide < len(ids) else ids
        kept = set(shortlist(ids[near], codes[near], query, rescored))
        recalls.append(len(exact & kept) / K)
    return float(np.mean(recalls))


def warm(embedder: CachedEmbedder, corpus: Path, settings: Settings, log_every: int = 64) -> None:
    """Embed every chunk the indexer will ask for, in large batches, before indexing: the
    same extraction and chunker as the pipeline (a chunk cut differently would simply miss
    the cache and be embedded by the pipeline itself)."""
    from localsearch.core import extract
    from localsearch.core.chunking import chunk_document

    engine = embedder.engine
    room = (
        min(settings.chunk_tokens, engine.max_tokens) - engine.special_tokens - engine.document_prefix_tokens
    )
    sequences: list[list[int]] = []
    for path in sorted(corpus.glob("*.txt")):
        document = extract.extract(path, path.read_bytes())
        chunks = chunk_document(document, engine.tokenize, max_tokens=room, overlap=settings.chunk_overlap)
        sequences.extend(list(c.tokens) for c in chunks)
    todo = [s for s in sequences if embedder._key("document", s) not in embedder.vectors]
    print(f"  {len(sequences)} chunks, {len(todo)} to embed", flush=True)
    started = time.perf_counter()
    for start in range(0, len(todo), 32):
        embedder.embed_tokens(todo[start : start + 32])
        done = start + len(todo[start : start + 32])
        if done % log_every < 32 or done == len(todo):
            rate = embedder.miss_tokens / embedder.miss_seconds if embedder.miss_seconds else 0
            print(
                f"  embedded {done}/{len(todo)} chunks, {time.perf_counter() - started:,.0f} s, "
                f"{rate:,.0f} tokens/s overall",
                flush=True,
            )
            embedder.save()
    embedder.save()


def quality(args: argparse.Namespace) -> Path:
    docs, queries, qrels = load_scifact(args.limit_docs)
    name = f"corpus-{args.limit_docs}" if args.limit_docs else "corpus"
    if args.queries:
        docs, queries, qrels = subset(docs, queries, qrels, args.queries, args.docs)
        name = f"corpus-q{args.queries}-d{args.docs}"
    corpus = write_corpus(docs, SCRATCH / name)
    engine, whole, entry = open_engine(args.model, args.chunk_tokens, args.threads)
    native = engine.dimensions
    dims = args.dimensions or (
        list(entry.matryoshka_dimensions) if entry and entry.matryoshka_dimensions else [native]
    )
    tag = f"{whole.label}-c{args.chunk_tokens}" + (f"-{args.limit_docs}docs" if args.limit_docs else "")
    if args.queries:
        tag += f"-q{args.queries}-d{args.docs}"
    # One cache per model file and chunk size: any subset reuses what another embedded.
    cache_file = SCRATCH / f"vectors-{whole.label}-c{args.chunk_tokens}.npz"
    embedder = CachedEmbedder(engine, cache_file)
    out = args.out or RESULTS / f"nomic_matryoshka-quality-{tag}.json"
    result: dict[str, Any] = {
        "benchmark": "nomic_matryoshka quality",
        "model": whole.name,
        "model_file": whole.path.name,
        "weight_type": whole.type,
        "split": "scifact train (nothing here tuned on it; the app's fusion weight and first-stage "
        "constants were tuned on it: hybrid and recall are in-sample for those)",
        "documents": len(docs),
        "queries": len(queries),
        "sample": (
            f"{args.queries} train queries drawn at random (seed 11), their relevant documents, and "
            f"random others (seed 12) up to {args.docs} documents"
            if args.queries
            else "all documents and train queries"
        ),
        "chunk_tokens": args.chunk_tokens,
        "query_prompt": entry.query_prompt if entry else "",
        "document_prompt": entry.document_prompt if entry else "",
        "native_dimensions": native,
        "rows": [],
        "complete": False,
        "machine": machine(),
    }
    print(
        f"{whole.label}: {len(docs)} documents, {len(queries)} train queries, "
        f"chunks of {args.chunk_tokens} tokens"
    )
    full: dict[str, Any] = {}
    warm(embedder, corpus, Settings(chunk_tokens=args.chunk_tokens))
    for d in sorted(dims, reverse=True):
        with tempfile.TemporaryDirectory(prefix="nomic-bench-", dir=SCRATCH) as tmp:
            settings = Settings(
                model=whole.label, dimensions=0 if d == native else d, chunk_tokens=args.chunk_tokens
            )
            db = Path(tmp) / "index.sqlite3"
            started = time.perf_counter()
            with LocalSearch(
                settings, db_path=db, embedder_factory=lambda s, q=False: embedder, keep_vectors=True
            ) as app:
                for _ in app.index_paths([corpus]):
                    pass
                embedder.save()
                index_seconds = time.perf_counter() - started
                chunks = int(app.status()["chunks"])
                ndcg: dict[str, float] = {}
                for mode in args.modes:
                    scores = []
                    for qid, text in queries.items():
                        hits = app.search(text, K, mode=mode)
                        scores.append(ndcg_at_k([Path(h.path).stem for h in hits], qrels[qid]))
                    ndcg[mode] = round(float(np.mean(scores)), 4)
                space = app.space
                ids, _ = app.index.all_codes(space)
                found, matrix = app.index.chunk_vector_matrix(space, [int(i) for i in ids])
                query_vectors = truncate_dimensions(
                    embedder.embed_tokens([engine.tokenize(q) for q in queries.values()], role="query"), d
                )
                if d == native:
                    rows = app.index.chunk_hits([int(i) for i in found])
                    full = {
                        "ids": found,
                        "matrix": matrix,
                        "paths": [Path(rows[int(i)].path).stem for i in found],
                    }
            db_bytes = db.stat().st_size
        n_rescored = min(Searcher.CANDIDATES, max(Searcher.CANDIDATES // 2, chunks // 100))
        row = {
            "dimensions": d,
            "chunks": chunks,
            "ndcg@10": ndcg,
            "vector_bytes_per_chunk": 4 * d + (d + 7) // 8,  # float32 vector + binary code
            "index_file_bytes_per_chunk": round(db_bytes / max(chunks, 1)),
            "first_stage_recall_app_budget": round(
                first_stage_recall(matrix, query_vectors, n_rescored, Searcher.PRESELECT), 4
            ),
            "app_budget_rescored": n_rescored,
            "first_stage_recall_tight": round(
                first_stage_recall(matrix, query_vectors, TIGHT_RESCORED, Searcher.PRESELECT), 4
            ),
            "tight_rescored": TIGHT_RESCORED,
            "pipeline_seconds": round(index_seconds, 1),
        }
        result["rows"].append(row)
        result["embedding"] = {
            "tokens": embedder.miss_tokens,
            "seconds": round(embedder.miss_seconds, 1),
            "tokens_per_s": round(embedder.miss_tokens / embedder.miss_seconds, 1)
            if embedder.miss_seconds
            else None,
            "note": "first pass only (cache misses), in-process engine, shared CPU",
        }
        print(
            f"  d={d}: {ndcg} recall(app) {row['first_stage_recall_app_budget']} "
            f"recall(tight) {row['first_stage_recall_tight']} {chunks} chunks",
            flush=True,
        )
        write_result(out, result, quiet=True)
    if full and args.centered:
        result["centered_truncation"] = centered_check(full, embedder, engine, queries, qrels, dims, native)
    result["complete"] = True
    write_result(out, result)
    engine.close()
    return out


def centered_check(
    full: dict[str, Any],
    embedder: CachedEmbedder,
    engine: LlamaEmbedder,
    queries: dict[str, str],
    qrels: dict[str, set[str]],
    dims: Sequence[int],
    native: int,
) -> dict[str, Any]:
    """Semantic nDCG@10 by exact search (best chunk per file) with plain truncation (what the
    app stores) against Nomic's recipe (layer norm over all dimensions, then truncate):
    whether the app should center vectors before cutting them."""
    matrix = full["matrix"]
    paths = np.array(full["paths"])
    raw_queries = embedder.embed_tokens([engine.tokenize(q) for q in queries.values()], role="query")
    out: dict[str, Any] = {}
    for variant in ("plain", "centered"):
        docs_full, queries_full = matrix, raw_queries
        if variant == "centered":
            docs_full = matrix - matrix.mean(axis=1, keepdims=True)
            queries_full = raw_queries - raw_queries.mean(axis=1, keepdims=True)
        scores: dict[str, float] = {}
        for d in dims:
            docs_d = truncate_dimensions(np.ascontiguousarray(docs_full), d)
            queries_d = truncate_dimensions(np.ascontiguousarray(queries_full), d)
            per_query = []
            for (qid, _), vector in zip(queries.items(), queries_d, strict=True):
                cosine = docs_d @ vector
                order = np.argsort(-cosine, kind="stable")
                ranked: list[str] = []
                for i in order:
                    if paths[i] not in ranked:
                        ranked.append(str(paths[i]))
                        if len(ranked) == K:
                            break
                per_query.append(ndcg_at_k(ranked, qrels[qid]))
            scores[str(d)] = round(float(np.mean(per_query)), 4)
        out[variant] = scores
    print(f"  exact semantic, plain vs centered truncation: {out}")
    return out


# ---------------------------------------------------------------------------------------
# throughput and indexing time


def throughput(args: argparse.Namespace) -> Path:
    docs, _, _ = load_scifact(None)
    texts = list(docs.values())[: args.texts]
    engines = [open_engine(label, args.chunk_tokens, args.threads) for label in args.model]
    tokenized = [[e.tokenize(t) for t in texts] for e, _, _ in engines]
    runs: dict[str, list[float]] = {whole.label: [] for _, whole, _ in engines}
    tokens: dict[str, int] = {}
    for round_ in range(args.rounds):
        for (engine, whole, _), seqs in zip(engines, tokenized, strict=True):
            room = engine.max_tokens - engine.special_tokens - engine.document_prefix_tokens
            tokens[whole.label] = sum(
                min(len(s), room) + engine.special_tokens + engine.document_prefix_tokens for s in seqs
            )
            started = time.perf_counter()
            engine.embed_tokens(seqs, role="document")
            seconds = time.perf_counter() - started
            runs[whole.label].append(tokens[whole.label] / seconds)
            print(
                f"  round {round_ + 1} {whole.label}: {tokens[whole.label] / seconds:,.0f} tokens/s",
                flush=True,
            )
    result = {
        "benchmark": "nomic_matryoshka throughput",
        "texts": len(texts),
        "chunk_tokens": args.chunk_tokens,
        "threads": args.threads or os.cpu_count(),
        "rounds": args.rounds,
        "models": {
            label: {
                "tokens": tokens[label],
                "tokens_per_s_median": round(statistics.median(v), 1),
                "tokens_per_s_min": round(min(v), 1),
                "tokens_per_s_max": round(max(v), 1),
            }
            for label, v in runs.items()
        },
        "machine": machine(),
    }
    for engine, _, _ in engines:
        engine.close()
    out = args.out or RESULTS / "nomic_matryoshka-throughput.json"
    write_result(out, result)
    return out


def indexing(args: argparse.Namespace) -> Path:
    docs, _, _ = load_scifact(args.files)
    corpus = write_corpus(docs, SCRATCH / f"corpus-{args.files}")
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in args.model}
    for round_ in range(args.rounds):
        for model in args.model:
            with tempfile.TemporaryDirectory(prefix="nomic-index-", dir=SCRATCH) as home:
                env = dict(os.environ, LOCALSEARCH_HOME=home)
                subprocess.run(
                    [sys.executable, "-m", "localsearch", "models", "use", model],
                    env=env,
                    check=True,
                    capture_output=True,
                )
                run = run_index(corpus, Path(home))
            summary = run.summary
            item = {
                "wall_seconds": round(run.wall, 1),
                "peak_rss_mb": None if run.peak_rss_mb is None else round(run.peak_rss_mb, 1),
                "cpu_seconds": None if run.cpu_seconds is None else round(run.cpu_seconds, 1),
                "files_indexed": summary.get("files_indexed"),
                "chunks": summary.get("chunks_added"),
                "tokens": summary.get("tokens_embedded"),
            }
            runs[model].append(item)
            print(f"  round {round_ + 1} {model}: {item}", flush=True)
    result = {
        "benchmark": "nomic_matryoshka indexing",
        "files": len(docs),
        "files_are": "SciFact abstracts (title + abstract, about 300 tokens each), one .txt file each",
        "command": "localsearch index FOLDER --json (default settings but the model)",
        "rounds": args.rounds,
        "models": {
            m: {
                "runs": v,
                "wall_seconds_median": statistics.median(r["wall_seconds"] for r in v),
                "seconds_per_1000_files": round(
                    1000 * statistics.median(r["wall_seconds"] for r in v) / len(docs)
                ),
                "peak_rss_mb_max": max((r["peak_rss_mb"] or 0) for r in v),
            }
            for m, v in runs.items()
        },
        "machine": machine(),
    }
    out = args.out or RESULTS / f"nomic_matryoshka-indexing-{len(docs)}files.json"
    write_result(out, result)
    return out


def cosine(args: argparse.Namespace) -> Path:
    """Each weight type against F16 on the 30 reference sentences, as documents and as
    queries (with the model's prompts): the bar for a quantized copy is cosine >= 0.999."""
    reference = Path(os.environ.get("LOCALSEARCH_REFERENCE", PROJECT_DIR.parent / "shared" / "reference"))
    items = json.loads((reference / "all-minilm-l6-v2.reference.json").read_text())["items"]
    texts = [str(item["text"]) for item in items]
    vectors: dict[str, dict[str, np.ndarray]] = {}
    for type_ in ("F16", *args.types):
        engine, _, _ = open_engine(f"{args.model}.{type_}", 512, args.threads)
        try:
            tokens = [engine.tokenize(t) for t in texts]
            vectors[type_] = {role: engine.embed_tokens(tokens, role=role) for role in ("document", "query")}
        finally:
            engine.close()
    result: dict[str, Any] = {
        "benchmark": "nomic_matryoshka cosine",
        "model": args.model,
        "texts": len(texts),
        "bar": 0.999,
        "types": {},
        "machine": machine(),
    }
    for type_ in args.types:
        row = {}
        for role in ("document", "query"):
            cos = (vectors[type_][role] * vectors["F16"][role]).sum(axis=1)
            row[role] = {"min": round(float(cos.min()), 5), "mean": round(float(cos.mean()), 5)}
            for d in (256, 64):
                cut = (
                    truncate_dimensions(vectors[type_][role], d)
                    * truncate_dimensions(vectors["F16"][role], d)
                ).sum(axis=1)
                row[role][f"min_at_{d}"] = round(float(cut.min()), 5)
        row["passes"] = all(row[r]["min"] >= 0.999 for r in ("document", "query"))
        result["types"][type_] = row
        print(f"  {type_} vs F16: {row}")
    out = args.out or RESULTS / f"nomic_matryoshka-cosine-{args.model}.json"
    write_result(out, result)
    return out


def table(args: argparse.Namespace) -> None:
    print(
        f"{'model':34} {'dims':>5} {'bytes/chunk':>11} {'semantic':>8} {'hybrid':>7} {'recall(app)':>11} "
        f"{'recall(tight)':>13} {'tokens/s':>9}"
    )
    for path in sorted(RESULTS.glob("nomic_matryoshka-quality-*.json")):
        data = json.loads(path.read_text())
        speed = (data.get("embedding") or {}).get("tokens_per_s") or 0
        label = f"{data['model']}.{data['weight_type']} c{data['chunk_tokens']}"
        for row in data["rows"]:
            n = row["ndcg@10"]
            print(
                f"{label:34} {row['dimensions']:>5} {row['vector_bytes_per_chunk']:>11} "
                f"{n.get('semantic', float('nan')):>8.4f} {n.get('hybrid', float('nan')):>7.4f} "
                f"{row['first_stage_recall_app_budget']:>11.3f} {row['first_stage_recall_tight']:>13.3f} "
                f"{speed:>9,.0f}"
            )
        if "centered_truncation" in data:
            print(f"{'':34} exact semantic, plain vs centered: {data['centered_truncation']}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="part", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--model", required=True, help="NAME.TYPE, e.g. nomic-embed-text-v1-5.BF16")
    q.add_argument("--dimensions", type=int, nargs="+", help="default: the model's Matryoshka sizes")
    q.add_argument("--chunk-tokens", type=int, default=256)
    q.add_argument("--modes", nargs="+", default=["semantic", "hybrid"])
    q.add_argument("--limit-docs", type=int)
    q.add_argument("--queries", type=int, help="a sample: this many train queries ...")
    q.add_argument("--docs", type=int, default=1000, help="... and documents (with their relevant ones)")
    q.add_argument("--threads", type=int, default=0)
    q.add_argument("--no-centered", dest="centered", action="store_false")
    q.add_argument("--out", type=Path)
    t = sub.add_parser("throughput")
    t.add_argument("--model", nargs="+", required=True)
    t.add_argument("--texts", type=int, default=300)
    t.add_argument("--rounds", type=int, default=3)
    t.add_argument("--chunk-tokens", type=int, default=256)
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--out", type=Path)
    i = sub.add_parser("indexing")
    i.add_argument("--model", nargs="+", required=True)
    i.add_argument("--files", type=int, default=1000)
    i.add_argument("--rounds", type=int, default=1)
    i.add_argument("--out", type=Path)
    c = sub.add_parser("cosine")
    c.add_argument("--model", default="nomic-embed-text-v1-5")
    c.add_argument("--types", nargs="+", default=["BF16", "Q8_0"])
    c.add_argument("--threads", type=int, default=0)
    c.add_argument("--out", type=Path)
    sub.add_parser("table")
    args = parser.parse_args(argv)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    {"quality": quality, "throughput": throughput, "indexing": indexing, "cosine": cosine, "table": table}[
        args.part
    ](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
