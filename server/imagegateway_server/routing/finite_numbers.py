"""Refuses NaN and infinity anywhere in a routing config, naming the field.

JSON has neither, so a config holding one can be neither stored (as JSON) nor shown. A config that
arrives over gRPC can carry them in any double field and in ``google.protobuf.Value`` numbers, also
in parts the chosen strategy never reads (``conditions`` of a fallback): checked everywhere, once,
before the config is compiled.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from imagegateway_server.domain.errors import InvalidArgument

_STRUCT = "google.protobuf.Struct"
_LIST_VALUE = "google.protobuf.ListValue"
_VALUE = "google.protobuf.Value"
_FLOATING = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)


def refuse_non_finite_numbers(message: Message, path: str = "") -> None:
    """Raises InvalidArgument naming the first NaN or infinite number found in ``message``."""
    kind = message.DESCRIPTOR.full_name
    if kind == _STRUCT:
        for key, item in message.fields.items():  # type: ignore[attr-defined]
            refuse_non_finite_numbers(item, _join(path, key))
    elif kind == _LIST_VALUE:
        for index, item in enumerate(message.values):  # type: ignore[attr-defined]
            refuse_non_finite_numbers(item, f"{path}[{index}]")
    elif kind == _VALUE:
        which = message.WhichOneof("kind")
        if which == "number_value":
            _check(message.number_value, path)  # type: ignore[attr-defined]
        elif which in ("struct_value", "list_value"):
            refuse_non_finite_numbers(getattr(message, which), path)
    else:
        for field, value in message.ListFields():
            _check_field(field, value, _join(path, field.name))


def _check_field(field: FieldDescriptor, value: Any, path: str) -> None:
    repeated = field.is_repeated
    entry = field.message_type
    if entry is not None:
        if repeated and entry.GetOptions().map_entry:
            value_field = entry.fields_by_name["value"]
            for key, item in value.items():
                _check_field(value_field, item, _join(path, str(key)))
        elif repeated:
            for index, item in enumerate(value):
                refuse_non_finite_numbers(item, f"{path}[{index}]")
        else:
            refuse_non_finite_numbers(value, path)
    elif field.type in _FLOATING:
        for index, number in enumerate(value if repeated else [value]):
            _check(number, f"{path}[{index}]" if repeated else path)


def _check(number: float, path: str) -> None:
    if not math.isfinite(number):
        raise InvalidArgument("must be a finite number (JSON has no NaN or Infinity)", param=path)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
