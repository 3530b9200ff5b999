from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from localsearch.cli import build_parser, main


def _subcommands(parser):  # type: ignore[no-untyped-def]
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for choice in action._choices_actions:
                yield choice, action.choices[choice.dest]


def test_every_command_has_help_text() -> None:
    parser = build_parser()
    seen = 0
    stack = [parser]
    while stack:
        for choice, sub in _subcommands(stack.pop()):
            assert choice.help, f"{choice.dest} has no help"
            for action in sub._actions:
                if action.dest != "help" and action.__class__.__name__ != "_SubParsersAction":
                    assert action.help, f"{choice.dest} {action.dest} has no help"
            stack.append(sub)
            seen += 1
    assert seen >= 6


def test_search_on_an_empty_index_prints_an_empty_json_array(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "anything", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert "index is empty" in captured.err


def test_status_json_has_the_contract_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {"folders", "files", "chunks", "model", "dimensions", "failed"} <= set(status)
    assert status["failed"] == [] and status["files"] == 0


def test_index_of_a_missing_path_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(tmp_path / "missing")]) == 1
    assert "no such file or folder" in capsys.readouterr().err


def test_home_holds_all_state(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["status", "--json"])
    status = json.loads(capsys.readouterr().out)
    assert Path(status["database"]).is_relative_to(isolated_home)


