"""Database URLs: which backend a URL names, and how to show one without its password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from hanlin.errors import ConfigError

POSTGRES_SCHEMES = ("postgresql", "postgres")


def redact(url: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db``; every message
    that names a database URL shows it this way."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable database URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def check_url(url: str) -> str:
    """The URL when it names a backend Hanlin can use; a :class:`ConfigError` saying what a
    ``database_url`` looks like otherwise."""
    scheme = urlsplit(url).scheme.split("+")[0].lower() if "://" in url else ""
    if scheme not in POSTGRES_SCHEMES:
        raise ConfigError(
            f"database_url {redact(url)!r} is not a PostgreSQL URL",
            hint='write database_url = "postgresql://USER:PASSWORD@HOST:5432/DB" in hanlin.toml '
            "(or HANLIN_DATABASE_URL); leave it unset for the embedded SQLite default",
        )
    return url
