"""The OpenAI emulator validates the gpt-image parameters, edits and variations as the real API does, and can
retire models."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from tests.emulators.forms import FormFile
from tests.emulators.openai_edit_rules import parse_edit, parse_variation
from tests.emulators.openai_rules import RETIRED_MODELS, Generation, OpenAIError, parse_generation


def parse(retired: frozenset[str] = frozenset(), **body: object) -> Generation:
    return parse_generation(json.dumps({"prompt": "x", **body}).encode(), retired)


def test_gpt_image_2_5_takes_xhigh_and_max_and_gpt_image_2_does_not() -> None:
    assert parse(model="gpt-image-2.5-flare", quality="max").quality == "max"
    assert parse(model="gpt-image-2.5-sunburst-2026-09-08", quality="xhigh").quality == "xhigh"
    with pytest.raises(OpenAIError) as refused:
        parse(model="gpt-image-2", quality="xhigh")
    assert refused.value.param == "quality" and refused.value.code == "invalid_value"


def test_safety_identifier_is_accepted_and_must_be_a_string() -> None:
    parse(model="gpt-image-1.5", safety_identifier="user-1")
    with pytest.raises(OpenAIError) as refused:
        parse(model="gpt-image-1.5", safety_identifier=7)
    assert refused.value.param == "safety_identifier" and refused.value.code == "invalid_type"


def test_gpt_image_models_refuse_response_format_and_edit_parameters() -> None:
    for name, value in (("response_format", "url"), ("input_fidelity", "high"), ("style", "vivid")):
        with pytest.raises(OpenAIError) as refused:
            parse(model="gpt-image-1.5", **{name: value})
        assert refused.value.code == "unknown_parameter" and refused.value.param == name


@pytest.mark.parametrize("model", sorted(RETIRED_MODELS))
def test_retired_models_answer_model_not_found_when_retired(model: str) -> None:
    parse(model=model)  # served while the switch is off
    with pytest.raises(OpenAIError) as gone:
        parse(RETIRED_MODELS, model=model)
    assert (gone.value.status, gone.value.code) == (404, "model_not_found")
    assert gone.value.envelope()["error"]["type"] == "invalid_request_error"


# -- edits and variations (multipart) ------------------------------------------------------------------


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def _files(*parts: tuple[str, bytes]) -> list[tuple[str, FormFile]]:
    return [(name, FormFile(f"{index}.png", "image/png", data)) for index, (name, data) in enumerate(parts)]


def _edit_error(fields: dict[str, str], files: list[tuple[str, FormFile]]) -> OpenAIError:
    with pytest.raises(OpenAIError) as caught:
        parse_edit(fields, files, frozenset())
    return caught.value


def test_emulated_edit_accepts_sixteen_gpt_image_inputs_and_a_matching_alpha_mask() -> None:
    images = [("image[]", _png(32, 32)) for _ in range(16)]
    upload = parse_edit(
        {"prompt": "x", "model": "gpt-image-1.5"}, _files(*images, ("mask", _png(32, 32, "RGBA"))), frozenset()
    )
    assert len(upload.images) == 16 and upload.mask is not None and upload.generation.model == "gpt-image-1.5"


@pytest.mark.parametrize(
    ("fields", "parts", "param"),
    [
        ({"prompt": "x", "model": "gpt-image-1.5"}, [("image[]", _png(8, 8))] * 17, "image"),
        ({"prompt": "x", "model": "gpt-image-1.5"}, [("image", _png(32, 32)), ("mask", _png(32, 32))], "mask"),
        ({"prompt": "x", "model": "gpt-image-1.5"}, [("image", _png(32, 32)), ("mask", _png(16, 16, "RGBA"))], "mask"),
        ({"prompt": "x"}, [("image", _png(32, 16))], "image"),  # dall-e-2: square only
        ({"prompt": "x"}, [("image", _png(8, 8)), ("image", _png(8, 8))], "image"),  # dall-e-2: one image
        ({"prompt": "x", "model": "dall-e-3"}, [("image", _png(8, 8))], "model"),
        ({"model": "gpt-image-1.5"}, [("image", _png(8, 8))], "prompt"),
        ({"prompt": "x", "model": "gpt-image-1.5", "moderation": "low"}, [("image", _png(8, 8))], "moderation"),
    ],
)
def test_emulated_edit_refuses_what_openai_refuses(
    fields: dict[str, str], parts: list[tuple[str, bytes]], param: str
) -> None:
    error = _edit_error(fields, _files(*parts))
    assert error.status == 400 and error.param == param


def test_emulated_variation_is_dall_e_2_only_with_one_square_png() -> None:
    assert parse_variation({"n": "2"}, _files(("image", _png(16, 16))), frozenset()).generation.n == 2
    for fields, parts, param in (
        ({"model": "gpt-image-1.5"}, [("image", _png(16, 16))], "model"),
        ({}, [("image", _png(16, 8))], "image"),
        ({"prompt": "x"}, [("image", _png(16, 16))], "prompt"),
    ):
        with pytest.raises(OpenAIError) as caught:
            parse_variation(fields, _files(*parts), frozenset())
        assert caught.value.param == param
    with pytest.raises(OpenAIError) as retired:
        parse_variation({}, _files(("image", _png(16, 16))), frozenset({"dall-e-2"}))
    assert retired.value.status == 404
