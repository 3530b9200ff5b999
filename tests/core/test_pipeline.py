"""The indexing pipeline: vector reuse by content hash, parallel extraction, progress as
data, pause/resume/cancel, battery policy, files still being written, exclusions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from localsearch.core import indexer as indexer_module
from localsearch.core.indexer import IndexControl, Indexer, IndexOptions, IndexProgress
from localsearch.core.power import PowerPolicy
from localsearch.core.searcher import Searcher
from localsearch.core.storage import Index
from tests.fakes import FakeEmbedder


def _indexer(index: Index, embedder: FakeEmbedder, **options: object) -> Indexer:
    space = index.ensure_space(embedder.name, embedder.dimensions)
    control = options.pop("control", None)
    return Indexer(index, embedder, space, IndexOptions(**options), control=control)  # type: ignore[arg-type]


def _last(progress: object) -> IndexProgress:
    *_, last = progress  # type: ignore[misc]
    return last  # type: ignore[no-any-return]


def _snapshot(index: Index) -> list[tuple[str, int, str, bytes]]:
    """(file name, ordinal, text, vector) of every chunk: the index's content by name."""
    space = index.find_space("fake")
    assert space is not None
    rows = index.conn.execute(
        f"SELECT f.path, c.ordinal, c.text, v.embedding FROM chunks c JOIN files f ON f.id = c.file_id "
        f"JOIN {space.table_name} v ON v.chunk_id = c.id"
    ).fetchall()
    return sorted((Path(r[0]).name, int(r[1]), str(r[2]), bytes(r[3])) for r in rows)


def _keyword(index: Index, embedder: FakeEmbedder, query: str) -> list[str]:
    space = index.ensure_space(embedder.name, embedder.dimensions)
    return [h.name for h in Searcher(index, embedder, space).search(query, 50, mode="keyword")]


def _many(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"note{i:04d}.txt").write_text(f"Note {i} mentions word{i} and a shared topic.\n")


