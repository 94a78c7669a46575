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
