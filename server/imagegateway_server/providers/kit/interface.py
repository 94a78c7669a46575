"""The one small interface the router knows providers by: an adapter, and the target it calls."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.job_progress import JobProgress
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import ImageResult
from imagegateway_server.providers.kit.progress import AttemptEvents


@dataclasses.dataclass(frozen=True, slots=True)
class UpstreamTarget:
    """Everything an adapter needs to reach one provider account.

    ``credential`` is the provider account's credential, secrets decrypted (the adapter reads the
    fields its provider's schema declares, and scrubs ``credential.secret_values()`` from every
    message it builds); ``base_url`` overrides the provider's public
    base URL (already checked against the allow list); ``timeout`` bounds this one attempt in
    seconds (None: the adapter's default); ``headers`` are extra headers to forward. ``strict``
    (the target's or the request's ``strict``, as the router decided) makes the adapter refuse any
    parameter it would otherwise translate to fit the model (see ``kit/translation.py``).
    ``jobs`` is where an asynchronous provider counts its polls and wait (the router logs them with
    the attempt); ``events`` is where the attempt reports progress (a job queued or running) and
    partial images to a streaming caller (``kit/progress.py``), None when nobody listens.
    """

    credential: Credential
    base_url: str | None = None
    timeout: float | None = None
    # A mappingproxy is unhashable, so dataclasses refuse it as a plain default.
    headers: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    trace_id: str | None = None
    strict: bool = False
    jobs: JobProgress | None = None
    events: AttemptEvents | None = None

    def __repr__(self) -> str:
        return (
            f"UpstreamTarget({self.credential!r}, base_url={self.base_url}, timeout={self.timeout}, "
            f"headers={sorted(self.headers)}, trace_id={self.trace_id}, strict={self.strict})"
        )


class ProviderAdapter(Protocol):
    """Maps an ImageRequest to one provider's HTTP API and its answer back.

    ``generate`` returns an ImageResult or raises a classified ProviderError; it never raises
    anything else for an upstream problem (bad status, non-JSON body, reset, timeout, DNS error).
    A parameter the provider cannot honour raises ProviderError(BAD_REQUEST) naming it, before
    any HTTP call is made; one it can honour only after translation is translated (and listed in
    ``ImageResult.translations``) unless ``target.strict`` says to refuse it instead. Each image
    of the result names the provider, model and size that produced it.

    ``generate`` serves the request's ``operation``: a generation, an edit of ``request.images``
    under ``request.mask`` (OpenAI's mask: alpha 0 marks the area to repaint), or a variation of
    ``request.images[0]``. ``operations(model)`` says which of them the adapter can do with a model;
    the router never hands an adapter an operation it does not list, and skips the target instead.
    """

    name: str

    def default_model(self) -> str:
        """The model used when neither the caller nor the config names one."""
        ...

    def operations(self, model: str) -> frozenset[Operation]:
        """What the adapter can do with ``model``: generation always; edits and variations where the API has them."""
        ...

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        """Makes ``request.n`` images on the target by the request's operation."""
        ...

    async def aclose(self) -> None:
        """Closes the adapter's HTTP client."""
        ...


@runtime_checkable
class PartialImageStreaming(Protocol):
    """An adapter that can stream partial images for some models.

    For a request with ``stream`` set, on a model for which ``streams`` says True, ``generate``
    asks the provider to stream, reports each partial image to ``target.events`` as it arrives,
    and returns the final images as usual. The router never sends ``stream`` to any other adapter.
    """

    def streams(self, model: str) -> bool:
        """Whether ``model`` answers with streamed partial images, for every operation the adapter
        serves with it (``operations``): a streamed edit goes only to an adapter that says yes here."""
        ...
