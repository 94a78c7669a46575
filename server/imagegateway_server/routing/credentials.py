"""Resolves a plan leaf to the provider account it reaches (virtual key or inline credential)."""

from __future__ import annotations

from imagegateway_server.domain.credentials import ResolvedCredentials
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.routing.plan import Leaf
from imagegateway_server.security.virtual_keys import VirtualKeyService


class VaultCredentialResolver:
    """Decrypts virtual keys through the VirtualKeyService; inline credentials pass as they are."""

    def __init__(self, virtual_keys: VirtualKeyService) -> None:
        self._virtual_keys = virtual_keys

    async def resolve(self, leaf: Leaf) -> ResolvedCredentials:
        if leaf.virtual_key:
            key = await self._virtual_keys.resolve(leaf.virtual_key)
            return ResolvedCredentials(
                provider=key.provider, credential=key.credential, base_url=leaf.custom_host or key.base_url
            )
        if leaf.credential is None:
            raise InvalidArgument("the target has neither a virtual_key nor an api_key", param="api_key")
        return ResolvedCredentials(provider=leaf.provider, credential=leaf.credential, base_url=leaf.custom_host)
