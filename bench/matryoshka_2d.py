"""The 2D Matryoshka table: layers x dimensions -> engine tokens/s and nDCG@10 on SciFact train.

For each layer count the model is sliced (`localsearch models slice`, kept in the models
folder), every SciFact document (title + abstract, cut to 256 tokens) is embedded whole by
the engine directly (no index, no chunking: a direct engine benchmark, minutes not hours),
the train queries are embedded with the model's query prompt, and for each dimension the
vectors are truncated and re-normalized and the documents ranked by cosine.

tokens/s depends on the layer count only (truncating dimensions happens after the model
runs); it is measured on a machine whose CPU may be shared, so compare rows of one run.

    python bench/matryoshka_2d.py                    # all-MiniLM-L6-v2: layers 6,4,3,2 x dims 384,256,128,64
    python bench/matryoshka_2d.py --model mxbai-embed-xsmall-v1   # the same table, another installed model
    python bench/matryoshka_2d.py --limit-docs 500   # a quick check

Writes bench/results/matryoshka_2d-<model>.json and prints the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_DIR))

from localsearch.core.embedding import LlamaEmbedder, truncate_dimensions  # noqa: E402
from localsearch.core.models.catalog import load_catalog  # noqa: E402
from localsearch.core.models.gguf_io import inspect_gguf  # noqa: E402
from localsearch.core.models.manager import find_model_file, resolve_model_file  # noqa: E402

K = 10
MAX_TOKENS = 256


def evaldata_dir() -> Path:
    override = os.environ.get("LOCALSEARCH_EVALDATA")
    return Path(override).expanduser() if override else PROJECT_DIR.parent / "shared" / "evaldata"


def load_scifact(
    limit_docs: int | None,
) -> tuple[list[str], list[str], list[tuple[str, str]], dict[str, set[str]]]:
    folder = evaldata_dir() / "scifact"
    ids, texts = [], []
    with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                ids.append(str(row["_id"]))
                texts.append(f"{row['title']}\n\n{row['text']}")
    if limit_docs:
        ids, texts = ids[:limit_docs], texts[:limit_docs]
    qrels: dict[str, set[str]] = {}
    with open(folder / "qrels_train.tsv", encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3 and int(parts[2]) > 0:
                qrels.setdefault(parts[0], set()).add(parts[1])
    present = set(ids)
    queries = []
    with open(folder / "queries_train.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                qid = str(row["_id"])
                # On a subset, only queries whose relevant documents are all present can be scored.
                if qid in qrels and qrels[qid] <= present:
                    queries.append((qid, str(row["text"])))
    return ids, texts, queries, qrels


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int = K) -> float:
    dcg = sum(1.0 / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]) if doc in relevant)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def default_layers(n: int) -> list[int]:
    """6 -> [6, 4, 3, 2]; 24 -> [24, 16, 12, 8]."""
    return sorted({n, max(1, round(2 * n / 3)), max(1, n // 2), max(1, round(n / 3))}, reverse=True)


def default_dimensions(native: int, trained: Sequence[int] | None) -> list[int]:
    """384 -> [384, 256, 128, 64]; a model's own trained sizes when the catalog lists them."""
    if trained:
        return sorted({d for d in trained if d <= native} | {native}, reverse=True)[:4]
    return [native, *(max(8, round(native * f / 8) * 8) for f in (2 / 3, 1 / 3, 1 / 6))]


def write_json(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out)


