"""Bad-input limits: their settings and defaults, and each check naming the field it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from imagegateway_server.api import rest_mapping
from imagegateway_server.api.config_json import parse_config
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.input_limits import InputLimits, check_metadata_size, check_trace_id
from imagegateway_server.domain.request import ImageRequest, validate_request
from imagegateway_server.routing.plan import compile_plan, leaves
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.settings import SETTINGS, Settings

README = Path(__file__).resolve().parents[2] / "README.md"
SMALL = InputLimits(
    max_body_bytes=100, max_prompt_chars=10, max_config_depth=2, max_targets=3, max_metadata_bytes=20, max_images=3
)
NEW_SETTINGS = {
    "IMAGEGW_MAX_BODY_BYTES": ("max_body_bytes", 10 * 1024 * 1024),
    "IMAGEGW_MAX_PROMPT_CHARS": ("max_prompt_chars", 32_000),
    "IMAGEGW_MAX_CONFIG_DEPTH": ("max_config_depth", 10),
    "IMAGEGW_MAX_TARGETS": ("max_targets", 100),
    "IMAGEGW_MAX_METADATA_BYTES": ("max_metadata_bytes", 8 * 1024),
    "IMAGEGW_MAX_IMAGES": ("max_images", 10),
}


def refused(call: Any, *args: Any, **kwargs: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        call(*args, **kwargs)
    return caught.value


# -- settings ---------------------------------------------------------------------------------------


def test_the_defaults_are_the_documented_ones_and_each_is_an_env_var_and_a_readme_row() -> None:
    settings = Settings.load(environ={})
    readme = README.read_text()
    specs = {spec.env: spec for spec in SETTINGS}
    for env, (field, default) in NEW_SETTINGS.items():
        assert getattr(settings, field) == default
        assert getattr(settings.input_limits, field) == default
        assert specs[env].field == field and specs[env].default == str(default)
        assert f"| {env} | {default}" in readme, f"README settings table lacks {env}"


def test_each_setting_is_read_from_its_env_var_into_the_input_limits() -> None:
    environ = {env: "7" for env in NEW_SETTINGS}
    limits = Settings.load(environ=environ).input_limits
    assert limits == InputLimits(7, 7, 7, 7, 7, 7)


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("IMAGEGW_MAX_BODY_BYTES", "0"),
        ("IMAGEGW_MAX_PROMPT_CHARS", "-1"),
        ("IMAGEGW_MAX_CONFIG_DEPTH", "51"),
        ("IMAGEGW_MAX_TARGETS", "lots"),
        ("IMAGEGW_MAX_METADATA_BYTES", "1"),
        ("IMAGEGW_MAX_IMAGES", "101"),
    ],
)
def test_a_setting_out_of_bounds_stops_the_start_naming_it(env: str, value: str) -> None:
    with pytest.raises(ValueError, match="invalid setting") as caught:
        Settings.load(environ={env: value})
    assert env in str(caught.value) or value in str(caught.value)


# -- the request --------------------------------------------------------------------------------------


def test_the_prompt_and_n_are_held_to_the_configured_limits() -> None:
    assert validate_request(ImageRequest(prompt="0123456789", n=3), SMALL)
    error = refused(validate_request, ImageRequest(prompt="0123456789!"), SMALL)
    assert (error.param, error.code) == ("prompt", "string_above_max_length") and "10 characters" in error.message
    for n in (0, 4):
        error = refused(validate_request, ImageRequest(prompt="p", n=n), SMALL)
        assert error.param == "n" and "between 1 and 3" in error.message
    assert validate_request(ImageRequest(prompt="p" * 32_000, n=10))  # the defaults
    assert refused(validate_request, ImageRequest(prompt="p", n=11)).param == "n"


# -- configs ------------------------------------------------------------------------------------------


def nested(depth: int) -> dict[str, Any]:
    config: dict[str, Any] = {"provider": "openai", "api_key": "sk"}
    for _ in range(depth):
        config = {"strategy": {"mode": "fallback"}, "targets": [config]}
    return config


def compile_with(document: dict[str, Any], limits: InputLimits = SMALL) -> Any:
    return compile_plan(
        parse_config(document),
        canonical_provider=lambda n: n,
        host_policy=UpstreamHostPolicy(()),
        max_depth=limits.max_config_depth,
        max_targets=limits.max_targets,
    )


def test_configs_nested_deeper_than_the_limit_are_refused_naming_the_path() -> None:
    assert leaves(compile_with(nested(2)))
    error = refused(compile_with, nested(3))
    assert error.param == "targets[0].targets[0].targets[0]" and "deeper than 2" in error.message
    assert leaves(compile_with(nested(10), InputLimits()))
    assert refused(compile_with, nested(11), InputLimits()).param.count("targets[0]") == 11


def test_targets_are_counted_across_the_whole_config() -> None:
    target = {"provider": "openai", "api_key": "sk"}
    assert compile_with({"strategy": {"mode": "fallback"}, "targets": [target] * 3})
    error = refused(
        compile_with,
        {
            "strategy": {"mode": "fallback"},
            "targets": [target, {"strategy": {"mode": "fallback"}, "targets": [target, target]}],
        },
    )
    # Two groups of two would each pass a per-group cap; together they are four targets.
    assert error.param == "targets[1].targets" and "at most 3 targets" in error.message


# -- metadata and trace ids ----------------------------------------------------------------------------


def test_metadata_over_the_limit_is_refused_naming_the_header_or_field() -> None:
    assert rest_mapping.metadata({"x-portkey-metadata": '{"a":"b"}'}, 20) == {"a": "b"}
    assert refused(rest_mapping.metadata, {"x-portkey-metadata": '{"team":"platform-x"}'}, 20).param == (
        "x-portkey-metadata"
    )
    check_metadata_size({"a": "b"}, 20, param="metadata")
    error = refused(check_metadata_size, {"team": "platform-x"}, 20, param="metadata")
    assert error.param == "metadata" and "20 bytes" in error.message


@pytest.mark.parametrize("value", ["t" * 129, "tab\there", "naïve", "line\nbreak"])
def test_a_trace_id_must_be_short_printable_ascii(value: str) -> None:
    assert refused(check_trace_id, value, param="trace_id").param == "trace_id"
    assert refused(rest_mapping.trace_id, {"x-portkey-trace-id": value}).param == "x-portkey-trace-id"


def test_a_usable_trace_id_passes_unchanged() -> None:
    for value in ("t" * 128, "order 42/retry-1", "0af7651916cd43dd8448eb211c80319c"):
        assert check_trace_id(value, param="trace_id") == value
    assert rest_mapping.trace_id({}) is None
