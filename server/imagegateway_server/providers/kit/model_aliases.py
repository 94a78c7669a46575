"""The model-alias table: retired models mapped to their successors, loaded once at start-up.

The table is JSON (the built-in one is ``model_aliases.json`` next to this module; the setting
``IMAGEGW_MODEL_ALIASES_FILE`` replaces it):

```json
{"aliases": [
  {"provider": "openai", "model": "dall-e-3", "successor": "gpt-image-1", "enabled": true,
   "params": {"quality": {"standard": "medium", "hd": "high"}, "style": {"vivid": null}},
   "description": "why"}]}
```

Only entries with ``"enabled": true`` apply (absent means false), so shipping an entry changes
nothing until an operator opts in. ``params`` rewrites values of string parameters before the
successor's own translation table runs; a value mapped to ``null`` is omitted, which is reported
like every translation (never dropped in silence) and refused in strict mode. A value not listed
passes on to the successor, which translates or refuses it. An alias whose successor is itself an
enabled alias is refused at load: one hop keeps what is sent predictable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from imagegateway_server.providers.kit.model_tables import (
    ParamRewrites,
    entry_provider,
    failure,
    param_rewrites,
    read_table,
    table_entries,
)

BUILT_IN_FILE = Path(__file__).with_name("model_aliases.json")
_ENTRY_KEYS = frozenset({"provider", "model", "successor", "enabled", "params", "description"})


@dataclasses.dataclass(frozen=True, slots=True)
class ModelAlias:
    """One enabled alias: ``model`` on ``provider`` is served by ``successor`` with ``params`` rewritten."""

    provider: str
    model: str
    successor: str
    params: ParamRewrites


class ModelAliases:
    """The enabled aliases by (canonical provider, lower-cased model)."""

    def __init__(self, aliases: Mapping[tuple[str, str], ModelAlias] | None = None) -> None:
        self._aliases = dict(aliases or {})

    def lookup(self, provider: str, model: str) -> ModelAlias | None:
        if not self._aliases:
            return None
        return self._aliases.get((provider, model.lower()))

    def __len__(self) -> int:
        return len(self._aliases)


NO_ALIASES = ModelAliases()


def load_model_aliases(
    path: str | Path | None = None, *, canonical_provider: Callable[[str], str] = str.lower
) -> ModelAliases:
    """Reads and checks an alias table (the built-in one when ``path`` is empty).

    Raises ValueError naming the file and the entry's field for anything malformed.
    """
    document, source = read_table(path, built_in=BUILT_IN_FILE, what="model aliases")
    return parse_model_aliases(document, source=source, canonical_provider=canonical_provider)


def parse_model_aliases(
    document: Any, *, source: str = "model aliases", canonical_provider: Callable[[str], str] = str.lower
) -> ModelAliases:
    """Checks a parsed alias table; ValueError naming ``source`` and the field path."""
    fail = failure(source)
    enabled: dict[tuple[str, str], ModelAlias] = {}
    entries = table_entries(
        document, list_key="aliases", entry_keys=_ENTRY_KEYS, required=("provider", "model", "successor"), fail=fail
    )
    for where, entry in entries:
        if not isinstance(entry.get("enabled", False), bool):
            raise fail(f"{where}.enabled", "must be true or false")
        provider = entry_provider(entry, where, canonical_provider, fail)
        params = param_rewrites(entry.get("params", {}), f"{where}.params", fail)
        model = entry["model"].strip().lower()
        if model == entry["successor"].strip().lower():
            raise fail(f"{where}.successor", "must differ from model")
        if not entry.get("enabled", False):
            continue
        if (provider, model) in enabled:
            raise fail(f"{where}.model", f"{model!r} already has an enabled alias for {provider}")
        enabled[(provider, model)] = ModelAlias(provider, model, entry["successor"].strip(), params)
    for alias in enabled.values():
        if (alias.provider, alias.successor.lower()) in enabled:
            raise ValueError(
                f"{source}: the successor {alias.successor!r} of {alias.model!r} is itself an "
                "enabled alias; point the alias at the final model"
            )
    return ModelAliases(enabled)