def run(args: argparse.Namespace, out: Path | None = None) -> dict[str, Any]:
    """The table; with `out`, the JSON is rewritten after every row (a long run cut short
    keeps the rows it finished)."""
    catalog = load_catalog()
    whole = find_model_file(args.model, catalog=catalog, report=print)
    entry = catalog.find(whole.name)
    info = inspect_gguf(whole.path)
    layers = args.layers or default_layers(info.block_count)
    dims = args.dimensions or default_dimensions(
        info.embedding_length, entry.matryoshka_dimensions if entry else None
    )
    query_prompt = entry.query_prompt if entry else ""
    document_prompt = entry.document_prompt if entry else ""
    ids, texts, queries, qrels = load_scifact(args.limit_docs)
    print(
        f"{whole.label}: {len(texts)} documents, {len(queries)} train queries, "
        f"layers {layers}, dimensions {dims}, {args.threads or os.cpu_count()} threads"
    )

    import llama_cpp

    rows: list[dict[str, Any]] = []
    result = {
        "benchmark": "matryoshka_2d",
        "model": whole.name,
        "model_file": whole.path.name,
        "weight_type": whole.type,
        "catalog_layer_truncation": entry.layer_truncation if entry else None,
        "catalog_matryoshka_dimensions": (
            list(entry.matryoshka_dimensions) if entry and entry.matryoshka_dimensions else None
        ),
        "split": "scifact train",
        "documents": len(texts),
        "queries": len(queries),
        "max_tokens": MAX_TOKENS,
        "query_prompt": query_prompt,
        "layers": layers,
        "dimensions": dims,
        "rows": rows,
        "complete": False,
        "machine": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(),
            "threads": args.threads or os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "llama_cpp_python": llama_cpp.__version__,
            "load_average_at_start": list(os.getloadavg()),
            "note": "shared CPU: tokens/s as measured, compare rows of one run",
        },
    }
    for n_layers in layers:
        path = resolve_model_file(
            whole.label, layers=0 if n_layers == info.block_count else n_layers, report=print
        )
        embedder = LlamaEmbedder(
            path,
            max_tokens=MAX_TOKENS,
            threads=args.threads,
            query_prefix=query_prompt,
            document_prefix=document_prompt,
        )
        try:
            # Tokenized before the clock starts: the engine's speed is what is measured.
            doc_tokens = [embedder.tokenize(t) for t in texts]
            room = embedder.max_tokens - embedder.special_tokens - embedder.document_prefix_tokens
            engine_tokens = sum(
                min(len(t), room) + embedder.special_tokens + embedder.document_prefix_tokens
                for t in doc_tokens
            )
            started = time.perf_counter()
            doc_vectors = embedder.embed_tokens(doc_tokens, role="document")
            seconds = time.perf_counter() - started
            query_vectors = embedder.embed_tokens([embedder.tokenize(q) for _, q in queries], role="query")
        finally:
            embedder.close()
        ndcg = {}
        for d in dims:
            docs = truncate_dimensions(doc_vectors, d)
            qs = truncate_dimensions(query_vectors, d)
            top = np.argsort(-(qs @ docs.T), axis=1, kind="stable")[:, :K]
            scores = [
                ndcg_at_k([ids[j] for j in row], qrels[qid])
                for (qid, _), row in zip(queries, top, strict=True)
            ]
            ndcg[str(d)] = round(float(np.mean(scores)), 4)
        row = {
            "layers": n_layers,
            "file": path.name,
            "tokens": engine_tokens,
            "seconds": round(seconds, 2),
            "tokens_per_s": round(engine_tokens / seconds, 1),
            "ndcg@10": ndcg,
        }
        rows.append(row)
        print(f"  layers {n_layers}: {row['tokens_per_s']:,.0f} tokens/s, nDCG@10 {ndcg}", flush=True)
        if out is not None:
            write_json(result, out)
    result["complete"] = True
    result["machine"]["load_average_at_end"] = list(os.getloadavg())
    return result


def print_table(result: dict[str, Any]) -> None:
    dims = result["dimensions"]
    print()
    print(f"{result['model']} ({result['weight_type']}), SciFact train, {result['queries']} queries: nDCG@10")
    header = f"{'layers':>6} {'tokens/s':>9} " + " ".join(f"{'d=' + str(d):>7}" for d in dims)
    print(header)
    print("-" * len(header))
    for row in result["rows"]:
        cells = " ".join(f"{row['ndcg@10'][str(d)]:>7.4f}" for d in dims)
        print(f"{row['layers']:>6} {row['tokens_per_s']:>9,.0f} {cells}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="all-minilm-l6-v2", help="catalog name, NAME.TYPE, or imported name"
    )
    parser.add_argument("--layers", type=int, nargs="+", help="layer counts (default: n, 2n/3, n/2, n/3)")
    parser.add_argument(
        "--dimensions", type=int, nargs="+", help="dimensions (default: native and 3 smaller)"
    )
    parser.add_argument("--limit-docs", type=int, help="only the first N documents (a quick check)")
    parser.add_argument("--threads", type=int, default=0, help="engine threads (default: every core)")
    parser.add_argument(
        "--out", type=Path, help="result JSON (default bench/results/matryoshka_2d-<model>.json)"
    )
    args = parser.parse_args(argv)
    suffix = "" if not args.limit_docs else f"-{args.limit_docs}docs"
    name = args.model.lower().removesuffix(".gguf")
    out = args.out or BENCH_DIR / "results" / f"matryoshka_2d-{name}{suffix}.json"
    result = run(args, out)
    write_json(result, out)
    print_table(result)
    print(f"\nwrote {out.relative_to(PROJECT_DIR) if out.is_relative_to(PROJECT_DIR) else out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
