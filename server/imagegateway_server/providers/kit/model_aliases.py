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
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

BUILT_IN_FILE = Path(__file__).with_name("model_aliases.json")

# The string parameters an alias may rewrite.
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
_ENTRY_KEYS = frozenset({"provider", "model", "successor", "enabled", "params", "description"})


@dataclasses.dataclass(frozen=True, slots=True)
class ModelAlias:
    """One enabled alias: ``model`` on ``provider`` is served by ``successor`` with ``params`` rewritten."""

    provider: str
    model: str
    successor: str
    params: Mapping[str, Mapping[str, str | None]]


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
    source = Path(path) if path else BUILT_IN_FILE
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"model aliases file {source}: cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"model aliases file {source}: not valid JSON: {exc}") from None
    return parse_model_aliases(document, source=str(source), canonical_provider=canonical_provider)


def parse_model_aliases(
    document: Any, *, source: str = "model aliases", canonical_provider: Callable[[str], str] = str.lower
) -> ModelAliases:
    """Checks a parsed alias table; ValueError naming ``source`` and the field path."""

    def fail(where: str, message: str) -> ValueError:
        return ValueError(f"{source}: {where}: {message}")

    if not isinstance(document, dict) or not isinstance(document.get("aliases"), list):
        raise fail("aliases", "the file must be a JSON object with an 'aliases' list")
    unknown = set(document) - {"aliases", "description"}
    if unknown:
        raise fail(sorted(unknown)[0], "unknown field")
    enabled: dict[tuple[str, str], ModelAlias] = {}
    for i, entry in enumerate(document["aliases"]):
        where = f"aliases[{i}]"
        if not isinstance(entry, dict):
            raise fail(where, "must be an object")
        extra = set(entry) - _ENTRY_KEYS
        if extra:
            raise fail(f"{where}.{sorted(extra)[0]}", "unknown field")
        for name in ("provider", "model", "successor"):
            if not isinstance(entry.get(name), str) or not entry[name].strip():
                raise fail(f"{where}.{name}", "must be a non-empty string")
        if not isinstance(entry.get("enabled", False), bool):
            raise fail(f"{where}.enabled", "must be true or false")
        try:
            provider = canonical_provider(entry["provider"])
        except Exception:
            raise fail(f"{where}.provider", f"unknown provider {entry['provider']!r}") from None
        params = _params(entry.get("params", {}), f"{where}.params", fail)
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


def _params(value: Any, where: str, fail: Callable[[str, str], ValueError]) -> Mapping[str, Mapping[str, str | None]]:
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
