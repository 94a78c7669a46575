"""Cost as the provider bills it: tokens from usage for token-priced models, per image by what was sent."""

from __future__ import annotations

import dataclasses

import pytest

from imagegateway_server.core.pricing import TokenPrices, load_price_table, parse_price_table, usage_counts
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import RoutedResult
from imagegateway_server.providers.kit.openai_image_models import model_spec
from imagegateway_server.providers.kit.translation import translate
from tests.unit.test_costs import routed

BUILT_IN = load_price_table()

USAGE = {
    "input_tokens": 120,
    "input_tokens_details": {"text_tokens": 20, "image_tokens": 100},
    "output_tokens": 4200,
    "output_tokens_details": {"image_tokens": 4160, "text_tokens": 40},
    "total_tokens": 4320,
}


def with_result(served: RoutedResult, **changes: object) -> RoutedResult:
    return dataclasses.replace(served, result=dataclasses.replace(served.result, **changes))


def test_a_token_priced_model_is_priced_from_usage_each_kind_at_its_rate() -> None:
    served = with_result(routed("openai", "gpt-image-1.5", [(1024, 1024)]), usage=USAGE)
    # gpt-image-1.5: text in $5, image in $8, image out $32, text out $10 per million tokens.
    expected = (20 * 5 + 100 * 8 + 4160 * 32 + 40 * 10) / 1_000_000
    assert BUILT_IN.success_cost(served, ImageRequest(prompt="x")) == pytest.approx(expected)


def test_usage_without_details_counts_input_as_text_and_output_as_image() -> None:
    assert usage_counts({"input_tokens": 7, "output_tokens": 9}) == {
        "text_input": 7,
        "image_input": 0,
        "image_output": 9,
        "text_output": 0,
    }
    rates = TokenPrices(text_input=1_000_000, image_input=0, image_output=2_000_000, text_output=0)
    assert rates.cost({"input_tokens": 7, "output_tokens": 9, "junk": "x"}) == 7 + 18


def test_a_dated_snapshot_is_priced_as_its_model() -> None:
    served = with_result(routed("openai", "gpt-image-2-2026-04-21", [(1024, 1024)]), usage=USAGE)
    expected = (20 * 5 + 100 * 8 + 4160 * 30 + 40 * 10) / 1_000_000
    assert BUILT_IN.success_cost(served, ImageRequest(prompt="x")) == pytest.approx(expected)


def test_a_token_priced_model_without_usage_falls_back_to_its_per_image_price() -> None:
    served = with_result(routed("openai", "gpt-image-1.5", [(1024, 1024)]), sent_size="1024x1024", sent_quality="low")
    assert BUILT_IN.success_cost(served, ImageRequest(prompt="x")) == pytest.approx(0.009)


def test_a_smaller_image_than_asked_is_billed_at_the_size_sent() -> None:
    request = ImageRequest(prompt="x", model="dall-e-3", size="1024x1024", quality="hd")
    plan = translate(request, provider="openai", model="dall-e-3", spec_of=model_spec)
    served = routed("openai", "dall-e-3", [(64, 64)])
    served = dataclasses.replace(served, result=plan.finish(served.result))
    assert served.result.sent_size == "1024x1024" and served.result.sent_quality == "hd"
    assert BUILT_IN.success_cost(served, request) == pytest.approx(0.08)


def test_a_translated_size_is_billed_as_translated() -> None:
    request = ImageRequest(prompt="x", size="1536x1024")  # not a dall-e-3 size: sent as 1792x1024
    plan = translate(request, provider="openai", model="dall-e-3", spec_of=model_spec)
    served = routed("openai", "dall-e-3", [(64, 64)])
    served = dataclasses.replace(served, result=plan.finish(served.result))
    assert served.result.sent_size == "1792x1024"
    assert BUILT_IN.success_cost(served, request) == pytest.approx(0.08)


def test_without_a_size_sent_the_models_default_size_is_billed() -> None:
    plan = translate(ImageRequest(prompt="x"), provider="openai", model="dall-e-3", spec_of=model_spec)
    served = routed("openai", "dall-e-3", [(64, 64)])
    served = dataclasses.replace(served, result=plan.finish(served.result))
    assert served.result.sent_size == "1024x1024"
    assert BUILT_IN.success_cost(served, ImageRequest(prompt="x")) == pytest.approx(0.04)


def test_token_prices_are_checked_when_the_table_is_loaded() -> None:
    def table(tokens: object) -> dict[str, object]:
        return {"version": "t", "providers": {"openai": {"models": {"m": {"token_prices": tokens}}}}}

    good = {"text_input": 1, "image_input": 2, "image_output": 3, "text_output": 4}
    assert parse_price_table(table(good)).token_prices("openai", "M") == TokenPrices(1, 2, 3, 4)
    with pytest.raises(ValueError, match=r"token_prices.image_output: must be a non-negative"):
        parse_price_table(table({**good, "image_output": -1}))
    with pytest.raises(ValueError, match=r"token_prices.audio_input: unknown token kind"):
        parse_price_table(table({**good, "audio_input": 1}))
    with pytest.raises(ValueError, match="must price at least one quality"):
        parse_price_table({"version": "t", "providers": {"openai": {"models": {"m": {}}}}})
