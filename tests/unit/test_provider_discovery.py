"""The registry finds the provider folders, and the gateway reads their names, hosts and prices from them."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from imagegateway_server.core.pricing import built_in_price_document, load_price_table
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.providers.bedrock.regions import PUBLIC_HOSTS as BEDROCK_HOSTS
from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema
from imagegateway_server.providers.openai.adapter import OpenAIAdapter
from imagegateway_server.providers.registry import (
    IMAGE_PROVIDERS,
    PROVIDER_SPECS,
    canonical_provider,
    default_registry,
    discover_providers,
    public_provider_hosts,
)
from imagegateway_server.providers.stability.adapter import StabilityAdapter
from imagegateway_server.providers.vertex_ai.spec import REGIONS
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy

SPELLINGS = {
    "azure-openai": {"azure-openai"},
    "google": {"google"},
    "vertex-ai": {"vertex-ai"},
    "bedrock": {"bedrock"},
    "black-forest-labs": {"black-forest-labs", "bfl", "blackforestlabs", "black_forest_labs"},
    "fal-ai": {"fal-ai", "fal", "falai", "fal_ai", "fal.ai"},
    "openai": {"openai", "open-ai", "open_ai"},
    "stability-ai": {"stability-ai", "stabilityai", "stability", "stability_ai"},
    "together-ai": {"together-ai", "together", "togetherai", "together_ai"},
    "fireworks-ai": {"fireworks-ai", "fireworks", "fireworksai", "fireworks_ai"},
    "x-ai": {"x-ai", "xai", "x_ai", "grok"},
    "recraft-ai": {"recraft-ai", "recraft", "recraftai"},
}
HOSTS = {
    "azure-openai": {"*.openai.azure.com"},
    "bedrock": BEDROCK_HOSTS,
    "black-forest-labs": {
        "api.bfl.ai",
        "api.eu.bfl.ai",
        "api.us.bfl.ai",
        "api.eu1.bfl.ai",
        "api.eu2.bfl.ai",
        "api.eu4.bfl.ai",
        "api.us1.bfl.ai",
        "api.us2.bfl.ai",
        "api.bfl.ml",
    },
    "fal-ai": {"queue.fal.run"},
    "openai": {"api.openai.com"},
    "stability-ai": {"api.stability.ai"},
    "together-ai": {"api.together.xyz", "api.together.ai"},
    "fireworks-ai": {"api.fireworks.ai"},
    "x-ai": {"api.x.ai"},
    "recraft-ai": {"external.api.recraft.ai"},
    "google": {"generativelanguage.googleapis.com"},
    "vertex-ai": {
        "aiplatform.googleapis.com",
        "oauth2.googleapis.com",
        *(f"{r}-aiplatform.googleapis.com" for r in REGIONS),
    },
}
EVERY_PROVIDER = sorted(SPELLINGS)  # the folders, in the order the registry discovers them


def test_the_registry_discovers_exactly_the_provider_folders() -> None:
    assert list(PROVIDER_SPECS) == EVERY_PROVIDER
    assert frozenset(PROVIDER_SPECS) == IMAGE_PROVIDERS
    for name, spec in PROVIDER_SPECS.items():
        assert spec.name == name
        assert spec.spellings == SPELLINGS[name]
        assert spec.public_hosts == HOSTS[name]
        assert all(canonical_provider(spelling.upper()) == name for spelling in spec.spellings)


def test_openai_and_stability_declare_one_secret_required_api_key() -> None:
    for name in ("openai", "stability-ai", "together-ai", "fireworks-ai", "x-ai", "recraft-ai"):
        spec = PROVIDER_SPECS[name]
        assert spec.credentials == CredentialSchema((CredentialField("api_key", secret=True, required=True),))
        assert spec.credentials.secret_names == {"api_key"}


def test_azure_openai_declares_a_key_or_a_token_and_its_resource_deployment_and_version() -> None:
    schema = PROVIDER_SPECS["azure-openai"].credentials
    assert schema.names == ("api_key", "azure_ad_token", "resource_name", "deployment_id", "api_version")
    assert schema.secret_names == {"api_key", "azure_ad_token"}
    assert schema.exactly_one_of == (("api_key", "azure_ad_token"),)
    assert {field.name for field in schema.fields if field.required} == {"resource_name", "deployment_id"}


def test_bedrock_declares_a_key_pair_or_an_api_key_and_always_a_region() -> None:
    schema = PROVIDER_SPECS["bedrock"].credentials
    assert schema.names == ("api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_region")
    assert schema.secret_names == {"api_key", "aws_secret_access_key", "aws_session_token"}
    assert schema.exactly_one_of == (("api_key", "aws_secret_access_key"),)
    assert {field.name for field in schema.fields if field.required} == {"aws_region"}
    assert "bedrock-runtime.us-gov-west-1.amazonaws.com" in BEDROCK_HOSTS
    assert "bedrock-runtime.aws-global.amazonaws.com" not in BEDROCK_HOSTS


def test_the_host_policy_allows_the_providers_declared_hosts_over_https() -> None:
    assert public_provider_hosts() == set().union(*HOSTS.values())
    policy = UpstreamHostPolicy()
    assert policy.provider_hosts == public_provider_hosts()
    hosts = (
        "api.openai.com",
        "api.stability.ai",
        "my-resource.openai.azure.com",
        "bedrock-runtime.us-east-1.amazonaws.com",
    )
    for host in hosts:
        assert policy.check(f"https://{host}/v1", param="base_url") == f"https://{host}/v1"
    with pytest.raises(InvalidArgument, match="plain http"):
        policy.check("http://api.openai.com/v1", param="base_url")
    assert UpstreamHostPolicy(provider_hosts=["Images.Example."]).provider_hosts == {"images.example"}


@pytest.mark.parametrize("url", ["https://my-resource.openai.azure.com/openai", "https://A.B.OpenAI.Azure.Com."])
def test_a_wildcard_provider_host_allows_every_name_below_it_over_https(url: str) -> None:
    policy = UpstreamHostPolicy(provider_hosts=["*.openai.azure.com"])
    assert policy.refusal_for_url("https", url.split("/")[2], 443) is None
    with pytest.raises(InvalidArgument, match="plain http"):
        policy.check(url.replace("https", "http"), param="custom_host")


@pytest.mark.parametrize(
    "host", ["openai.azure.com", "evilopenai.azure.com", "openai.azure.com.evil.example", "x.openai.azure.co"]
)
def test_a_wildcard_provider_host_allows_neither_its_suffix_nor_look_alikes(host: str) -> None:
    policy = UpstreamHostPolicy(provider_hosts=["*.openai.azure.com"])
    assert policy._is_provider_host(host) is False


@pytest.mark.parametrize("host", ["a*.example.com", "*.com", "*", "x.*.example.com"])
def test_a_spec_refuses_a_wildcard_other_than_a_whole_first_label(host: str) -> None:
    spec = PROVIDER_SPECS["openai"]
    with pytest.raises(ValueError, match="may use"):
        dataclasses.replace(spec, public_hosts=frozenset({host}))


def test_the_built_in_price_table_is_assembled_from_the_provider_folders() -> None:
    document = built_in_price_document()
    assert document["version"] == load_price_table().version
    assert list(document["providers"]) == EVERY_PROVIDER
    for name, spec in PROVIDER_SPECS.items():
        assert spec.prices_file is not None and spec.prices_file.name == "prices.json"
        assert document["providers"][name] == spec.read_prices()
    table = load_price_table()
    assert table.unit_price("openai", "dall-e-3", "1024x1024", "standard") == pytest.approx(0.04)
    assert table.unit_price("stability-ai", "stable-image-core") == pytest.approx(0.03)
    assert table.unit_price("azure-openai", "dall-e-3", "1024x1024", "hd") == pytest.approx(0.08)
    assert table.unit_price("bedrock", "amazon.nova-canvas-v1:0", "1024x1024", "hd") == pytest.approx(0.06)
    assert table.unit_price("bedrock", "amazon.nova-canvas-v1:0", "2048x1024", "standard") == pytest.approx(0.06)
    assert table.unit_price("bedrock", "amazon.titan-image-generator-v2:0", "512x512") == pytest.approx(0.008)
    assert table.unit_price("bedrock", "stability.stable-image-ultra-v1:1", "1344x768") == pytest.approx(0.14)


async def test_default_registry_takes_base_url_overrides_by_any_spelling() -> None:
    registry = default_registry(base_urls={"Open-AI": "http://127.0.0.1:9/v1/"})
    try:
        openai, stability = registry.get("openai"), registry.get("stability-ai")
        assert isinstance(openai, OpenAIAdapter) and isinstance(stability, StabilityAdapter)
        assert openai._base_url == "http://127.0.0.1:9/v1"
        assert stability._base_url == PROVIDER_SPECS["stability-ai"].default_base_url
    finally:
        await registry.aclose()
    with pytest.raises(InvalidArgument) as info:
        default_registry(base_urls={"midjourney": "https://example.com"})
    assert info.value.param == "provider"


@pytest.fixture
def provider_package(tmp_path: Path) -> Iterator[tuple[Path, ModuleType]]:
    """An empty package standing in for ``providers``, to discover folders written into it."""
    root = tmp_path / "fake_providers"
    root.mkdir()
    (root / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    try:
        import fake_providers

        yield root, fake_providers
    finally:
        sys.path.remove(str(tmp_path))
        for name in [module for module in sys.modules if module.split(".")[0] == "fake_providers"]:
            del sys.modules[name]


def _provider_folder(root: Path, folder: str, name: str, aliases: set[str]) -> None:
    (root / folder).mkdir()
    (root / folder / "__init__.py").write_text("")
    (root / folder / "spec.py").write_text(
        textwrap.dedent(f"""
        from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec
        from imagegateway_server.providers.openai.adapter import OpenAIAdapter

        SPEC = ProviderSpec(
            name={name!r}, aliases=frozenset({sorted(aliases)!r}), public_hosts=frozenset({{"api.example"}}),
            default_base_url="https://api.example", make_adapter=OpenAIAdapter,
            credentials=CredentialSchema((CredentialField("api_key", secret=True, required=True),)),
            model_spec=lambda model: None,
        )
    """)
    )


def test_discovery_reads_every_folder_but_the_kit(provider_package: tuple[Path, ModuleType]) -> None:
    root, package = provider_package
    _provider_folder(root, "alpha", "alpha", {"a"})
    _provider_folder(root, "beta", "beta-ai", set())
    (root / "kit").mkdir()
    (root / "kit" / "__init__.py").write_text("")
    (root / "notes").mkdir()  # not a package: ignored
    specs = discover_providers(package)
    assert list(specs) == ["alpha", "beta-ai"]
    assert specs["alpha"].spellings == {"alpha", "a"}


def test_discovery_refuses_a_folder_without_a_spec(provider_package: tuple[Path, ModuleType]) -> None:
    root, package = provider_package
    (root / "half_added").mkdir()
    (root / "half_added" / "__init__.py").write_text("")
    with pytest.raises(ValueError, match="half_added has no spec module"):
        discover_providers(package)


def test_discovery_refuses_two_providers_answering_to_one_spelling(
    provider_package: tuple[Path, ModuleType],
) -> None:
    root, package = provider_package
    _provider_folder(root, "alpha", "alpha", {"shared"})
    _provider_folder(root, "beta", "beta", {"shared"})
    with pytest.raises(ValueError, match="'alpha' and 'beta' both answer to 'shared'"):
        discover_providers(package)
