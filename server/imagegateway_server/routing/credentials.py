"""Resolves a plan leaf to the provider account it reaches (virtual key or inline key)."""

from __future__ import annotations

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.routing.plan import Leaf
from imagegateway_server.routing.router import ResolvedCredentials
from imagegateway_server.security.virtual_keys import VirtualKeyService


class VaultCredentialResolver:
    """Decrypts virtual keys through the VirtualKeyService; inline keys pass as they are."""

    def __init__(self, virtual_keys: VirtualKeyService) -> None:
        self._virtual_keys = virtual_keys

    async def resolve(self, leaf: Leaf) -> ResolvedCredentials:
        if leaf.virtual_key:
            key = await self._virtual_keys.resolve(leaf.virtual_key)
            return ResolvedCredentials(provider=key.provider, api_key=key.secret,
                                       base_url=leaf.custom_host or key.base_url)
        if not leaf.api_key:
            raise InvalidArgument("the target has neither a virtual_key nor an api_key", param="api_key")
        return ResolvedCredentials(provider=leaf.provider, api_key=leaf.api_key, base_url=leaf.custom_host)
