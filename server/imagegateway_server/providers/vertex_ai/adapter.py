"""The Vertex AI adapter: ``{base}/v1/projects/{project}/locations/{region}/publishers/google/models/{model}:{method}``.

``base`` is ``https://{region}-aiplatform.googleapis.com`` (``https://aiplatform.googleapis.com`` for
the ``global`` location), or the target's ``custom_host`` (Portkey's meaning: it replaces that
whole base). The call carries ``Authorization: Bearer`` with an access token: the one given as
``api_key``, or one exchanged for the ``vertex_service_account_json`` key (``service_account``),
cached and, when Vertex answers 401 to it, fetched afresh and the call sent once more. The project
and region are checked before they are put in a URL, so no credential field can point the call
elsewhere.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.providers.kit.bodies import DEFAULT_MAX_BODY_BYTES
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.kit.google_adapter import Authorization, GoogleImagesAdapter
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.model_aliases import NO_ALIASES, ModelAliases
from imagegateway_server.providers.kit.transport import UpstreamClient
from imagegateway_server.providers.vertex_ai import PROVIDER
from imagegateway_server.providers.vertex_ai.models import DEFAULT_MODEL, MODELS
from imagegateway_server.providers.vertex_ai.service_account import SERVICE_ACCOUNT_JSON, AccessTokens

PROJECT_ID = "vertex_project_id"
REGION = "vertex_region"
GLOBAL_REGION = "global"
_REGION_PLACEHOLDER = "{region}"
DEFAULT_BASE_URL = f"https://{_REGION_PLACEHOLDER}-aiplatform.googleapis.com"
GLOBAL_BASE_URL = "https://aiplatform.googleapis.com"

# Project ids: 6-30 lower-case letters, digits and dashes, starting with a letter (older ones may
# carry a "domain:" prefix). Regions: us-central1, europe-west4, global...
PROJECT_ID_SHAPE = re.compile(r"(?:[a-z][a-z0-9.-]{0,62}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
REGION_SHAPE = re.compile(r"[a-z]+(?:-[a-z0-9]+){0,3}")


class VertexAIAdapter(GoogleImagesAdapter):
    """Generates images with Imagen and Gemini models on a Vertex AI project and region."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL
    models = MODELS
    vertex = True

    def __init__(
        self,
        *,
        base_url: str | None = None,
        client: UpstreamClient | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        aliases: ModelAliases = NO_ALIASES,
    ) -> None:
        super().__init__(base_url=base_url, client=client, max_body_bytes=max_body_bytes, aliases=aliases)
        # Token requests go out on the adapter's own client, under the same SSRF guard.
        self.tokens = AccessTokens(self._client)

    def model_url(self, target: UpstreamTarget, model: str, method: str) -> str:
        credential = target.credential
        project = _checked(credential.value(PROJECT_ID), PROJECT_ID)
        region = _checked(credential.value(REGION), REGION)
        base = (target.base_url or self._base_url).rstrip("/")
        if _REGION_PLACEHOLDER in base:
            base = GLOBAL_BASE_URL if region == GLOBAL_REGION else base.replace(_REGION_PLACEHOLDER, region)
        return (
            f"{base}/v1/projects/{quote(project, safe=':')}/locations/{region}"
            f"/publishers/google/models/{quote(model, safe='.-_')}:{method}"
        )

    async def authorize(self, target: UpstreamTarget) -> Authorization:
        credential = target.credential
        if credential.value(SERVICE_ACCOUNT_JSON):
            token = await self.tokens.token(credential, attempt_seconds=target.timeout)
        else:
            token = credential.value(API_KEY) or ""  # an access token the caller got itself
        return Authorization({"Authorization": f"Bearer {token}"}, token, self.tokens.secrets_of(credential))

    async def reauthorize(self, target: UpstreamTarget, rejected: Authorization) -> Authorization | None:
        if not target.credential.value(SERVICE_ACCOUNT_JSON):
            return None  # a token given as api_key cannot be refreshed here
        self.tokens.forget(target.credential, rejected.token)
        return await self.authorize(target)


def _checked(value: str | None, field: str) -> str:
    """A credential field that goes into the URL, refused unless it has the shape Google gives it."""
    pattern = PROJECT_ID_SHAPE if field == PROJECT_ID else REGION_SHAPE
    if not value or not pattern.fullmatch(value):
        raise refuse_parameter(PROVIDER, field, "is not a valid Vertex AI value")
    return value
