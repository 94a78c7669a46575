"""The Azure OpenAI Images adapter: OpenAI's wire format on a customer's resource and deployment.

The call is ``POST {base}/deployments/{deployment_id}/images/generations?api-version={api_version}``
(``/images/edits`` for an edit, as a multipart form; Azure has no variations)
where ``base`` is ``https://{resource_name}.openai.azure.com/openai``, or the target's
``custom_host`` (Portkey's meaning: it replaces that whole base), or the operator's base URL for the
provider. The credential is ``api_key`` (sent as ``api-key``) or ``azure_ad_token`` (an Entra ID
token, sent as ``Authorization: Bearer``), never both. The resource name, deployment and version
are checked before they are put in a URL, so no credential field can point the call elsewhere.

A 200 whose item is marked filtered by Azure's content filter is a CONTENT_POLICY failure, never an
image served; the filter annotations are not passed on.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.providers.azure_openai import PROVIDER
from imagegateway_server.providers.azure_openai.errors import classify_error, filtered
from imagegateway_server.providers.azure_openai.models import DEFAULT_MODEL, model_spec
from imagegateway_server.providers.kit.errors import Secrets, provider_error, refuse_parameter
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.model_spec import ModelSpec
from imagegateway_server.providers.kit.openai_images import PATHS
from imagegateway_server.providers.kit.openai_images_adapter import OpenAIImagesAdapter
from imagegateway_server.providers.kit.transport import UpstreamResponse

AZURE_AD_TOKEN = "azure_ad_token"
RESOURCE_NAME = "resource_name"
DEPLOYMENT_ID = "deployment_id"
API_VERSION = "api_version"

# The version Azure's gpt-image-1 documentation uses; it serves dall-e-3 too. The GA 2024-10-21
# serves dall-e-3 only.
DEFAULT_API_VERSION = "2025-04-01-preview"
_RESOURCE_PLACEHOLDER = "{resource_name}"
DEFAULT_BASE_URL = f"https://{_RESOURCE_PLACEHOLDER}.openai.azure.com/openai"

# Azure resource names are one DNS label; deployment names letters, digits, '.', '_' and '-'. The
# spec checks these when a config or virtual key is saved; the adapter again before building a URL.
RESOURCE_NAME_SHAPE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?")
DEPLOYMENT_ID_SHAPE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
API_VERSION_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,39}")


class AzureOpenAIAdapter(OpenAIImagesAdapter):
    """Generates images with an Azure OpenAI deployment."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    def model_spec(self, model: str) -> ModelSpec | None:
        return model_spec(model)

    def operations(self, model: str) -> frozenset[Operation]:
        # Azure OpenAI serves generations and edits; it never offered variations.
        return self.family_operations(model) - {Operation.VARIATION}

    def endpoint(self, target: UpstreamTarget) -> str:
        return self.operation_endpoint(target, Operation.GENERATE)

    def operation_endpoint(self, target: UpstreamTarget, operation: Operation) -> str:
        credential = target.credential
        base = (target.base_url or self._base_url).rstrip("/")
        if _RESOURCE_PLACEHOLDER in base:
            base = base.replace(_RESOURCE_PLACEHOLDER, _checked(credential.value(RESOURCE_NAME), RESOURCE_NAME))
        deployment = _checked(credential.value(DEPLOYMENT_ID), DEPLOYMENT_ID)
        version = _checked(credential.value(API_VERSION) or DEFAULT_API_VERSION, API_VERSION)
        path = PATHS[operation]
        return f"{base}/deployments/{quote(deployment, safe='')}/{path}?api-version={quote(version)}"

    def auth_headers(self, target: UpstreamTarget) -> dict[str, str]:
        token = target.credential.value(AZURE_AD_TOKEN)
        if token:
            return {"Authorization": f"Bearer {token}"}
        return {"api-key": target.credential.value(API_KEY) or ""}

    def classify_error(self, response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
        return classify_error(response, secret=secret)

    def check_item(self, item: dict[str, object], secret: Secrets) -> None:
        if filtered(item.get("content_filter_results")):
            raise provider_error(
                self.name,
                ErrorKind.CONTENT_POLICY,
                f"{self.name}: the content filter marked a generated image as filtered",
                secret=secret,
                status_code=400,
                code="content_filter",
            )


def _checked(value: str | None, field: str) -> str:
    """A credential field that goes into the URL, refused unless it has the shape Azure gives it."""
    pattern = {RESOURCE_NAME: RESOURCE_NAME_SHAPE, DEPLOYMENT_ID: DEPLOYMENT_ID_SHAPE, API_VERSION: API_VERSION_SHAPE}[
        field
    ]
    if not value or not pattern.fullmatch(value) or (field == DEPLOYMENT_ID and set(value) <= {"."}):
        raise refuse_parameter(PROVIDER, field, "is not a valid Azure OpenAI value")
    return value
