"""The base class of HTTP adapters: each owns its pooled client, base URL, body cap and model aliases."""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.bodies import DEFAULT_MAX_BODY_BYTES
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.model_aliases import NO_ALIASES, ModelAliases
from imagegateway_server.providers.kit.model_spec import SpecOf
from imagegateway_server.providers.kit.translation import Translation, translate
from imagegateway_server.providers.kit.transport import UpstreamClient, UpstreamResponse

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

    def translation(self, request: ImageRequest, target: UpstreamTarget, spec_of: SpecOf) -> Translation:
        """``request`` translated for its model (this adapter's default when it names none) by the tables
        ``spec_of`` gives, in ``target``'s strict mode and with the operator's model aliases."""
        return translate(
            request,
            provider=self.name,
            model=request.model or self.default_model_name,
            spec_of=spec_of,
            strict=target.strict,
            aliases=self._aliases,
        )

    async def send(self, method: str, url: str, target: UpstreamTarget, **kwargs: Any) -> UpstreamResponse:
        """One call on this adapter's client within ``target``'s attempt timeout, its answer under the body cap."""
        return await self._client.send(
            method,
            url,
            provider=self.name,
            attempt_seconds=target.timeout,
            max_body_bytes=self._max_body_bytes,
            **kwargs,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
