"""The shim decodes a request's headers once; look-ups answer as Starlette's Headers did."""

from __future__ import annotations

from starlette.datastructures import Headers

from imagegateway_server.api.rest_mapping import RequestHeaders

RAW = [
    (b"content-type", b"application/json"),
    (b"x-portkey-config", b"cfg-1"),
    (b"x-portkey-metadata", b'{"team":"caf\xe9"}'),
]


def test_look_ups_match_starlettes_headers() -> None:
    headers = RequestHeaders(RAW)
    starlette = Headers(raw=RAW)
    for name in ("content-type", "x-portkey-config", "x-portkey-metadata", "authorization"):
        assert headers.get(name) == starlette.get(name)
    assert headers.last == {k.lower(): v for k, v in starlette.items()}


def test_a_repeated_header_answers_its_first_value_and_the_core_sees_its_last() -> None:
    raw = [*RAW, (b"x-portkey-config", b"cfg-2")]
    headers = RequestHeaders(raw)
    assert headers["x-portkey-config"] == Headers(raw=raw)["x-portkey-config"] == "cfg-1"
    assert headers.last["x-portkey-config"] == "cfg-2"
    assert headers["content-type"] == "application/json"


# -- a bare provider's typed credential from Portkey's headers --------------------------------------

_AZURE_HEADERS = {
    "x-portkey-provider": "azure-openai",
    "x-portkey-azure-resource-name": "my-resource",
    "x-portkey-azure-deployment-id": "dalle3",
    "x-portkey-azure-api-version": "2024-10-21",
}


def test_azure_headers_fill_the_credential_and_the_bearer_is_the_api_key() -> None:
    from imagegateway_server.api.rest_mapping import routing_spec

    spec = routing_spec({**_AZURE_HEADERS, "authorization": "Bearer azure-key"})
    assert spec.provider == "azure-openai"
    assert spec.provider_credential == {
        "api_key": "azure-key",
        "resource_name": "my-resource",
        "deployment_id": "dalle3",
        "api_version": "2024-10-21",
    }


def test_an_entra_token_header_wins_over_the_sdks_bearer() -> None:
    from imagegateway_server.api.rest_mapping import routing_spec

    spec = routing_spec({**_AZURE_HEADERS, "x-portkey-azure-ad-token": "entra", "authorization": "Bearer REDUNDANT"})
    assert spec.provider_credential["azure_ad_token"] == "entra"
    assert "api_key" not in spec.provider_credential


_AWS_HEADERS = {
    "x-portkey-provider": "bedrock",
    "x-portkey-aws-access-key-id": "AKIAIMAGEGWTEST00001",
    "x-portkey-aws-secret-access-key": "aws-secret",
    "x-portkey-aws-session-token": "aws-session",
    "x-portkey-aws-region": "us-east-1",
}


def test_portkeys_aws_headers_fill_the_credential_and_the_sdks_bearer_is_left_out() -> None:
    from imagegateway_server.api.rest_mapping import routing_spec

    spec = routing_spec({**_AWS_HEADERS, "authorization": "Bearer sk-REDUNDANT"})
    assert spec.provider_credential == {
        "aws_access_key_id": "AKIAIMAGEGWTEST00001",
        "aws_secret_access_key": "aws-secret",
        "aws_session_token": "aws-session",
        "aws_region": "us-east-1",
    }
    assert "aws-secret" not in repr(spec) and "aws-session" not in repr(spec)


def test_a_bedrock_api_key_rides_in_the_bearer_with_the_region_header() -> None:
    from imagegateway_server.api.rest_mapping import routing_spec

    spec = routing_spec(
        {"x-portkey-provider": "bedrock", "x-portkey-aws-region": "eu-west-1", "authorization": "Bearer k"}
    )
    assert spec.provider_credential == {"api_key": "k", "aws_region": "eu-west-1"}


def test_an_error_about_a_bare_providers_credential_field_names_its_header() -> None:
    import pytest

    from imagegateway_server.api.rest_mapping import routing_spec
    from imagegateway_server.domain.errors import InvalidArgument
    from imagegateway_server.providers.registry import credential_schema

    def param_of(headers: dict[str, str]) -> str | None:
        spec = routing_spec(headers)
        with pytest.raises(InvalidArgument) as caught:
            credential_schema(spec.provider or "").parse(
                spec.provider_credential,
                provider=spec.provider or "",
                param_prefix="provider_credential",
                param_names=spec.credential_params,
            )
        return caught.value.param

    no_region = {k: v for k, v in _AWS_HEADERS.items() if k != "x-portkey-aws-region"}
    assert param_of(no_region) == "x-portkey-aws-region"
    no_key_id = {k: v for k, v in _AWS_HEADERS.items() if k != "x-portkey-aws-access-key-id"}
    assert param_of(no_key_id) == "x-portkey-aws-access-key-id"
    assert param_of({**_AWS_HEADERS, "x-portkey-aws-region": "mars-1"}) == "x-portkey-aws-region"
    openai = {"x-portkey-provider": "openai", "x-portkey-aws-region": "us-east-1", "authorization": "Bearer sk"}
    assert param_of(openai) == "x-portkey-aws-region"
    assert param_of({"x-portkey-provider": "azure-openai", "authorization": "Bearer k"}) == (
        "x-portkey-azure-resource-name"
    )
