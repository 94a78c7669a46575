"""Together AI as the registry sees it: its names, public hosts, base URL, prices, models and credential."""

from __future__ import annotations

from pathlib import Path

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec
from imagegateway_server.providers.together import PROVIDER
from imagegateway_server.providers.together.adapter import DEFAULT_BASE_URL, TogetherAdapter
from imagegateway_server.providers.together.models import model_spec

SPEC = ProviderSpec(
    name=PROVIDER,
    aliases=frozenset({"together", "togetherai", "together_ai"}),
    # Together's spec now names api.together.ai; api.together.xyz (the default) still serves.
    public_hosts=frozenset({"api.together.xyz", "api.together.ai"}),
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=TogetherAdapter,
    credentials=CredentialSchema((CredentialField(API_KEY, secret=True, required=True),)),
    model_spec=model_spec,
    prices_file=Path(__file__).with_name("prices.json"),
)
