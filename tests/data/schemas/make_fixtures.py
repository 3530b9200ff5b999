"""Writes v<N>.sqlite3 here: a small index of each past schema version, built by applying
the migrations up to N and storing a few folders, files, chunks and vectors the way that
version's localsearch stored them. tests/core/test_migrations.py upgrades each copy.

Run it once after adding a migration, to add the version that just became past:

    python tests/data/schemas/make_fixtures.py            # only the missing versions
    python tests/data/schemas/make_fixtures.py --all      # rewrite them all

Existing fixtures are kept as they are: they stand for indexes already on people's disks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from localsearch.core import migrations, storage  # noqa: E402
from localsearch.core.codes import binary_codes  # noqa: E402

FOLDERS = [(1, "/data/notes"), (2, "/data/papers")]
# (id, folder, path, status, reason, space); files 1-3 are indexed in space 1, file 4 failed.
FILES = [
    (1, 1, "/data/notes/garden.md", "indexed", None, 1),
    (2, 1, "/data/notes/travel.txt", "indexed", None, 1),
    (3, 2, "/data/papers/zeppelin.pdf", "indexed", None, 1),
    (4, 2, "/data/papers/broken.pdf", "failed", "PDF: the file is damaged (no trailer)", None),
]
# (id, file, ordinal, text, page, heading). Chunk 6 was deleted (its file re-indexed
# shorter), so the highest id is not the count: an upgrade must not hand out 6 or 7 again.
CHUNKS = [
    (1, 1, 0, "The tomatoes need water every morning before the sun is high.", None, "Garden"),
    (2, 1, 1, "Prune the vines weekly and tie them to the trellis.", None, "Garden"),
    (3, 1, 2, "Compost from the kitchen feeds the raised beds in spring.", None, "Soil"),
    (4, 2, 0, "Renew the passport before travel; the office closes in August.", None, None),
    (5, 2, 1, "Pack the adapter, the charger and the train tickets.", None, "Checklist"),
    (7, 3, 0, "The zeppelin landed at dawn after crossing the Atlantic.", 3, "Results"),
]
# Space 1 holds every chunk at 8 dimensions; space 2, a 16-dimension space of the same
# model, only the garden note's (a space indexed part way).
SPACES = [(1, "model-a", 8, [c[0] for c in CHUNKS]), (2, "model-a", 16, [1, 2, 3])]


def vectors_of(space_id: int, dimensions: int, chunk_ids: list[int]) -> np.ndarray:
    """The vectors stored for a space: fixed by seed, so the test can check them."""
    rows = np.random.default_rng(space_id).standard_normal((len(chunk_ids), dimensions))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def write(version: int, path: Path) -> None:
    for stale in path.parent.glob(path.name + "*"):
        stale.unlink()
    conn = storage.connect(path, migrate=False)
    migrations.migrate(conn, path, target=version)
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO folders (id, path, added_at) VALUES (?, ?, 1700000000)", FOLDERS)
    for space_id, model, dimensions, _ in SPACES:
        # Before version 4 a space's vectors were one sqlite-vec vec0 table, vec_<id>.
        table = f"vec_{space_id}" if version < 4 else f"vectors_{space_id}"
        conn.execute(
            "INSERT INTO embedding_spaces (id, model, dimensions, table_name, created_at) "
            "VALUES (?, ?, ?, ?, 1700000000)",
            (space_id, model, dimensions, table),
        )
        if version < 4:
            conn.execute(
                f"CREATE VIRTUAL TABLE {table} USING vec0(chunk_id INTEGER PRIMARY KEY, "
                f"embedding float[{dimensions}] distance_metric=cosine)"
            )
        else:
            migrations.create_vector_tables(conn, space_id, dimensions)
    for file_id, folder_id, file_path, status, reason, space_id in FILES:
        conn.execute(
            "INSERT INTO files (id, folder_id, path, size, mtime, content_hash, status, reason, space_id, "
            "indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1700000100)",
            (
                file_id,
                folder_id,
                file_path,
                100 * file_id,
                1690000000.0 + file_id,
                f"hash-{file_id}",
                status,
                reason,
                space_id,
            ),
        )
    for chunk_id, file_id, ordinal, text, page, heading in CHUNKS:
        values = [chunk_id, file_id, ordinal, text, page, 0, len(text), len(text.split())]
        columns = "id, file_id, ordinal, text, page, start_char, end_char, n_tokens"
        if version >= 5:
            values.append(heading)
            columns += ", heading"
        conn.execute(f"INSERT INTO chunks ({columns}) VALUES ({', '.join('?' * len(values))})", values)
    for space_id, _, dimensions, chunk_ids in SPACES:
        vectors = vectors_of(space_id, dimensions, chunk_ids)
        for chunk_id, vector, code in zip(chunk_ids, vectors, binary_codes(vectors), strict=True):
            if version < 4:
                conn.execute(f"INSERT INTO vec_{space_id} VALUES (?, ?)", (chunk_id, vector.tobytes()))
            else:
                conn.execute(f"INSERT INTO vectors_{space_id} VALUES (?, ?)", (chunk_id, vector.tobytes()))
                conn.execute(f"INSERT INTO codes_{space_id} VALUES (?, ?)", (chunk_id, code.tobytes()))
    if version >= 6:
        conn.execute("UPDATE chunk_id_next SET id = 8")
    conn.execute("COMMIT")
    # One self-contained file: no write-ahead log beside it, no free pages, small pages.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA page_size = 1024")
    conn.execute("VACUUM")
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--all", action="store_true", help="rewrite every fixture, not only the missing ones")
    args = parser.parse_args()
    for version in range(1, migrations.SCHEMA_VERSION):
        path = HERE / f"v{version}.sqlite3"
        if path.exists() and not args.all:
            continue
        write(version, path)
        print(f"{path.name}: schema {version}, {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
