"""Stability's answers to OpenAI's edits and variations: inpainting and image-to-image on v2beta.

| OpenAI | Stability v2beta (POST) |
|---|---|
| edit with a mask, or of an image whose alpha marks the area | ``/v2beta/stable-image/edit/inpaint`` |
| edit without a mask, of an opaque image | ``/v2beta/stable-image/generate/sd3``, image-to-image, strength 0.65 |
| variation | the same image-to-image call, strength 0.35, a stand-in prompt (1) |

The mask is converted, never passed on as it came: OpenAI marks the area to repaint with alpha 0,
Stability reads luminance, white = repaint (``kit.masks``). Without a mask Stability reads the
image's own alpha channel as OpenAI does, so the image goes as it is. The answer has the input
image's size, so a ``size`` the caller asked for is noted as a translation (refused in strict mode).
Stability edits one image: several are refused naming ``image``, and the fallback moves on. ``n``
images are ``n`` concurrent calls, as for generations. Image-to-image runs on the caller's sd3 model
when it named one, else ``sd3.5-large``.

(1) A variation has no prompt and Stability requires one; "a variation of this image" stands in,
noted as a translation and refused in strict mode.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.image_inputs import InputImage, Operation
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.kit.transport import FilePart
from imagegateway_server.providers.stability import PROVIDER

INPAINT_PATH = "/v2beta/stable-image/edit/inpaint"
IMAGE_TO_IMAGE_PATH = "/v2beta/stable-image/generate/sd3"
DEFAULT_IMAGE_TO_IMAGE_MODEL = "sd3.5-large"
EDIT_STRENGTH = "0.65"
VARIATION_STRENGTH = "0.35"
VARIATION_PROMPT = "a variation of this image"
_STRICT = "strict mode refuses to translate it"

# What the edit endpoints take besides the image, mask and prompt.
_ACCEPTED = frozenset({"model", "n", "size", "seed", "negative_prompt", "style_preset", "output_format", "user"})
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


def uses_inpaint(request: ImageRequest) -> bool:
    """An edit with a mask, or of an image whose alpha channel marks the area, is an inpaint."""
    return request.operation is Operation.EDIT and (request.mask is not None or request.images[0].has_alpha)


def check_edit(request: ImageRequest, *, strict: bool) -> tuple[str, ...]:
    """Refuses what an edit or variation cannot send (naming it); returns the translations it makes."""
    if len(request.images) != 1:
        raise refuse_parameter(PROVIDER, "image", f"Stability edits one image, got {len(request.images)}")
    for name in request.set_fields():
        if name not in _ACCEPTED:
            raise refuse_parameter(
                PROVIDER, name, "is not supported by Stability's edit endpoints", "unknown_parameter"
            )
    notes: list[str] = []
    image = request.images[0]
    if request.size not in (None, "auto", f"{image.width}x{image.height}"):
        if strict:
            raise refuse_parameter(PROVIDER, "size", f"the edit has the input image's size; {_STRICT}")
        notes.append(f"size={request.size}->{image.width}x{image.height} (the input image's size)")
    if request.operation is Operation.VARIATION:
        if strict:
            raise refuse_parameter(PROVIDER, "prompt", f"Stability needs a prompt for a variation; {_STRICT}")
        notes.append(f"prompt=(none)->{VARIATION_PROMPT!r}")
    return tuple(notes)


def image_to_image_model(model: str) -> str:
    """The sd3 model an image-to-image call runs on."""
    name = model.lower()
    return name if name.startswith(("sd3-", "sd3.")) else DEFAULT_IMAGE_TO_IMAGE_MODEL


def _file(name: str, image: InputImage) -> FilePart:
    return FilePart(
        name, image.filename or f"{name}.{_EXTENSIONS.get(image.mime_type, 'png')}", image.data, image.mime_type
    )


def edit_forms(
    request: ImageRequest, model: str, luminance_mask: bytes | None
) -> tuple[str, list[tuple[list[tuple[str, str]], list[FilePart]]]]:
    """The path and one (fields, files) form per image to make."""
    inpaint = uses_inpaint(request)
    path = INPAINT_PATH if inpaint else IMAGE_TO_IMAGE_PATH
    files = [_file("image", request.images[0])]
    if luminance_mask is not None:
        files.append(FilePart("mask", "mask.png", luminance_mask, "image/png"))
    forms = []
    for index in range(request.n):
        seed = request.seed + index if request.seed else None
        fields: list[tuple[str, Any]] = [
            ("prompt", request.prompt or VARIATION_PROMPT),
            ("negative_prompt", request.negative_prompt),
            ("seed", seed),
            ("output_format", request.output_format),
            ("style_preset", request.style_preset),
        ]
        if not inpaint:
            strength = VARIATION_STRENGTH if request.operation is Operation.VARIATION else EDIT_STRENGTH
            fields += [("mode", "image-to-image"), ("model", image_to_image_model(model)), ("strength", strength)]
        forms.append(([(name, str(value)) for name, value in fields if value is not None], files))
    return path, forms
