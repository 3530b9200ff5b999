"""Index a real folder with the real default model and find things in it by meaning."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from localsearch.cli import main
from tests.conftest import PDF_DIR

NOTES = {
    "passport-renewal.md": (
        "# Renewing a passport\n\nFill in form DS-82 and mail it with your current passport and a new "
        "photo. Adult passports can be renewed by mail if the old one was issued within fifteen years. "
        "Processing takes six to eight weeks; pay extra for expedited service before travelling abroad.\n"
    ),
    "sourdough.txt": (
        "Feed the starter the night before. Mix flour, water and salt, let the dough rise slowly, fold it "
        "every half hour, shape a loaf and bake it in a hot Dutch oven until the crust is deep brown.\n"
    ),
    "router-reset.txt": (
        "If the wifi keeps dropping, hold the small reset button on the back of the router for ten seconds. "
        "The lights blink, the box restarts with factory settings, and the default network password is "
        "printed on the sticker underneath.\n"
    ),
}
LATIN1_NOTE = (
    "Crème brûlée as served at the café in Zürich: heat the cream with vanilla, whisk in egg yolks "
    "and sugar, bake the custard in a water bath, then burn a layer of sugar on top until it cracks."
)

QUERIES = [
    ("how do I renew my passport", "passport-renewal.md"),
    ("baking bread at home with a starter", "sourdough.txt"),
    ("my internet connection is unstable, how to restore factory defaults", "router-reset.txt"),
    ("income tax return form for foreign nonresidents", "pdfminer_f1040nr.pdf"),
    ("law against circumventing copy protection of digital works", "pdfminer_dmca.pdf"),
    ("extracting relations between entities from news articles", "pdfminer_naacl06-shinyama.pdf"),
    ("here's to the misfits and rebels who think different", "samplefiles_crazyones-pdfa.pdf"),
]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, default_model: Path) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("e2e-home")
    docs = tmp_path_factory.mktemp("e2e-docs")
    for name, text in NOTES.items():
        (docs / name).write_text(text, encoding="utf-8")
    (docs / "dessert-latin1.txt").write_bytes(LATIN1_NOTE.encode("latin-1"))
    shutil.copytree(PDF_DIR, docs / "pdfs", ignore=shutil.ignore_patterns("*.md"))
    os.environ["LOCALSEARCH_HOME"] = str(home)
    assert main(["index", str(docs)]) == 0
    return home, docs


def _cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    capsys.readouterr()
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("mode", ["hybrid", "semantic"])
@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_expected_file_ranks_first(
    indexed: tuple[Path, Path],
    query: str,
    expected: str,
    mode: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, _ = indexed
    monkeypatch.setenv("LOCALSEARCH_HOME", str(home))
    hits = _cli_json(capsys, "search", query, "--json", "--limit", "5", "--mode", mode)
    assert isinstance(hits, list) and hits
    assert Path(hits[0]["path"]).name == expected, [(Path(h["path"]).name, h["score"]) for h in hits]
    top = hits[0]
    assert Path(top["path"]).is_absolute()
    assert 0.0 < top["score"] <= 1.0
    assert top["snippet"]
    # Best first: by cosine in semantic mode, by the fused rank in hybrid mode.
    order = [h["score"] if mode == "semantic" else h["rank_score"] for h in hits]
    assert order == sorted(order, reverse=True)
    assert len({h["path"] for h in hits}) == len(hits)
    if expected.endswith(".pdf"):
        assert isinstance(top["page"], int) and top["page"] >= 1
    else:
        assert top["page"] is None


def test_status_lists_every_unreadable_pdf_with_its_reason(
    indexed: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, docs = indexed
    monkeypatch.setenv("LOCALSEARCH_HOME", str(home))
    status = _cli_json(capsys, "status", "--json")
    assert isinstance(status, dict)
    assert status["folders"] == [str(docs)]
    assert status["model"] == "all-minilm-l6-v2" and status["dimensions"] == 384
    failed = {Path(f["path"]).name: f["reason"] for f in status["failed"]}
    assert failed["samplefiles_libreoffice-writer-password.pdf"] == "encrypted PDF: needs a password"
    assert failed["ocrmypdf_invalid.pdf"].startswith("broken PDF")
    assert failed["ocrmypdf_c02-22.pdf"].startswith("scanned PDF: no text layer")
    assert len(failed) == 11
    assert status["files"] == 4 + 23 - 11
    assert status["chunks"] > status["files"]


def test_latin1_file_is_found_and_read_correctly(
    indexed: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, _ = indexed
    monkeypatch.setenv("LOCALSEARCH_HOME", str(home))
    hits = _cli_json(capsys, "search", "dessert recipe: custard with a caramelized sugar crust", "--json")
    assert isinstance(hits, list)
    assert Path(hits[0]["path"]).name == "dessert-latin1.txt"
    assert "Crème brûlée" in hits[0]["snippet"] and "Zürich" in hits[0]["snippet"]


def test_installed_command_runs_as_a_separate_process(indexed: tuple[Path, Path]) -> None:
    home, _ = indexed
    env = {**os.environ, "LOCALSEARCH_HOME": str(home)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "localsearch",
            "search",
            "how do I renew my passport",
            "--json",
            "--limit",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    hits = json.loads(result.stdout)
    assert Path(hits[0]["path"]).name == "passport-renewal.md"


def test_batch_search_answers_every_line_in_every_mode(
    indexed: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, _ = indexed
    monkeypatch.setenv("LOCALSEARCH_HOME", str(home))
    queries = tmp_path / "q.jsonl"
    lines = [{"id": i, "text": q} for i, (q, _) in enumerate(QUERIES)]
    queries.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n", encoding="utf-8")
    for mode in ("hybrid", "semantic", "keyword"):
        capsys.readouterr()
        assert main(["search", "--batch", str(queries), "--limit", "3", "--json", "--mode", mode]) == 0
        captured = capsys.readouterr()
        answers = [json.loads(line) for line in captured.out.splitlines()]
        assert [a["id"] for a in answers] == [x["id"] for x in lines]
        assert "skipped" in captured.err
        if mode != "keyword":
            firsts = [Path(a["hits"][0]["path"]).name for a in answers]
            assert firsts == [expected for _, expected in QUERIES]


def test_filters_phrases_and_more_like_this_from_the_command_line(
    indexed: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, docs = indexed
    monkeypatch.setenv("LOCALSEARCH_HOME", str(home))
    pdfs = _cli_json(capsys, "search", "how do I renew my passport", "--type", "pdf", "--json")
    assert isinstance(pdfs, list) and pdfs and all(h["path"].endswith(".pdf") for h in pdfs)
    notes = _cli_json(capsys, "search", "copyright law", "--folder", str(docs / "pdfs"), "--json")
    assert isinstance(notes, list) and all(h["path"].startswith(str(docs / "pdfs")) for h in notes)
    phrase = _cli_json(capsys, "search", '"Digital Millennium Copyright Act"', "--json")
    assert isinstance(phrase, list) and [Path(h["path"]).name for h in phrase] == ["pdfminer_dmca.pdf"]
    like = _cli_json(
        capsys, "search", "--like", str(docs / "pdfs" / "samplefiles_google-doc-document.pdf"), "--json"
    )
    assert isinstance(like, list) and Path(like[0]["path"]).name == "pdfminer_zen_of_python_corrupted.pdf"
