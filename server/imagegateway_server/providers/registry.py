"""The provider registry: canonical provider names, their aliases, and the adapter serving each."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.providers import openai, stability
from imagegateway_server.providers.base import ProviderAdapter
from imagegateway_server.providers.http import DEFAULT_MAX_BODY_BYTES, UpstreamClient
from imagegateway_server.providers.model_aliases import NO_ALIASES, ModelAliases

_log = logging.getLogger(__name__)

OPENAI = "openai"
STABILITY_AI = "stability-ai"

# Every spelling Portkey accepts for a provider, lower-cased, mapped to our canonical name.
_ALIASES: Mapping[str, str] = MappingProxyType({
    "openai": OPENAI,
    "open-ai": OPENAI,
    "open_ai": OPENAI,
    "stability-ai": STABILITY_AI,
    "stabilityai": STABILITY_AI,
    "stability": STABILITY_AI,
    "stability_ai": STABILITY_AI,
})

IMAGE_PROVIDERS: frozenset[str] = frozenset(_ALIASES.values())


def canonical_provider(name: str) -> str:
    """The canonical name for a provider spelling (case-insensitive); InvalidArgument naming ``provider``."""
    canonical = _ALIASES.get(name.strip().lower())
    if canonical is None:
        raise InvalidArgument(
            f"unknown image provider {name!r}; expected one of {', '.join(sorted(IMAGE_PROVIDERS))}",
            param="provider",
        )
    return canonical


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
    openai_base_url: str = openai.DEFAULT_BASE_URL,
    stability_base_url: str = stability.DEFAULT_BASE_URL,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    client_factory: Callable[[], UpstreamClient] = UpstreamClient,
    model_aliases: ModelAliases = NO_ALIASES,
) -> ProviderRegistry:
    """A registry with every built-in adapter.

    ``client_factory`` makes each adapter's own upstream client (the process passes the SSRF-guarded
    one); ``model_aliases`` is the enabled alias table (``model_aliases.load_model_aliases``).
    """
    return ProviderRegistry({
        OPENAI: openai.OpenAIAdapter(
            base_url=openai_base_url, client=client_factory(), max_body_bytes=max_body_bytes,
            aliases=model_aliases,
        ),
        STABILITY_AI: stability.StabilityAdapter(
            base_url=stability_base_url, client=client_factory(), max_body_bytes=max_body_bytes,
            aliases=model_aliases,
        ),
    })
