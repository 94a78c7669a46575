"""gRPC's ``Routing.provider_credential`` over real sockets: any provider's typed fields for a bare provider."""

from __future__ import annotations

import pytest

from imagegateway import ImageGatewayClient, ImageGatewayError
from tests.conftest import AZURE_SECRET, OPENAI_SECRET, Emulators


def test_azure_resource_and_deployment_travel_in_provider_credential(
    admin: ImageGatewayClient, emulators: Emulators
) -> None:
    response = admin.generate_image(
        prompt="a lighthouse",
        model="dall-e-3",
        provider="azure-openai",
        provider_api_key=AZURE_SECRET,
        provider_credential={"resource_name": "my-resource", "deployment_id": "dalle3", "api_version": "2024-10-21"},
        custom_host=emulators.azure.base_url,
    )
    assert response.images[0].provider == "azure-openai"
    sent = emulators.azure.requests[-1]
    assert sent.path == "/openai/deployments/dalle3/images/generations" and sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == AZURE_SECRET


def test_the_api_key_may_travel_in_the_map_too(admin: ImageGatewayClient, emulators: Emulators) -> None:
    response = admin.generate_image(
        prompt="a lighthouse",
        model="dall-e-2",
        provider="openai",
        provider_credential={"api_key": OPENAI_SECRET},
        custom_host=emulators.openai.base_url,
    )
    assert response.images[0].provider == "openai"


@pytest.mark.parametrize(
    ("routing", "param"),
    [
        ({"provider": "azure-openai", "provider_api_key": AZURE_SECRET}, "provider_credential.resource_name"),
        (
            {"provider": "openai", "provider_api_key": OPENAI_SECRET, "provider_credential": {"region": "x"}},
            "provider_credential.region",
        ),
        (
            {"provider": "openai", "provider_credential": {"api_key": "a"}, "provider_api_key": "b"},
            "provider_credential.api_key",
        ),
        ({"virtual_key": "vk-none", "provider_credential": {"aws_region": "us-east-1"}}, "provider_credential"),
    ],
)
def test_a_bad_provider_credential_is_invalid_argument_naming_the_field(
    admin: ImageGatewayClient, emulators: Emulators, routing: dict[str, object], param: str
) -> None:
    with pytest.raises(ImageGatewayError) as refused:
        admin.generate_image(prompt="a lighthouse", **routing)  # type: ignore[arg-type]
    assert refused.value.code.name == "INVALID_ARGUMENT"
    assert refused.value.error_info is not None
    assert param in str(refused.value)
    assert AZURE_SECRET not in str(refused.value) and OPENAI_SECRET not in str(refused.value)
    assert not emulators.azure.requests and not emulators.openai.requests
