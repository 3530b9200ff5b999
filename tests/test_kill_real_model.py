"""SIGKILL with the real model through the real command line: the command and its engine
child killed together at random moments, restarted each time; the final index equals a
clean run's in files, chunks and vectors. (bench/kill_index.py: 20 kills, 1,000 files.)"""

from __future__ import annotations

import random
from pathlib import Path

from tests import killing


def test_kills_with_the_real_model_leave_the_clean_index(tmp_path: Path, default_model: Path) -> None:
    docs = tmp_path / "docs"
    assert killing.write_scifact(docs, 60) == 60
    clean_home = tmp_path / "clean"
    summary, _ = killing.run_to_end(docs, clean_home)
    assert summary["files_indexed"] == 60

    home = tmp_path / "killed"
    rng = random.Random(14)
    record = killing.kill_repeatedly(docs, home, kills=3, rng=rng, total=60)
    assert len(record.kills) == 3
    assert any(k.committed_total > 0 for k in record.kills), "no kill landed after files were committed"
    final, _ = killing.run_to_end(docs, home)
    assert final["phase"] == "done"
    again, _ = killing.run_to_end(docs, home)
    assert again["files_indexed"] == 0 and again["tokens_embedded"] == 0  # nothing left, nothing twice

    result = killing.compare(
        killing.content(home / "data" / "index.sqlite3"),
        killing.content(clean_home / "data" / "index.sqlite3"),
    )
    assert result["integrity"] == "ok" and result["foreign_key_problems"] == 0
    assert result["orphans"] == {k: 0 for k in result["orphans"]}  # type: ignore[union-attr]
    assert result["files_equal"] and result["chunks_equal"] and result["vector_keys_equal"], result
    assert result["vector_max_abs_difference"] < 1e-4, result
