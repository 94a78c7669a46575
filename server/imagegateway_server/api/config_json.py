"""Parses Portkey-style config JSON into the routing-config model, naming the field path on errors.

The JSON is the proto's JSON mapping, so protobuf's own parser reads it (and camelCase names, and
64-bit integers as strings); but its error messages lose the path for nested targets, so we walk the
document against the message descriptor first and every error reads like
``targets[1].strategy.mode: must be a string``.

An inline config (``x-portkey-config``) arrives with every request, usually the same text each
time: ``parse_inline_config`` parses a text once and gives the same model object back after, which
also lets the core reuse the plan it compiled for that object.
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from imagegateway.v1 import configs_pb2
from imagegateway_server.api.config_proto import config_from_proto
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.routing_config import RoutingConfig

_STRUCT = "google.protobuf.Struct"
_INT_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}
# Messages inside messages, as protobuf's own JSON parser allows; a config's targets stop far earlier
# (routing/plan.py MAX_DEPTH), this only keeps the walk below Python's recursion limit.
MAX_NESTING = 100
# Inline config texts kept parsed: a few hundred, none longer than this (a longer text is parsed each time).
INLINE_CACHE_ENTRIES = 256
MAX_CACHED_TEXT_CHARS = 16 * 1024
# String fields that Portkey's configs give as a JSON object (a service account key file): the
# object is taken as its JSON text, which is what the proto field and the provider's schema hold.
_OBJECT_AS_TEXT_FIELDS = frozenset({"vertex_service_account_json", "vertexServiceAccountJson"})


def parse_config(document: str | bytes | dict[str, Any], *, param: str = "config") -> RoutingConfig:
    """Turns config JSON (text or an already-decoded object) into the routing-config model."""
    return config_from_proto(parse_config_message(document, param=param))


def parse_inline_config(text: str, *, param: str) -> RoutingConfig:
    """``parse_config`` for a config sent with a request: the same text gives the same model object.

    Only parsed configs are kept; a text that fails is parsed, and refused, again each time.
    """
    if len(text) > MAX_CACHED_TEXT_CHARS:
        return parse_config(text, param=param)
    return _cached_inline_config(text, param)


@functools.lru_cache(maxsize=INLINE_CACHE_ENTRIES)
def _cached_inline_config(text: str, param: str) -> RoutingConfig:
    return parse_config(text, param=param)


def parse_config_message(document: str | bytes | dict[str, Any], *, param: str = "config") -> configs_pb2.RoutingConfig:
    """Turns config JSON (text or an already-decoded object) into a RoutingConfig message, for a
    client that sends it on (the CLI)."""
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"is not valid JSON ({exc})", param=param) from None
        except RecursionError:  # thousands of nested brackets: refuse them, do not crash on them
            raise InvalidArgument(f"is nested deeper than {MAX_NESTING} levels", param=param) from None
    if not isinstance(document, dict):
        raise InvalidArgument("must be a JSON object", param=param)
    document = _objects_as_text(document, 0)
    _check_message(document, configs_pb2.RoutingConfig.DESCRIPTOR, "", 0)
    try:
        return json_format.ParseDict(document, configs_pb2.RoutingConfig())
    except json_format.ParseError as exc:  # pragma: no cover - the walk above should catch these
        raise InvalidArgument(str(exc), param=param) from None


def _objects_as_text(config: dict[str, Any], depth: int) -> dict[str, Any]:
    """``config`` (a copy where anything changes) with each ``_OBJECT_AS_TEXT_FIELDS`` object as JSON text."""
    if depth > MAX_NESTING:
        return config  # _check_message refuses it, naming the path
    changed: dict[str, Any] = {
        name: json.dumps(value)
        for name, value in config.items()
        if name in _OBJECT_AS_TEXT_FIELDS and isinstance(value, dict)
    }
    targets = config.get("targets")
    if isinstance(targets, list):
        walked = [_objects_as_text(t, depth + 1) if isinstance(t, dict) else t for t in targets]
        if any(new is not old for new, old in zip(walked, targets, strict=True)):
            changed["targets"] = walked
    return {**config, **changed} if changed else config


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_message(value: dict[str, Any], descriptor: Descriptor, path: str, depth: int) -> None:
    if depth > MAX_NESTING:
        raise InvalidArgument(f"is nested deeper than {MAX_NESTING} levels", param=path)
    by_name = {f.name: f for f in descriptor.fields}
    by_name.update({f.json_name: f for f in descriptor.fields})
    for key, item in value.items():
        field = by_name.get(key)
        if field is None:
            allowed = ", ".join(sorted(f.name for f in descriptor.fields))
            # An empty key still needs a name the caller can find.
            raise InvalidArgument(
                f"unknown field; expected one of: {allowed}", param=_join(path, key or '""'), code="unknown_parameter"
            )
        field_path = _join(path, field.name)
        if item is None:
            continue
        if field.is_repeated:
            if not isinstance(item, list):
                raise InvalidArgument("must be a list", param=field_path, code="invalid_type")
            for i, element in enumerate(item):
                _check_value(element, field, f"{field_path}[{i}]", depth)
        else:
            _check_value(item, field, field_path, depth)


def _check_value(item: Any, field: FieldDescriptor, path: str, depth: int) -> None:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if not isinstance(item, dict):
            raise InvalidArgument("must be an object", param=path, code="invalid_type")
        message_type = field.message_type
        assert message_type is not None  # a message field always has its type
        if message_type.full_name != _STRUCT:
            _check_message(item, message_type, path, depth + 1)
    elif field.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(item, str):
            raise InvalidArgument("must be a string", param=path, code="invalid_type")
    elif field.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(item, bool):
            raise InvalidArgument("must be true or false", param=path, code="invalid_type")
    elif field.type in _INT_TYPES:
        # protobuf's JSON mapping writes 64-bit integers as strings (as stored configs are saved),
        # and accepts them back; so do we.
        if isinstance(item, str) and item.strip().lstrip("-").isdigit():
            return
        # JSON text may say Infinity or NaN, which int() cannot take.
        if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item) or int(item) != item:
            raise InvalidArgument("must be an integer", param=path, code="invalid_type")
    elif field.type in _FLOAT_TYPES:
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise InvalidArgument("must be a number", param=path, code="invalid_type")
