"""The price table: list prices per provider, model, quality and size; what a request costs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.core.pricing import (
    PriceTable,
    built_in_price_document,
    format_usd,
    load_price_table,
    parse_price_table,
)
from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import AttemptRecord, GeneratedImage, ImageResult, RoutedResult
from imagegateway_server.routing.plan import Leaf
from tests.credentials import api_key

BUILT_IN = load_price_table()


def routed(
    provider: str,
    model: str,
    sizes: list[tuple[int, int]],
    *,
    overrides: dict[str, Any] | None = None,
    attempts: tuple[AttemptRecord, ...] = (),
) -> RoutedResult:
    leaf = Leaf(
        path="config.targets[0]",
        provider=provider,
        virtual_key=None,
        credential=api_key("k"),
        custom_host=None,
        override_params=MappingProxyType(overrides or {}),
        request_timeout_ms=None,
        retry=None,
        forward_headers=(),
    )
    images = tuple(GeneratedImage(data=b"x", mime_type="image/png", width=w, height=h) for w, h in sizes)
    served = AttemptRecord(target=leaf.path, provider=provider, model=model, status_code=200, latency_ms=5)
    return RoutedResult(
        result=ImageResult(images=images, model=model, created=0),
        leaf=leaf,
        provider=provider,
        attempts=(*attempts, served),
        retry_count=0,
        fallback_used=bool(attempts),
    )


@pytest.mark.parametrize(
    ("model", "quality", "size", "usd"),
    [
        ("dall-e-3", "standard", "1024x1024", 0.04),
        ("dall-e-3", "hd", "1024x1024", 0.08),
        ("dall-e-3", "standard", "1792x1024", 0.08),
        ("dall-e-3", "hd", "1024x1792", 0.12),
        ("dall-e-3", None, None, 0.04),  # OpenAI's defaults: standard, 1024x1024
        ("dall-e-2", None, "256x256", 0.016),
        ("dall-e-2", None, "512x512", 0.018),
        ("dall-e-2", "standard", "1024x1024", 0.02),
        ("gpt-image-1", "low", "1024x1024", 0.011),
        ("gpt-image-1", "medium", "1024x1024", 0.042),
        ("gpt-image-1", "high", "1024x1024", 0.167),
        ("gpt-image-1", "high", "1536x1024", 0.25),
        ("gpt-image-1", "auto", "auto", 0.167),  # auto is priced as high, an upper bound
        ("DALL-E-3", "HD", "1024X1024", 0.08),  # case does not matter
    ],
)
def test_openai_list_prices(model: str, quality: str | None, size: str | None, usd: float) -> None:
    assert BUILT_IN.unit_price("openai", model, size, quality) == pytest.approx(usd)


@pytest.mark.parametrize(
    ("model", "usd"),
    [
        ("core", 0.03),
        ("stable-image-core", 0.03),
        ("ultra", 0.08),
        ("sd3.5-large", 0.065),
        ("sd3", 0.065),
        ("sd3.5-medium", 0.035),
        ("stable-diffusion-xl-1024-v1-0", 0.009),
        ("stable-diffusion-v1-6", 0.009),
    ],
)
def test_stability_credits_at_one_cent_each(model: str, usd: float) -> None:
    assert BUILT_IN.unit_price("stability-ai", model, "1024x1024", None) == pytest.approx(usd)


def test_the_built_in_table_is_versioned_and_knows_its_models() -> None:
    assert BUILT_IN.version
    assert {"dall-e-3", "gpt-image-1", "core", "stable-image-core"} <= BUILT_IN.models()


def test_a_dated_snapshot_is_priced_as_its_model_but_a_name_of_many_dates_is_simply_unknown() -> None:
    dated = BUILT_IN.estimate("gpt-image-1-2027-01-15", "1024x1024", "low", 1, provider="openai")
    assert dated == BUILT_IN.estimate("gpt-image-1", "1024x1024", "low", 1, provider="openai") > 0
    # A caller's model name, read one date at a time, once recursed as deep as it had dates (a 500).
    many = "gpt-image-1" + "-2020-01-01" * 5_000
    assert BUILT_IN.estimate(many, "1024x1024", "low", 1, provider="openai") == 0.0


def test_unknown_model_costs_nothing_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    table = load_price_table()
    with caplog.at_level(logging.WARNING, logger="imagegateway_server.core.pricing"):
        assert table.unit_price("openai", "dall-e-9", "1024x1024", None) == 0.0
        assert table.unit_price("openai", "dall-e-9", "1024x1024", None) == 0.0
        assert table.unit_price("nobody", "x", None, None) == 0.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].__dict__["model"] == "dall-e-9"


def test_unknown_size_of_a_known_model_costs_nothing_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    table = load_price_table()
    with caplog.at_level(logging.WARNING, logger="imagegateway_server.core.pricing"):
        assert table.unit_price("openai", "dall-e-3", "640x480", "standard") == 0.0
    assert "size" in caplog.records[0].getMessage()


def test_warnings_stop_after_a_cap_so_callers_cannot_grow_memory(caplog: pytest.LogCaptureFixture) -> None:
    table = load_price_table()
    with caplog.at_level(logging.WARNING, logger="imagegateway_server.core.pricing"):
        for i in range(1500):
            table.unit_price("openai", f"model-{i}")
    assert len(caplog.records) == 1000


def test_a_served_request_costs_n_times_the_price_of_the_size_produced() -> None:
    result = routed("openai", "dall-e-3", [(1792, 1024), (1792, 1024)])
    cost = BUILT_IN.success_cost(result, ImageRequest(prompt="p", n=2, size="1024x1024", quality="hd"))
    assert cost == pytest.approx(2 * 0.12)  # the images say 1792x1024, whatever was asked


def test_override_params_of_the_serving_target_set_the_quality() -> None:
    result = routed("openai", "dall-e-3", [(1024, 1024)], overrides={"quality": "hd"})
    assert BUILT_IN.success_cost(result, ImageRequest(prompt="p")) == pytest.approx(0.08)


def test_images_without_dimensions_are_priced_by_the_size_asked_for() -> None:
    result = routed("openai", "dall-e-2", [(0, 0)])
    assert BUILT_IN.success_cost(result, ImageRequest(prompt="p", size="512x512")) == pytest.approx(0.018)


def test_failed_attempts_are_free_unless_the_table_says_the_provider_bills_them() -> None:
    failed = AttemptRecord(
        target="config.targets[0]",
        provider="stability-ai",
        model="core",
        status_code=400,
        latency_ms=3,
        error_kind=ErrorKind.CONTENT_POLICY,
        error="filtered",
    )
    request = ImageRequest(prompt="p", n=2)
    assert BUILT_IN.failed_attempts_cost([failed], request) == 0.0
    document = built_in_price_document()
    document["providers"]["stability-ai"]["billed_error_kinds"] = ["content_policy"]
    billing = parse_price_table(document)
    assert billing.failed_attempts_cost([failed], request) == pytest.approx(2 * 0.03)
    served_after = routed("openai", "dall-e-3", [(1024, 1024)], attempts=(failed,))
    assert billing.success_cost(served_after, request) == pytest.approx(0.04 + 2 * 0.03)


def test_a_price_table_file_overrides_the_built_in_one(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {"version": "custom-1", "providers": {"openai": {"models": {"dall-e-3": {"prices": {"*": {"*": 1.5}}}}}}}
        )
    )
    table = load_price_table(path)
    assert table.version == "custom-1"
    assert table.unit_price("openai", "dall-e-3", "1024x1024", "hd") == 1.5


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ([], "the price table: must be a JSON object"),
        ({"providers": {}}, "version"),
        (
            {"version": "v", "providers": {"openai": {"models": {"m": {"prices": {"*": {"*": -1}}}}}}},
            "providers.openai.models.m.prices.*.*",
        ),
        (
            {"version": "v", "providers": {"openai": {"models": {"m": {"prices": {"*": {"*": "0.1"}}}}}}},
            "providers.openai.models.m.prices.*.*",
        ),
        (
            {"version": "v", "providers": {"openai": {"models": {"m": {"prices": {}}}}}},
            "providers.openai.models.m.prices",
        ),
        (
            {"version": "v", "providers": {"openai": {"models": {}, "model_aliases": {"a": "missing"}}}},
            "providers.openai.model_aliases.a",
        ),
        (
            {"version": "v", "providers": {"openai": {"models": {}, "billed_error_kinds": ["oops"]}}},
            "providers.openai.billed_error_kinds",
        ),
    ],
)
def test_a_bad_table_is_refused_naming_the_field(document: Any, path: str) -> None:
    with pytest.raises(ValueError, match=path.replace("*", r"\*").replace(".", r"\.")):
        parse_price_table(document)


def test_an_unreadable_or_non_json_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the price table"):
        load_price_table(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_price_table(tmp_path / "bad.json")


def test_an_empty_table_prices_everything_at_zero() -> None:
    assert PriceTable.empty().unit_price("openai", "dall-e-3") == 0.0


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_format_usd_is_plain_decimal_text_within_a_micro_dollar(amount: float) -> None:
    text = format_usd(amount)
    assert "e" not in text and not text.endswith(".")
    assert abs(float(text) - amount) <= 5e-7 + amount * 1e-15


def test_format_usd_examples() -> None:
    assert (format_usd(0.04), format_usd(0.0), format_usd(0.167), format_usd(2 * 0.12)) == (
        "0.04",
        "0",
        "0.167",
        "0.24",
    )
