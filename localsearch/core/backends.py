"""Which index a service opens: the SQLite file on this computer (the default), or the
shared index on PostgreSQL named by the `index_url` setting (or --index-url)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from localsearch.core.storage import Index
from localsearch.core.store_protocol import IndexStore
from localsearch.settings import Settings


def open_index(
    settings: Settings, db_path: Path, *, check: bool | Literal["if changed"] = False
) -> IndexStore:
    """The configured index, opened and migrated. `check` applies to the SQLite file (a
    server checks its own pages)."""
    if settings.index_url:
        from localsearch.core.pg.index import PostgresIndex  # psycopg loads only for a shared index

        return PostgresIndex.open(settings.index_url, host=settings.machine or None)
    return Index.open(db_path, check=check)


def describe(settings: Settings, db_path: Path) -> str:
    """Where the index is, for status and messages (never with a password)."""
    if settings.index_url:
        from localsearch.core.pg.url import without_password

        return without_password(settings.index_url)
    return str(db_path)


def machine_name(settings: Settings) -> str:
    """This computer's name in a shared index (results from other machines say theirs)."""
    from localsearch.core.pg.url import default_host

    return settings.machine or default_host()


def elsewhere(settings: Settings, host: str) -> str | None:
    """The machine a result's file is on when it is not this one, else None."""
    return host if host and host != machine_name(settings) else None


def open_location(location: str, settings: Settings) -> IndexStore:
    """An index named on the command line: a postgresql:// address or an SQLite file."""
    from localsearch.core.pg.url import is_postgres

    if is_postgres(location):
        from localsearch.core.pg.index import PostgresIndex

        return PostgresIndex.open(location, host=machine_name(settings))
    return Index.open(Path(location).expanduser())
