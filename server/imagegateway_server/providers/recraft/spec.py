"""Recraft as the registry sees it: its names, public host, base URL, prices, models and credential."""

from __future__ import annotations

from pathlib import Path

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec
from imagegateway_server.providers.recraft import PROVIDER
from imagegateway_server.providers.recraft.adapter import DEFAULT_BASE_URL, RecraftAdapter
from imagegateway_server.providers.recraft.models import model_spec

SPEC = ProviderSpec(
    name=PROVIDER,
    aliases=frozenset({"recraft", "recraftai"}),
    public_hosts=frozenset({"external.api.recraft.ai"}),
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=RecraftAdapter,
    credentials=CredentialSchema((CredentialField(API_KEY, secret=True, required=True),)),
    model_spec=model_spec,
    prices_file=Path(__file__).with_name("prices.json"),
)
