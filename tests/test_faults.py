"""Faults with the real command in child processes: a disk that really fills (a small tmpfs,
where this machine lets the test mount one), two indexers at once on one index, and the
window's indexing child when llama.cpp aborts."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from localsearch.core import protocol
from localsearch.core.storage import Index, damage

REPO = Path(__file__).resolve().parents[1]
WORDS = (
    "river mountain lantern copper violet harbor meadow signal orbit canyon ember glacier "
    "thunder velvet marble quartz saffron tundra willow zephyr basalt cobalt delta falcon"
).split()


def _corpus(root: Path, files: int, words: int = 600) -> Path:
    rng = random.Random(5)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        text = " ".join(
            rng.choice(WORDS) + (f"{rng.randrange(10**6)}" if j % 3 == 0 else "") for j in range(words)
        )
        (root / f"doc{i:03d}.txt").write_text(text + f" note{i}.")
        os.utime(root / f"doc{i:03d}.txt", (1_700_000_000, 1_700_000_000))
    return root


def _env(home: Path, embedder: str = "tests.crash_embedder:PacedFakeEmbedder") -> dict[str, str]:
    env = dict(os.environ)
    env["LOCALSEARCH_HOME"] = str(home)
    env["LOCALSEARCH_TEST_EMBEDDER"] = embedder
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _content(db: Path) -> tuple[list[tuple], list[tuple]]:
    index = Index.open(db)
    try:
        conn = index.conn
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        (table,) = conn.execute("SELECT table_name FROM embedding_spaces").fetchone()
        files = sorted(tuple(r) for r in conn.execute("SELECT path, status, content_hash, size FROM files"))
        chunks = sorted(
            tuple(r)
            for r in conn.execute(
                "SELECT f.path, c.ordinal, c.text, v.embedding FROM chunks c "
                f"JOIN files f ON f.id = c.file_id JOIN {table} v ON v.chunk_id = c.id"
            )
        )
        n_chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        assert len(chunks) == n_chunks == conn.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]
        return files, chunks
    finally:
        index.close()


def _clean(tmp_path: Path, docs: Path) -> tuple[list[tuple], list[tuple]]:
    home = tmp_path / "clean-home"
    done = subprocess.run(
        [sys.executable, "-m", "localsearch", "index", str(docs)],
        env=_env(home, "tests.fakes:FakeEmbedder"),
        cwd=REPO,
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return _content(home / "data" / "index.sqlite3")


# -- a disk that fills ----------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(
            "mounting a tmpfs needs root on Linux; tests/core/test_faults.py injects SQLITE_FULL instead"
        )
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _grow(where: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], check=True)


def _read_protocol(child: subprocess.Popen[bytes]) -> Iterator[protocol.Message]:
    assert child.stdout is not None
    for line in child.stdout:
        item = protocol.decode(line)
        assert item is not None, line  # only protocol lines on the channel
        yield item


def test_a_real_full_disk_pauses_the_indexing_child_and_it_resumes_when_space_returns(tmp_path: Path) -> None:
    docs = _corpus(tmp_path / "docs", 80)
    with _tmpfs(tmp_path / f"small-{uuid.uuid4().hex[:6]}", "1500k") as home:
        child = subprocess.Popen(
            [sys.executable, "-m", "localsearch", "index", "--protocol", str(docs)],
            env=_env(home, "tests.fakes:FakeEmbedder"),
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        full_at = None
        seen: list[protocol.Message] = []
        for item in _read_protocol(child):
            seen.append(item)
            if (
                item.type == protocol.PROGRESS
                and item.progress.get("paused") == "disk full"
                and full_at is None
            ):
                full_at = item.progress["files_done"]
                db = home / "data" / "index.sqlite3"
                assert damage(db) is None  # whole while full
                _grow(home, "64m")  # space returns
        child.wait(120)
        assert child.returncode == 0, child.stderr.read() if child.stderr else ""
        assert full_at is not None and 0 < full_at < 80
        texts = [m.text for m in seen if m.type == protocol.MESSAGE]
        assert any("disk holding the index is full" in t for t in texts)
        assert seen[-1].type == protocol.FINISHED and seen[-1].progress["files_indexed"] == 80
        assert _content(home / "data" / "index.sqlite3") == _clean(tmp_path, docs)


def test_the_window_says_disk_full_in_words(
    qtbot: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localsearch.gui.main_window import MainWindow

    docs = _corpus(tmp_path / "docs", 80)
    with _tmpfs(tmp_path / f"small-{uuid.uuid4().hex[:6]}", "1500k") as home:
        for key, value in _env(home, "tests.fakes:FakeEmbedder").items():
            monkeypatch.setenv(key, value)
        window = MainWindow()
        qtbot.addWidget(window)  # type: ignore[attr-defined]
        shown: list[str] = []
        window.statusBar().messageChanged.connect(shown.append)
        window.index_lane.index([str(docs)])
        qtbot.waitUntil(lambda: any("Disk full" in s for s in shown), timeout=120_000)  # type: ignore[attr-defined]
        assert window.index_lane.running  # waiting, not dead
        with qtbot.waitSignal(window.index_lane.finished, timeout=120_000) as finished:  # type: ignore[attr-defined]
            _grow(home, "64m")
        assert finished.args == [True, "Indexed 80 new or changed files."]
        window.search_lane.stop()
        window.watch_lane.stop()


# -- two indexers at once ----------------------------------------------------------


def test_the_window_child_and_the_command_line_index_one_after_the_other(tmp_path: Path) -> None:
    """The window's indexing child (--protocol) and `localsearch index` from a terminal,
    started together on one index: one waits for the other's lock, both finish, neither
    meets "database is locked", and the index equals a clean build."""
    docs = _corpus(tmp_path / "docs", 120, words=200)
    home = tmp_path / "home"
    window_child = subprocess.Popen(
        [sys.executable, "-m", "localsearch", "index", "--protocol", str(docs)],
        env=_env(home, "tests.crash_embedder:SlowFakeEmbedder"),
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert window_child.stdout is not None
    first = protocol.decode(window_child.stdout.readline())  # it holds the lock from here
    assert first is not None and first.type == protocol.PROGRESS
    terminal = subprocess.run(
        [sys.executable, "-m", "localsearch", "index", "--json", str(docs)],
        env=_env(home, "tests.crash_embedder:SlowFakeEmbedder"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    rest = window_child.stdout.read().decode()
    window_child.wait(300)
    errors = (window_child.stderr.read().decode() if window_child.stderr else "") + terminal.stderr
    assert window_child.returncode == 0 and terminal.returncode == 0, errors
    assert "Another localsearch is indexing this index" in terminal.stderr
    assert "locked" not in errors + rest + terminal.stdout
    summary = json.loads(terminal.stdout)
    assert summary["phase"] == "done" and summary["files_indexed"] == 0  # the first did them all
    finished = [protocol.decode(line) for line in rest.splitlines()][-1]
    assert finished is not None and finished.progress["files_indexed"] == 120
    assert _content(home / "data" / "index.sqlite3") == _clean(tmp_path, docs)


# -- the window's child when llama.cpp aborts ----------------------------------------


def test_an_engine_abort_in_the_window_child_costs_one_file(
    qtbot: object, tmp_path: Path, default_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from localsearch.core.service import LocalSearch
    from localsearch.gui.workers import IndexLane

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Aspirin lowers the risk of stroke.")
    (folder / "b.txt").write_text("A zebra has black and white stripes.")
    (folder / "c.txt").write_text("The cat sat on the mat.")
    for key, value in _env(
        Path(os.environ["LOCALSEARCH_HOME"]), "tests.crash_embedder:PoisonedEngine"
    ).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LOCALSEARCH_TEST_MODEL", str(default_model))
    monkeypatch.setenv("LOCALSEARCH_TEST_POISON", "zebra")
    lane = IndexLane()
    shown: list[str] = []
    lane.message.connect(shown.append)
    with qtbot.waitSignal(lane.finished, timeout=180_000) as finished:  # type: ignore[attr-defined]
        lane.index([str(folder)])
    assert finished.args == [True, "Indexed 2 new or changed files, 1 could not be read."]
    assert not any("abort" in s.lower() or "Traceback" in s for s in shown)
    with LocalSearch() as service:
        failed = service.status()["failed"]
    assert isinstance(failed, list) and [Path(f["path"]).name for f in failed] == ["b.txt"]
    assert "stopped" in failed[0]["reason"] and "zebra" in failed[0]["reason"]
