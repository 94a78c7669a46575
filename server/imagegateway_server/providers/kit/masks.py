"""Converts an edit's mask between the two conventions providers read.

OpenAI (and Azure) mark the area to repaint with fully transparent pixels (alpha 0) in a PNG the
size of the image; Stability (and most inpainting APIs) read a greyscale mask by luminance, white
where to repaint and black where to keep. A mask is therefore never passed on as it came: for a
luminance reader its alpha channel is inverted into a greyscale PNG (alpha 0 -> white 255, opaque
-> black 0, partial transparency to the matching grey).

Amazon Nova Canvas and Titan Image Generator read the opposite way and only pure values: black
(0, 0, 0) marks the area to inpaint, white (255, 255, 255) the area to keep, and any other pixel is
refused (AWS's Nova "Image generation and editing" page, masking images; Titan's "Amazon Titan Image
Generator G1 models" page: "(0 0 0) is a pixel inside the mask"). For them the alpha channel is
thresholded half-way: alpha below 128 (transparent, OpenAI's "edit here") becomes black, the rest white.

A mask is decoded in full, so its pixel count is checked from its header first: a small PNG can
claim a huge canvas (a decompression bomb), and no provider takes a mask over ``MAX_MASK_PIXELS``.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError

from imagegateway_server.providers.kit.errors import refuse_parameter

# Alpha below this is "transparent" for a reader that takes only black or white.
HALF_ALPHA = 128
# The largest mask decoded (4096 x 4096, the largest input image any provider here takes).
MAX_MASK_PIXELS = 4096 * 4096


def alpha_to_luminance(mask_png: bytes, *, provider: str) -> bytes:
    """OpenAI's alpha mask as a greyscale luminance mask (PNG); BAD_REQUEST naming ``mask`` if unreadable."""
    luminance = ImageOps.invert(_alpha(mask_png, provider=provider, param="mask"))
    return _png(luminance)


def alpha_to_black_marks_edit(mask_png: bytes, *, provider: str, param: str = "mask") -> bytes | None:
    """OpenAI's alpha mask (or an image's own alpha) as an RGB PNG, black where to edit and white
    elsewhere; None when nothing is transparent (no area to edit). BAD_REQUEST naming ``param`` if unreadable."""
    alpha = _alpha(mask_png, provider=provider, param=param)
    lowest, _ = alpha.getextrema()
    if not isinstance(lowest, int) or lowest >= HALF_ALPHA:
        return None
    black_white = alpha.point(lambda value: 255 if value >= HALF_ALPHA else 0)
    return _png(black_white.convert("RGB"))


def _alpha(png: bytes, *, provider: str, param: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(png)) as image:
            width, height = image.size
            if width * height > MAX_MASK_PIXELS:
                raise refuse_parameter(
                    provider, param, f"is {width}x{height}; at most {MAX_MASK_PIXELS:,} pixels are read"
                )
            rgba = image.convert("RGBA")  # palette and greyscale-with-alpha masks too
    except Image.DecompressionBombError:
        raise refuse_parameter(provider, param, f"has more than {MAX_MASK_PIXELS:,} pixels") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise refuse_parameter(provider, param, "is not a PNG the gateway can read") from None
    return rgba.getchannel("A")


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
