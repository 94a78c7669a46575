"""Typed credentials: the value, its schema, and that no repr, str or error message shows a secret."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from imagegateway_server.domain.calls import RoutingSpec
from imagegateway_server.domain.credentials import API_KEY, Credential, ResolvedCredentials
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.routing_config import RoutingConfig, Strategy
from imagegateway_server.providers.kit.errors import redact
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.spec import API_KEY_SCHEMA, CredentialField, CredentialSchema
from imagegateway_server.providers.registry import PROVIDER_SPECS
from imagegateway_server.routing.cache_key import routing_identity
from imagegateway_server.routing.plan import compile_plan, direct_leaf
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.state.breakers import TargetIdentity

SECRET = "sk-PLAINTEXT-MUST-NOT-LEAK-0123456789"
TOKEN = "eyJ-entra-token-MUST-NOT-LEAK-9876543210"
# A throwaway schema shaped like Azure's: public resource fields, and a key XOR a token.
AZURE_LIKE = CredentialSchema(
    (
        CredentialField("resource_name", secret=False, required=True),
        CredentialField("api_version", secret=False, required=False),
        CredentialField("api_key", secret=True, required=False),
        CredentialField("azure_ad_token", secret=True, required=False),
    ),
    exactly_one_of=(("api_key", "azure_ad_token"),),
)


def azure(**fields: str) -> Credential:
    return AZURE_LIKE.parse(fields, provider="azure-like", param_prefix="targets[1]")


def test_a_credential_gives_its_fields_and_tells_secret_from_public() -> None:
    credential = azure(resource_name="eu-res", api_version="2024-02-01", api_key=SECRET)
    assert credential.value("resource_name") == "eu-res" and credential.value(API_KEY) == SECRET
    assert credential.value("azure_ad_token") is None
    assert dict(credential.public_fields()) == {"resource_name": "eu-res", "api_version": "2024-02-01"}
    assert dict(credential.secret_fields()) == {"api_key": SECRET}
    assert credential.secret_values() == (SECRET,)


def test_no_repr_or_str_shows_a_secret() -> None:
    credential = azure(resource_name="eu-res", azure_ad_token=TOKEN)
    resolved = ResolvedCredentials("azure-like", credential, "https://eu-res.example")
    target = UpstreamTarget(credential=credential, headers=MappingProxyType({"x-team": "a"}))
    leaf = direct_leaf("azure-like", credential=credential)
    spec = RoutingSpec(provider="openai", provider_credential={API_KEY: SECRET})
    for value in (credential, resolved, target, leaf, spec):
        for shown in (repr(value), str(value), f"{value}"):
            assert TOKEN not in shown and SECRET not in shown
    assert "resource_name='eu-res'" in repr(credential) and "azure_ad_token=***" in repr(credential)


def test_the_fingerprint_covers_provider_and_secrets_only_and_never_holds_them() -> None:
    first = azure(resource_name="eu-res", api_key=SECRET)
    assert first.fingerprint() == azure(resource_name="us-res", api_key=SECRET).fingerprint()
    assert first.fingerprint() != azure(resource_name="eu-res", api_key=SECRET + "x").fingerprint()
    assert first.fingerprint() != Credential.of("other", {API_KEY: SECRET}, {API_KEY}).fingerprint()
    assert SECRET not in first.fingerprint()


def test_breaker_and_cache_identities_tell_public_fields_apart_without_the_secret() -> None:
    eu, us = azure(resource_name="eu-res", api_key=SECRET), azure(resource_name="us-res", api_key=SECRET)
    assert TargetIdentity.of("azure-like", None, eu, "m") != TargetIdentity.of("azure-like", None, us, "m")
    assert routing_identity("azure-like", None, eu) != routing_identity("azure-like", None, us)
    assert SECRET not in repr(TargetIdentity.of("azure-like", None, eu, "m"))


def test_equal_fields_make_equal_credentials_in_any_order() -> None:
    assert azure(api_key=SECRET, resource_name="r") == azure(resource_name="r", api_key=SECRET)


@pytest.mark.parametrize(
    "fields,param,message",
    [
        ({"resource_name": "r", "api_key": SECRET, "region": "eu"}, "targets[1].region", "is not a credential field"),
        ({"api_key": SECRET}, "targets[1].resource_name", "is required"),
        ({"resource_name": "r"}, "targets[1].api_key", "exactly one of api_key, azure_ad_token"),
        (
            {"resource_name": "r", "api_key": SECRET, "azure_ad_token": TOKEN},
            "targets[1].azure_ad_token",
            "exactly one of api_key, azure_ad_token",
        ),
    ],
)
def test_the_schema_refuses_bad_credentials_naming_the_field_never_the_secret(
    fields: dict[str, str], param: str, message: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        azure(**fields)
    assert info.value.param == param and message in info.value.message
    assert SECRET not in info.value.message and TOKEN not in info.value.message


def test_empty_values_count_as_unset() -> None:
    assert azure(resource_name="r", api_key=SECRET, azure_ad_token="").names == ("api_key", "resource_name")
    with pytest.raises(InvalidArgument, match="is required"):
        API_KEY_SCHEMA.parse({API_KEY: ""}, provider="openai")


def test_a_schema_refuses_a_badly_declared_exactly_one_of_group() -> None:
    with pytest.raises(ValueError, match="exactly-one-of"):
        CredentialSchema(
            (CredentialField("a", secret=True, required=True), CredentialField("b", secret=True, required=False)),
            exactly_one_of=(("a", "b"),),
        )


def test_a_field_set_without_one_it_requires_is_refused_naming_the_missing_one() -> None:
    schema = CredentialSchema(
        (
            CredentialField("key_id", secret=False, required=False),
            CredentialField("secret", secret=True, required=False),
            CredentialField("token", secret=True, required=False),
        ),
        requires=(("secret", ("key_id",)), ("token", ("key_id", "secret"))),
    )
    assert schema.parse({"key_id": "k", "secret": "s", "token": "t"}, provider="p").names == (
        "key_id",
        "secret",
        "token",
    )
    with pytest.raises(InvalidArgument, match="when secret is set") as caught:
        schema.parse({"secret": "s"}, provider="p", param_prefix="targets[1]")
    assert caught.value.param == "targets[1].key_id"
    with pytest.raises(InvalidArgument) as caught:
        schema.parse({"token": "t"}, provider="p", param_names={"key_id": "x-key-id-header"})
    assert caught.value.param == "x-key-id-header"
    with pytest.raises(ValueError, match="requirement"):
        CredentialSchema((CredentialField("a", secret=True, required=False),), requires=(("a", ("b",)),))


def test_every_provider_declares_a_secret_api_key() -> None:
    for spec in PROVIDER_SPECS.values():
        assert API_KEY in spec.credentials.secret_names


def test_redaction_scrubs_every_secret_of_a_credential() -> None:
    credential = azure(resource_name="res-name", azure_ad_token=TOKEN)
    assert redact(f"bad token {TOKEN} for res-name", credential.secret_values()) == "bad token *** for res-name"


def test_an_inline_credential_is_checked_by_the_providers_schema_when_the_config_compiles() -> None:
    config = RoutingConfig(
        strategy=Strategy(mode="fallback"),
        targets=(
            RoutingConfig(provider="openai", api_key=SECRET),
            RoutingConfig(provider="azure-like", api_key=SECRET),
        ),
    )
    schemas = {"openai": API_KEY_SCHEMA, "azure-like": AZURE_LIKE}
    with pytest.raises(InvalidArgument) as info:
        compile_plan(
            config,
            canonical_provider=lambda n: n,
            host_policy=UpstreamHostPolicy(()),
            credential_schema=schemas.__getitem__,
        )
    assert info.value.param == "targets[1].resource_name" and SECRET not in info.value.message


def test_a_field_of_the_wrong_shape_is_refused_by_name_without_echoing_the_value() -> None:
    import re

    shaped = CredentialSchema(
        (
            CredentialField(
                "region",
                secret=False,
                required=True,
                shape=re.compile(r"[a-z]+-[a-z]+-\d"),
                shape_hint="a region such as us-east-1",
            ),
            CredentialField(
                "api_key", secret=True, required=True, shape=re.compile(r"sk-\w+"), shape_hint="an sk- key"
            ),
        )
    )
    assert shaped.parse({"region": "us-east-1", "api_key": "sk-abc"}, provider="p").value("region") == "us-east-1"
    with pytest.raises(InvalidArgument) as bad_region:
        shaped.parse({"region": "us east", "api_key": "sk-abc"}, provider="p", param_prefix="targets[0]")
    assert bad_region.value.param == "targets[0].region" and "a region such as us-east-1" in bad_region.value.message
    with pytest.raises(InvalidArgument) as bad_key:
        shaped.parse({"region": "us-east-1", "api_key": SECRET + " "}, provider="p")
    assert bad_key.value.param == "api_key" and SECRET not in str(bad_key.value)


def test_an_azure_config_with_a_malformed_deployment_is_refused_when_it_is_compiled() -> None:
    # Checked when the config is saved or received, not on the first call that would build the URL.
    from imagegateway_server.routing.validation import validate_config

    target = RoutingConfig(provider="azure-openai", api_key=SECRET, resource_name="my-res", deployment_id="../../admin")
    config = RoutingConfig(strategy=Strategy(mode="fallback"), targets=(target,))
    with pytest.raises(InvalidArgument) as refused:
        validate_config(config)
    assert refused.value.param == "targets[0].deployment_id" and "deployment name" in refused.value.message
    assert validate_config(
        RoutingConfig(
            strategy=Strategy(mode="fallback"),
            targets=(
                RoutingConfig(provider="azure-openai", api_key=SECRET, resource_name="my-res", deployment_id="dalle3"),
            ),
        )
    )
