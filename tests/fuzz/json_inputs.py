"""Generators of JSON input: arbitrary values, Portkey configs, and near-valid mutations of them.

Random JSON rarely gets past a parser's first check, so most of the weight is on documents that
start valid (the shapes Portkey's docs and our cookbook use) and are then changed in one to four
places: a key dropped, renamed, retyped or added, a value swapped for an edge case, a target
duplicated or nested deeper. Those reach the checks deep inside plan compilation. Every generator
takes a ``Chooser`` (see ``choosers``), so hypothesis and the seeded bulk runs share them.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.fuzz.choosers import Chooser

# Field names the config parser knows, in both spellings protobuf's JSON mapping accepts.
CONFIG_KEYS = (
    "strategy",
    "targets",
    "name",
    "provider",
    "api_key",
    "virtual_key",
    "override_params",
    "weight",
    "custom_host",
    "retry",
    "request_timeout",
    "cache",
    "forward_headers",
    "circuit_breaker",
    "strict",
    "mode",
    "on_status_codes",
    "conditions",
    "default",
    "query",
    "then",
    "attempts",
    "use_retry_after_header",
    "max_age",
    "include_seeded_and_multi_image",
    "consecutive_failures",
    "failure_rate",
    "window",
    "cooldown_seconds",
    "apiKey",
    "virtualKey",
    "overrideParams",
    "customHost",
    "requestTimeout",
    "onStatusCodes",
    "forwardHeaders",
    "circuitBreaker",
    "maxAge",
    "useRetryAfterHeader",
)
PARAM_KEYS = (
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "style",
    "user",
    "negative_prompt",
    "seed",
    "cfg_scale",
    "style_preset",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "aspect_ratio",
    "response_format",
    "steps",
    "samples",
    "strict",
)
QUERY_KEYS = (
    "metadata.tier",
    "params.n",
    "params.model",
    "params.size",
    "$or",
    "$and",
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$regex",
    "$exists",
    "$bogus",
)

# Values that break naive code: boundaries of int32/int64/double, empties, look-alikes of numbers.
EDGE_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1,
    2,
    10,
    11,
    100,
    101,
    599,
    600,
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
    0.5,
    -0.0,
    1e-300,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    "",
    " ",
    "0",
    "-1",
    "1e3",
    "12",
    "NaN",
    "Infinity",
    "null",
    "\x00",
    "\u202e",
    "é" * 3,
    "a" * 300,
    [],
    {},
    [None],
    {"": None},
)
MODES = ("fallback", "loadbalance", "single", "conditional", "roundrobin", "", "FALLBACK")


def edge_value(ch: Chooser) -> Any:
    # Copied: mutations change containers in place, and a shared [] would leak between cases.
    return copy.deepcopy(ch.choice(EDGE_VALUES))


def json_key(ch: Chooser) -> str:
    kind = ch.integer(0, 9)
    if kind < 5:
        return ch.choice(CONFIG_KEYS)
    if kind < 7:
        return ch.choice(PARAM_KEYS)
    if kind < 8:
        return ch.choice(QUERY_KEYS)
    return ch.text(10)


def json_scalar(ch: Chooser) -> Any:
    kind = ch.integer(0, 6)
    if kind == 0:
        return None
    if kind == 1:
        return ch.chance(50)
    if kind == 2:
        return ch.integer(-(2**64), 2**64) if ch.chance(20) else ch.integer(-20, 2000)
    if kind == 3:
        return ch.real()
    if kind == 4:
        return ch.text(20)
    return edge_value(ch)


def json_value(ch: Chooser, budget: int = 12, depth: int = 0) -> Any:
    """Any JSON value (NaN and infinities included, as Python's json writes them) of at most ~budget leaves."""
    if budget <= 1 or depth > 6 or ch.integer(0, 9) < 5:
        return json_scalar(ch)
    size = ch.integer(0, min(5, budget))
    share = max(1, budget // max(1, size))
    if ch.chance(50):
        return [json_value(ch, share, depth + 1) for _ in range(size)]
    return {json_key(ch): json_value(ch, share, depth + 1) for _ in range(size)}


# -- valid configs to start from -----------------------------------------------------------------------


def base_configs(vk_a: str = "vk-a", vk_b: str = "vk-b", host: str = "http://127.0.0.1:9") -> list[dict[str, Any]]:
    """Configs that compile, covering each strategy mode and every per-target setting."""
    leaf_a = {"virtual_key": vk_a, "override_params": {"model": "stable-diffusion-v1-6"}}
    leaf_b = {"virtual_key": vk_b, "override_params": {"model": "dall-e-2", "size": "256x256"}}
    direct = {"provider": "openai", "api_key": "sk-fuzz", "custom_host": host}
    return [
        {"strategy": {"mode": "fallback"}, "targets": [leaf_a, leaf_b]},
        {"strategy": {"mode": "fallback", "on_status_codes": [429, 500, 503]}, "targets": [leaf_a, direct]},
        {"strategy": {"mode": "loadbalance"}, "targets": [{**leaf_a, "weight": 0.7}, {**leaf_b, "weight": 0.3}]},
        {"strategy": {"mode": "single"}, "targets": [leaf_b]},
        {"virtual_key": vk_b},
        direct,
        {
            "strategy": {
                "mode": "conditional",
                "conditions": [
                    {"query": {"metadata.tier": {"$eq": "gold"}}, "then": "gold"},
                    {"query": {"$or": [{"params.n": {"$gt": 1}}, {"params.size": "512x512"}]}, "then": "bulk"},
                ],
                "default": "bulk",
            },
            "targets": [{**leaf_a, "name": "gold"}, {**leaf_b, "name": "bulk"}],
        },
        {
            "retry": {"attempts": 2, "on_status_codes": [429, 503], "use_retry_after_header": False},
            "request_timeout": 30000,
            "cache": {"mode": "simple", "max_age": 60},
            "forward_headers": ["x-user"],
            "strategy": {"mode": "fallback"},
            "targets": [{"strategy": {"mode": "loadbalance"}, "targets": [leaf_a, leaf_b]}, leaf_b],
        },
        {
            "strategy": {"mode": "fallback"},
            "circuit_breaker": {"consecutive_failures": 3, "cooldown_seconds": 5},
            "strict": True,
            "targets": [leaf_a, {**leaf_b, "strict": False}],
        },
        {
            "overrideParams": {"n": 2},
            "strategy": {"mode": "fallback", "onStatusCodes": [500]},
            "targets": [{"virtualKey": vk_a, "requestTimeout": "30000"}, leaf_b],
        },
    ]


# -- mutations -------------------------------------------------------------------------------------------


def _containers(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every object and list inside ``document`` (the root is ``()``)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(document, dict):
        out.append(path)
        for key, value in document.items():
            out.extend(_containers(value, (*path, key)))
    elif isinstance(document, list):
        out.append(path)
        for i, value in enumerate(document):
            out.extend(_containers(value, (*path, i)))
    return out


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


_MUTATIONS = ("drop", "replace", "edge", "add", "rename", "wrap", "duplicate", "nest")


def mutate(ch: Chooser, document: Any, max_mutations: int = 4) -> Any:
    """A deep copy of ``document`` changed in one to ``max_mutations`` random places."""
    document = copy.deepcopy(document)
    for _ in range(ch.integer(1, max_mutations)):
        paths = _containers(document)
        if not paths:
            return json_value(ch, 6)
        container = _at(document, ch.choice(paths))
        kind = ch.choice(_MUTATIONS)
        if isinstance(container, dict):
            key = ch.choice(list(container)) if container else None
            if key is None or kind == "add":
                container[json_key(ch)] = json_value(ch, 6)
            elif kind == "drop":
                del container[key]
            elif kind == "replace":
                container[key] = json_value(ch, 6)
            elif kind == "edge":
                container[key] = edge_value(ch)
            elif kind == "rename":
                container[json_key(ch)] = container.pop(key)
            elif kind == "wrap":
                container[key] = [container[key]]
            elif kind == "nest" and key == "targets" and isinstance(container[key], list):
                container[key] = [{"strategy": {"mode": ch.choice(MODES)}, "targets": container[key]}]
            else:
                container[key] = {json_key(ch): container[key]}
        else:
            if container and kind == "drop":
                container.pop(ch.integer(0, len(container) - 1))
            elif container and kind in ("duplicate", "nest"):
                item = container[ch.integer(0, len(container) - 1)]
                container.extend(copy.deepcopy(item) for _ in range(ch.integer(1, 3)))
            elif container and kind in ("replace", "edge"):
                index = ch.integer(0, len(container) - 1)
                container[index] = edge_value(ch) if kind == "edge" else json_value(ch, 6)
            else:
                container.append(json_value(ch, 6))
    return document


def nested_targets(depth: int, leaf: dict[str, Any]) -> dict[str, Any]:
    """A fallback chain nested ``depth`` levels deep around ``leaf``."""
    node: dict[str, Any] = leaf
    for _ in range(depth):
        node = {"strategy": {"mode": "fallback"}, "targets": [node]}
    return node


def config_document(ch: Chooser, bases: list[dict[str, Any]]) -> Any:
    """Config JSON of every kind: valid, near-valid (most), deep, wide, or anything at all."""
    kind = ch.integer(0, 19)
    if kind < 2:
        return copy.deepcopy(ch.choice(bases))
    if kind < 14:
        return mutate(ch, ch.choice(bases))
    leaf = next((b for b in bases if "virtual_key" in b), bases[0])
    if kind == 14:
        return nested_targets(ch.integer(0, 14), copy.deepcopy(leaf))
    if kind == 15:
        return {"strategy": {"mode": ch.choice(MODES)}, "targets": [copy.deepcopy(leaf)] * ch.integer(95, 105)}
    if kind < 18:
        return {ch.choice(CONFIG_KEYS): json_value(ch, 8) for _ in range(ch.integer(0, 6))}
    return json_value(ch)


def as_text(document: Any) -> str:
    """JSON text for a document; NaN and infinities are written as Python's json module does."""
    return json.dumps(document, allow_nan=True)


def config_text(ch: Chooser, bases: list[dict[str, Any]]) -> str:
    """Config text: a serialised document, the same cut short or spliced, deep brackets, or garbage."""
    kind = ch.integer(0, 9)
    if kind < 5:
        return as_text(config_document(ch, bases))
    text = as_text(config_document(ch, bases))
    if kind == 5:
        return text[: ch.integer(0, len(text))]
    if kind == 6:
        at = ch.integer(0, len(text))
        return text[:at] + ch.text(4) + text[at + ch.integer(0, 3) :]
    if kind == 7:
        depth = ch.integer(1, 3000)
        return '{"targets":[' * depth + "]}" * (depth if ch.chance(50) else ch.integer(0, depth))
    if kind == 8:
        return ch.choice("[{") * ch.integer(1, 3000)
    return ch.text(40)
