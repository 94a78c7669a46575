"""Enforces gateway-key and virtual-key limits before upstream calls, and keeps their spend after.

A request's gateway key is checked once its routing is resolved, before the cache and the router; a
virtual key is checked when the router is about to call a target that uses it, so a fallback moves
past a virtual key over its limit as past any 429 (and with direct virtual-key routing, that 429 is
the answer). Each check looks at budgets first (spend today / this month, plus what requests in
flight hold, plus this request's estimated cost from the price table when it knows the model), then
requests per minute (only admitted requests count). Refusals are ``LimitExceeded``: a 429 /
RESOURCE_EXHAUSTED with the seconds until the minute, day or month lets the request through. Each
refusal is also told to an observer (the ``imagegateway_limit_refusals_total`` metric).

After a request the core's accounting reports its actual cost, which goes to the gateway key and to the
virtual key that served it (or, for a failure, the one tried last); the estimate a request held is
given back when it ends. At start, today's and this month's spend per key is recomputed from the
request log (the sum of ``cost_usd`` since the period began, by caller key and by virtual key).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from imagegateway_server.core.pricing import PriceTable
from imagegateway_server.domain.errors import ErrorKind, GatewayError
from imagegateway_server.domain.limits import NO_LIMITS, Limits
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.routing.plan import Leaf, Node
from imagegateway_server.state.in_process.limit_counters import InProcessLimitCounters
from imagegateway_server.state.limit_counters import (
    Budget,
    LimitCounters,
    Period,
    period_end,
    period_start,
    to_micros,
)
from imagegateway_server.storage.records import SpendTotals

log = logging.getLogger(__name__)

RATE_LIMITED = "RATE_LIMITED"
BUDGET_EXCEEDED = "BUDGET_EXCEEDED"
GATEWAY_KEY = "gateway key"
VIRTUAL_KEY = "virtual key"
_PERIOD_WORDS = {Period.DAY: "UTC day", Period.MONTH: "UTC month"}
# The ``scope`` a refusal is counted under, per key kind.
REFUSAL_SCOPES = {GATEWAY_KEY: "gateway_key", VIRTUAL_KEY: "virtual_key"}
# Every ``limit`` a refusal names: the Limits field that refused it.
LIMIT_FIELDS = ("requests_per_minute", Period.DAY.value, Period.MONTH.value)


class LimitExceeded(GatewayError):
    """A key is over its requests per minute or its daily / monthly budget.

    ``reason`` is RATE_LIMITED or BUDGET_EXCEEDED; ``limit`` the field (``requests_per_minute``,
    ``usd_per_day``, ``usd_per_month``); ``key_kind`` "gateway key" or "virtual key";
    ``retry_after`` whole seconds until the request would be let through.
    """

    kind = ErrorKind.RATE_LIMITED
    retry_after: float

    def __init__(self, message: str, *, reason: str, limit: str, key_kind: str, key_id: str, retry_after: int) -> None:
        super().__init__(
            message, code="rate_limit_exceeded" if reason == RATE_LIMITED else "budget_exceeded", status_code=429
        )
        self.reason = reason
        self.limit = limit
        self.key_kind = key_kind
        self.key_id = key_id
        self.retry_after = float(retry_after)


class SpendLog(Protocol):
    """Where spend is recomputed from at start: the request log (the Store)."""

    async def spend_since(self, since: datetime) -> SpendTotals: ...


def api_key_counter(key_id: str) -> str:
    return f"api_key:{key_id}"


def virtual_key_counter(virtual_key_id: str) -> str:
    return f"virtual_key:{virtual_key_id}"


class RefusalObserver(Protocol):
    """Told of each refusal by its scope (a ``REFUSAL_SCOPES`` value) and limit (a ``LIMIT_FIELDS`` name)."""

    def __call__(self, scope: str, limit: str) -> None: ...


async def _no_limits(virtual_key_id: str) -> Limits:
    return NO_LIMITS


def _ignore_refusal(scope: str, limit: str) -> None:
    pass


class Limiter:
    """Checks and accounts limits. One per process; requests get a ``Ticket`` from ``admit``."""

    def __init__(
        self,
        counters: LimitCounters | None = None,
        prices: PriceTable | None = None,
        *,
        virtual_key_limits: Callable[[str], Awaitable[Limits]] = _no_limits,
        clock: Callable[[], float] = time.time,
        on_refusal: RefusalObserver = _ignore_refusal,
    ) -> None:
        self._counters = counters if counters is not None else InProcessLimitCounters()
        self._prices = prices or PriceTable.empty()
        self._virtual_key_limits = virtual_key_limits
        self._clock = clock
        self._on_refusal = on_refusal

    async def restore(self, log_store: SpendLog) -> None:
        """Recomputes today's and this month's spend per key from the request log (call before
        serving), and leaves the counters the way to do it again (a shared store that comes back empty)."""
        await self._restore_into(self._counters, log_store)
        self._counters.seed_from(lambda counters: self._restore_into(counters, log_store))

    async def _restore_into(self, counters: LimitCounters, log_store: SpendLog) -> None:
        now = datetime.fromtimestamp(self._clock(), UTC)
        for period in (Period.MONTH, Period.DAY):
            totals = await log_store.spend_since(period_start(period, now))
            for key_id, usd in totals.by_caller_key.items():
                await counters.restore(api_key_counter(key_id), period, now, to_micros(usd))
            for vk_id, usd in totals.by_virtual_key.items():
                await counters.restore(virtual_key_counter(vk_id), period, now, to_micros(usd))

    async def admit(self, key_id: str, limits: Limits, plan: Node, request: ImageRequest) -> Ticket:
        """Checks the gateway key ``key_id`` for a request about to be routed by ``plan``; raises
        LimitExceeded. The ticket must be released when the request ends."""
        ticket = Ticket(self)
        if not limits.unlimited:
            estimate = 0
            if limits.has_budget:
                first = _first_leaf(plan)
                estimate = self._estimate(first.provider, request.with_overrides(first.override_params))
            await self._check(ticket, GATEWAY_KEY, key_id, api_key_counter(key_id), limits, estimate)
        return ticket

    def record_spend(self, caller_key_id: str, virtual_key_id: str, cost_usd: float, when: datetime) -> None:
        """Adds a finished request's actual cost to its gateway key and virtual key (the accounting's hook)."""
        micros = to_micros(cost_usd)
        if micros <= 0:
            return
        self._counters.add_spend(api_key_counter(caller_key_id), micros, when)
        if virtual_key_id:
            self._counters.add_spend(virtual_key_counter(virtual_key_id), micros, when)

    async def _admit_virtual_key(
        self, ticket: Ticket, virtual_key_id: str, provider: str, request: ImageRequest
    ) -> None:
        limits = await self._virtual_key_limits(virtual_key_id)
        if limits.unlimited:
            return
        estimate = self._estimate(provider, request) if limits.has_budget else 0
        await self._check(ticket, VIRTUAL_KEY, virtual_key_id, virtual_key_counter(virtual_key_id), limits, estimate)

    def _estimate(self, provider: str, request: ImageRequest) -> int:
        return to_micros(
            self._prices.estimate(request.model, request.size, request.quality, request.n, provider=provider)
        )

    async def _check(
        self, ticket: Ticket, key_kind: str, key_id: str, counter: str, limits: Limits, estimate: int
    ) -> None:
        try:
            await self._check_limits(ticket, key_kind, key_id, counter, limits, estimate)
        except LimitExceeded as refused:
            self._on_refusal(REFUSAL_SCOPES[refused.key_kind], refused.limit)
            raise

    async def _check_limits(
        self, ticket: Ticket, key_kind: str, key_id: str, counter: str, limits: Limits, estimate: int
    ) -> None:
        now = self._clock()
        budgets = (
            [
                Budget(period, to_micros(usd))
                for period, usd in ((Period.DAY, limits.usd_per_day), (Period.MONTH, limits.usd_per_month))
                if usd
            ]
            if limits.has_budget
            else []
        )
        held = estimate if budgets else 0
        # Budgets and the minute in one call: one round trip when the counters are shared.
        admission = await self._counters.admit(counter, budgets, held, limits.requests_per_minute, now)
        if admission.over:
            raise _over_budget(key_kind, key_id, limits, list(admission.over), datetime.fromtimestamp(now, UTC))
        if admission.wait > 0:
            # Strictly past the computed instant: at it the sliding count equals the limit, which still refuses.
            retry_after = math.floor(admission.wait) + 1
            raise LimitExceeded(
                f"{key_kind} {key_id} is over its limit of {limits.requests_per_minute} requests per minute; "
                f"retry in {retry_after} s",
                reason=RATE_LIMITED,
                limit="requests_per_minute",
                key_kind=key_kind,
                key_id=key_id,
                retry_after=retry_after,
            )
        if held:
            ticket.holds.append((counter, held))


def _first_leaf(node: Node) -> Leaf:
    """The target a fallback starts with (and, for other strategies, a stand-in priced like its siblings);
    a walk down first children, not a listing of every leaf, since it runs per request."""
    while not isinstance(node, Leaf):
        node = node.children[0]
    return node


def _over_budget(key_kind: str, key_id: str, limits: Limits, over: list[Budget], now: datetime) -> LimitExceeded:
    # With both budgets spent, the request waits for the later reset.
    last = max(over, key=lambda budget: period_end(budget.period, now))
    resets = period_end(last.period, now)
    usd = limits.usd_per_day if last.period is Period.DAY else limits.usd_per_month
    return LimitExceeded(
        f"{key_kind} {key_id} has reached its budget of {usd:g} USD per {_PERIOD_WORDS[last.period]}; "
        f"it resets at {resets.isoformat().replace('+00:00', 'Z')}",
        reason=BUDGET_EXCEEDED,
        limit=last.period.value,
        key_kind=key_kind,
        key_id=key_id,
        retry_after=max(1, math.ceil((resets - now).total_seconds())),
    )


class Ticket:
    """One request's admission: the estimates it holds until it ends.

    It is also the router's gate (``routing.router.TargetGate``): ``admit`` checks a virtual key's
    limits just before the router calls a target that uses it.
    """

    __slots__ = ("_limiter", "holds")

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter
        self.holds: list[tuple[str, int]] = []

    async def admit(self, virtual_key_id: str, provider: str, request: ImageRequest) -> None:
        await self._limiter._admit_virtual_key(self, virtual_key_id, provider, request)

    def release(self) -> None:
        """Gives back every held estimate; idempotent."""
        holds, self.holds = self.holds, []
        for counter, micros in holds:
            self._limiter._counters.release(counter, micros)
