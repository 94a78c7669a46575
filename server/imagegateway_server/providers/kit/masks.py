"""Converts an edit's mask between the two conventions providers read.

OpenAI (and Azure) mark the area to repaint with fully transparent pixels (alpha 0) in a PNG the
size of the image; Stability (and most inpainting APIs) read a greyscale mask by luminance, white
where to repaint and black where to keep. A mask is therefore never passed on as it came: for a
luminance reader its alpha channel is inverted into a greyscale PNG (alpha 0 -> white 255, opaque
-> black 0, partial transparency to the matching grey).
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from imagegateway_server.providers.kit.errors import refuse_parameter


def alpha_to_luminance(mask_png: bytes, *, provider: str) -> bytes:
    """OpenAI's alpha mask as a greyscale luminance mask (PNG); BAD_REQUEST naming ``mask`` if unreadable."""
    try:
        with Image.open(io.BytesIO(mask_png)) as image:
            rgba = image.convert("RGBA")  # palette and greyscale-with-alpha masks too
    except (UnidentifiedImageError, OSError, ValueError):
        raise refuse_parameter(provider, "mask", "is not a PNG the gateway can read") from None
    luminance = ImageOps.invert(rgba.getchannel("A"))
    out = io.BytesIO()
    luminance.save(out, "PNG")
    return out.getvalue()
