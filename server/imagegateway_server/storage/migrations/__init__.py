"""Schema migrations: numbered SQL files per backend, shipped as package data.

``<backend>/NNNN_name.sql`` files are applied in order, each once, each in its own transaction,
and recorded in the ``schema_migrations`` table. Applied migrations are never edited: a schema
change is a new file. A database whose schema is newer than the code refuses to open.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer ImageGateway than this one."""


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: its number, its name and its SQL text."""

    version: int
    name: str
    sql: str


def load_migrations(backend: str) -> list[Migration]:
    """The migrations of ``backend`` (``"sqlite"``), in order; checks they are numbered 1..n."""
    folder = resources.files(__name__).joinpath(backend)
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    if [migration.version for migration in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{backend} migrations are not numbered 1..{len(found)} without gaps")
    return found


def check_not_newer(applied: int, known: int) -> None:
    """Raises SchemaTooNewError when the database has migrations this code does not know."""
    if applied > known:
        raise SchemaTooNewError(
            f"the database schema is at version {applied}, newer than this ImageGateway knows "
            f"({known}); run a newer ImageGateway or restore a backup"
        )
