"""The response cache around a real router with scripted in-memory adapters (no HTTP: cache logic only).

Over real sockets, through both front ends, the same behaviour is in tests/integration/test_cache.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from typing import Any

import pytest

from imagegateway_server.api.config_json import parse_config
from imagegateway_server.domain.credentials import ResolvedCredentials
from imagegateway_server.domain.errors import AllTargetsFailed, DeadlineExceeded, ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.routing.cache import URL_ANSWER_MAX_AGE_SECONDS, CacheStatus, ResponseCache, Served
from imagegateway_server.routing.plan import Leaf, Node, compile_plan, direct_leaf
from imagegateway_server.routing.router import RouteContext, Router
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.state.flights import FlightEnd
from imagegateway_server.state.in_process.cache_store import MemoryCacheStore
from tests.credentials import api_key

REQUEST = ImageRequest(prompt="a kraken in the milky way", response_format=ResponseFormat.B64_JSON)
CACHE = {"mode": "simple", "max_age": 60}


class Adapter:
    """Answers after ``delay`` seconds with a fresh image each call, or raises the next scripted error."""

    def __init__(self, name: str, *, delay: float = 0.0, url: bool = False, url_seconds: float | None = None) -> None:
        self.name = name
        self.delay = delay
        self.url = url
        self.url_seconds = url_seconds
        self.errors: list[Exception] = []
        self.calls = 0

    def default_model(self) -> str:
        return f"{self.name}-default"

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        data = f"{self.name}-image-{self.calls}".encode()
        image = (
            GeneratedImage(
                None,
                "image/png",
                url=f"https://img.example/{self.calls}.png",
                url_expires_at=None if self.url_seconds is None else time.time() + self.url_seconds,
            )
            if self.url
            else GeneratedImage(data, "image/png", 1, 1)
        )
        return ImageResult(images=(image,) * request.n, model=request.model or "", created=self.calls)

    async def aclose(self) -> None:
        return None


class Keys:
    """Resolves a leaf to the provider named by its virtual key; the key itself can be rotated."""

    def __init__(self) -> None:
        self.secret = "sk-original-0123456789"

    async def resolve(self, leaf: Leaf) -> ResolvedCredentials:
        provider = leaf.virtual_key or leaf.provider
        return ResolvedCredentials(
            provider=provider, credential=api_key(f"{self.secret}-{provider}", provider), base_url=None
        )


def unavailable() -> ProviderError:
    return ProviderError(ErrorKind.UNAVAILABLE, "503 from upstream", provider="p", status_code=503)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Rig:
    """A router and a response cache over the same adapters, as the gateway wires them."""

    adapters: dict[str, Adapter]
    keys: Keys
    clock: Clock
    store: MemoryCacheStore
    router: Router
    cache: ResponseCache

    async def serve(
        self,
        plan: Node,
        request: ImageRequest = REQUEST,
        *,
        tenant: str = "key_a",
        refresh: bool = False,
        deadline: float | None = None,
        metadata: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Served:
        lookup = self.cache.lookup(
            plan, request, tenant=tenant, refresh=refresh, metadata=metadata, headers=headers, deadline=deadline
        )
        return await self.cache.serve(
            lookup,
            lambda: self.router.run(
                plan,
                request,
                RouteContext(trace_id="t", deadline=deadline, headers=headers or {}, metadata=metadata or {}),
            ),
        )


def rig(**adapters: Adapter) -> Rig:
    found = adapters or {"stab": Adapter("stab"), "oai": Adapter("oai")}
    keys, clock = Keys(), Clock()
    store = MemoryCacheStore(1 << 20, clock=clock)
    router = Router(found.__getitem__, keys, default_timeout=5.0, rng=random.Random(1))
    return Rig(found, keys, clock, store, router, ResponseCache(store, keys))


def plan_of(document: dict[str, Any]) -> Node:
    return compile_plan(parse_config(document), canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy(()))


def fallback(*targets: dict[str, Any], **top: Any) -> Node:
    return plan_of({"strategy": {"mode": "fallback"}, "targets": list(targets), **top})


CACHED_CHAIN = fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}, cache=CACHE)


def calls(r: Rig) -> dict[str, int]:
    return {name: adapter.calls for name, adapter in r.adapters.items()}


# -- look-up, hit and miss ---------------------------------------------------------------------------


async def test_a_plan_without_cache_settings_is_disabled_and_always_calls_upstream() -> None:
    r = rig()
    plan = fallback({"virtual_key": "stab"}, {"virtual_key": "oai"})
    first, second = await r.serve(plan), await r.serve(plan)
    assert (first.status, second.status) == (CacheStatus.DISABLED, CacheStatus.DISABLED)
    assert calls(r) == {"stab": 2, "oai": 0}


async def test_direct_routing_without_a_config_is_disabled() -> None:
    r = rig()
    served = await r.serve(direct_leaf("stab", credential=api_key("sk-inline-0123456789", "stab")))
    assert served.status is CacheStatus.DISABLED


async def test_miss_then_hit_serves_the_same_images_without_an_upstream_call() -> None:
    r = rig()
    miss = await r.serve(CACHED_CHAIN)
    hit = await r.serve(CACHED_CHAIN)
    assert (miss.status, hit.status) == (CacheStatus.MISS, CacheStatus.HIT)
    assert calls(r) == {"stab": 1, "oai": 0}
    assert hit.routed.result.images == miss.routed.result.images
    assert hit.routed.attempts == () and hit.routed.retry_count == 0
    assert (hit.routed.provider, hit.routed.leaf.path) == ("stab", "config.targets[0]")


async def test_a_hit_after_a_fallback_names_the_target_that_originally_served() -> None:
    r = rig()
    r.adapters["stab"].errors.append(unavailable())
    miss = await r.serve(CACHED_CHAIN)
    assert miss.routed.fallback_used and miss.routed.leaf.path == "config.targets[1]"
    hit = await r.serve(CACHED_CHAIN)
    assert hit.status is CacheStatus.HIT
    assert (hit.routed.provider, hit.routed.leaf.path, hit.routed.fallback_used) == ("oai", "config.targets[1]", False)
    assert calls(r) == {"stab": 1, "oai": 1}


async def test_another_tenant_never_sees_an_entry() -> None:
    r = rig()
    await r.serve(CACHED_CHAIN, tenant="key_a")
    other = await r.serve(CACHED_CHAIN, tenant="key_b")
    assert other.status is CacheStatus.MISS and calls(r)["stab"] == 2


async def test_a_different_request_misses() -> None:
    r = rig()
    await r.serve(CACHED_CHAIN)
    other = await r.serve(CACHED_CHAIN, dataclasses.replace(REQUEST, size="512x512"))
    assert other.status is CacheStatus.MISS


async def test_gRPC_bytes_and_rest_b64_json_share_an_entry() -> None:
    r = rig()
    await r.serve(CACHED_CHAIN, dataclasses.replace(REQUEST, response_format=ResponseFormat.BYTES))
    assert (await r.serve(CACHED_CHAIN)).status is CacheStatus.HIT


async def test_an_entry_expires_after_max_age_seconds() -> None:
    r = rig()
    await r.serve(CACHED_CHAIN)
    r.clock.now += 59
    assert (await r.serve(CACHED_CHAIN)).status is CacheStatus.HIT
    r.clock.now += 2
    assert (await r.serve(CACHED_CHAIN)).status is CacheStatus.MISS


async def test_a_failure_is_never_kept() -> None:
    r = rig()
    r.adapters["stab"].errors.append(unavailable())
    r.adapters["oai"].errors.append(unavailable())
    with pytest.raises(AllTargetsFailed):
        await r.serve(CACHED_CHAIN)
    assert (await r.serve(CACHED_CHAIN)).status is CacheStatus.MISS
    assert calls(r) == {"stab": 2, "oai": 1}


async def test_force_refresh_skips_the_look_up_and_replaces_the_entry() -> None:
    r = rig()
    first = await r.serve(CACHED_CHAIN)
    refreshed = await r.serve(CACHED_CHAIN, refresh=True)
    assert refreshed.status is CacheStatus.REFRESH and calls(r)["stab"] == 2
    assert refreshed.routed.result.images != first.routed.result.images
    hit = await r.serve(CACHED_CHAIN)
    assert hit.status is CacheStatus.HIT and hit.routed.result.images == refreshed.routed.result.images


async def test_force_refresh_without_cache_settings_is_disabled() -> None:
    r = rig()
    served = await r.serve(fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), refresh=True)
    assert served.status is CacheStatus.DISABLED


async def test_a_rotated_provider_key_turns_old_answers_into_misses() -> None:
    r = rig()
    await r.serve(CACHED_CHAIN)
    r.keys.secret = "sk-rotated-9876543210"
    assert (await r.serve(CACHED_CHAIN)).status is CacheStatus.MISS
    assert (await r.serve(CACHED_CHAIN)).status is CacheStatus.HIT


async def test_a_changed_plan_does_not_reuse_the_old_plans_answers() -> None:
    r = rig()
    await r.serve(CACHED_CHAIN)
    changed = fallback(
        {"virtual_key": "stab", "override_params": {"size": "512x512"}}, {"virtual_key": "oai"}, cache=CACHE
    )
    assert (await r.serve(changed)).status is CacheStatus.MISS


async def test_the_same_targets_under_another_config_share_answers() -> None:
    r = rig()
    await r.serve(CACHED_CHAIN)
    same = fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}, cache={"mode": "simple", "max_age": 600})
    assert (await r.serve(same)).status is CacheStatus.HIT


async def test_forwarded_header_values_split_entries() -> None:
    r = rig()
    plan = fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}, cache=CACHE, forward_headers=["x-team"])
    await r.serve(plan, headers={"x-team": "red"})
    assert (await r.serve(plan, headers={"x-team": "red"})).status is CacheStatus.HIT
    assert (await r.serve(plan, headers={"x-team": "blue"})).status is CacheStatus.MISS


async def test_answers_holding_provider_urls_live_at_most_the_url_lifetime() -> None:
    r = rig(oai=Adapter("oai", url=True))
    plan = plan_of({"virtual_key": "oai", "cache": {"mode": "simple", "max_age": 86400}})
    request = dataclasses.replace(REQUEST, response_format=ResponseFormat.URL)
    await r.serve(plan, request)
    r.clock.now += URL_ANSWER_MAX_AGE_SECONDS - 1
    assert (await r.serve(plan, request)).status is CacheStatus.HIT
    r.clock.now += 2
    assert (await r.serve(plan, request)).status is CacheStatus.MISS


async def test_answers_holding_signed_urls_live_no_longer_than_their_signature() -> None:
    r = rig(oai=Adapter("oai", url=True, url_seconds=300))
    plan = plan_of({"virtual_key": "oai", "cache": {"mode": "simple", "max_age": 86400}})
    request = dataclasses.replace(REQUEST, response_format=ResponseFormat.URL)
    await r.serve(plan, request)
    r.clock.now += 290
    assert (await r.serve(plan, request)).status is CacheStatus.HIT
    r.clock.now += 20
    assert (await r.serve(plan, request)).status is CacheStatus.MISS


async def test_an_answer_whose_url_already_expired_is_not_kept() -> None:
    r = rig(oai=Adapter("oai", url=True, url_seconds=-1))
    plan = plan_of({"virtual_key": "oai", "cache": {"mode": "simple", "max_age": 86400}})
    request = dataclasses.replace(REQUEST, response_format=ResponseFormat.URL)
    await r.serve(plan, request)
    assert (await r.serve(plan, request)).status is CacheStatus.MISS


# -- seed and n > 1 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_", [dataclasses.replace(REQUEST, seed=7), dataclasses.replace(REQUEST, n=2)], ids=["seed", "n2"]
)
async def test_seeded_and_multi_image_requests_are_not_cached_by_default(request_: ImageRequest) -> None:
    r = rig()
    first, second = await r.serve(CACHED_CHAIN, request_), await r.serve(CACHED_CHAIN, request_)
    assert (first.status, second.status) == (CacheStatus.DISABLED, CacheStatus.DISABLED)
    assert calls(r)["stab"] == 2


@pytest.mark.parametrize(
    "request_", [dataclasses.replace(REQUEST, seed=7), dataclasses.replace(REQUEST, n=2)], ids=["seed", "n2"]
)
async def test_seeded_and_multi_image_requests_are_cached_when_the_config_says_so(request_: ImageRequest) -> None:
    r = rig()
    plan = fallback(
        {"virtual_key": "stab"}, {"virtual_key": "oai"}, cache={**CACHE, "include_seeded_and_multi_image": True}
    )
    first, second = await r.serve(plan, request_), await r.serve(plan, request_)
    assert (first.status, second.status) == (CacheStatus.MISS, CacheStatus.HIT)
    assert len(second.routed.result.images) == request_.n


# -- per-target policies -----------------------------------------------------------------------------


async def test_only_targets_with_a_cache_policy_keep_their_answers() -> None:
    r = rig()
    plan = fallback({"virtual_key": "stab"}, {"virtual_key": "oai", "cache": CACHE})
    assert (await r.serve(plan)).status is CacheStatus.MISS  # stab served, and keeps nothing
    assert (await r.serve(plan)).status is CacheStatus.MISS
    r.adapters["stab"].errors.append(unavailable())
    assert (await r.serve(plan)).routed.provider == "oai"  # oai served, and keeps it
    hit = await r.serve(plan)
    assert hit.status is CacheStatus.HIT and hit.routed.leaf.path == "config.targets[1]"


async def test_a_targets_own_max_age_decides_how_long_its_answers_live() -> None:
    r = rig()
    plan = fallback(
        {"virtual_key": "stab", "cache": {"mode": "simple", "max_age": 10}},
        {"virtual_key": "oai"},
        cache={"mode": "simple", "max_age": 1000},
    )
    await r.serve(plan)
    r.clock.now += 11
    assert (await r.serve(plan)).status is CacheStatus.MISS


async def test_conditional_plans_key_on_the_metadata_they_route_by() -> None:
    r = rig()
    plan = plan_of(
        {
            "strategy": {
                "mode": "conditional",
                "conditions": [{"query": {"metadata.tier": "gold"}, "then": "gold"}],
                "default": "basic",
            },
            "targets": [{"name": "gold", "virtual_key": "oai"}, {"name": "basic", "virtual_key": "stab"}],
            "cache": CACHE,
        }
    )
    gold = await r.serve(plan, metadata={"tier": "gold"})
    basic = await r.serve(plan, metadata={"tier": "silver"})
    assert (gold.routed.provider, basic.routed.provider) == ("oai", "stab")
    assert basic.status is CacheStatus.MISS
    assert (await r.serve(plan, metadata={"tier": "gold"})).routed.provider == "oai"


# -- identical requests in flight --------------------------------------------------------------------


async def test_identical_requests_in_flight_share_one_upstream_call() -> None:
    r = rig(stab=Adapter("stab", delay=0.2), oai=Adapter("oai"))
    results = await asyncio.gather(*(r.serve(CACHED_CHAIN) for _ in range(6)))
    assert calls(r)["stab"] == 1
    assert sorted(s.status for s in results) == sorted([CacheStatus.MISS] + [CacheStatus.HIT] * 5)
    leader = next(s for s in results if s.status is CacheStatus.MISS)
    for shared in results:
        assert shared.routed.result.images == leader.routed.result.images
        if shared is not leader:
            assert shared.routed.attempts == ()


async def test_a_shared_failure_reaches_every_waiter_without_the_leaders_attempts() -> None:
    r = rig(stab=Adapter("stab", delay=0.2))
    r.adapters["stab"].errors.append(unavailable())
    plan = plan_of({"virtual_key": "stab", "cache": CACHE})
    results = await asyncio.gather(*(r.serve(plan) for _ in range(4)), return_exceptions=True)
    assert r.adapters["stab"].calls == 1
    assert all(isinstance(e, AllTargetsFailed) and e.status_code == 503 for e in results)
    assert sorted(len(e.attempts) for e in results if isinstance(e, AllTargetsFailed)) == [0, 0, 0, 1]


async def test_the_leader_going_away_does_not_cancel_the_call_for_the_others() -> None:
    r = rig(stab=Adapter("stab", delay=0.2))
    plan = plan_of({"virtual_key": "stab", "cache": CACHE})
    leader = asyncio.create_task(r.serve(plan))
    await asyncio.sleep(0.05)
    follower = asyncio.create_task(r.serve(plan))
    await asyncio.sleep(0.05)
    leader.cancel()
    served = await follower
    assert served.status is CacheStatus.HIT and r.adapters["stab"].calls == 1
    assert (await r.serve(plan)).status is CacheStatus.HIT  # the shared call still kept its answer


async def test_a_follower_with_less_time_gets_a_deadline_failure_while_the_call_goes_on() -> None:
    r = rig(stab=Adapter("stab", delay=0.3))
    plan = plan_of({"virtual_key": "stab", "cache": CACHE})
    leader = asyncio.create_task(r.serve(plan))
    await asyncio.sleep(0.05)
    with pytest.raises(AllTargetsFailed) as info:
        await r.serve(plan, deadline=asyncio.get_running_loop().time() + 0.05)
    assert isinstance(info.value.last, DeadlineExceeded) and info.value.status_code == 504
    assert (await leader).status is CacheStatus.MISS


async def test_a_follower_with_more_time_runs_again_when_the_leaders_deadline_ends_the_shared_call() -> None:
    r = rig(stab=Adapter("stab", delay=0.3))
    plan = plan_of({"virtual_key": "stab", "cache": CACHE})
    leader = asyncio.create_task(r.serve(plan, deadline=asyncio.get_running_loop().time() + 0.1))
    await asyncio.sleep(0.02)
    served = await r.serve(plan)
    with pytest.raises(AllTargetsFailed):
        await leader
    assert served.status is CacheStatus.MISS and r.adapters["stab"].calls == 2


async def test_force_refresh_never_joins_a_call_in_flight() -> None:
    r = rig(stab=Adapter("stab", delay=0.1))
    plan = plan_of({"virtual_key": "stab", "cache": CACHE})
    normal, refreshed = await asyncio.gather(r.serve(plan), r.serve(plan, refresh=True))
    assert (normal.status, refreshed.status) == (CacheStatus.MISS, CacheStatus.REFRESH)
    assert r.adapters["stab"].calls == 2


async def test_a_disabled_cache_is_always_disabled() -> None:
    r = rig()
    cache = ResponseCache(None, None)
    lookup = cache.lookup(CACHED_CHAIN, REQUEST, tenant="key_a")
    served = await cache.serve(lookup, lambda: r.router.run(CACHED_CHAIN, REQUEST, RouteContext(trace_id="t")))
    assert served.status is CacheStatus.DISABLED


class _KeptThenEvicted:
    """Another replica's shared call for the key, which kept its answer before the answer was evicted."""

    def __init__(self) -> None:
        self.abandoned: list[str] = []

    async def claim(self, key: str) -> bool:
        return False

    def finish(self, key: str, kept: bool) -> None:
        raise AssertionError("this replica never leads")

    def abandon(self, key: str) -> None:
        self.abandoned.append(key)

    async def wait(self, key: str, within: float | None) -> FlightEnd:
        return FlightEnd.KEPT


async def test_a_replica_told_kept_that_finds_the_answer_evicted_calls_itself_and_gives_back_the_lock() -> None:
    # Its look-up after "kept" missed, so a shared store may have taken the key's lock for a claim that
    # never comes; it is given back at once instead of making every replica wait for it to expire.
    r = rig()
    fleet = _KeptThenEvicted()
    cache = ResponseCache(r.store, r.keys, shared_flights=fleet)
    plan = plan_of({"virtual_key": "oai", "cache": {"mode": "simple", "max_age": 86400}})
    lookup = cache.lookup(plan, REQUEST, tenant="key_a", refresh=False, metadata={}, headers={}, deadline=None)
    served = await cache.serve(
        lookup, lambda: r.router.run(plan, REQUEST, RouteContext(trace_id="t", deadline=None, headers={}, metadata={}))
    )
    assert served.status is CacheStatus.MISS and calls(r) == {"stab": 0, "oai": 1}
    assert fleet.abandoned == [lookup.key]
