"""PostgreSQL database URLs: checked, named without their password, and scrubbed from messages.

The URL is handed to libpq as it is (``postgresql://`` or ``postgres://``, with ``sslmode``,
``connect_timeout`` and libpq's other parameters in the query). What a person may see of it (logs,
errors, health details) is ``name``: scheme, user, host, port and database, never the password,
whether it sits in the user info or in a ``password=`` parameter.
"""

from __future__ import annotations

import dataclasses
import urllib.parse

import psycopg.conninfo

POSTGRES_SCHEMES = ("postgresql", "postgres")


@dataclasses.dataclass(frozen=True, slots=True)
class PostgresUrl:
    """A PostgreSQL URL libpq accepts. ``repr`` and ``name`` never show the password."""

    url: str = dataclasses.field(repr=False)
    name: str
    password: str = dataclasses.field(repr=False)

    def scrub(self, text: str) -> str:
        """``text`` with the password (as written, and percent-encoded) replaced by ***."""
        for secret in {self.password, urllib.parse.quote(self.password, safe="")}:
            if secret:
                text = text.replace(secret, "***")
        return text


def parse_postgres_url(url: str) -> PostgresUrl:
    """Checks ``url`` with libpq's own parser; ValueError (never echoing the URL) if it is malformed."""
    try:
        options = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise ValueError(
            "IMAGEGW_DATABASE_URL is not a PostgreSQL URL libpq accepts "
            "(postgresql://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=...)"
        ) from None
    password = str(options.get("password") or "")
    host = str(options.get("host") or "localhost")
    port = str(options.get("port") or "5432")
    user = str(options.get("user") or "")
    database = str(options.get("dbname") or user)
    shown_host = f"[{host}]" if ":" in host and "," not in host else host
    name = f"postgresql://{user + '@' if user else ''}{shown_host}:{port}/{database}"
    return PostgresUrl(url, name, password)
