"""Body rules of Bedrock's image models, checked as Bedrock checks them, and the errors it answers with.

Nova Canvas and Titan v2 take ``TEXT_IMAGE`` bodies (``textToImageParams``, ``imageGenerationConfig``);
both take ``IMAGE_VARIATION`` (``imageVariationParams``: 1-5 ``images``, optional ``text``,
``negativeText``, ``similarityStrength`` 0.2-1.0) and ``INPAINTING`` (``inPaintingParams``: ``image``,
exactly one of ``maskImage``/``maskPrompt``, optional ``text``, ``negativeText`` and the boolean
``returnMask``). Input images are base64 PNG or JPEG without transparent pixels; a mask is the
image's size and pure black (the area to change) and white only (AWS's "Image generation and
editing" page for Nova Canvas; "Amazon Titan Image Generator G1 models" for Titan: "(0 0 0) is a
pixel inside the mask"). Titan edits images up to 1408 pixels on the longer side (inpainting and
variation alike), and an inpainting answers with the input image's size.
Stability's models on Bedrock take flat bodies (``prompt``, ``aspect_ratio``, ...). Bedrock checks
bodies against a JSON schema and refuses an unknown key, a value out of range or of the wrong type
with a 400 ``ValidationException`` ("Malformed input request: ..."). Limits are AWS's documented
ones (Nova: sides multiples of 16 from 320 to 4096, aspect within 1:4 and 4:1, fewer than 4,194,304
pixels; Titan: its fixed list of sizes).
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

NOVA_CANVAS = "amazon.nova-canvas-v1:0"
TITAN_V2 = "amazon.titan-image-generator-v2:0"
SD3_5_LARGE = "stability.sd3-5-large-v1:0"
STABILITY_MODELS = frozenset(
    {
        SD3_5_LARGE,
        "stability.stable-image-core-v1:1",
        "stability.stable-image-ultra-v1:1",
        "stability.stable-image-core-v1:0",
        "stability.stable-image-ultra-v1:0",
    }
)
MODELS = frozenset({NOVA_CANVAS, TITAN_V2, *STABILITY_MODELS})

TITAN_SIZES = frozenset(
    {
        (1024, 1024), (768, 768), (512, 512), (768, 1152), (384, 576), (1152, 768), (576, 384),
        (768, 1280), (384, 640), (1280, 768), (640, 384), (896, 1152), (448, 576), (1152, 896),
        (576, 448), (768, 1408), (384, 704), (1408, 768), (704, 384), (640, 1408), (320, 704),
        (1408, 640), (704, 320), (1152, 640), (1173, 640),
    }
)  # fmt: skip
NOVA_STYLES = frozenset(
    {
        "3D_ANIMATED_FAMILY_FILM",
        "DESIGN_SKETCH",
        "FLAT_VECTOR_ILLUSTRATION",
        "GRAPHIC_NOVEL_ILLUSTRATION",
        "MAXIMALISM",
        "MIDCENTURY_RETRO",
        "PHOTOREALISM",
        "SOFT_DIGITAL_PAINTING",
    }
)
# Pixel sizes the emulator makes for each Stability aspect ratio (about a megapixel, as Stability does).
STABILITY_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "2:3": (832, 1216),
    "3:2": (1216, 832),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}
STABILITY_FORMATS = ("png", "jpeg", "webp")


class BedrockError(Exception):
    """An error answer: HTTP status, AWS error type (``x-amzn-ErrorType``) and message."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def validation(message: str) -> BedrockError:
    return BedrockError(400, "ValidationException", message)


def malformed(detail: str) -> BedrockError:
    return validation(f"Malformed input request: {detail}, please reformat your input and try again.")


@dataclass(frozen=True)
class Generation:
    """What a valid body asks for: the prompt, how many images, their size or ratio, format and seed."""

    model: str
    prompt: str
    count: int
    width: int
    height: int
    output_format: str
    seed: int | None


def parse_body(model: str, body: dict[str, Any] | None) -> Generation:
    """Checks a body for ``model`` as Bedrock does; raises BedrockError."""
    if body is None:
        raise malformed("#: expected type: JSONObject")
    if model in STABILITY_MODELS:
        return _stability(model, body)
    return _amazon(model, body)


def _keys(where: str, body: dict[str, Any], allowed: set[str]) -> None:
    for key in body:
        if key not in allowed:
            raise malformed(f"{where}: extraneous key [{key}] is not permitted")


