"""The one small interface the router knows providers by: an adapter, and the target it calls."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import ImageResult


@dataclasses.dataclass(frozen=True, slots=True)
class UpstreamTarget:
    """Everything an adapter needs to reach one provider account.

    ``api_key`` is the decrypted provider secret; ``base_url`` overrides the provider's public
    base URL (already checked against the allow list); ``timeout`` bounds this one attempt in
    seconds (None: the adapter's default); ``headers`` are extra headers to forward. ``strict``
    (the target's or the request's ``strict``, as the router decided) makes the adapter refuse any
    parameter it would otherwise translate to fit the model (see ``kit/translation.py``).
    """

    api_key: str
    base_url: str | None = None
    timeout: float | None = None
    # A mappingproxy is unhashable, so dataclasses refuse it as a plain default.
    headers: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    trace_id: str | None = None
    strict: bool = False


class ProviderAdapter(Protocol):
    """Maps an ImageRequest to one provider's HTTP API and its answer back.

    ``generate`` returns an ImageResult or raises a classified ProviderError; it never raises
    anything else for an upstream problem (bad status, non-JSON body, reset, timeout, DNS error).
    A parameter the provider cannot honour raises ProviderError(BAD_REQUEST) naming it, before
    any HTTP call is made; one it can honour only after translation is translated (and listed in
    ``ImageResult.translations``) unless ``target.strict`` says to refuse it instead. Each image
    of the result names the provider, model and size that produced it.
    """

    name: str

    def default_model(self) -> str:
        """The model used when neither the caller nor the config names one."""
        ...

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        """Generates ``request.n`` images on the target."""
        ...

    async def aclose(self) -> None:
        """Closes the adapter's HTTP client."""
        ...
