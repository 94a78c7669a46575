"""Reading upstream bodies under a size cap, and the JSON written to and read from providers.

A body is read after decompression and refused as soon as it passes the cap, so one misbehaving
upstream cannot exhaust memory. ``json_object`` parses an answer without scanning the base64 images
it carries (``base64_json``); ``describe_bad_body`` and ``snippet`` put a short, printable excerpt
of a body that was not what it should be into an error message.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import orjson

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit import base64_json

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
SNIPPET_CHARS = 200


async def read_capped(response: aiohttp.ClientResponse, *, max_bytes: int, provider: str) -> bytes:
    """Reads a response body (decompressed), refusing to hold more than ``max_bytes``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise body_too_large(provider, max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > max_bytes:
            raise body_too_large(provider, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def json_bytes(payload: Any) -> bytes:
    """``payload`` as compact JSON; orjson, or the standard library for what orjson refuses."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits in a forwarded parameter
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def body_too_large(provider: str, max_bytes: int) -> ProviderError:
    """UPSTREAM_BUG 502: the upstream sent more than the body cap."""
    return ProviderError(
        ErrorKind.UPSTREAM_BUG,
        f"{provider}: upstream response body is larger than {max_bytes} bytes",
        provider=provider,
        status_code=502,
        code="response_too_large",
    )


def json_object(
    body: bytes, *, image_keys: frozenset[str] = frozenset(), start: int = 0, end: int | None = None
) -> dict[str, Any] | None:
    """The body (``body[start:end]``, read in place) parsed as a JSON object, or None when it is empty,
    not JSON, or not an object.

    orjson also refuses NaN/Infinity and lone surrogates, which no provider sends in a valid body.
    Image strings are not scanned character by character (``base64_json``); a long base64 value of
    one of ``image_keys`` comes back already decoded, as a ``base64_json.DecodedBase64``.
    """
    try:
        if image_keys or start or end is not None:
            payload = base64_json.loads_decoding_base64(body, image_keys, start=start, end=end)
        else:
            payload = base64_json.loads(body)
    except ValueError:  # orjson.JSONDecodeError, including nesting too deep
        return None
    return payload if isinstance(payload, dict) else None


def describe_bad_body(body: bytes) -> str:
    """Says what is wrong with a body that should have been JSON, for an error message."""
    return "an empty body" if not body.strip() else f"a non-JSON body: {snippet(body)}"


def snippet(body: bytes) -> str:
    """A short printable excerpt of a body for an error message."""
    text = body[: SNIPPET_CHARS * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "..."
