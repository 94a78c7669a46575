"""The Gemini API as the registry sees it: its name, public host, base URL, prices, models and credential."""

from __future__ import annotations

from pathlib import Path

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.providers.google import PROVIDER
from imagegateway_server.providers.google.adapter import DEFAULT_BASE_URL, GeminiApiAdapter
from imagegateway_server.providers.google.models import MODELS
from imagegateway_server.providers.kit.google_adapter import GoogleImageModel
from imagegateway_server.providers.kit.model_spec import ModelSpec
from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec


def model_spec(model: str) -> ModelSpec | None:
    table: GoogleImageModel | None = MODELS.get(model.strip().lower())
    return table.spec if table is not None else None


SPEC = ProviderSpec(
    name=PROVIDER,
    aliases=frozenset(),  # Portkey knows the Gemini API only as "google"
    public_hosts=frozenset({"generativelanguage.googleapis.com"}),
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=GeminiApiAdapter,
    credentials=CredentialSchema((CredentialField(API_KEY, secret=True, required=True),)),
    model_spec=model_spec,
    prices_file=Path(__file__).with_name("prices.json"),
)
