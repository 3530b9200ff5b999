"""The settings schema: defaults, descriptions, TOML round trip, validation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from localsearch import settings as settings_module
from localsearch.errors import UserFacingError
from localsearch.settings import Settings


def test_every_setting_has_a_description_and_a_default() -> None:
    described = Settings.describe()
    assert set(described) == set(Settings().to_dict())
    assert all(len(text) > 10 for text in described.values())


def test_indexing_settings_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    chosen = Settings(exclude=["build/", "*.log", "!.notes/"], use_gitignore=True, on_battery="slow")
    settings_module.save(chosen, path)
    loaded = settings_module.load(path)
    assert loaded.exclude == ["build/", "*.log", "!.notes/"]
    assert loaded.use_gitignore is True and loaded.on_battery == "slow"
    assert Settings().exclude == [] and Settings().exclude is not Settings().exclude


@pytest.mark.parametrize(
    "text",
    [
        'exclude = "build/"',
        "exclude = [1, 2]",
        'on_battery = "sometimes"',
        'use_gitignore = "yes"',
        "late_chunking = 1",
    ],
)
def test_bad_values_are_refused_with_the_setting_named(tmp_path: Path, text: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(text + "\n")
    key = text.split(" =")[0]
    with pytest.raises(UserFacingError, match=key):
        settings_module.load(path)


def test_late_chunking_is_off_by_default_and_round_trips(tmp_path: Path) -> None:
    assert Settings().late_chunking is False
    path = tmp_path / "settings.toml"
    settings_module.save(Settings(late_chunking=True), path)
    assert settings_module.load(path).late_chunking is True


@pytest.mark.parametrize(
    ("key", "words", "value"),
    [
        ("late_chunking", ["true"], True),
        ("late_chunking", ["Off"], False),
        ("chunk_tokens", ["96"], 96),
        ("on_battery", ["slow"], "slow"),
        ("exclude", ["build/", "*.log"], ["build/", "*.log"]),
        ("exclude", [], []),
    ],
)
def test_command_line_words_become_typed_values(key: str, words: list[str], value: object) -> None:
    assert settings_module.parse(key, words) == value


@pytest.mark.parametrize(
    ("key", "words", "message"),
    [
        ("late_chunking", ["maybe"], "switch"),
        ("late_chunking", [], "one value"),
        ("chunk_tokens", ["many"], "whole number"),
        ("on_battery", ["never"], "one of"),
        ("no_such_setting", ["1"], "Unknown setting"),
    ],
)
def test_bad_command_line_values_are_refused(key: str, words: list[str], message: str) -> None:
    with pytest.raises(UserFacingError, match=message):
        settings_module.parse(key, words)


def test_settings_this_version_does_not_know_survive_a_save(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        'model = "all-minilm-l6-v2"\n'
        'reranker = "tiny-reranker"\n'  # a setting of a newer version
        'ocr_languages = ["eng", "deu"]\n'
        "[sync]\n"
        'peer = "laptop-2"\n'
        "interval = 30\n",
        encoding="utf-8",
    )
    loaded = settings_module.load(path)
    loaded.late_chunking = True
    settings_module.save(loaded, path)
    again = tomllib.loads(path.read_text(encoding="utf-8"))
    assert again["reranker"] == "tiny-reranker"
    assert again["ocr_languages"] == ["eng", "deu"]
    assert again["sync"] == {"peer": "laptop-2", "interval": 30}
    assert settings_module.load(path).late_chunking is True
