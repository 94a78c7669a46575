"""Field checks for the JSON-bodied model-host emulators (Together, Fireworks, xAI, Recraft).

Each check raises `BodyError` naming the field; each emulator turns it into its provider's error
shape (OpenAI's envelope, FastAPI's `detail`, xAI's `{"code", "error"}`, Recraft's `{"code", "message"}`).
"""

from __future__ import annotations

from typing import Any

from .forms import json_object


class BodyError(Exception):
    """A request body the API refuses: HTTP `status`, a message, the field concerned."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


def body_object(raw: bytes) -> dict[str, Any]:
    body = json_object(raw)
    if body is None:
        raise BodyError("the request body must be a JSON object")
    return body


def unknown_fields(body: dict[str, Any], allowed: frozenset[str]) -> None:
    for key in body:
        if key not in allowed:
            raise BodyError(f"unknown field '{key}'", key)


def string(body: dict[str, Any], name: str, *, required: bool = False, max_chars: int | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BodyError(f"'{name}' is required", name)
        return None
    if not isinstance(value, str) or (required and not value):
        raise BodyError(f"'{name}' must be a non-empty string", name)
    if max_chars is not None and len(value) > max_chars:
        raise BodyError(f"'{name}' is longer than {max_chars} characters", name)
    return value


def integer(body: dict[str, Any], name: str, low: int, high: int, default: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise BodyError(f"'{name}' must be an integer", name)
    if not low <= value <= high:
        raise BodyError(f"'{name}' must be between {low} and {high}, got {value}", name)
    return value


def number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise BodyError(f"'{name}' must be a number between {low:g} and {high:g}", name)
    return float(value)


def choice(body: dict[str, Any], name: str, allowed: tuple[str, ...] | frozenset[str], default: str) -> str:
    value = body.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise BodyError(f"'{name}' must be one of {', '.join(sorted(allowed))}, got {value!r}", name)
    assert isinstance(value, str)
    return value


def ratio_size(ratio: str, megapixels: float, step: int = 16) -> tuple[int, int]:
    """A width and height of about `megapixels` with aspect `ratio` ("16:9", "19.5:9"), multiples of `step`."""
    w, _, h = ratio.partition(":")
    aspect = float(w) / float(h)
    height = (megapixels * 1_000_000 / aspect) ** 0.5
    width = height * aspect
    return max(step, round(width / step) * step), max(step, round(height / step) * step)
