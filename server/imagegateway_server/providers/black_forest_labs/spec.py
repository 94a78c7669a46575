"""Black Forest Labs as the registry sees it: its names, API hosts, base URL, prices, models and credential."""

from __future__ import annotations

from pathlib import Path

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.providers.black_forest_labs import PROVIDER
from imagegateway_server.providers.black_forest_labs.adapter import DEFAULT_BASE_URL, BlackForestLabsAdapter
from imagegateway_server.providers.black_forest_labs.hosts import API_HOSTS
from imagegateway_server.providers.black_forest_labs.models import model_spec
from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema, ProviderSpec

SPEC = ProviderSpec(
    name=PROVIDER,
    aliases=frozenset({"bfl", "blackforestlabs", "black_forest_labs"}),
    public_hosts=frozenset(API_HOSTS),
    default_base_url=DEFAULT_BASE_URL,
    make_adapter=BlackForestLabsAdapter,
    credentials=CredentialSchema((CredentialField(API_KEY, secret=True, required=True),)),
    model_spec=model_spec,
    prices_file=Path(__file__).with_name("prices.json"),
)
