"""Reading the JSON model tables an operator may replace (``model_aliases``, ``retired_models``).

Each table is a file holding a JSON object with one list of entry objects (and an optional
``description``). What the tables share is read here: the file, the list, the fields every entry
must have, the provider an entry names, and ``params``, the rewrites of string parameters'
values for the successor model. Anything malformed is a ValueError naming the source and the
field path (``models[2].provider: must be a non-empty string``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

# The string parameters a table's ``params`` may rewrite.
ALIASABLE_PARAMS = frozenset(
    {
        "size",
        "quality",
        "style",
        "style_preset",
        "background",
        "output_format",
        "moderation",
        "aspect_ratio",
    }
)

# A parameter -> {old value: new value, or None to omit it}.
ParamRewrites = Mapping[str, Mapping[str, str | None]]
# Builds the error for a field path and a message.
Fail = Callable[[str, str], ValueError]


def read_table(path: str | Path | None, *, built_in: Path, what: str) -> tuple[Any, str]:
    """The parsed JSON at ``path`` (``built_in`` when empty) and its name; ValueError saying ``what`` file failed."""
    source = Path(path) if path else built_in
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{what} file {source}: cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"{what} file {source}: not valid JSON: {exc}") from None
    return document, str(source)


def failure(source: str) -> Fail:
    """The ``Fail`` of a table read from ``source``."""

    def fail(where: str, message: str) -> ValueError:
        return ValueError(f"{source}: {where}: {message}")

    return fail


def table_entries(
    document: Any, *, list_key: str, entry_keys: Collection[str], required: tuple[str, ...], fail: Fail
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each entry of ``document[list_key]`` with its field path, checked to be an object with only
    ``entry_keys`` and a non-empty string in each ``required`` field."""
    if not isinstance(document, dict) or not isinstance(document.get(list_key), list):
        article = "an" if list_key[:1] in ("a", "e", "i", "o", "u") else "a"
        raise fail(list_key, f"the file must be a JSON object with {article} {list_key!r} list")
    unknown = set(document) - {list_key, "description"}
    if unknown:
        raise fail(sorted(unknown)[0], "unknown field")
    for i, entry in enumerate(document[list_key]):
        where = f"{list_key}[{i}]"
        if not isinstance(entry, dict):
            raise fail(where, "must be an object")
        extra = set(entry) - set(entry_keys)
        if extra:
            raise fail(f"{where}.{sorted(extra)[0]}", "unknown field")
        for name in required:
            if not isinstance(entry.get(name), str) or not entry[name].strip():
                raise fail(f"{where}.{name}", "must be a non-empty string")
        yield where, entry


def entry_provider(entry: Mapping[str, Any], where: str, canonical_provider: Callable[[str], str], fail: Fail) -> str:
    """The canonical name of the provider ``entry`` names; refused when the registry does not know it."""
    try:
        return canonical_provider(entry["provider"])
    except Exception:
        raise fail(f"{where}.provider", f"unknown provider {entry['provider']!r}") from None


def param_rewrites(value: Any, where: str, fail: Fail) -> ParamRewrites:
    """An entry's ``params``, checked: only ``ALIASABLE_PARAMS``, each mapping old values to strings or null."""
    if not isinstance(value, dict):
        raise fail(where, "must be an object of parameter -> {old value: new value or null}")
    out: dict[str, Mapping[str, str | None]] = {}
    for param, mapping in value.items():
        if param not in ALIASABLE_PARAMS:
            raise fail(f"{where}.{param}", f"must be one of {', '.join(sorted(ALIASABLE_PARAMS))}")
        if not isinstance(mapping, dict) or not all(v is None or isinstance(v, str) for v in mapping.values()):
            raise fail(f"{where}.{param}", "must map old values to new values (strings) or null (omit)")
        out[param] = MappingProxyType(dict(mapping))
    return MappingProxyType(out)
