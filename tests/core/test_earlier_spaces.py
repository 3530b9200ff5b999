"""Meaning search goes on while files are embedded again after passages are read another
way (file names, late chunking): the searcher reads the earlier space for the files not
yet in the new one. The upgrade that turned file names on is the case that matters: an
index built before it keeps its vectors under the plain key until re-embedded."""

from __future__ import annotations

from pathlib import Path

from localsearch.core.models.spec import keys_read_otherwise
from localsearch.core.service import LocalSearch
from localsearch.settings import Settings

EVERYDAY = Path(__file__).resolve().parents[2] / "bench" / "everyday" / "docs"
FOLDER = [
    "notes/apartment-move.md",
    "notes/spare-keys.txt",
    "recipes/lentil-soup.md",
    "notes/car-service.md",
]
QUERY = "what do I need to do before changing house"  # no word of it in apartment-move.md


def _copy_folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    for name in FOLDER:
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_bytes((EVERYDAY / name).read_bytes())
    return docs


def test_keys_read_otherwise_keep_the_model_its_layers_and_its_head() -> None:
    settings = Settings(model="m", layers=4, file_names=True)
    assert keys_read_otherwise(settings, "m@4L+names#head256") == ["m@4L#head256", "m@4L+late#head256"]
    assert keys_read_otherwise(Settings(model="m", file_names=False), "m") == ["m+names", "m+late"]
    assert keys_read_otherwise(Settings(model="m", late_chunking=True), "m+late") == ["m", "m+names"]
    assert keys_read_otherwise(settings, "other-model+names") == []


def test_an_index_made_before_file_names_is_searched_by_meaning_until_embedded_again(
    tmp_path: Path, default_model: Path
) -> None:
    docs = _copy_folder(tmp_path)
    db = tmp_path / "index.sqlite3"
    with LocalSearch(Settings(file_names=False), db_path=db) as old:
        for _ in old.index_paths([docs]):
            pass
    with LocalSearch(Settings(file_names=False), db_path=db, for_queries=True) as old:
        before = {h.name: h.cosine for h in old.search(QUERY, 4, mode="semantic")}

    # The upgrade: file names on, nothing embedded again yet.
    with LocalSearch(Settings(file_names=True), db_path=db, for_queries=True) as new:
        assert [s.model for s in new.earlier_spaces()] == [old.space_key]
        semantic = new.search(QUERY, 4, mode="semantic")
        assert {h.name: h.cosine for h in semantic} == before
        hybrid = new.search(QUERY, 4)
        assert hybrid[0].name == "apartment-move.md" and hybrid[0].cosine > 0.3
        assert all(h.cosine > 0 for h in hybrid)  # every result has its true cosine

    # Half-way: one file embedded into the new space; each file still found once.
    with LocalSearch(Settings(file_names=True), db_path=db) as new:
        for _ in new.update_paths([docs / "notes" / "apartment-move.md"]):
            pass
    with LocalSearch(Settings(file_names=True), db_path=db, for_queries=True) as new:
        names = [h.name for h in new.search(QUERY, 10, mode="semantic")]
        assert sorted(names) == sorted(Path(n).name for n in FOLDER)
        assert names[0] == "apartment-move.md"
        moved = new.search(QUERY, 1, mode="semantic")[0]
        assert moved.cosine > before["apartment-move.md"]  # now read with its name

    # All embedded again: the earlier space is empty and no longer read.
    with LocalSearch(Settings(file_names=True), db_path=db) as new:
        for _ in new.index_paths([docs]):
            pass
        assert new.earlier_spaces() == []
        assert len(new.search(QUERY, 10, mode="semantic")) == len(FOLDER)


def test_a_space_of_other_dimensions_is_not_read(tmp_path: Path, default_model: Path) -> None:
    """A query vector cut to 128 dimensions cannot be compared with 384-dimension vectors."""
    docs = _copy_folder(tmp_path)
    db = tmp_path / "index.sqlite3"
    with LocalSearch(Settings(file_names=False), db_path=db) as old:
        for _ in old.index_paths([docs]):
            pass
    with LocalSearch(Settings(file_names=True, dimensions=128), db_path=db, for_queries=True) as new:
        assert new.space.dimensions == 128
        assert new.earlier_spaces() == []
        assert new.search(QUERY, 4, mode="semantic") == []
