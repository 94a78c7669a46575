"""The provider registry: the provider folders found under ``providers/``, their names, and their adapters.

Every subpackage of ``providers`` but the kit is one provider, and its ``spec`` module exposes its
``ProviderSpec`` as ``SPEC``. They are discovered once, at import, so adding a provider is adding
its folder: its names, aliases, public hosts and prices reach the rest of the gateway from here.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from collections.abc import Callable, Mapping
from types import MappingProxyType, ModuleType

from imagegateway_server import providers
from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.providers.kit.bodies import DEFAULT_MAX_BODY_BYTES
from imagegateway_server.providers.kit.interface import ProviderAdapter
from imagegateway_server.providers.kit.model_aliases import NO_ALIASES, ModelAliases
from imagegateway_server.providers.kit.spec import CredentialSchema, ProviderSpec
from imagegateway_server.providers.kit.transport import UpstreamClient

_log = logging.getLogger(__name__)

_KIT = "kit"  # the shared provider kit: the one subpackage that is not a provider
SPEC_MODULE = "spec"


def discover_providers(package: ModuleType = providers) -> Mapping[str, ProviderSpec]:
    """The ``SPEC`` of every provider folder in ``package``, by canonical name, in name order.

    Raises ValueError for a folder without a ``spec`` module or ``SPEC``, or two providers claiming
    one name or spelling: a half-added provider stops the process instead of vanishing.
    """
    specs: dict[str, ProviderSpec] = {}
    owner: dict[str, str] = {}
    for folder in sorted(pkgutil.iter_modules(package.__path__), key=lambda info: info.name):
        if not folder.ispkg or folder.name == _KIT:
            continue
        where = f"{package.__name__}.{folder.name}"
        try:
            module = importlib.import_module(f"{where}.{SPEC_MODULE}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{where}.{SPEC_MODULE}":
                raise
            raise ValueError(f"provider folder {where} has no {SPEC_MODULE} module declaring SPEC") from None
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, ProviderSpec):
            raise ValueError(f"{where}.{SPEC_MODULE}.SPEC must be a ProviderSpec")
        for spelling in sorted(spec.spellings):
            if spelling in owner:
                raise ValueError(f"providers {owner[spelling]!r} and {spec.name!r} both answer to {spelling!r}")
            owner[spelling] = spec.name
        specs[spec.name] = spec
    return MappingProxyType(specs)


PROVIDER_SPECS: Mapping[str, ProviderSpec] = discover_providers()

# Every spelling a provider answers to (Portkey's included), lower-cased, mapped to its canonical name.
_ALIASES: Mapping[str, str] = MappingProxyType(
    {spelling: spec.name for spec in PROVIDER_SPECS.values() for spelling in spec.spellings}
)

IMAGE_PROVIDERS: frozenset[str] = frozenset(PROVIDER_SPECS)


def canonical_provider(name: str) -> str:
    """The canonical name for a provider spelling (case-insensitive); InvalidArgument naming ``provider``."""
    canonical = _ALIASES.get(name.strip().lower())
    if canonical is None:
        raise InvalidArgument(
            f"unknown image provider {name!r}; expected one of {', '.join(sorted(IMAGE_PROVIDERS))}",
            param="provider",
        )
    return canonical


def credential_schema(name: str) -> CredentialSchema:
    """The credential schema of a provider (any spelling); InvalidArgument naming ``provider`` if unknown."""
    return PROVIDER_SPECS[canonical_provider(name)].credentials


# Portkey's headers that carry a bare provider's credential fields, with the field each fills in,
# and the fields among them that are a secret standing in for an API key (an Entra token): sent
# one, the request's ``Authorization`` is only the OpenAI SDK's and is not the provider's key.
CREDENTIAL_HEADERS: Mapping[str, str] = MappingProxyType(
    {header: field for spec in PROVIDER_SPECS.values() for header, field in spec.credential_headers.items()}
)
KEYLESS_CREDENTIAL_FIELDS: frozenset[str] = frozenset(
    field
    for spec in PROVIDER_SPECS.values()
    for field in spec.credential_headers.values()
    if field in spec.credentials.secret_names and field != API_KEY
)


def public_provider_hosts() -> frozenset[str]:
    """The host names of every provider's public API."""
    return frozenset(host for spec in PROVIDER_SPECS.values() for host in spec.public_hosts)


class ProviderRegistry:
    """The adapters this process serves, by canonical provider name."""

    def __init__(self, adapters: Mapping[str, ProviderAdapter]) -> None:
        self._adapters: dict[str, ProviderAdapter] = {}
        for name, adapter in adapters.items():
            self._adapters[canonical_provider(name)] = adapter

    @property
    def names(self) -> frozenset[str]:
        """Canonical names of the providers with an adapter."""
        return frozenset(self._adapters)

    def get(self, name: str) -> ProviderAdapter:
        """The adapter for any spelling of a provider; InvalidArgument naming ``provider`` if none."""
        canonical = canonical_provider(name)
        adapter = self._adapters.get(canonical)
        if adapter is None:
            raise InvalidArgument(f"provider {canonical!r} is not enabled on this gateway", param="provider")
        return adapter

    async def aclose(self) -> None:
        """Closes every adapter; one failing to close does not keep the others open."""
        results = await asyncio.gather(
            *(adapter.aclose() for adapter in self._adapters.values()), return_exceptions=True
        )
        for name, result in zip(self._adapters, results, strict=True):
            if isinstance(result, BaseException):
                _log.warning("closing the %s adapter failed: %r", name, result)


def default_registry(
    *,
    base_urls: Mapping[str, str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    client_factory: Callable[[], UpstreamClient] = UpstreamClient,
    model_aliases: ModelAliases = NO_ALIASES,
) -> ProviderRegistry:
    """A registry with an adapter for every discovered provider.

    ``base_urls`` overrides a provider's default base URL, keyed by any spelling of its name (an
    unknown name is InvalidArgument naming ``provider``). ``client_factory`` makes each adapter's
    own upstream client (the process passes the SSRF-guarded one); ``model_aliases`` is the enabled
    alias table (``kit.model_aliases.load_model_aliases``).
    """
    overrides = {canonical_provider(name): url for name, url in (base_urls or {}).items()}
    return ProviderRegistry(
        {
            spec.name: spec.make_adapter(
                base_url=overrides.get(spec.name, spec.default_base_url),
                client=client_factory(),
                max_body_bytes=max_body_bytes,
                aliases=model_aliases,
            )
            for spec in PROVIDER_SPECS.values()
        }
    )
