"""Every sample PDF plus generated nasties: no crash, a reason for every failure, every
good file searchable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from localsearch.core.indexer import SETTLE_SECONDS, Indexer, IndexOptions, IndexProgress
from localsearch.core.searcher import Searcher
from localsearch.core.storage import Index
from tests.conftest import PDF_DIR
from tests.core.test_extract import EXPECTED_PDF_FAILURES
from tests.fakes import FakeEmbedder

# Names that stress paths: accents composed and decomposed, emoji, right-to-left and CJK
# scripts, a zero-width space, a ligature, spaces and shell metacharacters.
ODD_NAMES = [
    "naïve café.txt",
    "nai\u0308ve cafe\u0301 decomposed.txt",
    "rocket 🚀 notes.md",
    "עברית مرحبا.txt",
    "日本語のメモ.txt",
    "zero\u200bwidth ﬁle.txt",
    "semi;colon $(dollar) `tick` 'quote\".txt",
]


def _build(root: Path) -> dict[str, str]:
    """The nasty tree; returns {relative path: a word only that good file holds}."""
    root.mkdir()
    pdfs = root / "pdfs"
    pdfs.mkdir()
    for pdf in PDF_DIR.glob("*.pdf"):
        shutil.copy2(pdf, pdfs / pdf.name)
    good: dict[str, str] = {}
    for i, name in enumerate(ODD_NAMES):
        word = f"oddword{i}"
        (root / name).write_text(f"A note with an odd name mentions {word} plainly.")
        good[name] = word
    (root / "plain.txt").write_text("An ordinary file about the albatross.")
    good["plain.txt"] = "albatross"
    (root / "empty.txt").write_bytes(b"")
    (root / "blank.md").write_text("   \n\n\t\n")
    (root / "nul.txt").write_bytes(b"\x00" * 4096)
    # Not UTF-8: Latin-1 bytes with a stray 0xFF; decoded by detection, not refused.
    (root / "latin1.txt").write_bytes("Größe und Grüße: der Kormoran fliegt. \xff".encode("latin-1"))
    good["latin1.txt"] = "kormoran"
    # 200 MB, sparse: cheap to create, and it must never be read.
    with open(root / "huge.txt", "wb") as handle:
        handle.truncate(200 * 1024 * 1024)
    # A symbolic-link loop, a link out of the root, a dangling link.
    os.symlink(root, root / "loop")
    os.symlink(root / "a-loop.txt", root / "b-loop.txt")
    os.symlink(root / "b-loop.txt", root / "a-loop.txt")
    os.symlink("/etc", root / "outside")
    os.symlink(root / "nowhere.txt", root / "dangling.txt")
    # Unreadable as a document: a named pipe (opening it would block forever). Root ignores
    # chmod 000, so a permission error cannot be made honestly here; a pipe is a file that
    # cannot be read whoever you are.
    os.mkfifo(root / "pipe.txt")
    # A folder named like a file: entered, not read.
    (root / "folder.txt").mkdir()
    (root / "folder.txt" / "inside.txt").write_text("The folder named like a file holds a pelican.")
    good["folder.txt/inside.txt"] = "pelican"
    # A name that is not valid Unicode (bytes from another system's encoding).
    with open(os.path.join(os.fsencode(root), b"legacy-\xe9\xff.txt"), "wb") as handle:
        handle.write(b"a file whose name is Latin-1 bytes")
    # Deleted while the run is under way (see the test), and one growing while indexed.
    (root / "zz").mkdir()
    (root / "zz" / "victim.txt").write_text("This file is deleted mid-index: flamingo.")
    (root / "zz" / "growing.log.txt").write_text("start of a growing log\n")
    return good


def test_nasty_inputs_never_crash_and_every_failure_has_a_reason(tmp_path: Path, index: Index) -> None:
    root = tmp_path / "nasty"
    good = _build(root)
    embedder = FakeEmbedder()
    space = index.ensure_space(embedder.name, embedder.dimensions)
    indexer = Indexer(index, embedder, space, IndexOptions(settle_seconds=SETTLE_SECONDS))

    growing = root / "zz" / "growing.log.txt"

    def grow() -> None:
        with open(growing, "a") as handle:
            for i in range(30):
                handle.write(f"line {i} of the log\n")
                handle.flush()
                time.sleep(0.03)
            handle.write("the log ends with the word cassowary\n")

    writer = threading.Thread(target=grow)
    started = time.monotonic()
    last: IndexProgress | None = None
    for last in indexer.run([root]):
        if last.phase == "indexing" and not writer.is_alive() and writer.ident is None:
            (root / "zz" / "victim.txt").unlink()
            writer.start()
    writer.join()
    assert last is not None and last.phase == "done"
    assert time.monotonic() - started < 30  # the 200 MB file was not read

    failures = {Path(p).relative_to(root).as_posix(): reason for p, reason in index.failures()}
    indexed = {
        Path(r[0]).relative_to(root).as_posix()
        for r in index.conn.execute("SELECT path FROM files WHERE status = 'indexed'")
    }
    # Every failure says why, in words a person can act on.
    assert all(reason and len(reason) > 8 for reason in failures.values()), failures
    assert failures["empty.txt"].startswith("no text")
    assert failures["blank.md"].startswith("no text")
    assert failures["nul.txt"].startswith("not text")
    assert failures["huge.txt"] == "larger than the 50 MB limit"
    assert failures["pipe.txt"].startswith("not a regular file")
    legacy = [k for k in failures if k.startswith("legacy-")]
    assert len(legacy) == 1 and "not valid Unicode" in failures[legacy[0]]
    for name, reason in EXPECTED_PDF_FAILURES.items():
        assert reason in failures[f"pdfs/{name}"]
    # Every sample PDF is either indexed or explained; none is silently missing.
    for pdf in PDF_DIR.glob("*.pdf"):
        key = f"pdfs/{pdf.name}"
        assert (key in indexed) != (key in failures), key
    # Links are never followed, loops end, and nothing outside the root came in.
    assert not any(
        k.startswith(("loop", "outside", "a-loop", "b-loop", "dangling")) for k in indexed | set(failures)
    )
    # The file deleted mid-index is gone without a trace; the growing one is complete.
    assert "zz/victim.txt" not in indexed and "zz/victim.txt" not in failures
    assert "zz/growing.log.txt" in indexed

    searcher = Searcher(index, embedder, space)

    def found(word: str) -> list[str]:
        return [Path(h.path).relative_to(root).as_posix() for h in searcher.search(word, 10, mode="keyword")]

    for name, word in good.items():
        assert name in indexed, name
        assert found(word) == [name], (name, word)
    assert found("cassowary") == ["zz/growing.log.txt"]
    assert found("flamingo") == []
    # The sample PDFs that hold text are searchable by a word a reader sees in them.
    pdfs = sorted(k.removeprefix("pdfs/") for k in indexed if k.startswith("pdfs/"))
    assert pdfs == sorted(PDF_WORDS)
    for name, word in PDF_WORDS.items():
        assert f"pdfs/{name}" in found(word), (name, word)

    # A second run over the same tree changes nothing and re-reads nothing.
    again = list(indexer.run([root]))[-1]
    assert again.files_indexed == 0 and again.files_failed == 0 and again.files_reused == 0
    assert again.files_unchanged == again.files_total


# A word of each readable sample PDF's known content (its title, opening or legend).
PDF_WORDS = {
    "samplefiles_minimal-document.pdf": "ipsum",
    "samplefiles_pdflatex-4-pages.pdf": "information",
    "samplefiles_google-doc-document.pdf": "explicit",
    "samplefiles_habibi.pdf": "حَبيبي",  # as written, with its vowel mark
    "samplefiles_habibi-rotated.pdf": "habibi",
    "samplefiles_crazyones-pdfa.pdf": "misfits",
    "pdfminer_dmca.pdf": "millennium",
    "pdfminer_f1040nr.pdf": "nonresident",
    "pdfminer_naacl06-shinyama.pdf": "preemptive",
    "pdfminer_zen_of_python_corrupted.pdf": "beautiful",
    "pdfminer_issue_566_test_2.pdf": "中国饮料有限公司",
    "ocrmypdf_multipage.pdf": "percentage",
}


def _unprivileged_prefix() -> list[str] | None:
    """How to run a command that file modes apply to. Root reads any file whatever its
    mode; without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (dropped from the bounding set
    by util-linux's setpriv) it gets "permission denied" like anyone else."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def test_permission_denied_is_recorded_and_the_rest_indexed(tmp_path: Path) -> None:
    prefix = _unprivileged_prefix()
    # Root reads any file: without setpriv (util-linux, installed by .ci/run) this test
    # cannot show anything, and must say so rather than pass by skipping.
    assert prefix is not None, "running as root without setpriv: install util-linux"
    repo = Path(__file__).resolve().parents[2]
    root = tmp_path / "docs"
    (root / "closed").mkdir(parents=True)
    (root / "open.txt").write_text("A readable note about otters.")
    (root / "secret.txt").write_text("A note nobody may read.")
    (root / "closed" / "inside.txt").write_text("Behind a closed folder.")
    os.chmod(root / "secret.txt", 0)
    os.chmod(root / "closed", 0)
    env = dict(os.environ)
    env["LOCALSEARCH_TEST_EMBEDDER"] = "tests.fakes:FakeEmbedder"
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
    try:
        indexed = subprocess.run(
            [*prefix, sys.executable, "-m", "localsearch", "index", str(root), "--json"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert indexed.returncode == 0, indexed.stderr
        assert f"{root / 'closed'}: cannot open the folder (permission denied)" in indexed.stderr
        status = subprocess.run(
            [sys.executable, "-m", "localsearch", "status", "--json"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    finally:
        os.chmod(root / "secret.txt", 0o644)
        os.chmod(root / "closed", 0o755)
    report = json.loads(status.stdout)
    assert report["failed"] == [{"path": str(root / "secret.txt"), "reason": "permission denied"}]
    assert report["files"] == 1
