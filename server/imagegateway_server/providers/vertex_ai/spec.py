"""Vertex AI as the registry sees it: its name, hosts, base URL, prices, models and credential."""

from __future__ import annotations

from pathlib import Path

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.providers.kit.google_adapter import GoogleImageModel
from imagegateway_server.providers.kit.model_spec import ModelSpec
from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec
from imagegateway_server.providers.vertex_ai import PROVIDER
from imagegateway_server.providers.vertex_ai.adapter import (
    DEFAULT_BASE_URL,
    PROJECT_ID,
    PROJECT_ID_SHAPE,
    REGION,
    REGION_SHAPE,
    VertexAIAdapter,
)
from imagegateway_server.providers.vertex_ai.models import MODELS
from imagegateway_server.providers.vertex_ai.service_account import (
    GOOGLE_TOKEN_HOST,
    SERVICE_ACCOUNT_JSON,
    key_document_problem,
)

# Vertex AI's generative-AI locations (cloud.google.com/vertex-ai/generative-ai/docs/learn/locations):
# each serves https://{region}-aiplatform.googleapis.com.
REGIONS = (
    "us-central1", "us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west4",
    "northamerica-northeast1", "southamerica-east1", "europe-central2", "europe-north1",
    "europe-southwest1", "europe-west1", "europe-west2", "europe-west3", "europe-west4",
    "europe-west6", "europe-west8", "europe-west9", "asia-east1", "asia-east2", "asia-northeast1",
    "asia-northeast3", "asia-south1", "asia-southeast1", "australia-southeast1", "me-central1",
    "me-central2", "me-west1",
)  # fmt: skip


def model_spec(model: str) -> ModelSpec | None:
    table: GoogleImageModel | None = MODELS.get(model.strip().lower())
    return table.spec if table is not None else None


SPEC = ProviderSpec(
    name=PROVIDER,
    aliases=frozenset(),  # Portkey knows Vertex AI only as "vertex-ai"
    public_hosts=frozenset(
        {"aiplatform.googleapis.com", GOOGLE_TOKEN_HOST, *(f"{region}-aiplatform.googleapis.com" for region in REGIONS)}
    ),
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=VertexAIAdapter,
    credentials=CredentialSchema(
        (
            CredentialField(
                PROJECT_ID,
                secret=False,
                required=True,
                shape=PROJECT_ID_SHAPE,
                shape_hint="a Google Cloud project id (6-30 lower-case letters, digits and dashes)",
            ),
            CredentialField(
                REGION,
                secret=False,
                required=True,
                shape=REGION_SHAPE,
                shape_hint="a Vertex AI location such as us-central1 or global",
            ),
            CredentialField(SERVICE_ACCOUNT_JSON, secret=True, required=False, check=key_document_problem),
            # An OAuth access token the caller obtained itself (Portkey's apiKey for vertex-ai).
            CredentialField(API_KEY, secret=True, required=False),
        ),
        exactly_one_of=((SERVICE_ACCOUNT_JSON, API_KEY),),
    ),
    model_spec=model_spec,
    prices_file=Path(__file__).with_name("prices.json"),
    # Portkey's headers for a bare vertex-ai request (createHeaders(vertex_project_id=...)).
    credential_headers={
        "x-portkey-vertex-project-id": PROJECT_ID,
        "x-portkey-vertex-region": REGION,
        "x-portkey-vertex-service-account-json": SERVICE_ACCOUNT_JSON,
    },
)
