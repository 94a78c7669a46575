"""Azure OpenAI as the registry sees it: its name, resource hosts, base URL, prices, models and credential."""

from __future__ import annotations

from pathlib import Path

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.providers.azure_openai import PROVIDER
from imagegateway_server.providers.azure_openai.adapter import (
    API_VERSION,
    API_VERSION_SHAPE,
    AZURE_AD_TOKEN,
    DEFAULT_BASE_URL,
    DEPLOYMENT_ID,
    DEPLOYMENT_ID_SHAPE,
    RESOURCE_NAME,
    RESOURCE_NAME_SHAPE,
    AzureOpenAIAdapter,
)
from imagegateway_server.providers.azure_openai.models import model_spec
from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec

SPEC = ProviderSpec(
    name=PROVIDER,
    aliases=frozenset(),  # Portkey knows Azure OpenAI only as "azure-openai" ("azure-ai" is another service)
    public_hosts=frozenset({"*.openai.azure.com"}),  # one host per customer resource
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=AzureOpenAIAdapter,
    credentials=CredentialSchema(
        (
            CredentialField(API_KEY, secret=True, required=False),
            CredentialField(AZURE_AD_TOKEN, secret=True, required=False),
            CredentialField(
                RESOURCE_NAME,
                secret=False,
                required=True,
                shape=RESOURCE_NAME_SHAPE,
                shape_hint="an Azure resource name (letters, digits and inner dashes, at most 64)",
            ),
            CredentialField(
                DEPLOYMENT_ID,
                secret=False,
                required=True,
                shape=DEPLOYMENT_ID_SHAPE,
                shape_hint="an Azure deployment name (letters, digits, '.', '_' and '-', at most 64)",
            ),
            CredentialField(  # default: adapter.DEFAULT_API_VERSION
                API_VERSION,
                secret=False,
                required=False,
                shape=API_VERSION_SHAPE,
                shape_hint="an api-version such as 2025-04-01-preview",
            ),
        ),
        exactly_one_of=((API_KEY, AZURE_AD_TOKEN),),
    ),
    model_spec=model_spec,
    prices_file=Path(__file__).with_name("prices.json"),
    # Portkey's headers for a bare azure-openai request (createHeaders(azure_resource_name=...)).
    credential_headers={
        "x-portkey-azure-resource-name": RESOURCE_NAME,
        "x-portkey-azure-deployment-id": DEPLOYMENT_ID,
        "x-portkey-azure-api-version": API_VERSION,
        "x-portkey-azure-ad-token": AZURE_AD_TOKEN,
    },
)
