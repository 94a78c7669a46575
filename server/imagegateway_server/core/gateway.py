"""The gateway core both front ends call: resolve routing, run the router, log, count.

Front ends turn wire requests into a ``GenerationCall`` and map a ``GenerationOutcome`` or a
``RequestFailed`` back to their own format; nothing here knows gRPC or HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time

from imagegateway_server.core.accounting import RequestAccounting
from imagegateway_server.core.limits import Limiter, Ticket
from imagegateway_server.core.pricing import PriceTable
from imagegateway_server.domain.calls import GenerationCall, GenerationOutcome, RoutingSpec
from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.errors import (
    AllTargetsFailed,
    CallerCancelled,
    GatewayError,
    InvalidArgument,
    ProviderError,
    RequestFailed,
    ShuttingDown,
)
from imagegateway_server.domain.input_limits import DEFAULT_INPUT_LIMITS, InputLimits
from imagegateway_server.domain.request import validate_request
from imagegateway_server.observability.metrics import Metrics
from imagegateway_server.observability.otel import RequestSpans
from imagegateway_server.observability.recorder import RequestRecorder
from imagegateway_server.observability.request_log import RequestLogWriter
from imagegateway_server.observability.tracing import new_trace_id, upstream_trace_headers
from imagegateway_server.providers.registry import canonical_provider, credential_schema
from imagegateway_server.routing.cache import DISABLED as CACHE_DISABLED
from imagegateway_server.routing.cache import ResponseCache
from imagegateway_server.routing.config_service import ConfigService
from imagegateway_server.routing.plan import Node, direct_leaf
from imagegateway_server.routing.router import AttemptTrail, RouteContext, Router
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.state.answering import answering

log = logging.getLogger(__name__)


class Gateway:
    """Resolves routing, runs the router and records every request exactly once."""

    def __init__(
        self,
        router: Router,
        configs: ConfigService,
        log_writer: RequestLogWriter,
        metrics: Metrics,
        host_policy: UpstreamHostPolicy,
        cache: ResponseCache | None = None,
        *,
        prices: PriceTable | None = None,
        redact_prompts: bool = False,
        limiter: Limiter | None = None,
        input_limits: InputLimits = DEFAULT_INPUT_LIMITS,
        spans: RequestSpans | None = None,
    ) -> None:
        self._router = router
        self._configs = configs
        self._log_writer = log_writer
        self._metrics = metrics
        self._host_policy = host_policy
        self._cache = cache if cache is not None else ResponseCache(None, None)
        self._limiter = (
            limiter if limiter is not None else Limiter(prices=prices, on_refusal=metrics.count_limit_refusal)
        )
        self._input_limits = input_limits
        # Set by the process when shutdown begins: requests cancelled from then on were stopped by us.
        self.shutting_down = False
        self._recorder = RequestAccounting(
            RequestRecorder(log_writer, metrics, redact_prompts=redact_prompts, spans=spans),
            prices or PriceTable.empty(),
            spend=self._limiter,
        )

    async def _plan(self, routing: RoutingSpec) -> tuple[Node, str, int]:
        if routing.config_id:
            resolved = await self._configs.resolve(routing.config_id)
            return resolved.plan, resolved.id, resolved.version
        if routing.config is not None:
            return self._configs.compile_inline(routing.config), "", 0
        custom_host = self._host_policy.check(routing.custom_host, param="custom_host") if routing.custom_host else None
        if routing.virtual_key:
            provider = canonical_provider(routing.provider) if routing.provider else ""
            return direct_leaf(provider, virtual_key=routing.virtual_key, custom_host=custom_host), "", 0
        if routing.provider:
            provider = canonical_provider(routing.provider)
            if not any(routing.provider_credential.values()):
                raise InvalidArgument(
                    "a bare provider needs the provider's API key or credential",
                    param=routing.credential_params.get(API_KEY, "provider_api_key"),
                )
            credential = credential_schema(provider).parse(
                routing.provider_credential,
                provider=provider,
                param_prefix="provider_credential",
                param_names=routing.credential_params,
            )
            return direct_leaf(provider, credential=credential, custom_host=custom_host), "", 0
        raise InvalidArgument("name a config, a virtual key or a provider to route the request", param="routing")

    async def generate(self, call: GenerationCall) -> GenerationOutcome:
        """Serves one request; raises RequestFailed (already logged) when it ends without images."""
        # Shared state sends what it writes after the request once this task, which answers it, is done.
        with answering():
            return await self._generate(call)

    async def _generate(self, call: GenerationCall) -> GenerationOutcome:
        trace_id = call.trace_id or new_trace_id()
        started = time.monotonic()
        config_id, config_version = "", 0
        cache_status = CACHE_DISABLED.status
        ticket: Ticket | None = None
        trail = AttemptTrail()
        self._metrics.in_flight.inc()
        try:
            try:
                request = validate_request(call.request, self._input_limits)
                plan, config_id, config_version = await self._plan(call.routing)
                if request.stream and not call.stream_complete:
                    self._router.refuse_unstreamable(plan, request)
                lookup = self._cache.lookup(
                    plan,
                    request,
                    tenant=call.caller.key_id,
                    refresh=call.cache_force_refresh,
                    metadata=call.metadata,
                    headers=call.headers,
                    deadline=call.deadline,
                )
                # With shared state the look-up waits on Redis beside the admission, not after it.
                prefetched = self._cache.prefetch(lookup)
                try:
                    ticket = await self._limiter.admit(call.caller.key_id, call.caller.limits, plan, request)
                except BaseException:
                    self._cache.abandon(lookup, prefetched)
                    raise
                cache_status = lookup.status
                served = await self._cache.serve(
                    lookup,
                    lambda: self._router.run(
                        plan,
                        request,
                        RouteContext(
                            trace_id=trace_id,
                            deadline=call.deadline,
                            headers=call.headers,
                            metadata=call.metadata,
                            target_gate=ticket,
                            trail=trail,
                            upstream_headers=upstream_trace_headers(call.trace_parent),
                            listener=call.listener,
                            stream_complete=call.stream_complete,
                        ),
                    ),
                    prefetched,
                )
                routed, cache_status = served.routed, served.status
            except AllTargetsFailed as exc:
                failure = RequestFailed(exc.last, attempts=exc.attempts, trace_id=trace_id, retry_count=exc.retry_count)
            except (GatewayError, ProviderError) as exc:
                failure = RequestFailed(exc, trace_id=trace_id)
            except asyncio.CancelledError:
                # The caller went away, or shutdown's grace period ran out; upstream calls are cancelled with
                # us. Still one record per request, with what was tried and the call cut short.
                reason = ShuttingDown() if self.shutting_down else CallerCancelled("the caller cancelled the request")
                cancelled = RequestFailed(reason, attempts=trail.cut_short(reason), trace_id=trace_id)
                self._recorder.failure(
                    call,
                    cancelled,
                    trace_id=trace_id,
                    started=started,
                    config_id=config_id,
                    config_version=config_version,
                    cache_status=cache_status,
                )
                raise
            else:
                recorded = self._recorder.success(
                    call,
                    routed,
                    trace_id=trace_id,
                    started=started,
                    config_id=config_id,
                    config_version=config_version,
                    cache_status=cache_status,
                )
                return GenerationOutcome(
                    routed=routed,
                    trace_id=trace_id,
                    log_id=recorded.log_id,
                    cache_status=cache_status,
                    cost_usd=recorded.cost_usd,
                )
            self._recorder.failure(
                call,
                failure,
                trace_id=trace_id,
                started=started,
                config_id=config_id,
                config_version=config_version,
                cache_status=cache_status,
            )
            raise failure
        finally:
            if ticket is not None:
                ticket.release()  # after the recorder charged the actual cost
            self._metrics.in_flight.dec()
            self._metrics.cache_requests_series(cache_status).inc()
