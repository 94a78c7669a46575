"""Page sizes and opaque page tokens shared by every store backend.

A token is the URL-safe base64 of a small JSON array: the listing it belongs to, then the sort
key of the last item served. Listings resume strictly after that key (keyset pagination), so
pages stay stable while rows are added.
"""

from __future__ import annotations

import base64
import binascii
import json

from imagegateway_server.domain.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

KeyPart = str | int


def page_size_or_default(page_size: int) -> int:
    """0 means the default; sizes above the maximum are lowered to it; negative sizes are refused."""
    if page_size < 0:
        raise InvalidArgument("must not be negative", param="page_size")
    if page_size == 0:
        return DEFAULT_PAGE_SIZE
    return min(page_size, MAX_PAGE_SIZE)


def encode_page_token(listing: str, key: tuple[KeyPart, ...]) -> str:
    """Encodes the sort key of the last item served in ``listing``."""
    raw = json.dumps([listing, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(listing: str, token: str, shape: tuple[type[KeyPart], ...]) -> tuple[KeyPart, ...] | None:
    """Returns the key in ``token`` (None for an empty token); refuses tokens of other listings."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidArgument("is not a token this listing issued", param="page_token") from None
    if (
        not isinstance(value, list)
        or len(value) != len(shape) + 1
        or value[0] != listing
        or not all(type(part) is kind for part, kind in zip(value[1:], shape, strict=True))
    ):
        raise InvalidArgument("is not a token this listing issued", param="page_token")
    return tuple(value[1:])
