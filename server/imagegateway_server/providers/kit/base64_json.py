"""Parses provider JSON bodies that carry images as long base64 strings, without scanning the images.

A 1 MiB image arrives as a 1.4 MB JSON string. orjson checks such a string character by character
(~0.7 ms per MiB of image), while finding where it ends takes a ``memchr`` and checking that it is
plain base64 takes a SIMD pass (~0.1 ms together). So ``loads`` finds every string of at least
``min_chars`` characters, and for each one that is pure base64 (no escapes, no other characters, so
its JSON value is exactly its bytes) lets orjson parse only the small rest of the body, with a short
placeholder in its place, and puts the string back afterwards. The result equals ``orjson.loads``'s
for every body; anything unusual (escapes, other characters, a malformed body) takes the plain parse.
"""

from __future__ import annotations

import binascii
from typing import Any

import orjson
import pybase64

MIN_CHARS = 64 * 1024
_QUOTE = b'"'
_BACKSLASH = 0x5C
# Placeholders are JSON escapes of a NUL followed by a tag; a body string that reads the same is caught
# by counting (``_restore``), so the body is never searched for one.
_PLACEHOLDER_TAG = b"\\u0000imagegw-b64-"
_PLACEHOLDER = "\x00imagegw-b64-"  # what the tag parses to


def loads(body: bytes, *, min_chars: int = MIN_CHARS) -> Any:
    """``orjson.loads(body)``, faster when the body holds long base64 strings; raises as orjson does."""
    if len(body) < min_chars:
        return orjson.loads(body)
    spans = _long_base64_strings(body, min_chars)
    if not spans:
        return orjson.loads(body)
    view = memoryview(body)
    parts: list[bytes] = []
    taken: dict[str, str] = {}
    position = 0
    for index, (start, end) in enumerate(spans):
        parts += (body[position:start], _PLACEHOLDER_TAG + b"%d" % index)
        taken[_PLACEHOLDER + str(index)] = str(view[start:end], "ascii")
        position = end
    parts.append(body[position:])
    skeleton = orjson.loads(b"".join(parts))
    seen = [0]
    restored = _restore(skeleton, taken, seen)
    # Each placeholder must come back exactly once, as a whole string value (not a key), and no string
    # of the body may look like one (spelt with other escapes): otherwise this was not what it seemed.
    if taken or seen[0] != len(spans):
        return orjson.loads(body)
    return restored


def _long_base64_strings(body: bytes, min_chars: int) -> list[tuple[int, int]]:
    """(start, end) of the contents of every JSON string of at least ``min_chars`` pure base64 characters.

    Outside strings a JSON text has no quote characters, so quotes pair up into strings once escaped
    quotes (an odd run of backslashes before them) are skipped. An unpaired quote means a malformed
    body: no spans, and orjson says why.
    """
    spans: list[tuple[int, int]] = []
    position = 0
    while (opening := body.find(_QUOTE, position)) >= 0:
        closing = body.find(_QUOTE, opening + 1)
        while closing >= 0 and _escaped(body, closing):
            closing = body.find(_QUOTE, closing + 1)
        if closing < 0:
            return []
        if closing - opening - 1 >= min_chars and _is_base64(body, opening + 1, closing):
            spans.append((opening + 1, closing))
        position = closing + 1
    return spans


def _escaped(body: bytes, quote: int) -> bool:
    backslashes = 0
    index = quote - 1
    while index >= 0 and body[index] == _BACKSLASH:
        backslashes += 1
        index -= 1
    return backslashes % 2 == 1


def _is_base64(body: bytes, start: int, end: int) -> bool:
    # Strict base64 has no backslash, control character or non-ASCII byte, so the JSON string's value
    # is exactly these bytes. pybase64 checks the alphabet and padding in one SIMD pass.
    try:
        pybase64.b64decode(memoryview(body)[start:end], validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _restore(value: Any, taken: dict[str, str], seen: list[int]) -> Any:
    """``value`` with every placeholder string put back (and removed from ``taken``); counts in ``seen``
    every string value that looks like a placeholder."""
    if isinstance(value, str):
        if not value.startswith(_PLACEHOLDER):
            return value
        seen[0] += 1
        return taken.pop(value, value)
    if isinstance(value, dict):
        return {key: _restore(item, taken, seen) for key, item in value.items()}
    if isinstance(value, list):
        return [_restore(item, taken, seen) for item in value]
    return value
