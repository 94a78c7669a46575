"""OpenAI as the registry sees it: its names, public host, base URL, prices, models and credential."""

from __future__ import annotations

from pathlib import Path

from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec
from imagegateway_server.providers.openai import PROVIDER
from imagegateway_server.providers.openai.adapter import DEFAULT_BASE_URL, OpenAIAdapter
from imagegateway_server.providers.openai.models import model_spec

SPEC = ProviderSpec(
    name=PROVIDER,
    aliases=frozenset({"open-ai", "open_ai"}),  # Portkey's spellings
    public_hosts=frozenset({"api.openai.com"}),
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=OpenAIAdapter,
    credentials=CredentialSchema((CredentialField("api_key", secret=True, required=True),)),
    model_spec=model_spec,
    prices_file=Path(__file__).with_name("prices.json"),
)
