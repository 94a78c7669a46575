"""The retired-model table: models their provider shut down, each with its successor and shutdown date.

The built-in table is ``retired_models.json`` next to this module (its ``description`` says what each
field means). It is read once at start. Unlike ``model_aliases`` (an operator's opt-in to serve a
model by another up front), nothing here changes what is sent: a retired model is sent as asked, and
only when the provider answers that the model does not exist does the router retry once with the
successor (``routing.model_successors``).

``successor_of`` follows the chain: dall-e-3's successor gpt-image-1 was itself shut down, so on a
day after both dates the one retry goes to gpt-image-1's successor, and so on; a successor whose own
shutdown date is still ahead is where the chain stops. ``params`` of every hop are applied in order.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.model_tables import (
    ParamRewrites,
    entry_provider,
    failure,
    param_rewrites,
    read_table,
    table_entries,
)

BUILT_IN_FILE = Path(__file__).with_name("retired_models.json")
_ENTRY_KEYS = frozenset({"provider", "model", "successor", "retired_on", "params", "source"})
# Longer chains than this are a table mistake, not a lineage.
_MAX_CHAIN = 8


@dataclasses.dataclass(frozen=True, slots=True)
class RetiredModel:
    """One entry: ``model`` on ``provider`` was shut down on ``retired_on``; ``successor`` replaces it."""

    provider: str
    model: str
    successor: str
    retired_on: datetime.date
    params: ParamRewrites


@dataclasses.dataclass(frozen=True, slots=True)
class Succession:
    """Where a retired model's request goes: the final successor, the request rewritten for it, and
    each rewrite as ``param=old->new`` (``omitted`` for a value the successor has no equivalent of)."""

    model: str
    successor: str
    retired_on: str
    request: ImageRequest
    notes: tuple[str, ...]


class RetiredModels:
    """The table by (canonical provider, lower-cased model)."""

    def __init__(self, entries: Mapping[tuple[str, str], RetiredModel] | None = None) -> None:
        self._entries = dict(entries or {})

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, provider: str, model: str) -> RetiredModel | None:
        return self._entries.get((provider, model.lower())) if self._entries else None

    def successor_of(self, provider: str, request: ImageRequest, today: datetime.date) -> Succession | None:
        """The succession for ``request.model`` on ``provider``; None when the table has no entry for it."""
        model = request.model or ""
        entry = self.lookup(provider, model)
        if entry is None:
            return None
        changes: dict[str, Any] = {}
        notes: list[str] = []
        first = entry
        for _ in range(_MAX_CHAIN):
            for param, values in entry.params.items():
                current = changes.get(param, getattr(request, param))
                if current is None or current not in values:
                    continue
                new = values[current]
                notes.append(f"{param}={current}->{new if new is not None else 'omitted'}")
                changes[param] = new
            following = self.lookup(provider, entry.successor)
            if following is None or following.retired_on > today:
                break
            entry = following
        changes["model"] = entry.successor
        return Succession(
            model=model,
            successor=entry.successor,
            retired_on=first.retired_on.isoformat(),
            request=dataclasses.replace(request, **changes),
            notes=tuple(notes),
        )


NO_RETIRED_MODELS = RetiredModels()


def load_retired_models(
    path: str | Path | None = None, *, canonical_provider: Callable[[str], str] = str.lower
) -> RetiredModels:
    """Reads and checks a table (the built-in one when ``path`` is empty); ValueError naming the field."""
    document, source = read_table(path, built_in=BUILT_IN_FILE, what="retired models")
    return parse_retired_models(document, source=source, canonical_provider=canonical_provider)


def parse_retired_models(
    document: Any, *, source: str = "retired models", canonical_provider: Callable[[str], str] = str.lower
) -> RetiredModels:
    """Checks a parsed table; ValueError naming ``source`` and the field path."""
    fail = failure(source)
    entries: dict[tuple[str, str], RetiredModel] = {}
    required = ("provider", "model", "successor", "retired_on")
    for where, raw in table_entries(document, list_key="models", entry_keys=_ENTRY_KEYS, required=required, fail=fail):
        try:
            retired_on = datetime.date.fromisoformat(raw["retired_on"])
        except ValueError:
            raise fail(f"{where}.retired_on", "must be a date, YYYY-MM-DD") from None
        provider = entry_provider(raw, where, canonical_provider, fail)
        model = raw["model"].strip().lower()
        successor = raw["successor"].strip()
        if model == successor.lower():
            raise fail(f"{where}.successor", "must differ from model")
        if (provider, model) in entries:
            raise fail(f"{where}.model", f"{model!r} is already in the table for {provider}")
        params = param_rewrites(raw.get("params", {}), f"{where}.params", fail)
        entries[(provider, model)] = RetiredModel(provider, model, successor, retired_on, params)
    table = RetiredModels(entries)
    for (provider, model), entry in entries.items():
        seen = {model}
        following: RetiredModel | None = entry
        while following is not None:
            if following.successor.lower() in seen:
                raise ValueError(f"{source}: the successors of {model!r} ({provider}) lead back to it")
            seen.add(following.successor.lower())
            following = table.lookup(provider, following.successor)
        if len(seen) > _MAX_CHAIN:
            raise ValueError(f"{source}: the successors of {model!r} ({provider}) chain too far")
    return table
