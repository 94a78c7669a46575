"""Fireworks AI as the registry sees it: its names, public host, base URL, prices, models and credential."""

from __future__ import annotations

from pathlib import Path

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.providers.fireworks import PROVIDER
from imagegateway_server.providers.fireworks.adapter import DEFAULT_BASE_URL, FireworksAdapter
from imagegateway_server.providers.fireworks.models import model_spec
from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec

SPEC = ProviderSpec(
    name=PROVIDER,
    aliases=frozenset({"fireworks", "fireworksai", "fireworks_ai"}),
    public_hosts=frozenset({"api.fireworks.ai"}),
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=FireworksAdapter,
    credentials=CredentialSchema((CredentialField(API_KEY, secret=True, required=True),)),
    model_spec=model_spec,
    prices_file=Path(__file__).with_name("prices.json"),
)
