"""The response cache around the router: look up before routing, share identical calls, keep successes.

The rules (the README's "Caching" section says the same for users):

* A plan caches when any of its targets has a ``cache`` policy, set on it or inherited from a parent.
  The look-up happens before a target is chosen, keyed on the caller's tenant (gateway key id), the
  plan's routing identity and the normalised request (``cache_key``). Only a final success is kept,
  and only when the target that served has a policy; it lives for that policy's ``max_age``. So a
  per-target ``cache`` block decides whether and how long that target's answers are kept.
* A request with an explicit ``seed`` or ``n > 1`` is looked up and kept only under a policy with
  ``include_seeded_and_multi_image``; otherwise its status is DISABLED.
* A hit is served only while the target that produced it still reaches the same account (provider,
  base URL, key fingerprint): a rotated or re-pointed virtual key makes its old answers misses.
* Identical misses in flight at the same time share one upstream call (``SingleFlight``). The caller
  that started it is the MISS; the others made no upstream call of their own, so they answer HIT,
  with no attempts and no cost. A failure is not kept and reaches every waiter (without the leader's
  attempts, which are in the leader's log record), except that a waiter with time left starts its
  own call when the shared one failed on the leader's shorter deadline.
* Across replicas (a shared ``SharedFlights``, Redis), the local leader also claims the key for the
  fleet; a replica that cannot waits for the claiming replica to finish, then answers HIT from the
  shared store (no upstream call), or makes its own call if the other kept nothing (failed, or not
  cacheable) or went away.
* A forced refresh skips the look-up and the sharing, makes its own call and keeps the result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import Any

from imagegateway_server.domain.cache_status import CacheStatus
from imagegateway_server.domain.errors import AllTargetsFailed, DeadlineExceeded, GatewayError, ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import ImageResult, RoutedResult
from imagegateway_server.routing.cache_key import cache_key, plan_fingerprint, routing_identity
from imagegateway_server.routing.plan import Group, Leaf, Node, leaves
from imagegateway_server.routing.router import CredentialResolver
from imagegateway_server.routing.single_flight import SharedCallFailed, SingleFlight, WaitExpired
from imagegateway_server.state.cache_store import CachedAnswer, CacheStore
from imagegateway_server.state.flights import FlightEnd, SharedFlights
from imagegateway_server.state.in_process.flights import LocalFlights

log = logging.getLogger(__name__)

# Provider image URLs expire (OpenAI's after an hour): an answer holding URLs rather than bytes is
# kept at most this long, so a hit never hands out a dead link.
URL_ANSWER_MAX_AGE_SECONDS = 1800
# Compiled plans whose cache description is remembered (saved configs reuse one plan object).
PLAN_MEMO_SIZE = 256


@dataclasses.dataclass(frozen=True, slots=True)
class _PlanCaching:
    fingerprint: str
    leaves: Mapping[str, Leaf]
    caches_seeded: bool
    forward_headers: tuple[str, ...]
    routes_by_metadata: bool


@dataclasses.dataclass(frozen=True, slots=True)
class CacheLookup:
    """The cache's view of one request, decided before routing."""

    status: CacheStatus
    key: str = ""
    # True when the request has no explicit seed and n == 1.
    plain: bool = True
    leaves: Mapping[str, Leaf] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    deadline: float | None = None

    def __repr__(self) -> str:
        return f"CacheLookup({self.status})"


DISABLED = CacheLookup(CacheStatus.DISABLED)


@dataclasses.dataclass(frozen=True, slots=True)
class Served:
    """A routed result and how the cache took part in it."""

    routed: RoutedResult
    status: CacheStatus


Run = Callable[[], Coroutine[Any, Any, RoutedResult]]
# A routed result, and whether it came from another replica's call (through the shared store).
_FleetResult = tuple[RoutedResult, bool]
# A store look-up started before ``serve`` (``ResponseCache.prefetch``).
Prefetched = asyncio.Future[CachedAnswer | None]


def _shareable(result: ImageResult) -> ImageResult:
    """``result`` as another caller may be served it: without the end-user id the provider said it
    monitored under (OpenAI's ``safety_identifier``, which may be the asker's ``user``, not in the key)."""
    return dataclasses.replace(result, safety_identifier=None) if result.safety_identifier else result


def _describe(plan: Node) -> _PlanCaching | None:
    all_leaves = leaves(plan)
    policies = [leaf.cache for leaf in all_leaves if leaf.cache is not None]
    if not policies:
        return None
    return _PlanCaching(
        fingerprint=plan_fingerprint(all_leaves),
        leaves=MappingProxyType({leaf.path: leaf for leaf in all_leaves}),
        caches_seeded=any(p.include_seeded_and_multi_image for p in policies),
        forward_headers=tuple(sorted({name for leaf in all_leaves for name in leaf.forward_headers})),
        routes_by_metadata=_has_conditional(plan),
    )


