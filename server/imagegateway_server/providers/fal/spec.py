"""fal as the registry sees it: its names, queue host, base URL, prices, models and credential."""

from __future__ import annotations

from pathlib import Path

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.providers.fal import PROVIDER
from imagegateway_server.providers.fal.adapter import DEFAULT_BASE_URL, FalAdapter
from imagegateway_server.providers.fal.hosts import API_HOSTS
from imagegateway_server.providers.fal.models import model_spec
from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec

SPEC = ProviderSpec(
    name=PROVIDER,
    aliases=frozenset({"fal", "falai", "fal_ai", "fal.ai"}),
    public_hosts=frozenset(API_HOSTS),
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=FalAdapter,
    credentials=CredentialSchema((CredentialField(API_KEY, secret=True, required=True),)),
    model_spec=model_spec,
    prices_file=Path(__file__).with_name("prices.json"),
)
