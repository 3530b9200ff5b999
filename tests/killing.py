"""SIGKILL during indexing with the real model through the real command line: the whole
process group (the command and its embedding engine child) killed at random moments,
restarted each time, then compared with a clean run. Shared by
tests/test_kill_real_model.py (a few kills) and bench/kill_index.py (20 kills, 1,000 files)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from localsearch.core.storage import Index
from tests.conftest import EVALDATA

REPO = Path(__file__).resolve().parents[1]


def write_scifact(folder: Path, count: int) -> int:
    """The first `count` SciFact abstracts as <id>.txt files; how many were written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(EVALDATA / "scifact" / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            (folder / f"{doc['_id']}.txt").write_text(f"{doc.get('title', '')}\n\n{doc['text']}\n")
            written += 1
            if written == count:
                break
    return written


def env_for(home: Path) -> dict[str, str]:
    env = {**os.environ, "LOCALSEARCH_HOME": str(home), "PYTHONPATH": str(REPO)}
    env.pop("LOCALSEARCH_TEST_EMBEDDER", None)  # the real model
    return env


def index_command(root: Path) -> list[str]:
    return [sys.executable, "-m", "localsearch", "index", str(root), "--progress-json", "--json"]


def run_to_end(root: Path, home: Path, timeout: float = 3600) -> tuple[dict[str, object], float]:
    started = time.monotonic()
    done = subprocess.run(
        index_command(root), env=env_for(home), cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise AssertionError(f"indexing ended with {done.returncode}: {done.stderr[-3000:]}")
    return json.loads(done.stdout), time.monotonic() - started


@dataclass
class KillRecord:
    after_seconds: float
    files_done_before: int  # files embedded in that run before the kill, as last reported
    committed_total: int  # files in the index after the kill
    restart_ok: bool = True


@dataclass
class KillRun:
    kills: list[KillRecord] = field(default_factory=list)
    finished_early: int = 0  # runs that completed before their kill moment


def _files_in(db: Path) -> int:
    if not db.exists():
        return 0
    index = Index.open(db)
    try:
        return int(index.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0])
    finally:
        index.close()


def _last_progress(log: Path) -> dict[str, object]:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith("{")]
    try:
        return dict(json.loads(lines[-1])) if lines else {}
    except ValueError:  # a line being written
        return {}


def kill_repeatedly(root: Path, home: Path, kills: int, rng: random.Random, total: int) -> KillRun:
    """Start the command and kill its process group, `kills` times, at random moments
    spread over the work: each run is killed once it has embedded a random share of the
    files still missing (zero: during start-up or the scan), plus a random fraction of a
    second, so kills land in start-up, scanning, embedding and committing alike. Each
    restart must open the index and go on: a run that fails by itself is an error."""
    record = KillRun()
    log = home.parent / f"{home.name}-progress.log"
    db = home / "data" / "index.sqlite3"
    while len(record.kills) < kills:
        left = kills - len(record.kills)
        missing = total - _files_in(db)
        goal = rng.randint(0, max(0, missing // (left + 1)))
        with open(log, "w") as stderr:
            child = subprocess.Popen(
                index_command(root),
                env=env_for(home),
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # its own process group: the engine child dies with it
            )
        started = time.monotonic()
        early = rng.uniform(0.2, 3.0)  # for goal 0: somewhere in start-up or the scan
        while child.poll() is None:
            progress = _last_progress(log)
            embedded = int(progress.get("files_indexed", 0) or 0)  # type: ignore[call-overload]
            if (goal == 0 and time.monotonic() - started >= early) or (goal and embedded >= goal):
                break
            time.sleep(0.02)
        if child.poll() is None:
            time.sleep(rng.uniform(0.0, 0.3))
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(60)
            done = int(_last_progress(log).get("files_indexed", 0) or 0)  # type: ignore[call-overload]
            record.kills.append(KillRecord(round(time.monotonic() - started, 2), done, _files_in(db)))
            continue
        if child.returncode != 0:
            raise AssertionError(
                f"a restart failed by itself ({child.returncode}): {log.read_text()[-3000:]}"
            )
        record.finished_early += 1
        return record  # the index is complete: nothing left to interrupt
    return record


def content(db: Path) -> dict[str, object]:
    """Files, chunks and vectors by path, and the consistency checks."""
    index = Index.open(db)
    try:
        conn = index.conn
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        foreign = conn.execute("PRAGMA foreign_key_check").fetchall()
        (table,) = conn.execute("SELECT table_name FROM embedding_spaces").fetchone()
        files = sorted(
            tuple(r) for r in conn.execute("SELECT path, status, reason, content_hash, size FROM files")
        )
        rows = conn.execute(
            "SELECT f.path, c.ordinal, c.text, c.page, c.start_char, c.end_char, c.n_tokens, v.embedding "
            f"FROM chunks c JOIN files f ON f.id = c.file_id LEFT JOIN {table} v ON v.chunk_id = c.id"
        ).fetchall()
        chunks = sorted(tuple(r[:7]) for r in rows)
        vectors = {(r[0], r[1]): r[7] for r in rows}
        n_chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        orphans = {
            "vectors without chunk": conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE chunk_id NOT IN (SELECT id FROM chunks)"
            ).fetchone()[0],
            "chunks without vector": sum(1 for v in vectors.values() if v is None),
            "keyword rows - chunks": conn.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0] - n_chunks,
        }
        return {
            "integrity": integrity,
            "foreign_key_problems": len(foreign),
            "files": files,
            "chunks": chunks,
            "vectors": vectors,
            "orphans": orphans,
        }
    finally:
        index.close()


def compare(killed: dict[str, object], clean: dict[str, object]) -> dict[str, object]:
    """How the killed run's index differs from the clean one (all zeros / True: equal)."""
    kv, cv = killed["vectors"], clean["vectors"]
    assert isinstance(kv, dict) and isinstance(cv, dict)
    same_keys = set(kv) == set(cv)
    worst = 0.0
    identical = 0
    for key in set(kv) & set(cv):
        if kv[key] is None or cv[key] is None:
            continue
        a = np.frombuffer(kv[key], dtype=np.float32)
        b = np.frombuffer(cv[key], dtype=np.float32)
        identical += kv[key] == cv[key]
        worst = max(worst, float(np.abs(a - b).max()) if a.shape == b.shape else float("inf"))
    return {
        "integrity": killed["integrity"],
        "foreign_key_problems": killed["foreign_key_problems"],
        "orphans": killed["orphans"],
        "files_equal": killed["files"] == clean["files"],
        "files": len(killed["files"]),  # type: ignore[arg-type]
        "chunks_equal": killed["chunks"] == clean["chunks"],
        "chunks": len(killed["chunks"]),  # type: ignore[arg-type]
        "vector_keys_equal": same_keys,
        "vectors": len(kv),
        "vectors_bit_identical": int(identical),
        "vector_max_abs_difference": worst,
    }
