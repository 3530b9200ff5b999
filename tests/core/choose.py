"""`models use` as its callers (the command line, the window) do it: the model manager
checks the choice, the caller saves the settings."""

from __future__ import annotations

from typing import Any

from localsearch import settings as settings_module
from localsearch.core.models import manager


def use_model(name: str, **options: Any) -> manager.UseResult:
    result = manager.choose_model(name, **options)
    current = settings_module.load()
    result.apply(current)
    settings_module.save(current)
    return result
