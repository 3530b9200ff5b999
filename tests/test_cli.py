from __future__ import annotations

import json
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


def test_remove_forgets_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["remove", str(tmp_path)]) == 1
    assert "was not an indexed folder" in capsys.readouterr().err
