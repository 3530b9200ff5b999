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
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import common
import numpy as np
from common import K, ndcg_at_k, write_result

sys.path.insert(0, str(common.PROJECT_DIR))

from localsearch.core.embedding import LlamaEmbedder, truncate_dimensions
from localsearch.core.models.catalog import load_catalog
from localsearch.core.models.gguf_io import inspect_gguf
from localsearch.core.models.manager import find_model_file, resolve_model_file

MAX_TOKENS = 256


def default_layers(n: int) -> list[int]:
    """6 -> [6, 4, 3, 2]; 24 -> [24, 16, 12, 8]."""
    return sorted({n, max(1, round(2 * n / 3)), max(1, n // 2), max(1, round(n / 3))}, reverse=True)


def default_dimensions(native: int, trained: Sequence[int] | None) -> list[int]:
    """384 -> [384, 256, 128, 64]; a model's own trained sizes when the catalog lists them."""
    if trained:
        return sorted({d for d in trained if d <= native} | {native}, reverse=True)[:4]
    return [native, *(max(8, round(native * f / 8) * 8) for f in (2 / 3, 1 / 3, 1 / 6))]


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
    data = common.read_scifact(args.limit_docs)
    ids, texts = [d.id for d in data.documents], [d.text for d in data.documents]
    queries, qrels = [(q.id, q.text) for q in data.queries], data.qrels
    print(
        f"{whole.label}: {len(texts)} documents, {len(queries)} train queries, "
        f"layers {layers}, dimensions {dims}, {args.threads or os.cpu_count()} threads"
    )

    run_start = common.start()
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
        "machine": machine(args, run_start),
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
            write_result(out, result, quiet=True)
    result["complete"] = True
    result["machine"] = machine(args, run_start)
    return result


def machine(args: argparse.Namespace, run_start: common.Start) -> dict[str, Any]:
    return common.machine(
        started=run_start,
        threads=args.threads or os.cpu_count(),
        note="shared CPU: tokens/s as measured, compare rows of one run",
    )


def show(result: dict[str, Any]) -> None:
    dims = result["dimensions"]
    print()
    print(f"{result['model']} ({result['weight_type']}), SciFact train, {result['queries']} queries: nDCG@10")
    common.print_table(
        ("layers", "tokens/s", *(f"d={d}" for d in dims)),
        [
            (row["layers"], f"{row['tokens_per_s']:,.0f}", *(f"{row['ndcg@10'][str(d)]:.4f}" for d in dims))
            for row in result["rows"]
        ],
    )


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
    out = args.out or common.RESULTS_DIR / f"matryoshka_2d-{name}{suffix}.json"
    result = run(args, out)
    write_result(out, result)
    show(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