def test_remove_forgets_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.fakes:FakeEmbedder")
    kept, dropped = tmp_path / "kept", tmp_path / "dropped"
    for folder, word in ((kept, "walrus"), (dropped, "pelican")):
        folder.mkdir()
        for i in range(3):
            (folder / f"n{i}.txt").write_text(f"a note {i} about a {word}")
            os.utime(folder / f"n{i}.txt", (1_700_000_000, 1_700_000_000))
    assert main(["index", str(kept), str(dropped)]) == 0
    capsys.readouterr()

    assert main(["remove", str(dropped)]) == 0
    assert capsys.readouterr().out.strip() == f"removed {dropped}"
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["folders"] == [str(kept)] and status["files"] == 3
    assert main(["search", "pelican", "--mode", "keyword", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # its files, chunks and words are gone
    assert main(["search", "walrus", "--mode", "keyword", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3  # the other folder's are not

    assert main(["remove", str(dropped)]) == 1  # a second time: not indexed any more
    assert "was not an indexed folder" in capsys.readouterr().err


def _index_summary(capsys: pytest.CaptureFixture[str]) -> dict:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def test_index_with_control_obeys_cancel_on_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import threading

    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.fakes:FakeEmbedder")
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"n{i}.txt").write_text(f"note {i}")
        os.utime(docs / f"n{i}.txt", (1_700_000_000, 1_700_000_000))  # not still being written
    gate = threading.Event()

    class SlowStdin(io.StringIO):
        def __iter__(self):  # type: ignore[no-untyped-def]
            gate.wait(10)  # "cancel" arrives once indexing has begun
            return super().__iter__()

    monkeypatch.setattr("sys.stdin", SlowStdin("cancel\n"))
    import localsearch.core.indexer as indexer_module

    real_commit = indexer_module.Indexer._commit

    def commit_then_open_gate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        outcome = real_commit(self, *args, **kwargs)
        gate.set()
        import time

        time.sleep(0.2)  # leave the control thread time to read the line
        return outcome

    monkeypatch.setattr(indexer_module.Indexer, "_commit", commit_then_open_gate)
    assert main(["index", str(docs), "--control", "--json"]) == 0
    summary = _index_summary(capsys)
    assert summary["phase"] == "cancelled" and 0 < summary["files_done"] < 5


def test_index_tells_once_that_it_waits_on_battery() -> None:
    import io

    from localsearch.cli import _ProgressPrinter
    from localsearch.core.indexer import IndexProgress

    stream = io.StringIO()
    printer = _ProgressPrinter(stream, as_json=False)
    for _ in range(3):
        printer(IndexProgress(phase="indexing", files_total=3, paused="on battery"))
    assert stream.getvalue().count("on battery power") == 1


def test_search_json_names_the_heading_of_the_matching_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCALSEARCH_TEST_EMBEDDER", "tests.fakes:FakeEmbedder")
    docs = tmp_path / "docs"
    docs.mkdir()
    from localsearch.settings import Settings
    from tests.fakes import FakeEmbedder

    # A paragraph that fills a chunk by itself, so the next section starts a chunk of its own
    # (a chunk that begins in the tail of one section is named after that section).
    limit = min(Settings().chunk_tokens, FakeEmbedder.max_tokens) - FakeEmbedder.special_tokens
    filler = " ".join(f"filler{i}" for i in range(limit))
    (docs / "guide.md").write_text(
        f"# Guide\n\n{filler}.\n\n## Watering tomatoes\n\nWater the tomatoes every morning.\n\n"
        f"```\n# not a heading\n```\n\n## Pruning\n\n{filler}.\n"
    )
    os.utime(docs / "guide.md", (1_700_000_000, 1_700_000_000))
    assert main(["index", str(docs), "--json"]) == 0
    capsys.readouterr()
    assert main(["search", "tomatoes every morning", "--json", "--mode", "keyword"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["name"] == "guide.md"
    assert hits[0]["heading"] == "Watering tomatoes"
    assert main(["search", "tomatoes every morning"]) == 0
    assert "§ Watering tomatoes" in capsys.readouterr().out


def test_settings_command_shows_and_changes_a_setting(capsys: pytest.CaptureFixture[str]) -> None:
    from localsearch import settings as settings_module

    assert main(["settings", "late_chunking"]) == 0
    assert capsys.readouterr().out.strip() == "late_chunking = false"
    assert main(["settings", "late_chunking", "true"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "late_chunking = true" and "re-embeds every file" in captured.err
    assert settings_module.load().late_chunking is True
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["late_chunking"] is True
    assert main(["settings", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["late_chunking"] is True
    assert main(["settings"]) == 0
    assert "Late chunking" in capsys.readouterr().out  # each setting with its description


def test_settings_command_says_when_file_names_re_embed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "file_names", "false"]) == 0
    assert "re-embeds every file" in capsys.readouterr().err
    assert main(["settings", "late_chunking", "true"]) == 0
    capsys.readouterr()
    # Under late chunking file names take no part: switching them back changes no vector.
    assert main(["settings", "file_names", "true"]) == 0
    assert "re-embeds" not in capsys.readouterr().err
    assert main(["settings", "late_chunking", "false"]) == 0
    assert "re-embeds every file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["settings", "late_chunking", "maybe"], "give true or false"),
        (["settings", "model", "other"], "models use"),
        (["settings", "colour", "red"], "Unknown setting"),
    ],
)
def test_settings_command_refuses_bad_values(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from localsearch import settings as settings_module

    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert settings_module.load() == settings_module.Settings()


@pytest.mark.parametrize("when", ["while indexing", "while watching"])
def test_ctrl_c_stops_watch_promptly(tmp_path: Path, when: str) -> None:
    """SIGINT (and SIGTERM) cancel `watch` between files instead of raising wherever the
    main thread is: it exits 0 within seconds, at any moment, and the index stays sound."""
    import signal
    import subprocess
    import sys
    import time

    from localsearch.core.storage import damage

    repo = Path(__file__).resolve().parents[1]
    docs = tmp_path / "docs"
    docs.mkdir()
    count = 400 if when == "while indexing" else 3
    for i in range(count):
        (docs / f"note{i:03d}.txt").write_text(f"Note {i} about river {i % 7} and mountain {i % 11}. " * 40)
    home = tmp_path / "home"
    env = {
        **os.environ,
        "LOCALSEARCH_HOME": str(home),
        "PYTHONPATH": str(repo),
        "LOCALSEARCH_TEST_EMBEDDER": "tests.fakes:FakeEmbedder",
    }
    watcher = subprocess.Popen(
        [sys.executable, "-m", "localsearch", "watch", str(docs)], env=env, stderr=subprocess.PIPE, text=True
    )
    assert watcher.stderr is not None
    try:
        first = watcher.stderr.readline()
        if when == "while watching":
            while "watching" not in first:
                first = watcher.stderr.readline()
                assert first, "watch ended before watching"
            (docs / "new.txt").write_text("A new note about lakes.")
            time.sleep(0.6)  # the watcher's quiet period is 0.5 s: an update is starting
        else:
            while "indexing" not in first:
                first = watcher.stderr.readline()
                assert first, "watch ended before indexing"
        started = time.monotonic()
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=20) == 0
        assert time.monotonic() - started < 20
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert damage(home / "data" / "index.sqlite3") is None
