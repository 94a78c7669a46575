"""Size rules and nearest-size mapping: property tests over every model's rule, plus the table's rows."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagegateway_server.providers.kit import sizes
from imagegateway_server.providers.kit.sizes import SizeRule, area_distance, ratio_distance
from imagegateway_server.providers.openai import models as openai_models
from imagegateway_server.providers.stability import models as stability_models

PIXEL_RULES = {
    "dall-e-2": openai_models.DALL_E_2_SIZES,
    "dall-e-3": openai_models.DALL_E_3_SIZES,
    "gpt-image": openai_models.GPT_IMAGE_SIZES,
    "gpt-image-2": openai_models.GPT_IMAGE_2_SIZES,
    "sdxl": stability_models.SDXL_SIZE_RULE,
    "sd-v1-6": stability_models.SD_V1_6_SIZE_RULE,
}
ALL_SIZES = {name: list(rule.sizes()) for name, rule in PIXEL_RULES.items()}

rule_names = st.sampled_from(sorted(PIXEL_RULES))
sides = st.integers(min_value=1, max_value=10_000)


def gpt_image_2_allows(width: int, height: int) -> bool:
    """OpenAI's gpt-image-2 size rule (the emulator's too): divisible by 16, aspect within 3:1, at most 3840x2160."""
    return (
        width % 16 == 0
        and height % 16 == 0
        and max(width, height) <= 3 * min(width, height)
        and max(width, height) <= 3840
        and min(width, height) <= 2160
    )


def ratio_is_no_farther(a: tuple[int, int], b: tuple[int, int], target: tuple[int, int]) -> bool:
    return ratio_distance(*a, *target) <= ratio_distance(*b, *target)


# -- properties ---------------------------------------------------------------------------------------


@given(rule_names, sides, sides)
@settings(max_examples=300, deadline=None)
def test_the_nearest_size_is_always_one_the_model_makes(name: str, width: int, height: int) -> None:
    rule = PIXEL_RULES[name]
    assert rule.allows(*rule.nearest(width, height))


@given(rule_names, st.data())
@settings(deadline=None)
def test_an_allowed_size_maps_to_itself(name: str, data: st.DataObject) -> None:
    allowed = data.draw(st.sampled_from(ALL_SIZES[name]))
    assert PIXEL_RULES[name].nearest(*allowed) == allowed


@given(rule_names, sides, sides)
@settings(max_examples=150, deadline=None)
def test_no_allowed_size_has_a_nearer_aspect_ratio_and_ties_go_to_the_nearest_area(
    name: str, width: int, height: int
) -> None:
    chosen = PIXEL_RULES[name].nearest(width, height)
    best_ratio = ratio_distance(*chosen, width, height)
    tied = []
    for candidate in ALL_SIZES[name]:
        distance = ratio_distance(*candidate, width, height)
        assert best_ratio <= distance, f"{candidate} is nearer in aspect ratio than {chosen}"
        if distance == best_ratio:
            tied.append(candidate)
    best_area = area_distance(*chosen, width, height)
    assert all(best_area <= area_distance(*c, width, height) for c in tied)


@given(sides, sides)
@settings(max_examples=200)
def test_gpt_image_2_allows_exactly_what_openai_documents(width: int, height: int) -> None:
    assert openai_models.GPT_IMAGE_2_SIZES.allows(width, height) == gpt_image_2_allows(width, height)


def test_the_lattice_rules_enumerate_exactly_their_constraints() -> None:
    v1_6 = {
        (w, h)
        for w in range(1, 1600)
        for h in range(1, 1600)
        if w % 64 == 0 and h % 64 == 0 and 320 <= w <= 1536 and 320 <= h <= 1536
    }
    assert set(ALL_SIZES["sd-v1-6"]) == v1_6
    assert all(gpt_image_2_allows(w, h) for w, h in ALL_SIZES["gpt-image-2"])
    assert len(ALL_SIZES["gpt-image-2"]) == len(set(ALL_SIZES["gpt-image-2"]))


@given(sides, sides)
def test_the_nearest_aspect_ratio_is_allowed_minimal_and_flagged_exact_only_when_equal(width: int, height: int) -> None:
    rule = stability_models.ASPECT_RATIO_RULE
    ratio, exact = rule.nearest(width, height)
    assert rule.allows(ratio)
    distances = {r: ratio_distance(*sizes.parse_ratio(r), width, height) for r in rule.ratios}
    assert distances[ratio] == min(distances.values())
    assert exact == (distances[ratio] == 1)


@given(st.sampled_from(stability_models.ASPECT_RATIO_RULE.ratios), st.integers(min_value=1, max_value=300))
def test_a_size_of_an_allowed_ratio_maps_to_it_exactly(ratio: str, scale: int) -> None:
    w, h = sizes.parse_ratio(ratio)
    assert stability_models.ASPECT_RATIO_RULE.nearest(w * scale, h * scale) == (ratio, True)


@given(sides, sides, sides, sides)
def test_ratio_distance_is_symmetric_and_one_only_for_equal_ratios(a: int, b: int, c: int, d: int) -> None:
    assert ratio_distance(a, b, c, d) == ratio_distance(c, d, a, b) >= 1
    assert (ratio_distance(a, b, c, d) == 1) == (Fraction(a, b) == Fraction(c, d))


# -- table rows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "asked", "expected"),
    [
        ("sd-v1-6", (1792, 1024), (1344, 768)),  # 7:4 exactly, the largest that fits 1536
        ("sd-v1-6", (1024, 1024), (1024, 1024)),
        ("sd-v1-6", (256, 256), (320, 320)),
        ("sd-v1-6", (1000, 1000), (1024, 1024)),
        ("sd-v1-6", (4096, 1024), (1536, 384)),  # 4:1 exactly
        ("sdxl", (1792, 1024), (1344, 768)),
        ("sdxl", (512, 512), (1024, 1024)),
        ("sdxl", (1024, 1792), (768, 1344)),
        ("dall-e-2", (1792, 1024), (1024, 1024)),
        ("dall-e-2", (300, 300), (256, 256)),
        ("dall-e-2", (400, 400), (512, 512)),
        ("dall-e-3", (1792, 1024), (1792, 1024)),
        ("dall-e-3", (1536, 1024), (1792, 1024)),
        ("dall-e-3", (512, 512), (1024, 1024)),
        ("gpt-image", (1792, 1024), (1536, 1024)),
        ("gpt-image", (256, 256), (1024, 1024)),
        ("gpt-image", (1024, 1792), (1024, 1536)),
        ("gpt-image-2", (1792, 1024), (1792, 1024)),
        ("gpt-image-2", (1000, 1000), (1008, 1008)),
        ("gpt-image-2", (4096, 4096), (2160, 2160)),
        ("gpt-image-2", (9000, 10), (528, 176)),  # clamped to 3:1, then the area nearest 90,000 px
    ],
)
def test_nearest_size_rows(name: str, asked: tuple[int, int], expected: tuple[int, int]) -> None:
    assert PIXEL_RULES[name].nearest(*asked) == expected


@pytest.mark.parametrize(
    ("asked", "ratio", "exact"),
    [
        ((1024, 1024), "1:1", True),
        ((1792, 1024), "16:9", False),
        ((1344, 768), "16:9", False),  # 7:4 is not 16:9
        ((1920, 1080), "16:9", True),
        ((1024, 1536), "2:3", True),
        ((2520, 1080), "21:9", True),
    ],
)
def test_nearest_aspect_ratio_rows(asked: tuple[int, int], ratio: str, exact: bool) -> None:
    assert stability_models.ASPECT_RATIO_RULE.nearest(*asked) == (ratio, exact)


def test_auto_is_allowed_only_by_the_gpt_image_rules() -> None:
    assert [name for name, rule in PIXEL_RULES.items() if rule.auto] == ["gpt-image", "gpt-image-2"]


@pytest.mark.parametrize("bad", [(0, 10), (10, 0), (-5, 5)])
def test_a_size_that_is_not_positive_is_a_value_error(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        stability_models.SD_V1_6_SIZE_RULE.nearest(*bad)


def test_rules_hash_by_identity_so_cached_lookups_stay_cheap() -> None:
    rule = sizes.fixed_sizes([(10, 10)])
    assert isinstance(rule, SizeRule)
    assert rule != sizes.fixed_sizes([(10, 10)])
    assert hash(rule) == object.__hash__(rule)
