"""One generation request as the core sees it, and what serving it produced: transport-free types.

Front ends build a ``GenerationCall`` (the request, where to route it, who asked) and map a
``GenerationOutcome`` or a ``RequestFailed`` back to their own wire format.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from imagegateway_server.domain.cache_status import CacheStatus
from imagegateway_server.domain.limits import NO_LIMITS, Limits
from imagegateway_server.domain.progress import StreamListener
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import RoutedResult
from imagegateway_server.domain.routing_config import RoutingConfig
from imagegateway_server.domain.trace_context import TraceParent


@dataclasses.dataclass(frozen=True, slots=True)
class RoutingSpec:
    """Where the caller asked to go: a saved config, an inline config, a virtual key or a provider.

    ``provider_credential`` is the credential fields (by name) sent for a bare ``provider``: REST's
    ``Authorization: Bearer`` and gRPC's ``provider_api_key`` both fill ``api_key``; Portkey's
    ``x-portkey-aws-*`` headers and gRPC's ``provider_credential`` map the others.
    ``credential_params`` names, per field, where the caller sent it (``x-portkey-aws-region``,
    ``provider_api_key``), so an error about a field names what the caller wrote; a field not
    listed is ``provider_credential.<field>``.
    """

    config_id: str | None = None
    config: RoutingConfig | None = None
    virtual_key: str | None = None
    provider: str | None = None
    provider_credential: Mapping[str, str] = dataclasses.field(default_factory=dict)
    custom_host: str | None = None
    credential_params: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"RoutingSpec(config_id={self.config_id}, inline={self.config is not None}, "
            f"virtual_key={self.virtual_key}, provider={self.provider})"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated gateway key behind a request."""

    key_id: str
    scope: str
    limits: Limits = NO_LIMITS


@dataclasses.dataclass(frozen=True, slots=True)
class GenerationCall:
    """One generation request as the core sees it."""

    request: ImageRequest
    routing: RoutingSpec
    caller: Caller
    transport: str
    trace_id: str = ""
    # The caller's W3C trace context, if it sent one; providers get a child span of it.
    trace_parent: TraceParent | None = None
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    deadline: float | None = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Skip the cache look-up and keep the fresh answer (x-portkey-cache-force-refresh).
    cache_force_refresh: bool = False
    # A streaming front end's listener for progress and partial images (``core/streaming.py``).
    listener: StreamListener | None = dataclasses.field(default=None, repr=False)
    # A streamed request may be served by a target that cannot stream, as one completed event.
    stream_complete: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class GenerationOutcome:
    """A served request."""

    routed: RoutedResult
    trace_id: str
    log_id: str
    cache_status: CacheStatus = CacheStatus.DISABLED
    cost_usd: float = 0.0
