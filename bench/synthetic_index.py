"""Synthetic indexes shaped like a real one, for the search benchmarks at 100k and 1M chunks.

Each file has CHUNKS_PER_FILE chunks whose text is a 60-word window of a SciFact document,
so the keyword lane has real work; the caller decides what their vectors are (near real
embeddings for the meaning lane, or small random ones where only keywords are measured).
Written through the storage layer, to a partial file renamed into place when complete."""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import common
import numpy as np

from localsearch.core.storage import ChunkRecord, Index

CHUNKS_PER_FILE = 10
BASE_DOCS = 2000
_WORDS = re.compile(r"\S+")

# (random generator, the file's document number) -> its chunks' vectors, one row a chunk
VectorsFor = Callable[[np.random.Generator, int], np.ndarray]


def load_scifact() -> tuple[list[str], list[str]]:
    """The first BASE_DOCS SciFact documents (title and abstract) and every train query."""
    data = common.read_scifact(BASE_DOCS)
    return [f"{d.title}. {d.abstract}" for d in data.documents], [q.text for q in data.all_queries]


def arguments(description: str, queries: int, result: str) -> argparse.Namespace:
    """The options of a benchmark over synthetic indexes: their sizes, the queries, the file."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=queries)
    parser.add_argument("--output", type=Path, help=f"JSON file (default bench/results/{result}.json)")
    return parser.parse_args()


def kept(path: Path, build: Callable[[Path], None]) -> Path:
    """`path`, built by `build` first unless an earlier run left it there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        started = time.perf_counter()
        build(path)
        print(f"built {path.name} in {time.perf_counter() - started:.0f} s", flush=True)
    return path


def write_index(
    path: Path, size: int, docs: list[str], space_key: str, dimensions: int, vectors_for: VectorsFor
) -> None:
    """Write `size` chunks (seeded by `size`, so a rebuild is the same index)."""
    rng = np.random.default_rng(size)
    words = [_WORDS.findall(d) for d in docs]
    partial = path.with_name(path.name + ".building")
    for leftover in path.parent.glob(partial.name + "*"):
        leftover.unlink()
    index = Index.open(partial)
    space = index.ensure_space(space_key, dimensions)
    folder = index.add_folder("/synthetic")
    started = time.perf_counter()
    files = size // CHUNKS_PER_FILE
    for first in range(0, files, 1000):
        with index.transaction():
            for f in range(first, min(first + 1000, files)):
                doc = int(rng.integers(len(docs)))
                vectors = vectors_for(rng, doc)
                chunks = []
                for ordinal in range(CHUNKS_PER_FILE):
                    start = int(rng.integers(max(1, len(words[doc]) - 60)))
                    text = " ".join(words[doc][start : start + 60])
                    chunks.append(ChunkRecord(ordinal, text, None, 0, len(text), 80))
                index.replace_file(
                    folder_id=folder,
                    path=f"/synthetic/{f // 1000:04d}/doc-{f:07d}.txt",
                    size=1,
                    mtime=1.0,
                    content_hash=str(f),
                    space=space,
                    chunks=chunks,
                    vectors=vectors,
                )
        done = min(first + 1000, files) * CHUNKS_PER_FILE
        if done % 100_000 == 0:
            rate = done / (time.perf_counter() - started)
            print(f"  {done:,} / {size:,} chunks ({rate:,.0f}/s)", flush=True)
    index.conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize')")
    index.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    index.close()
    os.replace(partial, path)
