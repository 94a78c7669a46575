"""Parameter translation: every row of the tables, every refusal, strict mode and model aliases."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from imagegateway.v1 import images_pb2
from imagegateway_server.api import grpc_mapping
from imagegateway_server.api.config_json import parse_config
from imagegateway_server.domain.credentials import ResolvedCredentials
from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.model_aliases import (
    BUILT_IN_FILE,
    NO_ALIASES,
    ModelAliases,
    load_model_aliases,
    parse_model_aliases,
)
from imagegateway_server.providers.kit.translation import Translation, translate
from imagegateway_server.providers.openai.models import model_spec as openai_spec
from imagegateway_server.providers.registry import canonical_provider
from imagegateway_server.providers.stability.models import model_spec as stability_spec
from imagegateway_server.routing.plan import Leaf, compile_plan, leaves
from imagegateway_server.routing.router import RouteContext, Router
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.settings import Settings
from tests.credentials import api_key

SPEC_OF = {"openai": openai_spec, "stability-ai": stability_spec}


def run(
    provider: str, model: str, *, strict: bool = False, aliases: ModelAliases = NO_ALIASES, **fields: Any
) -> Translation:
    return translate(
        ImageRequest(prompt="a kraken", **fields),
        provider=provider,
        model=model,
        spec_of=SPEC_OF[provider],
        strict=strict,
        aliases=aliases,
    )


def refused(
    provider: str, model: str, *, strict: bool = False, aliases: ModelAliases = NO_ALIASES, **fields: Any
) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        run(provider, model, strict=strict, aliases=aliases, **fields)
    error = info.value
    assert (error.kind, error.status_code, error.provider) == (ErrorKind.BAD_REQUEST, 400, provider)
    assert error.param and repr(error.param) in error.message
    return error


def aliases_of(*entries: dict[str, Any]) -> ModelAliases:
    return parse_model_aliases({"aliases": list(entries)}, canonical_provider=canonical_provider)


# -- size ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "size", "sent", "note"),
    [
        ("stability-ai", "stable-diffusion-v1-6", "1792x1024", "1344x768", "size=1792x1024->1344x768"),
        ("stability-ai", "stable-diffusion-xl-1024-v1-0", "1792x1024", "1344x768", "size=1792x1024->1344x768"),
        ("stability-ai", "stable-diffusion-v1-6", "768x512", "768x512", None),
        ("openai", "dall-e-2", "1792x1024", "1024x1024", "size=1792x1024->1024x1024"),
        ("openai", "dall-e-3", "1792x1024", "1792x1024", None),
        ("openai", "dall-e-3", "1536x1024", "1792x1024", "size=1536x1024->1792x1024"),
        ("openai", "gpt-image-1", "1792x1024", "1536x1024", "size=1792x1024->1536x1024"),
        ("openai", "gpt-image-1", "auto", "auto", None),
        ("openai", "gpt-image-2", "1792x1024", "1792x1024", None),
        ("openai", "gpt-image-2", "1000x1000", "1008x1008", "size=1000x1000->1008x1008"),
        ("openai", "dall-e-3", "1024X1024", "1024x1024", None),  # spelling normalised, not a translation
    ],
)
def test_size_becomes_the_nearest_allowed_and_an_allowed_one_passes_unchanged(
    provider: str, model: str, size: str, sent: str, note: str | None
) -> None:
    translation = run(provider, model, size=size)
    assert translation.request.size == sent
    assert translation.notes == ((note,) if note else ())


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "dall-e-3", "1024x1024"),
        ("openai", "dall-e-2", "1024x1024"),
        ("stability-ai", "stable-diffusion-v1-6", "512x512"),
        ("stability-ai", "core", ""),
    ],
)
def test_auto_on_a_model_without_auto_is_the_provider_default_not_a_translation(
    provider: str, model: str, expected: str
) -> None:
    translation = run(provider, model, size="auto")
    assert translation.request.size is None
    assert translation.notes == ()
    assert translation.expected_size == expected


@pytest.mark.parametrize(
    ("size", "ratio", "note"),
    [
        ("1024x1024", "1:1", None),
        ("1920x1080", "16:9", None),
        ("1792x1024", "16:9", "size=1792x1024->16:9"),
    ],
)
def test_size_becomes_an_aspect_ratio_on_stable_image_noted_when_inexact(
    size: str, ratio: str, note: str | None
) -> None:
    translation = run("stability-ai", "core", size=size)
    assert (translation.request.size, translation.request.aspect_ratio) == (None, ratio)
    assert translation.notes == ((note,) if note else ())
    assert translation.expected_size == ""  # the provider picks the pixels


def test_size_conflicting_with_an_explicit_aspect_ratio_is_refused() -> None:
    assert refused("stability-ai", "ultra", size="1024x1024", aspect_ratio="16:9").param == "size"


@pytest.mark.parametrize("size", ["big", "0x512", "9" * 5000 + "x1"])
def test_size_that_is_not_widthxheight_is_refused(size: str) -> None:
    assert refused("openai", "dall-e-3", size=size).param == "size"


# -- n -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "fan_out"),
    [
        ("openai", "dall-e-3", True),
        ("openai", "dall-e-2", False),
        ("openai", "gpt-image-1", False),
        ("stability-ai", "core", True),
        ("stability-ai", "stable-diffusion-v1-6", False),
    ],
)
def test_n_fans_out_on_one_image_models_and_is_never_clamped(provider: str, model: str, fan_out: bool) -> None:
    translation = run(provider, model, n=4)
    assert translation.request.n == 4
    assert translation.fan_out is fan_out
    assert translation.notes == (("n=4->4x1",) if fan_out else ())


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "gpt-image-1"), ("openai", "dall-e-3"), ("stability-ai", "stable-diffusion-v1-6")],
)
def test_n_over_the_models_limit_is_refused_naming_n(provider: str, model: str) -> None:
    error = refused(provider, model, n=11)
    assert (error.param, error.code) == ("n", "integer_above_max_value")


# -- quality and style ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "asked", "sent"),
    [
        ("dall-e-3", "standard", "standard"),
        ("dall-e-3", "hd", "hd"),
        ("dall-e-3", "high", "hd"),
        ("dall-e-3", "medium", "standard"),
        ("dall-e-3", "low", "standard"),
        ("dall-e-3", "auto", None),
        ("dall-e-2", "standard", "standard"),
        ("dall-e-2", "low", "standard"),
        ("dall-e-2", "medium", "standard"),
        ("dall-e-2", "auto", None),
        ("gpt-image-1", "hd", "high"),
        ("gpt-image-1", "standard", "medium"),
        ("gpt-image-1", "low", "low"),
        ("gpt-image-1", "auto", "auto"),
        ("gpt-image-1.5", "high", "high"),
        ("gpt-image-2", "hd", "high"),
    ],
)
def test_openai_quality_maps_to_the_models_equivalent(model: str, asked: str, sent: str | None) -> None:
    translation = run("openai", model, quality=asked)
    assert translation.request.quality == sent
    changed = sent is not None and sent != asked
    assert translation.notes == ((f"quality={asked}->{sent}",) if changed else ())


@pytest.mark.parametrize(
    ("provider", "model", "asked"),
    [
        ("openai", "dall-e-2", "hd"),
        ("openai", "dall-e-2", "high"),
        ("openai", "gpt-image-1", "ultra"),
        ("stability-ai", "core", "hd"),
        ("stability-ai", "ultra", "standard"),
    ],
)
def test_quality_without_an_equivalent_is_refused_naming_quality(provider: str, model: str, asked: str) -> None:
    assert refused(provider, model, quality=asked).param == "quality"


@pytest.mark.parametrize(("asked", "steps"), [("low", 20), ("medium", 30), ("standard", 30), ("high", 50), ("hd", 50)])
def test_stability_v1_quality_becomes_steps(asked: str, steps: int) -> None:
    translation = run("stability-ai", "stable-diffusion-xl-1024-v1-0", quality=asked)
    assert translation.request.quality is None
    assert translation.request.extra["steps"] == steps
    assert translation.notes == (f"quality={asked}->steps={steps}",)


def test_stability_v1_quality_alongside_explicit_steps_is_refused() -> None:
    error = refused("stability-ai", "stable-diffusion-v1-6", quality="hd", extra=MappingProxyType({"steps": 40}))
    assert error.param == "quality"
    assert "steps" in error.message


@pytest.mark.parametrize("model", ["core", "stable-diffusion-v1-6"])
def test_quality_auto_on_stability_is_the_default(model: str) -> None:
    translation = run("stability-ai", model, quality="auto")
    assert (translation.request.quality, translation.notes) == (None, ())
    assert "steps" not in translation.request.extra


@pytest.mark.parametrize(
    ("provider", "model", "style", "code"),
    [
        ("openai", "gpt-image-1", "vivid", "unknown_parameter"),
        ("openai", "dall-e-2", "natural", "unknown_parameter"),
        ("stability-ai", "core", "vivid", "unknown_parameter"),
        ("openai", "dall-e-3", "anime", "invalid_value"),
    ],
)
def test_style_without_an_equivalent_is_refused_naming_style(provider: str, model: str, style: str, code: str) -> None:
    error = refused(provider, model, style=style)
    assert (error.param, error.code) == ("style", code)


def test_dall_e_3_style_passes_unchanged() -> None:
    assert run("openai", "dall-e-3", style="natural").request.style == "natural"


def test_an_unknown_openai_model_is_sent_as_given() -> None:
    translation = run("openai", "gpt-7-image", size="333x777", quality="ultra", style="odd", n=3)
    assert translation.request == ImageRequest(
        prompt="a kraken", model="gpt-7-image", size="333x777", quality="ultra", style="odd", n=3
    )
    assert (translation.notes, translation.fan_out) == ((), False)


# -- strict --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "fields", "param"),
    [
        ("stability-ai", "stable-diffusion-v1-6", {"size": "1792x1024"}, "size"),
        ("stability-ai", "core", {"size": "1792x1024"}, "size"),
        ("openai", "dall-e-3", {"n": 2}, "n"),
        ("stability-ai", "core", {"n": 2}, "n"),
        ("openai", "gpt-image-1", {"quality": "hd"}, "quality"),
        ("stability-ai", "stable-diffusion-v1-6", {"quality": "high"}, "quality"),
    ],
)
def test_strict_turns_every_translation_into_a_refusal_naming_the_parameter(
    provider: str, model: str, fields: dict[str, Any], param: str
) -> None:
    assert run(provider, model, **fields).notes, "the same request translates when not strict"
    error = refused(provider, model, strict=True, **fields)
    assert error.param == param
    assert "strict" in error.message


@pytest.mark.parametrize(
    ("provider", "model", "fields"),
    [
        ("stability-ai", "stable-diffusion-v1-6", {"size": "1344x768", "quality": "auto"}),
        ("stability-ai", "core", {"size": "1920x1080"}),
        ("openai", "dall-e-3", {"size": "1792x1024", "quality": "hd", "style": "vivid", "n": 1}),
        ("openai", "gpt-image-1", {"size": "auto", "quality": "high"}),
        ("openai", "dall-e-2", {"size": "auto"}),
    ],
)
def test_strict_passes_what_the_model_takes_as_given(provider: str, model: str, fields: dict[str, Any]) -> None:
    assert run(provider, model, strict=True, **fields).notes == ()


# -- aliases -------------------------------------------------------------------------------------------


DALL_E_3_ALIAS = {
    "provider": "openai",
    "model": "dall-e-3",
    "successor": "gpt-image-1",
    "enabled": True,
    "params": {"quality": {"standard": "medium", "hd": "high"}},
}


def test_built_in_alias_table_loads_and_enables_nothing() -> None:
    document = json.loads(BUILT_IN_FILE.read_text())
    assert {(e["provider"], e["model"]) for e in document["aliases"]} >= {
        ("openai", "dall-e-2"),
        ("openai", "dall-e-3"),
    }
    assert len(load_model_aliases(canonical_provider=canonical_provider)) == 0
    assert len(load_model_aliases("", canonical_provider=canonical_provider)) == 0


def test_the_built_in_entries_work_when_enabled() -> None:
    document = json.loads(BUILT_IN_FILE.read_text())
    for entry in document["aliases"]:
        entry["enabled"] = True
    aliases = parse_model_aliases(document, canonical_provider=canonical_provider)
    assert len(aliases) == len(document["aliases"])
    old = run("openai", "dall-e-2", aliases=aliases, size="256x256", quality="standard")
    assert (old.model, old.request.size, old.request.quality) == ("gpt-image-1-mini", "1024x1024", "medium")
    sdxl = run("stability-ai", "stable-diffusion-xl-1024-v1-0", aliases=aliases, size="1344x768")
    assert (sdxl.model, sdxl.request.aspect_ratio) == ("core", "16:9")


def test_an_enabled_alias_serves_the_successor_with_the_parameter_changes_it_implies() -> None:
    translation = run("openai", "DALL-E-3", aliases=aliases_of(DALL_E_3_ALIAS), size="1792x1024", quality="hd", n=3)
    assert translation.model == "gpt-image-1"
    assert (translation.request.size, translation.request.quality, translation.request.n) == ("1536x1024", "high", 3)
    assert not translation.fan_out  # gpt-image makes n images per call
    assert translation.notes == ("model=DALL-E-3->gpt-image-1", "quality=hd->high", "size=1792x1024->1536x1024")


def test_a_style_the_successor_lacks_is_refused_naming_the_alias_unless_the_alias_omits_it() -> None:
    error = refused("openai", "dall-e-3", aliases=aliases_of(DALL_E_3_ALIAS), style="vivid")
    assert error.param == "style"
    assert "successor of 'dall-e-3'" in error.message
    omitting = dict(DALL_E_3_ALIAS, params={"style": {"vivid": None, "natural": None}})
    translation = run("openai", "dall-e-3", aliases=aliases_of(omitting), style="vivid")
    assert translation.request.style is None
    assert translation.notes == ("model=dall-e-3->gpt-image-1", "style=vivid->omitted")


def test_strict_refuses_an_alias_naming_model() -> None:
    error = refused("openai", "dall-e-3", strict=True, aliases=aliases_of(DALL_E_3_ALIAS))
    assert error.param == "model"


def test_a_disabled_alias_or_another_provider_changes_nothing() -> None:
    aliases = aliases_of(dict(DALL_E_3_ALIAS, enabled=False))
    assert run("openai", "dall-e-3", aliases=aliases).model == "dall-e-3"
    assert aliases_of(DALL_E_3_ALIAS).lookup("stability-ai", "dall-e-3") is None


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({}, "aliases"),
        ({"aliases": [], "extra": 1}, "extra"),
        ({"aliases": ["x"]}, "aliases[0]"),
        ({"aliases": [{"provider": "openai", "model": "a"}]}, "aliases[0].successor"),
        ({"aliases": [dict(DALL_E_3_ALIAS, provider="dall-e-land")]}, "aliases[0].provider"),
        ({"aliases": [dict(DALL_E_3_ALIAS, enabled="yes")]}, "aliases[0].enabled"),
        ({"aliases": [dict(DALL_E_3_ALIAS, params={"prompt": {"a": "b"}})]}, "aliases[0].params.prompt"),
        ({"aliases": [dict(DALL_E_3_ALIAS, params={"quality": {"hd": 3}})]}, "aliases[0].params.quality"),
        ({"aliases": [dict(DALL_E_3_ALIAS, colour="red")]}, "aliases[0].colour"),
        ({"aliases": [dict(DALL_E_3_ALIAS, successor="dall-e-3")]}, "aliases[0].successor"),
        ({"aliases": [DALL_E_3_ALIAS, DALL_E_3_ALIAS]}, "aliases[1].model"),
    ],
)
def test_a_malformed_alias_table_is_refused_naming_the_field(document: dict[str, Any], where: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_model_aliases(document, source="table.json", canonical_provider=canonical_provider)
    assert str(info.value).startswith(f"table.json: {where}: ")


def test_an_alias_chain_is_refused() -> None:
    second = {"provider": "openai", "model": "gpt-image-1", "successor": "gpt-image-2", "enabled": True}
    with pytest.raises(ValueError, match="itself an enabled alias"):
        aliases_of(DALL_E_3_ALIAS, second)


def test_the_aliases_file_setting_is_checked_when_settings_load(tmp_path: Path) -> None:
    good = tmp_path / "aliases.json"
    good.write_text(json.dumps({"aliases": [DALL_E_3_ALIAS]}))
    settings = Settings.load(environ={"IMAGEGW_MODEL_ALIASES_FILE": str(good)})
    assert settings.model_aliases_file == str(good)
    assert len(load_model_aliases(settings.model_aliases_file, canonical_provider=canonical_provider)) == 1
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for path, words in ((bad, "not valid JSON"), (tmp_path / "missing.json", "cannot be read")):
        with pytest.raises(ValueError, match=f"invalid setting: model aliases file .*: {words}"):
            Settings.load(environ={"IMAGEGW_MODEL_ALIASES_FILE": str(path)})


# -- results, strict plumbing --------------------------------------------------------------------------


def test_finish_labels_each_image_with_provider_model_and_size() -> None:
    translation = run("openai", "dall-e-3", size="1536x1024")
    seen = GeneratedImage(b"png", "image/png", 1792, 1024)
    unseen = GeneratedImage(None, "image/png", url="https://cdn.example/x.png")
    result = translation.finish(ImageResult(images=(seen, unseen), model="dall-e-3", created=1))
    assert [(i.provider, i.model, i.size) for i in result.images] == [
        ("openai", "dall-e-3", "1792x1024"),
        ("openai", "dall-e-3", "1792x1024"),
    ]
    assert result.translations == ("size=1536x1024->1792x1024",)


def test_strict_is_not_a_provider_parameter() -> None:
    assert "strict" not in ImageRequest(prompt="x", strict=True).set_fields()


def test_grpc_strict_reaches_the_request() -> None:
    params = images_pb2.ImageParameters(prompt="x", strict=True)
    assert grpc_mapping.image_request(params).strict is True
    assert grpc_mapping.image_request(images_pb2.ImageParameters(prompt="x")).strict is False


def test_grpc_image_carries_provider_model_and_size() -> None:
    image = GeneratedImage(b"png", "image/png", 4, 3, provider="stability-ai", model="core", size="4x3")
    message = images_pb2.Image()
    grpc_mapping.fill_image_metadata(message, image, 0)
    assert (message.provider, message.model, message.size) == ("stability-ai", "core", "4x3")


def compiled(document: dict[str, Any]) -> list[Leaf]:
    plan = compile_plan(
        parse_config(document), canonical_provider=canonical_provider, host_policy=UpstreamHostPolicy(())
    )
    return leaves(plan)


def test_config_strict_is_inherited_by_children_that_do_not_set_their_own() -> None:
    found = compiled(
        {
            "strict": True,
            "strategy": {"mode": "fallback"},
            "targets": [
                {"virtual_key": "a"},
                {"virtual_key": "b", "strict": False},
                {"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "c"}]},
            ],
        }
    )
    assert [leaf.strict for leaf in found] == [True, False, True]
    assert [leaf.strict for leaf in compiled({"virtual_key": "a"})] == [False]


class _Capture:
    name = "openai"

    def __init__(self) -> None:
        self.targets: list[UpstreamTarget] = []

    def default_model(self) -> str:
        return "dall-e-3"

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        self.targets.append(target)
        return ImageResult(images=(GeneratedImage(b"png", "image/png", 1, 1),), model="dall-e-3", created=1)

    async def aclose(self) -> None:
        return None


class _Keys:
    async def resolve(self, leaf: Leaf) -> ResolvedCredentials:
        return ResolvedCredentials(provider="openai", credential=api_key("sk-x", "openai"), base_url=None)


@pytest.mark.parametrize(
    ("config_strict", "request_strict", "sent"),
    [(False, False, False), (True, False, True), (False, True, True), (True, True, True)],
)
async def test_the_router_hands_adapters_the_target_or_request_strict(
    config_strict: bool, request_strict: bool, sent: bool
) -> None:
    adapter = _Capture()
    router = Router(lambda name: adapter, _Keys(), rng=random.Random(1))
    plan = compile_plan(
        parse_config({"provider": "openai", "api_key": "sk-x", "strict": config_strict}),
        canonical_provider=canonical_provider,
        host_policy=UpstreamHostPolicy(()),
    )
    await router.run(plan, ImageRequest(prompt="x", strict=request_strict), RouteContext(trace_id="t"))
    assert [target.strict for target in adapter.targets] == [sent]
