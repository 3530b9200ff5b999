"""bench/common.py: what every benchmark's figures rest on (the corpus it read, the machine
block, the result file), so a mistake there would skew every result file at once."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import common


def _scifact(folder: Path) -> Path:
    data = folder / "scifact"
    data.mkdir(parents=True)
    corpus = [{"_id": str(n), "title": f"Title {n}", "text": f"Abstract {n}."} for n in (10, 20, 30)]
    (data / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus) + "\n")
    queries = [{"_id": q, "text": f"claim {q}"} for q in ("1", "2", "3")]
    (data / "queries_train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    # query 1 wants the first document, 2 the first and the last, 3 has no judgement
    (data / "qrels_train.tsv").write_text("query-id\tcorpus-id\tscore\n1\t10\t1\n2\t10\t1\n2\t30\t1\n")
    return folder


def test_read_scifact_scores_only_queries_whose_documents_are_all_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(common.EVALDATA_ENV, str(_scifact(tmp_path)))
    whole = common.read_scifact()
    assert [d.id for d in whole.documents] == ["10", "20", "30"]
    assert whole.documents[0].text == "Title 10\n\nAbstract 10."
    assert [q.id for q in whole.queries] == ["1", "2"]
    assert whole.qrels == {"1": {"10"}, "2": {"10", "30"}}

    subset = common.read_scifact(2)
    assert [d.id for d in subset.documents] == ["10", "20"]
    assert [q.id for q in subset.queries] == ["1"]  # query 2 also wants document 30
    assert [q.id for q in subset.all_queries] == ["1", "2", "3"]
    assert subset.queries_total == 3
    assert common.scifact_texts(1) == ["Title 10 Abstract 10."]


def test_read_scifact_without_the_data_names_the_variable_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(common.EVALDATA_ENV, str(tmp_path))
    with pytest.raises(SystemExit, match=common.EVALDATA_ENV):
        common.read_scifact()


def test_write_result_puts_a_bare_name_in_results_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    path = common.write_result("some_bench", {"figure": 1.5})
    assert path == tmp_path / "results" / "some_bench.json"
    assert json.loads(path.read_text()) == {"figure": 1.5}
    assert str(path) in capsys.readouterr().out

    elsewhere = common.write_result(tmp_path / "deep" / "x.json", {"a": [1]}, quiet=True)
    assert json.loads(elsewhere.read_text()) == {"a": [1]}
    assert capsys.readouterr().out == ""
    assert sorted(p.name for p in tmp_path.rglob("*.tmp")) == []


def test_machine_block_names_the_model_by_its_hash_and_the_run_start(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF" + bytes(100))
    started = common.Start(commit="abc", load_average=[1.0, 1.0, 1.0])
    block = common.machine(model, started, threads=2)
    assert block["model_file"] == "model.gguf"
    assert block["model_bytes"] == 104
    assert block["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert block["git_commit_at_start"] == "abc" and block["threads"] == 2
    assert isinstance(block["cpu_count"], int) and block["date"].endswith("+00:00")
    assert "moved from abc" in (common.moved_note(block) or "")  # HEAD is not "abc"


def test_ranking_metrics() -> None:
    assert common.ndcg_at_k(["a", "b"], {"a"}) == 1.0
    assert common.ndcg_at_k(["x", "a"], {"a"}) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert common.reciprocal_rank(["x", "y", "a"], {"a"}) == pytest.approx(1 / 3)
    assert common.recall_at_k(["a", "x"], {"a", "b"}) == 0.5
