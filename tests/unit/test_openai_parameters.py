"""OpenAI's gpt-image parameters carried in ``extra``: read from JSON, forms and Structs, and checked at the edge."""

from __future__ import annotations

from typing import Any

import pytest

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.image_info import sniff_image
from imagegateway_server.domain.openai_parameters import openai_extras
from imagegateway_server.domain.request import ImageRequest, validate_request


def test_a_form_spells_svg_as_bracketed_fields_and_numbers_as_text() -> None:
    extra = openai_extras(
        {"svg[model]": "svg-author", "svg[reasoning][effort]": "low", "frame_count": "4", "other": "kept"}
    )
    assert dict(extra) == {
        "svg": {"model": "svg-author", "reasoning": {"effort": "low"}},
        "frame_count": 4,
        "other": "kept",
    }


def test_a_structs_whole_numbers_become_integers() -> None:
    extra = openai_extras({"frame_count": 3.0, "frame_duration_ms": 90.0})
    assert extra == {"frame_count": 3, "frame_duration_ms": 90}
    assert all(type(value) is int for value in extra.values())


def test_extras_without_openai_parameters_are_left_as_they_are() -> None:
    extra = {"seed_mode": "x"}
    assert openai_extras(extra) is extra


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"complexity": "extreme"}, "complexity"),
        ({"complexity": 3}, "complexity"),
        ({"frame_count": 1}, "frame_count"),
        ({"frame_count": 17}, "frame_count"),
        ({"frame_count": "many"}, "frame_count"),
        ({"frame_count": "²"}, "frame_count"),  # a digit to str.isdigit(), not to int()
        ({"frame_count": "--5"}, "frame_count"),
        ({"frame_count": True}, "frame_count"),
        ({"frame_duration_ms": -10}, "frame_duration_ms"),
        ({"svg": "svg-author"}, "svg"),
        ({"svg": {"author": "x"}}, "svg.author"),
        ({"svg": {"model": ""}}, "svg.model"),
        ({"svg": {"reasoning": {"effort": ["high"]}}}, "svg.reasoning.effort"),
        ({"svg": {"reasoning": {"effort": "huge"}}}, "svg.reasoning.effort"),
        ({"svg": {"reasoning": {"budget": 3}}}, "svg.reasoning"),
        ({"svg": {"model": "a"}, "svg[model]": "b"}, "svg"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        openai_extras(extra)
    assert refused.value.param == param


@pytest.mark.parametrize(("name", "value"), [("moderation", "strict"), ("input_fidelity", "medium")])
def test_openai_only_values_are_checked_at_the_edge(name: str, value: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_request(ImageRequest(prompt="x", **{name: value}))
    assert refused.value.param == name


def test_an_svg_answer_is_recognised_as_an_image_of_unknown_pixel_size() -> None:
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    assert sniff_image(svg) == ("image/svg+xml", 0, 0)
    assert sniff_image(b"<html><svg/></html>")[0] == "application/octet-stream"


@pytest.mark.parametrize("size", ["²x4", "4x²", "\u0661\u0660\u0662\u0664x\u0661\u0660\u0662\u0664"])
def test_a_size_in_digits_other_than_ascii_is_refused_naming_it(size: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_request(ImageRequest(prompt="a hat", size=size))
    assert refused.value.param == "size"


@pytest.mark.parametrize("ref", ["cfg@²", "cfg@¹²"])
def test_a_config_version_in_digits_other_than_ascii_is_refused_naming_it(ref: str) -> None:
    from imagegateway_server.routing.config_service import split_config_ref

    with pytest.raises(InvalidArgument) as refused:
        split_config_ref(ref)
    assert refused.value.param == "config_id"


def test_a_huge_number_is_refused_without_being_echoed() -> None:
    with pytest.raises(InvalidArgument) as caught:
        openai_extras({"frame_count": 10**300})
    assert caught.value.param == "frame_count" and len(str(caught.value)) < 200
