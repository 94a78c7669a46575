"""Vetting the images an answer carries: decoding base64 image fields, sniffing the bytes, the result image."""

from __future__ import annotations

import binascii

import pybase64

from imagegateway_server.domain.image_info import sniff_image
from imagegateway_server.domain.result import GeneratedImage
from imagegateway_server.providers.kit.errors import Secrets, upstream_bug


def decode_image_b64(value: object, *, provider: str, secret: Secrets) -> bytes:
    """Decodes a base64 image field; a missing field or invalid base64 is UPSTREAM_BUG."""
    if not isinstance(value, str) or not value:
        raise upstream_bug(provider, f"{provider}: upstream image field is empty or not a string", secret=secret)
    text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    try:
        # pybase64's SIMD decoder: ~0.1 ms per MiB where the standard library takes ~4 ms on the loop.
        # Only base64 with line breaks (valid, but rare) takes the stripping path.
        data = pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        data = b""
    try:
        data = data or pybase64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise upstream_bug(provider, f"{provider}: upstream image is not valid base64", secret=secret) from None
    return data


def check_image(data: bytes, *, provider: str, secret: Secrets) -> tuple[str, int, int]:
    """Returns (mime, width, height) of image bytes; bytes that are no known image are UPSTREAM_BUG."""
    mime, width, height = sniff_image(data)
    if mime == "application/octet-stream":
        raise upstream_bug(provider, f"{provider}: upstream returned bytes that are not an image", secret=secret)
    return mime, width, height


def checked_image(data: bytes, *, provider: str, secret: Secrets, seed: object = None) -> GeneratedImage:
    """``data`` as a result image once it is checked to be one; ``seed`` is kept when it is an integer."""
    mime, width, height = check_image(data, provider=provider, secret=secret)
    return GeneratedImage(
        data=data,
        mime_type=mime,
        width=width,
        height=height,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
    )
