"""Stability AI as the registry sees it: its names, public host, base URL, prices, models and credential."""

from __future__ import annotations

from pathlib import Path

from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec
from imagegateway_server.providers.stability import PROVIDER
from imagegateway_server.providers.stability.adapter import DEFAULT_BASE_URL, StabilityAdapter
from imagegateway_server.providers.stability.models import model_spec

SPEC = ProviderSpec(
    name=PROVIDER,
    aliases=frozenset({"stabilityai", "stability", "stability_ai"}),  # Portkey's spellings
    public_hosts=frozenset({"api.stability.ai"}),
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=StabilityAdapter,
    credentials=CredentialSchema((CredentialField("api_key", secret=True, required=True),)),
    model_spec=model_spec,
    prices_file=Path(__file__).with_name("prices.json"),
)
