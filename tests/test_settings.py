"""The settings schema: defaults, descriptions, TOML round trip, validation."""

from __future__ import annotations

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
    ['exclude = "build/"', "exclude = [1, 2]", 'on_battery = "sometimes"', 'use_gitignore = "yes"'],
)
def test_bad_values_are_refused_with_the_setting_named(tmp_path: Path, text: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(text + "\n")
    key = text.split(" =")[0]
    with pytest.raises(UserFacingError, match=key):
        settings_module.load(path)