def test_renaming_1000_files_embeds_nothing(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    root = tmp_path / "root"
    _many(root / "old", 1000)
    indexer = _indexer(index, fake_embedder)
    _last(indexer.run([root]))
    embedded = fake_embedder.embedded_sequences
    assert embedded == 1000
    before = {(name[4:], o, t, v) for name, o, t, v in _snapshot(index)}

    # A whole folder renamed (what a full scan sees) ...
    (root / "old").rename(root / "new")
    last = _last(indexer.run([root]))
    assert fake_embedder.embedded_sequences == embedded
    assert last.files_reused == 1000 and last.files_removed == 1000 and last.files_indexed == 0
    paths = [r[0] for r in index.conn.execute("SELECT path FROM files")]
    assert len(paths) == 1000 and all("/new/" in p for p in paths)

    # ... and each file renamed one by one (what the watcher reports).
    renamed = []
    for path in sorted((root / "new").iterdir()):
        target = path.with_name("renamed-" + path.name)
        path.rename(target)
        renamed += [path, target]
    last = _last(indexer.update(renamed))
    assert fake_embedder.embedded_sequences == embedded
    assert last.files_reused == 1000 and last.files_removed == 1000
    after = {(name[len("renamed-note") :], o, t, v) for name, o, t, v in _snapshot(index)}
    assert after == before  # the same chunks and the very same vectors, under new names
    assert index.conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 1000
    assert _keyword(index, fake_embedder, "word17") == ["renamed-note0017.txt"]


def test_a_copy_reuses_vectors_and_outlives_its_original(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_text("Lighthouses guide ships along rocky coasts.\n\nKeepers trimmed the wicks.")
    indexer = _indexer(index, fake_embedder, chunk_tokens=10, chunk_overlap=0)
    _last(indexer.run([root]))
    embedded = fake_embedder.embedded_sequences
    (root / "b.txt").write_bytes((root / "a.txt").read_bytes())
    last = _last(indexer.update([root / "b.txt"]))
    assert last.files_reused == 1 and fake_embedder.embedded_sequences == embedded
    (root / "a.txt").unlink()
    _last(indexer.update([root / "a.txt"]))
    assert _keyword(index, fake_embedder, "lighthouses") == ["b.txt"]
    assert _keyword(index, fake_embedder, "wicks") == ["b.txt"]
    # An edited copy is embedded afresh.
    embedded = fake_embedder.embedded_sequences
    (root / "b.txt").write_text("Completely new words about volcanoes.")
    _last(indexer.update([root / "b.txt"]))
    assert fake_embedder.embedded_sequences == embedded + 1
    assert _keyword(index, fake_embedder, "lighthouses") == []


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_parallel_extraction_builds_the_same_index(tmp_path: Path, index: Index, workers: int) -> None:
    root = tmp_path / "root"
    _many(root, 60)
    (root / "bad.txt").write_bytes(b"\x00" * 100)
    (root / "long.md").write_text("\n\n".join(f"Paragraph {i} of a long text." for i in range(200)))
    embedder = FakeEmbedder()
    last = _last(_indexer(index, embedder, chunk_tokens=40, extract_workers=workers).run([root]))
    assert last.files_done == last.files_total == 62
    assert last.files_indexed == 61 and last.files_failed == 1
    reference = Index.open(tmp_path / "reference.sqlite3")
    try:
        _last(_indexer(reference, FakeEmbedder(), chunk_tokens=40, extract_workers=0).run([root]))
        assert _snapshot(index) == _snapshot(reference)
    finally:
        reference.close()


def test_progress_is_data_with_rate_and_eta(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    root = tmp_path / "root"
    _many(root, 20)
    # The generator updates one object; as_dict() snapshots are what the CLI prints.
    snapshots = [p.as_dict() for p in _indexer(index, fake_embedder).run([root])]
    assert snapshots[0]["phase"] == "scanning"
    working = [s for s in snapshots if s["phase"] == "indexing"]
    assert [s["files_done"] for s in working] == list(range(1, 21))
    assert all(s["files_total"] == 20 and str(s["current"]).endswith(".txt") for s in working)
    etas = [float(s["eta_seconds"]) for s in working]  # type: ignore[arg-type]
    assert etas[-1] == 0.0 and all(e >= 0 for e in etas)
    last = snapshots[-1]
    assert last["phase"] == "done" and last["current"] is None and last["eta_seconds"] == 0.0
    assert last["chunks_added"] == 20 and float(last["chunks_per_second"]) > 0  # type: ignore[arg-type]
    assert last["paused"] is None


def test_pause_resume_and_cancel(tmp_path: Path, index: Index, fake_embedder: FakeEmbedder) -> None:
    root = tmp_path / "root"
    _many(root, 10)
    control = IndexControl()
    run = _indexer(index, fake_embedder, control=control).run([root])
    states: list[tuple[str, str | None, int]] = []
    resumer = threading.Timer(0.5, control.resume)
    for progress in run:
        states.append((progress.phase, progress.paused, progress.files_done))
        if progress.files_done == 3 and not resumer.is_alive() and not resumer.finished.is_set():
            control.pause()
            resumer.start()
    resumer.join()
    paused = [s for s in states if s[1] == "paused"]
    assert paused and all(s[2] == 3 for s in paused)  # nothing moved while paused
    assert states[-1][0] == "done" and states[-1][2] == 10

    # Cancel while paused: the run ends at once, what was done is kept.
    other = tmp_path / "other"
    _many(other, 10)
    control = IndexControl()
    for progress in _indexer(index, fake_embedder, control=control).run([other]):
        if progress.files_done == 4:
            control.pause()
            threading.Timer(0.2, control.cancel).start()
    assert progress.phase == "cancelled" and progress.files_done == 4
    assert len(index.files_under(str(other))) == 4


def test_battery_pause_policy_waits_for_mains(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    root = tmp_path / "root"
    _many(root, 5)
    on_battery = [True]
    control = IndexControl(PowerPolicy("pause", lambda: on_battery[0], interval=0))
    threading.Timer(0.5, lambda: on_battery.__setitem__(0, False)).start()
    started = time.monotonic()
    reasons = {p.paused for p in _indexer(index, fake_embedder, control=control).run([root])}
    assert "on battery" in reasons
    assert time.monotonic() - started >= 0.4
    assert index.counts()["files"] == 5


def test_battery_slow_policy_rests_between_files(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    _many(root, 4)
    rests: list[float] = []
    control = IndexControl(PowerPolicy("slow", lambda: True, interval=0))
    monkeypatch.setattr(control, "wait", rests.append)
    _last(_indexer(index, fake_embedder, control=control).run([root]))
    assert len(rests) == 4 and all(r > 0 for r in rests)


def test_a_file_still_being_written_is_indexed_once_stable(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    root = tmp_path / "root"
    _many(root, 30)
    growing = root / "growing.txt"
    growing.write_text("start of a log\n")
    stop = threading.Event()

    def writer() -> None:
        with open(growing, "a") as handle:
            for i in range(40):
                handle.write(f"line {i} keeps coming\n")
                handle.flush()
                time.sleep(0.02)
            handle.write("the final line mentions zeppelins\n")
        stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    last = _last(_indexer(index, fake_embedder, settle_seconds=0.3, chunk_tokens=512).run([root]))
    thread.join()
    assert stop.is_set() and last.files_failed == 0
    assert _keyword(index, fake_embedder, "zeppelins") == ["growing.txt"]
    state = index.file_state(str(growing))
    assert state is not None and state.size == growing.stat().st_size


def test_user_exclusions_and_gitignore_through_options(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder
) -> None:
    root = tmp_path / "root"
    for name in ["keep.txt", "skip.log.txt", "build/out.txt", "gen/x.txt", ".notes/n.txt"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"content of {name}")
    (root / ".gitignore").write_text("gen/\n")
    indexer = _indexer(index, fake_embedder, exclude=("*.log.txt", "build/", "!.notes/"), use_gitignore=True)
    _last(indexer.run([root]))
    names = sorted(Path(p).relative_to(root).as_posix() for p in index.files_under(str(root)))
    assert names == [".notes/n.txt", "keep.txt"]
    # The watcher's paths obey the same rules.
    (root / "build" / "new.txt").write_text("new build output")
    (root / "gen" / "y.txt").write_text("generated")
    (root / "fresh.txt").write_text("fresh words")
    _last(indexer.update([root / "build" / "new.txt", root / "gen", root / "fresh.txt"]))
    names = sorted(Path(p).relative_to(root).as_posix() for p in index.files_under(str(root)))
    assert names == [".notes/n.txt", "fresh.txt", "keep.txt"]


def test_a_file_stuck_where_no_deadline_reaches_is_left_behind_and_the_run_goes_on(
    tmp_path: Path, index: Index, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for name in ("a.txt", "stuck.txt", "c.txt"):
        (root / name).write_text(f"{name} is a note about gardens.\n")
    release = threading.Event()
    real_extract = indexer_module.extract.extract

    def extract(path: Path, data: bytes) -> object:
        if Path(path).name == "stuck.txt":
            release.wait()  # one blocking call: the extraction deadline cannot interrupt it
        return real_extract(path, data)

    monkeypatch.setattr(indexer_module.extract, "extract", extract)
    monkeypatch.setattr(indexer_module, "STUCK_GRACE_SECONDS", 0.5)
    started = time.monotonic()
    try:
        last = _last(_indexer(index, fake_embedder, extract_workers=1, extract_seconds=0.5).run([root]))
    finally:
        release.set()
    assert time.monotonic() - started < 20  # waited about a second for it, not for ever
    failures = {Path(path).name: reason for path, reason in index.failures()}
    assert list(failures) == ["stuck.txt"]
    assert "did not finish in 1 s and could not be stopped" in failures["stuck.txt"]
    # The other files went on through the worker that took the stuck one's place.
    assert last.files_done == 3 and sorted(_keyword(index, fake_embedder, "gardens")) == ["a.txt", "c.txt"]


def test_prefetch_drops_the_late_result_of_an_item_it_gave_up() -> None:
    release = threading.Event()
    done: list[str] = []

    def prepare(path: Path) -> object:
        if path.name == "slow":
            release.wait()
        done.append(path.name)
        return ("prepared", path.name)

    prefetch = indexer_module._Prefetch(
        [Path("one"), Path("slow"), Path("three"), Path("four")],
        prepare,  # type: ignore[arg-type]
        1,
        patience=0.3,
        give_up=lambda path, seconds: ("given up", path.name),  # type: ignore[arg-type,return-value]
    )
    got = [next(prefetch), next(prefetch)]
    release.set()  # the stuck call ends now: its result must not stand in for a later item
    got += list(prefetch)
    prefetch.close()
    assert got == [("prepared", "one"), ("given up", "slow"), ("prepared", "three"), ("prepared", "four")]