def _has_conditional(node: Node) -> bool:
    if not isinstance(node, Group):
        return False
    return node.mode == "conditional" or any(_has_conditional(child) for child in node.children)


class ResponseCache:
    """One per process: the store, the in-flight calls and a memo of plan descriptions.

    Without a store (``ResponseCache(None, None)``) every request is DISABLED.
    """

    def __init__(
        self,
        store: CacheStore | None,
        credentials: CredentialResolver | None,
        *,
        shared_flights: SharedFlights | None = None,
        concurrent_lookup: bool = False,
    ) -> None:
        self._store: CacheStore = store if store is not None else _NoStore()
        self._credentials = credentials
        self._enabled = store is not None and credentials is not None
        self._flights: SingleFlight[_FleetResult] = SingleFlight()
        self._fleet: SharedFlights = shared_flights if shared_flights is not None else LocalFlights()
        # With a store over the network, the look-up starts beside the key's admission (``prefetch``).
        self._concurrent_lookup = concurrent_lookup
        self._plans: OrderedDict[int, tuple[Node, _PlanCaching]] = OrderedDict()

    def _plan_caching(self, plan: Node) -> _PlanCaching | None:
        # Keyed by id(); the plan itself is kept alongside, so an id cannot be reused while remembered.
        remembered = self._plans.get(id(plan))
        if remembered is not None and remembered[0] is plan:
            self._plans.move_to_end(id(plan))
            return remembered[1]
        caching = _describe(plan)
        # Only caching plans are remembered (saved configs reuse one plan object); for the others the
        # walk is cheap, and not keeping them means per-request plans (inline configs, bare provider
        # keys) are not held on to after their request.
        if caching is not None:
            self._plans[id(plan)] = (plan, caching)
            if len(self._plans) > PLAN_MEMO_SIZE:
                self._plans.popitem(last=False)
        return caching

    def lookup(
        self,
        plan: Node,
        request: ImageRequest,
        *,
        tenant: str,
        refresh: bool = False,
        metadata: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> CacheLookup:
        """Decides whether the cache takes part in this request, and under which key."""
        if not self._enabled:
            return DISABLED
        caching = self._plan_caching(plan)
        if caching is None:
            return DISABLED
        plain = request.seed is None and request.n == 1
        if not plain and not caching.caches_seeded:
            return DISABLED
        # Caller inputs that can change the answer besides the request: headers the plan forwards
        # upstream, and metadata when conditions route by it.
        context: dict[str, str] = {}
        if caching.forward_headers:
            sent = headers or {}
            context.update({f"header:{name}": sent.get(name, "") for name in caching.forward_headers})
        if caching.routes_by_metadata:
            context.update({f"metadata:{name}": value for name, value in (metadata or {}).items()})
        key = cache_key(tenant=tenant, plan=caching.fingerprint, request=request, context=context)
        status = CacheStatus.REFRESH if refresh else CacheStatus.MISS
        return CacheLookup(status, key, plain, caching.leaves, deadline)

    def prefetch(self, lookup: CacheLookup) -> Prefetched | None:
        """Starts the store look-up now, so that with a shared store it waits beside the key's admission
        (one round trip's wait instead of two). Hand the result to ``serve``, or to ``abandon`` when the
        request goes no further. None when nothing is to be looked up, or the store is in process."""
        if not (self._concurrent_lookup and self._enabled and lookup.status is CacheStatus.MISS):
            return None
        return asyncio.ensure_future(self._store.get(lookup.key))

    def abandon(self, lookup: CacheLookup, prefetched: Prefetched | None) -> None:
        """The request ends before ``serve`` (refused by its limits): a shared-call lock its look-up may
        have taken is given back once the look-up is done."""
        if prefetched is not None:
            prefetched.add_done_callback(lambda task: self._abandoned(lookup.key, task))

    def _abandoned(self, key: str, task: Prefetched) -> None:
        if not task.cancelled():
            task.exception()  # seen: nobody else will look at it
        self._fleet.abandon(key)

    async def serve(self, lookup: CacheLookup, run: Run, prefetched: Prefetched | None = None) -> Served:
        """Answers from the cache, from an identical call in flight, or by ``run`` (the router)."""
        if lookup.status is CacheStatus.DISABLED:
            return Served(await run(), CacheStatus.DISABLED)
        if lookup.status is CacheStatus.REFRESH:
            return Served(await self._run_and_keep(lookup, run), CacheStatus.REFRESH)
        hit = await self._find(lookup, prefetched)
        if hit is not None:
            return Served(hit, CacheStatus.HIT)
        return await self._share(lookup, run)

    async def _find(self, lookup: CacheLookup, prefetched: Prefetched | None = None) -> RoutedResult | None:
        try:
            answer = await (prefetched if prefetched is not None else self._store.get(lookup.key))
        except Exception:
            log.warning("the response cache could not be read; serving without it", exc_info=True)
            return None
        if answer is None:
            return None
        leaf = lookup.leaves.get(answer.served_target)
        if leaf is None or await self._identity(leaf) != answer.identity:
            await self._store.delete(lookup.key)
            return None
        return RoutedResult(
            result=answer.result, leaf=leaf, provider=answer.provider, attempts=(), retry_count=0, fallback_used=False
        )

    async def _share(self, lookup: CacheLookup, run: Run) -> Served:
        while True:
            try:
                (routed, from_fleet), shared = await self._flights.do(
                    lookup.key, lambda: self._across_fleet(lookup, run), deadline=lookup.deadline
                )
            except WaitExpired:
                raise AllTargetsFailed(
                    DeadlineExceeded("the request deadline expired while an identical request was in flight"), ()
                ) from None
            except SharedCallFailed as failed:
                error = failed.error
                if not isinstance(error, AllTargetsFailed):
                    raise error from None
                if isinstance(error.last, DeadlineExceeded) and self._time_left(lookup):
                    continue  # the shared call ran out of the leader's time, not ours
                raise AllTargetsFailed(error.last, ()) from None
            if shared or from_fleet:
                return Served(
                    dataclasses.replace(
                        routed, result=_shareable(routed.result), attempts=(), retry_count=0, fallback_used=False
                    ),
                    CacheStatus.HIT,
                )
            return Served(routed, CacheStatus.MISS)

    async def _across_fleet(self, lookup: CacheLookup, run: Run) -> _FleetResult:
        """This replica's one call for the key: made here, or waited for on another replica."""
        while True:
            if await self._fleet.claim(lookup.key):
                kept = False
                try:
                    routed = await run()
                    kept = await self._keep(lookup, routed)
                finally:
                    self._fleet.finish(lookup.key, kept)
                return routed, False
            timeout = None
            if lookup.deadline is not None:
                timeout = lookup.deadline - asyncio.get_running_loop().time()
            end = await self._fleet.wait(lookup.key, timeout)
            if end is FlightEnd.EXPIRED:
                raise WaitExpired("the deadline passed while an identical call was in flight on another replica")
            if end is FlightEnd.KEPT:
                hit = await self._find(lookup)
                if hit is not None:
                    return hit, True
                # The answer is gone already (evicted). If the call's outcome went too, the look-up took
                # the key's lock for a claim that will not come: give it back now, or every replica
                # asking for the key would wait for it to expire.
                self._fleet.abandon(lookup.key)
            if end is not FlightEnd.GONE:
                # Nothing to share: the other call failed or kept nothing (or its answer is gone already).
                return await self._run_and_keep(lookup, run), False

    @staticmethod
    def _time_left(lookup: CacheLookup) -> bool:
        return lookup.deadline is None or asyncio.get_running_loop().time() < lookup.deadline

    async def _run_and_keep(self, lookup: CacheLookup, run: Run) -> RoutedResult:
        routed = await run()
        await self._keep(lookup, routed)
        return routed

    async def _keep(self, lookup: CacheLookup, routed: RoutedResult) -> bool:
        """Stores the answer if its target's policy says so; True when it was stored."""
        # The plan's own leaf: the router serves from the plan the look-up described.
        leaf = lookup.leaves.get(routed.leaf.path)
        policy = leaf.cache if leaf is not None else None
        if policy is None or not routed.result.images:
            return False
        if not (lookup.plain or policy.include_seeded_and_multi_image):
            return False
        assert leaf is not None  # a policy came from it
        identity = await self._identity(leaf)
        if identity is None:
            return False
        ttl = float(policy.max_age)
        if any(image.data is None for image in routed.result.images):
            ttl = min(ttl, URL_ANSWER_MAX_AGE_SECONDS)
        expiries = [image.url_expires_at for image in routed.result.images if image.url_expires_at is not None]
        if expiries:
            # A signed URL that dies sooner (BFL's, ~10 minutes) bounds the entry; a dead one is not kept.
            ttl = min(ttl, min(expiries) - time.time())
            if ttl <= 0:
                return False
        answer = CachedAnswer(
            result=_shareable(routed.result),
            provider=routed.provider,
            served_target=routed.leaf.path,
            identity=identity,
        )
        try:
            await self._store.put(lookup.key, answer, ttl)
        except Exception:
            # The caller has its images; a cache that cannot store must not turn that into a failure.
            log.warning("the response cache could not store an answer", exc_info=True)
            return False
        return True

    async def _identity(self, leaf: Leaf) -> str | None:
        if self._credentials is None:
            return None
        try:
            creds = await self._credentials.resolve(leaf)
        except (GatewayError, ProviderError):
            return None  # the target cannot be reached now; the router will say why
        return routing_identity(creds.provider, creds.base_url, creds.credential)


class _NoStore:
    """The store of a disabled cache; never consulted, since every look-up is DISABLED."""

    async def get(self, key: str) -> CachedAnswer | None:
        return None

    async def put(self, key: str, answer: CachedAnswer, ttl_seconds: float) -> None:
        return None

    async def delete(self, key: str) -> None:
        return None
