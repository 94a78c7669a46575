"""Parses provider JSON bodies that carry images as long base64 strings, without scanning the images.

A 1 MiB image arrives as a 1.4 MB JSON string. orjson checks such a string character by character
(~0.7 ms per MiB of image), while finding where it ends takes a ``memchr`` and checking that it is
plain base64 takes a SIMD pass (~0.1 ms together). So ``loads`` finds every string of at least
``min_chars`` characters, and for each one that is pure base64 (no escapes, no other characters, so
its JSON value is exactly its bytes) lets orjson parse only the small rest of the body, with a short
placeholder in its place, and puts the string back afterwards. The result equals ``orjson.loads``'s
for every body; anything unusual (escapes, other characters, a malformed body) takes the plain parse.

The check decodes each such string, so ``loads_decoding_base64`` hands those bytes over instead of
the string (a ``DecodedBase64``) where the string is the value of a key the caller names (an image
field), or an item of a list that is (Bedrock's ``"images": [...]``): a caller that wants the image
saves building a 1.4 MB ``str`` and decoding it a second time
(~0.15 ms per MiB of image).
"""

from __future__ import annotations

import binascii
import dataclasses
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


@dataclasses.dataclass(frozen=True, slots=True)
class DecodedBase64:
    """Where ``loads_decoding_base64`` found a long base64 string: the bytes it decodes to (validated),
    and its text as it stands in the body (a view, no copy), for a caller that passes the text on."""

    data: bytes = dataclasses.field(repr=False)
    text: memoryview = dataclasses.field(repr=False, compare=False)


def loads(body: bytes, *, min_chars: int = MIN_CHARS) -> Any:
    """``orjson.loads(body)``, faster when the body holds long base64 strings; raises as orjson does."""
    return _loads(body, 0, len(body), min_chars, frozenset())


def loads_decoding_base64(
    body: bytes, keys: frozenset[str], *, min_chars: int = MIN_CHARS, start: int = 0, end: int | None = None
) -> Any:
    """``loads(body[start:end])`` (read in place, not copied), except that a string of at least
    ``min_chars`` pure base64 characters that is the value of one of ``keys`` in an object, or an item
    of a list that is, comes back as a ``DecodedBase64`` of its bytes."""
    return _loads(body, start, len(body) if end is None else end, min_chars, keys)


def _loads(body: bytes, first: int, last: int, min_chars: int, decode_keys: frozenset[str]) -> Any:
    whole = body if first == 0 and last == len(body) else memoryview(body)[first:last]
    if last - first < min_chars:
        return orjson.loads(whole)
    spans = _long_base64_strings(body, first, last, min_chars)
    if not spans:
        return orjson.loads(whole)
    parts: list[bytes] = []
    position = first
    for index, (start, end, _) in enumerate(spans):
        parts += (body[position:start], _PLACEHOLDER_TAG + b"%d" % index)
        position = end
    parts.append(body[position:last])
    skeleton = orjson.loads(b"".join(parts))
    restorer = _Restorer(body, spans, decode_keys)
    restored = restorer.restore(skeleton, None)
    # Each placeholder must come back exactly once, as a whole string value (not a key), and no string
    # of the body may look like one (spelt with other escapes): otherwise this was not what it seemed.
    if not restorer.each_once:
        return orjson.loads(whole)
    return restored


def _long_base64_strings(body: bytes, first: int, last: int, min_chars: int) -> list[tuple[int, int, bytes]]:
    """(start, end, decoded bytes) of the contents of every JSON string of at least ``min_chars`` pure
    base64 characters in ``body[first:last]`` (positions in ``body``).

    Outside strings a JSON text has no quote characters, so quotes pair up into strings once escaped
    quotes (an odd run of backslashes before them) are skipped. An unpaired quote means a malformed
    body: no spans, and orjson says why.
    """
    spans: list[tuple[int, int, bytes]] = []
    position = first
    while (opening := body.find(_QUOTE, position, last)) >= 0:
        closing = body.find(_QUOTE, opening + 1, last)
        while closing >= 0 and _escaped(body, first, closing):
            closing = body.find(_QUOTE, closing + 1, last)
        if closing < 0:
            return []
        if closing - opening - 1 >= min_chars and (data := _base64_bytes(body, opening + 1, closing)) is not None:
            spans.append((opening + 1, closing, data))
        position = closing + 1
    return spans


def _escaped(body: bytes, first: int, quote: int) -> bool:
    backslashes = 0
    index = quote - 1
    while index >= first and body[index] == _BACKSLASH:
        backslashes += 1
        index -= 1
    return backslashes % 2 == 1


def _base64_bytes(body: bytes, start: int, end: int) -> bytes | None:
    # Strict base64 has no backslash, control character or non-ASCII byte, so the JSON string's value
    # is exactly these bytes. pybase64 checks the alphabet and padding in one SIMD pass as it decodes.
    try:
        return pybase64.b64decode(memoryview(body)[start:end], validate=True)
    except (binascii.Error, ValueError):
        return None


class _Restorer:
    """Puts the long strings back in place of their placeholders, counting every string value that
    looks like a placeholder."""

    def __init__(self, body: bytes, spans: list[tuple[int, int, bytes]], decode_keys: frozenset[str]) -> None:
        self._view = memoryview(body)
        self._taken = {_PLACEHOLDER + str(index): span for index, span in enumerate(spans)}
        self._decode_keys = decode_keys
        self._expected = len(spans)
        self._seen = 0

    @property
    def each_once(self) -> bool:
        """Every placeholder was put back, and no other string looked like one."""
        return not self._taken and self._seen == self._expected

    def restore(self, value: Any, key: str | None) -> Any:
        """``value`` (the value of ``key`` in an object, an item of a list that is, or None) with its
        placeholders put back."""
        if isinstance(value, str):
            if not value.startswith(_PLACEHOLDER):
                return value
            self._seen += 1
            span = self._taken.pop(value, None)
            if span is None:
                return value
            start, end, data = span
            text = self._view[start:end]
            return DecodedBase64(data, text) if key in self._decode_keys else str(text, "ascii")
        if isinstance(value, dict):
            return {name: self.restore(item, name) for name, item in value.items()}
        if isinstance(value, list):
            return [self.restore(item, key) for item in value]
        return value
