"""Picks and opens the store a database URL names.

``postgresql://`` or ``postgres://`` (libpq's URL, ``sslmode`` and its other parameters included)
is the shared PostgreSQL store; the URL is checked here by libpq's parser, never echoed.
``sqlite:///`` followed by a path: ``sqlite:///data/gw.db`` is relative to the working
directory, ``sqlite:////var/lib/imagegw/gw.db`` (four slashes) is absolute, so
``f"sqlite:///{path}"`` is right for either kind of path.
"""

from __future__ import annotations

from pathlib import Path

from imagegateway_server.storage.base import Store
from imagegateway_server.storage.database_url import POSTGRES_SCHEMES
from imagegateway_server.storage.postgres import PostgresStore
from imagegateway_server.storage.sqlite import SqliteStore

_SQLITE_PREFIX = "sqlite:///"


def store_for_url(database_url: str) -> Store:
    """The unopened store for ``database_url``; ValueError (never echoing the URL) if unsupported."""
    scheme = database_url.partition("://")[0].lower() if "://" in database_url else ""
    if scheme in POSTGRES_SCHEMES:
        return PostgresStore(database_url)
    if scheme.startswith(("postgresql+", "postgres+")):
        # SQLAlchemy's spelling; libpq takes the plain scheme.
        raise ValueError("a PostgreSQL database URL starts with postgresql:// (no +driver part)")
    if scheme != "sqlite":
        shown = f"scheme {scheme!r}" if scheme else "a URL without a scheme"
        raise ValueError(f"unsupported database URL ({shown}); use sqlite:///PATH or postgresql://...")
    if not database_url.startswith(_SQLITE_PREFIX):
        raise ValueError("a SQLite database URL is sqlite:///PATH (three slashes, then the path)")
    path = database_url[len(_SQLITE_PREFIX) :]
    if not path or path == ":memory:" or "?" in path:
        raise ValueError("a SQLite database URL is sqlite:///PATH with a file path and no query parameters")
    return SqliteStore(Path(path).absolute())


async def open_store(database_url: str) -> Store:
    """Opens (and migrates) the store for ``database_url``. The caller closes it."""
    store = store_for_url(database_url)
    await store.open()
    return store
