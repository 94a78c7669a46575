"""The base class of HTTP adapters: each owns its pooled client, base URL, body cap and model aliases."""

from __future__ import annotations

from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.providers.kit.bodies import DEFAULT_MAX_BODY_BYTES
from imagegateway_server.providers.kit.model_aliases import NO_ALIASES, ModelAliases
from imagegateway_server.providers.kit.transport import UpstreamClient

GENERATE_ONLY = frozenset({Operation.GENERATE})


class HttpAdapterBase:
    """What every HTTP adapter shares: its own pooled client, base URL, body cap and model aliases.

    Subclasses set ``name``, ``default_base_url`` and ``default_model_name`` and implement ``generate``.
    """

    name: str
    default_base_url: str
    default_model_name: str

    def __init__(
        self,
        *,
        base_url: str | None = None,
        client: UpstreamClient | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        aliases: ModelAliases = NO_ALIASES,
    ) -> None:
        self._base_url = (base_url or self.default_base_url).rstrip("/")
        self._client = client if client is not None else UpstreamClient()
        self._max_body_bytes = max_body_bytes
        self._aliases = aliases

    def default_model(self) -> str:
        return self.default_model_name

    def operations(self, model: str) -> frozenset[Operation]:
        """Generation only, unless the provider's adapter says it can edit or vary (``ProviderAdapter``)."""
        return GENERATE_ONLY

    async def aclose(self) -> None:
        await self._client.aclose()
