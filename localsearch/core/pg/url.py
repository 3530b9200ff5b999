"""The address of a shared index, as the settings, the command line and the window give
it. Credentials never live in localsearch's settings: libpq finds them itself in
~/.pgpass, PGPASSWORD or a service file (pg_service.conf)."""

from __future__ import annotations

import socket
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from localsearch.errors import UserFacingError

SCHEMES = ("postgresql", "postgres")

PASSWORD_REFUSED = (
    "The index address holds a password, and localsearch keeps no passwords in its settings "
    "(they are plain text). Remove it from the address and give it to PostgreSQL's own client "
    "library instead: a line in ~/.pgpass (host:port:database:user:password, mode 0600), the "
    "PGPASSWORD environment variable, or a service file (service=NAME in the address)."
)


def default_host() -> str:
    """This computer's name in a shared index when the settings give none."""
    return socket.gethostname() or "localhost"


def is_postgres(url: str) -> bool:
    return url.strip().lower().startswith(tuple(f"{s}://" for s in SCHEMES))


def has_password(url: str) -> bool:
    parts = urlsplit(url.strip())
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return parts.password is not None or "password" in query


def checked(url: str) -> str:
    """The address if it is a PostgreSQL URL without a password; else a clear error."""
    url = url.strip()
    if not is_postgres(url):
        raise UserFacingError(
            f"{url!r} is not a PostgreSQL address; write postgresql://user@host/database "
            "(or leave the setting empty for the index on this computer)."
        )
    if has_password(url):
        raise UserFacingError(PASSWORD_REFUSED)
    return url


def without_password(url: str) -> str:
    """The address with any password taken out (what may be saved or shown)."""
    if not has_password(url):
        return url.strip()
    parts = urlsplit(url.strip())
    netloc = parts.netloc
    if parts.password is not None:
        user_info, _, host = netloc.rpartition("@")
        user = user_info.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
