"""The OpenAI emulator validates the gpt-image parameters as the real API does, and can retire models."""

from __future__ import annotations

import json

import pytest

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