def _text(where: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise malformed(f"{where}: expected type: String, found: {type(value).__name__}")
    if not 1 <= len(value) <= limit:
        raise malformed(f"{where}: expected maxLength: {limit}, actual: {len(value)}")
    return value


def _integer(where: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(f"{where}: expected type: Integer, found: {type(value).__name__}")
    if not low <= value <= high:
        raise malformed(f"{where}: {value} is not in the range {low} to {high}")
    return value


def _amazon(model: str, body: dict[str, Any]) -> Generation:
    nova = model == NOVA_CANVAS
    limit = 1024 if nova else 512
    task = body.get("taskType")
    tasks = {
        "TEXT_IMAGE": "textToImageParams",
        "IMAGE_VARIATION": "imageVariationParams",
        "INPAINTING": "inPaintingParams",
    }
    if task not in tasks:
        raise malformed(f"#/taskType: {task} is not a valid enum value")
    params_key = tasks[task]
    _keys("#", body, {"taskType", params_key, "imageGenerationConfig"})
    params = body.get(params_key)
    if not isinstance(params, dict):
        raise malformed(f"#: required key [{params_key}] not found")
    where = f"#/{params_key}"
    input_size: tuple[int, int] | None = None
    if task == "TEXT_IMAGE":
        _keys(where, params, {"text", "negativeText", "style"} if nova else {"text", "negativeText"})
        prompt = _text(f"{where}/text", params.get("text"), limit)
        if "style" in params and params["style"] not in NOVA_STYLES:
            raise malformed(f"{where}/style: {params['style']} is not a valid enum value")
    elif task == "IMAGE_VARIATION":
        _keys(where, params, {"images", "text", "negativeText", "similarityStrength"})
        images = params.get("images")
        if not isinstance(images, list) or not 1 <= len(images) <= 5:
            raise malformed(f"{where}/images: expected 1 to 5 items")
        for index, item in enumerate(images):
            size = input_image(f"{where}/images/{index}", item)
            if not nova:
                _titan_input_size(*size)
        prompt = _text(f"{where}/text", params["text"], limit) if "text" in params else ""
        similarity = params.get("similarityStrength", 0.7)
        if isinstance(similarity, bool) or not isinstance(similarity, int | float) or not 0.2 <= similarity <= 1.0:
            raise malformed(f"{where}/similarityStrength: {similarity} is not in the range 0.2 to 1.0")
    else:
        _keys(where, params, {"image", "maskImage", "maskPrompt", "text", "negativeText", "returnMask"})
        if "image" not in params:
            raise malformed(f"{where}: required key [image] not found")
        input_size = input_image(f"{where}/image", params["image"])
        if not nova:
            _titan_input_size(*input_size)
        if "returnMask" in params and not isinstance(params["returnMask"], bool):
            raise malformed(f"{where}/returnMask: expected type: Boolean, found: {type(params['returnMask']).__name__}")
        if ("maskImage" in params) == ("maskPrompt" in params):
            raise malformed(f"{where}: exactly one of [maskImage, maskPrompt] is required")
        if "maskImage" in params:
            mask_size = black_and_white_mask(f"{where}/maskImage", params["maskImage"])
            if mask_size != input_size:
                raise validation("The mask image must have the same dimensions as the input image.")
        else:
            _text(f"{where}/maskPrompt", params["maskPrompt"], limit)
        prompt = _text(f"{where}/text", params["text"], limit) if "text" in params else ""
    if "negativeText" in params:
        _text(f"{where}/negativeText", params["negativeText"], limit)
    config = body.get("imageGenerationConfig", {})
    if not isinstance(config, dict):
        raise malformed("#/imageGenerationConfig: expected type: JSONObject")
    _keys("#/imageGenerationConfig", config, {"numberOfImages", "width", "height", "quality", "cfgScale", "seed"})
    count = _integer("#/imageGenerationConfig/numberOfImages", config.get("numberOfImages", 1), 1, 5)
    width = _integer("#/imageGenerationConfig/width", config.get("width", 1024), 1, 4096)
    height = _integer("#/imageGenerationConfig/height", config.get("height", 1024), 1, 4096)
    if config.get("quality", "standard") not in ("standard", "premium"):
        raise malformed(f"#/imageGenerationConfig/quality: {config['quality']} is not a valid enum value")
    cfg = config.get("cfgScale", 6.5 if nova else 8.0)
    if isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 1.1 <= cfg <= 10.0:
        raise malformed(f"#/imageGenerationConfig/cfgScale: {cfg} is not in the range 1.1 to 10.0")
    seed = config.get("seed")
    if seed is not None:
        _integer("#/imageGenerationConfig/seed", seed, 0, 858_993_459 if nova else 2_147_483_646)
    if input_size is not None:
        # An inpainting answers with the input image's size.
        width, height = input_size
    elif nova:
        _nova_size(width, height)
    elif (width, height) not in TITAN_SIZES:
        raise validation(f"The provided size {width}x{height} is not supported by this model.")
    return Generation(model, prompt, count, width, height, "png", seed)


def _decoded(where: str, value: Any) -> Image.Image:
    if not isinstance(value, str):
        raise malformed(f"{where}: expected type: String, found: {type(value).__name__}")
    try:
        data = base64.b64decode(value, validate=True)
        image = Image.open(io.BytesIO(data))
        image.load()
    except (binascii.Error, ValueError):
        raise validation(f"{where}: the image is not valid base64.") from None
    except (UnidentifiedImageError, OSError):
        raise validation("Unable to read the input image: it must be a PNG or JPEG image.") from None
    if image.format not in ("PNG", "JPEG"):
        raise validation(f"The input image format {image.format} is not supported: use PNG or JPEG.")
    return image


def input_image(where: str, value: Any) -> tuple[int, int]:
    """An input image's size; refuses one that is not base64 PNG/JPEG or that has transparent pixels."""
    image = _decoded(where, value)
    if "A" in image.getbands() or "transparency" in image.info:
        lowest, _ = image.convert("RGBA").getchannel("A").getextrema()
        if lowest < 255:
            raise validation("The input image must not contain transparent or semi-transparent pixels.")
    return image.size


def black_and_white_mask(where: str, value: Any) -> tuple[int, int]:
    """A mask image's size; refuses one with a pixel that is neither pure black nor pure white."""
    image = _decoded(where, value).convert("RGB")
    colours = image.getcolors(maxcolors=4) or [(0, (1, 1, 1))]
    if any(colour not in ((0, 0, 0), (255, 255, 255)) for _, colour in colours):
        raise validation("The mask image must contain only pure black and pure white pixels.")
    if all(colour != (0, 0, 0) for _, colour in colours):
        raise validation("The mask image must mark an area to inpaint in black.")
    return image.size


def _titan_input_size(width: int, height: int) -> None:
    if max(width, height) > 1408:
        raise validation(
            f"The input image dimensions {width}x{height} are not supported: "
            "the longer side must be at most 1408 pixels."
        )


def _nova_size(width: int, height: int) -> None:
    if not all(320 <= side <= 4096 and side % 16 == 0 for side in (width, height)):
        raise validation("Image width and height must be between 320 and 4096 pixels and divisible by 16.")
    if max(width, height) > 4 * min(width, height):
        raise validation("Image aspect ratio must be between 1:4 and 4:1.")
    if width * height >= 4_194_304:
        raise validation("Image pixel count must be less than 4,194,304.")


def _stability(model: str, body: dict[str, Any]) -> Generation:
    allowed = {"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format"}
    if model == SD3_5_LARGE:
        allowed.add("mode")
    _keys("#", body, allowed)
    if "prompt" not in body:
        raise malformed("#: required key [prompt] not found")
    prompt = _text("#/prompt", body["prompt"], 10_000)
    if "negative_prompt" in body:
        _text("#/negative_prompt", body["negative_prompt"], 10_000)
    if "mode" in body and body["mode"] != "text-to-image":
        raise malformed(f"#/mode: {body['mode']} is not a valid enum value")
    ratio = body.get("aspect_ratio", "1:1")
    if ratio not in STABILITY_RATIOS:
        raise malformed(f"#/aspect_ratio: {ratio} is not a valid enum value")
    fmt = body.get("output_format", "png")
    if fmt not in STABILITY_FORMATS:
        raise malformed(f"#/output_format: {fmt} is not a valid enum value")
    seed = body.get("seed")
    if seed is not None:
        _integer("#/seed", seed, 0, 4_294_967_294)
    width, height = STABILITY_RATIOS[ratio]
    return Generation(model, prompt, 1, width, height, fmt, seed)
