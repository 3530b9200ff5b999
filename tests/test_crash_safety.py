"""Crash safety: the real command, killed with SIGKILL at random moments while the folder
keeps changing, restarted each time, ends with an index equal to a clean build."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from localsearch.core.storage import Index

REPO = Path(__file__).resolve().parents[1]
KILLS = 20

WORDS = (
    "river mountain lantern copper violet harbor meadow signal orbit canyon ember glacier "
    "thunder velvet marble quartz saffron tundra willow zephyr basalt cobalt delta falcon"
).split()


def _text(rng: random.Random, paragraphs: int) -> str:
    return "\n\n".join(
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40))) + "." for _ in range(paragraphs)
    )


def _make_corpus(root: Path, rng: random.Random) -> None:
    for i in range(120):
        folder = root / f"part{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"doc{i:03d}.txt").write_text(_text(rng, rng.randint(1, 12)))
    (root / "part0" / "binary.txt").write_bytes(b"\x00" * 64)


def _churn(root: Path, rng: random.Random, step: int) -> None:
    """Edits, additions, deletions, renames and copies between restarts."""
    files = sorted(root.rglob("*.txt"))
    for path in rng.sample(files, 3):
        path.write_text(_text(rng, rng.randint(1, 8)))
    (root / f"part{step % 4}" / f"new{step:03d}.txt").write_text(_text(rng, rng.randint(1, 6)))
    victim, moved, copied = rng.sample([f for f in files if f.exists()], 3)
    victim.unlink()
    if moved.exists():
        moved.rename(root / f"part{(step + 1) % 4}" / f"moved{step:03d}.txt")
    if copied.exists():
        (root / f"part{(step + 2) % 4}" / f"copy{step:03d}.txt").write_bytes(copied.read_bytes())


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["LOCALSEARCH_HOME"] = str(home)
    env["LOCALSEARCH_TEST_EMBEDDER"] = "tests.crash_embedder:PacedFakeEmbedder"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _index_command(root: Path) -> list[str]:
    return [sys.executable, "-m", "localsearch", "index", str(root), "--progress-json", "--json"]


def _last_line(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def _run_to_end(root: Path, home: Path) -> dict[str, object]:
    done = subprocess.run(
        _index_command(root), env=_env(home), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, object] = json.loads(done.stdout)
    return summary


def _content(db: Path) -> dict[str, object]:
    """Everything that defines the index, by path; and its consistency checks."""
    index = Index.open(db)
    try:
        conn = index.conn
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        (table,) = conn.execute("SELECT table_name FROM embedding_spaces").fetchone()
        files = sorted(
            tuple(r) for r in conn.execute("SELECT path, status, reason, content_hash, size FROM files")
        )
        chunks = sorted(
            tuple(r)
            for r in conn.execute(
                "SELECT f.path, c.ordinal, c.text, c.page, c.start_char, c.end_char, c.n_tokens, "
                "v.embedding FROM chunks c JOIN files f ON f.id = c.file_id "
                f"LEFT JOIN {table} v ON v.chunk_id = c.id"
            )
        )
        n_chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        orphans = {
            "vectors without chunk": conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE chunk_id NOT IN (SELECT id FROM chunks)"
            ).fetchone()[0],
            "chunks without vector": sum(1 for c in chunks if c[-1] is None),
            "chunks without file": conn.execute(
                "SELECT COUNT(*) FROM chunks WHERE file_id NOT IN (SELECT id FROM files)"
            ).fetchone()[0],
            "keyword rows": conn.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0] - n_chunks,
        }
        assert conn.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')") is not None
        return {"files": files, "chunks": chunks, "orphans": orphans}
    finally:
        index.close()


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_at_random_points_never_corrupts_or_duplicates(tmp_path: Path) -> None:
    rng = random.Random(4)
    root = tmp_path / "docs"
    home = tmp_path / "home"
    _make_corpus(root, rng)
    kills = 0
    mid_run = 0  # kills after some files of that run were committed
    attempts = 0
    log = tmp_path / "progress.log"
    while kills < KILLS:
        attempts += 1
        assert attempts < 3 * KILLS, "the indexer kept finishing before it could be killed"
        if attempts > 1:
            _churn(root, rng, attempts)
        with open(log, "w") as stderr:
            child = subprocess.Popen(
                _index_command(root), env=_env(home), cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr
            )
        try:
            if rng.random() < 0.8:
                # Most kills land in the indexing itself: wait until it has begun.
                deadline = time.monotonic() + 30
                while child.poll() is None and time.monotonic() < deadline:
                    if '"indexing"' in log.read_text(errors="replace"):
                        break
                    time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.4))
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                kills += 1
                mid_run += '"files_done": 0,' not in _last_line(log) and '"indexing"' in _last_line(log)
        finally:
            child.wait(30)

    assert mid_run >= KILLS // 2, f"only {mid_run} kills landed while files were being indexed"
    first = _run_to_end(root, home)
    assert first["phase"] == "done"
    again = _run_to_end(root, home)
    # Resumed with no duplicate work: a run over an unchanged folder embeds nothing.
    assert again["files_indexed"] == 0 and again["files_reused"] == 0 and again["tokens_embedded"] == 0

    clean_home = tmp_path / "clean"
    _run_to_end(root, clean_home)
    killed = _content(home / "data" / "index.sqlite3")
    clean = _content(clean_home / "data" / "index.sqlite3")
    assert killed["orphans"] == {k: 0 for k in killed["orphans"]}  # type: ignore[union-attr]
    assert killed["files"] == clean["files"]
    assert killed["chunks"] == clean["chunks"]
    paths = [f[0] for f in killed["files"]]  # type: ignore[union-attr]
    on_disk = sorted(str(p) for p in root.rglob("*.txt"))
    assert paths == on_disk and len(set(paths)) == len(paths)


def _engine_children(pid: int) -> list[int]:
    """The engine processes a `localsearch index` process started (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"engine_process" in command:
                found.append(int(child))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _real_env(home: Path) -> dict[str, str]:
    env = _env(home)
    del env["LOCALSEARCH_TEST_EMBEDDER"]  # the real model, in its real engine child
    return env


def _progress_lines(log: Path) -> list[dict]:
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
    return lines


def _wait_for_files(log: Path, child: subprocess.Popen[bytes], done: int) -> None:
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        progress = _progress_lines(log)
        if progress and int(progress[-1].get("files_done", 0)) >= done:
            return
        time.sleep(0.05)
    raise AssertionError(f"the run did not reach {done} files: {log.read_text()[-2000:]}")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the engine child through /proc")
def test_killing_the_real_engine_child_and_the_command_loses_nothing(
    tmp_path: Path, default_model: Path
) -> None:
    """The real command with the real model: its engine child is SIGKILLed twice mid-run
    (each file in flight is tried once more on a new engine, so none is lost), then the
    command itself; its engine does not outlive it, and the restarted run ends with the
    index a clean run makes."""
    rng = random.Random(8)
    root = tmp_path / "docs"
    _make_corpus(root, rng)
    home = tmp_path / "home"
    log = tmp_path / "progress.log"
    command = [sys.executable, "-m", "localsearch", "index", str(root), "--progress-json", "--json"]
    with open(log, "w") as stderr:
        child = subprocess.Popen(
            command, env=_real_env(home), cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        engines_killed = []
        for done in (5, 15):
            _wait_for_files(log, child, done)
            engines = _engine_children(child.pid)
            assert len(engines) == 1, engines
            os.kill(engines[0], signal.SIGKILL)
            engines_killed.append(engines[0])
        _wait_for_files(log, child, 30)
        engine = _engine_children(child.pid)
        assert engine and engine[0] not in engines_killed  # a new engine took over
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(60)
    deadline = time.monotonic() + 10
    while _alive(engine[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(engine[0]), "the engine outlived the killed command"

    done = subprocess.run(command, env=_real_env(home), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["phase"] == "done"
    clean_home = tmp_path / "clean"
    clean = subprocess.run(
        command, env=_real_env(clean_home), cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert clean.returncode == 0, clean.stderr
    killed = _content(home / "data" / "index.sqlite3")
    expected = _content(clean_home / "data" / "index.sqlite3")
    assert killed["orphans"] == {k: 0 for k in killed["orphans"]}  # type: ignore[union-attr]
    assert killed["files"] == expected["files"]  # no file failed: each killed one was retried
    assert all(f[1] == "indexed" for f in killed["files"] if not f[0].endswith("binary.txt"))  # type: ignore[union-attr]
    # Chunks equal; vectors equal up to llama.cpp's batch-order rounding.
    assert [c[:-1] for c in killed["chunks"]] == [c[:-1] for c in expected["chunks"]]  # type: ignore[union-attr]
    for got, want in zip(killed["chunks"], expected["chunks"], strict=True):  # type: ignore[call-overload]
        a, b = np.frombuffer(got[-1], dtype=np.float32), np.frombuffer(want[-1], dtype=np.float32)
        assert float(a @ b) / float(np.linalg.norm(a) * np.linalg.norm(b)) > 0.999
