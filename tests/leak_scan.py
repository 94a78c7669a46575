"""Test helper: the leak scans' transcript of everything a gateway said, and the search of it for secrets.

The secrets-never-leak tests drive one gateway through every path that touches a credential,
add each answer, error, log record, metric page or database file to a ``Transcript``, then ask it
for ``leaks``: every secret, whole or in a telling fragment, found anywhere in what was said.
"""

from __future__ import annotations

import base64
import logging
import secrets
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
from google.protobuf import json_format
from google.protobuf.message import Message

from imagegateway import ImageGatewayError

TIMEOUT = 30.0
# The master key of the leak scans' gateways: a secret the scan looks for too.
MASTER_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def fragments(secret: str) -> list[str]:
    """The secret and pieces long enough to identify it (a masked echo keeps a head or a tail)."""
    return [secret, secret[-12:], secret[4:16]]


class Transcript:
    """Everything the gateway said, as text."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str]] = []

    def add(self, where: str, value: Any) -> None:
        if isinstance(value, Message):
            text = json_format.MessageToJson(value) + str(value)
        elif isinstance(value, httpx.Response):
            text = f"{value.status_code} {dict(value.headers)} {value.text}"
        elif isinstance(value, ImageGatewayError):
            text = f"{value} {value.message!r} {[str(d) for d in value.details]} {value.error_info}"
        elif isinstance(value, BaseException):
            text = "".join(traceback.format_exception(value))
        else:
            text = str(value)
        self.parts.append((where, text))

    def call(self, where: str, fn: Callable[[], Any]) -> Any:
        try:
            result = fn()
        except ImageGatewayError as exc:
            self.add(where, exc)
            return None
        self.add(where, result)
        return result

    def add_logs(self, records: Iterable[logging.LogRecord]) -> None:
        """Each log record: its message, every attribute (extras included) and its traceback."""
        for record in records:
            self.add(f"log {record.name}", f"{record.getMessage()} {record.__dict__} {record.exc_text or ''}")

    def leaks(self, secrets_: Mapping[str, str]) -> list[tuple[str, str]]:
        """(secret's name, where) for each named secret, or a fragment of it, found in what was said."""
        return [
            (name, where)
            for name, secret in secrets_.items()
            for fragment in fragments(secret)
            for where, text in self.parts
            if fragment in text
        ]
