"""The router's strategies: conditional picks, weighted load balance (and its in-group fallback), deadlines."""

from __future__ import annotations

import asyncio
import collections
import random
from typing import Any

import pytest

from imagegateway_server.domain.errors import AllTargetsFailed, ErrorKind
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.routing.router import RouteContext, Router
from tests.unit.test_router import REQUEST, KeyResolver, ScriptedAdapter, fail, make_router, plan_of

UNAVAILABLE = fail(ErrorKind.UNAVAILABLE, 503)


def adapters_for(*names: str, failing: tuple[str, ...] = ()) -> dict[str, ScriptedAdapter]:
    return {name: ScriptedAdapter(name, [UNAVAILABLE] if name in failing else []) for name in names}


def called(adapters: dict[str, ScriptedAdapter]) -> list[str]:
    return [name for name, adapter in adapters.items() if adapter.calls]


def conditional(conditions: list[dict[str, Any]], default: str, *names: str) -> dict[str, Any]:
    return {
        "strategy": {"mode": "conditional", "conditions": conditions, "default": default},
        "targets": [{"name": name, "virtual_key": name} for name in names],
    }


def loadbalance(**weights: float) -> dict[str, Any]:
    return {
        "strategy": {"mode": "loadbalance"},
        "targets": [{"virtual_key": name, "weight": weight} for name, weight in weights.items()],
    }


# -- conditional --------------------------------------------------------------------------------------


async def test_conditional_routes_by_metadata() -> None:
    plan = plan_of(
        conditional([{"query": {"metadata.tier": {"$in": ["gold", "platinum"]}}, "then": "oai"}], "stab", "oai", "stab")
    )
    adapters = adapters_for("oai", "stab")
    routed = await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t", metadata={"tier": "gold"}))
    assert routed.provider == "oai" and routed.leaf.path == "config.targets[0]" and not routed.fallback_used
    routed = await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t", metadata={"tier": "free"}))
    assert routed.provider == "stab" and routed.leaf.path == "config.targets[1]"


async def test_conditional_reads_the_callers_params_not_the_overrides() -> None:
    document = conditional([{"query": {"params.model": "dall-e-3"}, "then": "oai"}], "stab", "oai", "stab")
    document["override_params"] = {"model": "dall-e-3"}  # applies at the leaf, after the choice
    adapters = adapters_for("oai", "stab")
    routed = await make_router(adapters).run(plan_of(document), REQUEST, RouteContext(trace_id="t"))
    assert routed.provider == "stab"
    assert adapters["stab"].calls[0][0].model == "dall-e-3"
    routed = await make_router(adapters).run(
        plan_of(document), ImageRequest(prompt="x", model="dall-e-3"), RouteContext(trace_id="t")
    )
    assert routed.provider == "oai"


async def test_conditional_without_a_match_takes_the_default() -> None:
    plan = plan_of(conditional([{"query": {"metadata.tier": "gold"}, "then": "oai"}], "stab", "oai", "stab"))
    adapters = adapters_for("oai", "stab")
    routed = await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t"))
    assert routed.provider == "stab" and called(adapters) == ["stab"]


async def test_failed_conditional_choice_is_the_groups_failure_not_a_move_to_the_default() -> None:
    plan = plan_of(conditional([{"query": {}, "then": "oai"}], "stab", "oai", "stab"))
    adapters = adapters_for("oai", "stab", failing=("oai",))
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t"))
    assert info.value.status_code == 503 and called(adapters) == ["oai"]


async def test_conditional_inside_fallback_hands_a_failure_to_the_next_fallback_target() -> None:
    inner = conditional([{"query": {"metadata.tier": "gold"}, "then": "a"}], "b", "a", "b")
    plan = plan_of({"strategy": {"mode": "fallback"}, "targets": [inner, {"virtual_key": "c"}]})
    adapters = adapters_for("a", "b", "c", failing=("a",))
    routed = await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t", metadata={"tier": "gold"}))
    assert routed.provider == "c" and routed.fallback_used and called(adapters) == ["a", "c"]
    assert [a.target for a in routed.attempts] == ["config.targets[0].targets[0]", "config.targets[1]"]


async def test_nested_conditionals_choose_at_each_level() -> None:
    inner = conditional([{"query": {"params.size": "512x512"}, "then": "small"}], "large", "small", "large")
    inner["name"] = "images"
    plan = plan_of(
        {
            "strategy": {
                "mode": "conditional",
                "default": "other",
                "conditions": [{"query": {"metadata.kind": "image"}, "then": "images"}],
            },
            "targets": [inner, {"name": "other", "virtual_key": "other"}],
        }
    )
    adapters = adapters_for("small", "large", "other")
    request = ImageRequest(prompt="x", size="512x512")
    routed = await make_router(adapters).run(plan, request, RouteContext(trace_id="t", metadata={"kind": "image"}))
    assert routed.provider == "small" and routed.leaf.path == "config.targets[0].targets[0]"
    routed = await make_router(adapters).run(plan, request, RouteContext(trace_id="t"))
    assert routed.provider == "other"


# -- loadbalance --------------------------------------------------------------------------------------


async def test_top_level_loadbalance_makes_one_pick_and_its_failure_is_final() -> None:
    adapters = adapters_for("a", "b", failing=("a", "b"))
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters).run(plan_of(loadbalance(a=1, b=1)), REQUEST, RouteContext(trace_id="t"))
    assert len(info.value.attempts) == 1 and len(called(adapters)) == 1


async def test_loadbalance_under_single_mode_is_still_one_pick() -> None:
    plan = plan_of({"strategy": {"mode": "single"}, "targets": [loadbalance(a=1, b=1)]})
    adapters = adapters_for("a", "b", failing=("a", "b"))
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t"))
    assert len(info.value.attempts) == 1


async def test_loadbalance_inside_fallback_tries_its_other_targets_before_the_group_fails() -> None:
    plan = plan_of({"strategy": {"mode": "fallback"}, "targets": [loadbalance(a=1, b=1, zero=0), {"virtual_key": "c"}]})
    for seed in range(10):
        adapters = adapters_for("a", "b", "zero", "c", failing=("a", "b"))
        router = Router(adapters.__getitem__, KeyResolver(), default_timeout=5.0, rng=random.Random(seed))
        routed = await router.run(plan, REQUEST, RouteContext(trace_id="t"))
        inner = [a.target for a in routed.attempts[:2]]
        assert sorted(inner) == ["config.targets[0].targets[0]", "config.targets[0].targets[1]"]
        assert routed.provider == "c" and routed.attempts[2].target == "config.targets[1]"
        assert not adapters["zero"].calls


async def test_loadbalance_inside_fallback_serves_from_another_pick() -> None:
    plan = plan_of({"strategy": {"mode": "fallback"}, "targets": [loadbalance(a=1, b=1), {"virtual_key": "c"}]})
    adapters = adapters_for("a", "b", "c", failing=("a",))
    for _ in range(10):
        adapters["a"].script = [UNAVAILABLE]
        routed = await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t"))
        assert routed.provider == "b"
    assert not adapters["c"].calls


async def test_loadbalance_inside_fallback_stops_where_the_fallback_would() -> None:
    plan = plan_of(
        {
            "strategy": {"mode": "fallback", "on_status_codes": [503]},
            "targets": [loadbalance(a=1, b=1), {"virtual_key": "c"}],
        }
    )
    bad_request = fail(ErrorKind.BAD_REQUEST, 400)
    adapters = {name: ScriptedAdapter(name, [bad_request]) for name in ("a", "b")}
    adapters["c"] = ScriptedAdapter("c", [])
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t"))
    assert info.value.status_code == 400 and len(info.value.attempts) == 1 and not adapters["c"].calls


async def test_loadbalance_deep_inside_fallback_still_falls_back_within_the_group() -> None:
    # fallback > conditional > loadbalance: the conditional passes the fallback scope down.
    inner = {
        "strategy": {"mode": "conditional", "conditions": [{"query": {}, "then": "lb"}], "default": "lb"},
        "targets": [{**loadbalance(a=1, b=1), "name": "lb"}],
    }
    plan = plan_of({"strategy": {"mode": "fallback"}, "targets": [inner, {"virtual_key": "c"}]})
    adapters = adapters_for("a", "b", "c", failing=("a", "b"))
    routed = await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t"))
    assert [a.status_code for a in routed.attempts] == [503, 503, 200] and routed.provider == "c"


async def test_weighted_pick_follows_the_weights() -> None:
    plan = plan_of(loadbalance(a=1, b=3, zero=0))
    adapters = adapters_for("a", "b", "zero")
    router = make_router(adapters)
    counts = collections.Counter(
        [(await router.run(plan, REQUEST, RouteContext(trace_id="t"))).provider for _ in range(4000)]
    )
    assert counts["zero"] == 0
    assert 0.70 < counts["b"] / 4000 < 0.80  # expected 0.75; the seeded rng makes this exact, not flaky


async def test_in_group_fallback_order_is_a_weighted_shuffle_of_the_positive_weights() -> None:
    plan = plan_of(
        {"strategy": {"mode": "fallback"}, "targets": [loadbalance(a=1, b=0, c=2, d=1), {"virtual_key": "e"}]}
    )
    router = Router(
        lambda name: ScriptedAdapter(name, [] if name == "e" else [UNAVAILABLE]), KeyResolver(), rng=random.Random(7)
    )
    firsts: collections.Counter[str] = collections.Counter()
    for _ in range(2000):
        attempts = (await router.run(plan, REQUEST, RouteContext(trace_id="t"))).attempts
        inner = [a.provider for a in attempts[:-1]]
        assert sorted(inner) == ["a", "c", "d"] and attempts[-1].provider == "e"
        firsts[inner[0]] += 1
    assert 0.44 < firsts["c"] / 2000 < 0.56  # weight 2 of 4 goes first half the time


# -- deadlines ----------------------------------------------------------------------------------------


async def test_later_targets_get_only_the_remaining_time() -> None:
    adapters = {"a": ScriptedAdapter("a", [1.0]), "b": ScriptedAdapter("b", [])}
    plan = plan_of(
        {
            "strategy": {"mode": "fallback"},
            "targets": [{"virtual_key": "a", "request_timeout": 200}, {"virtual_key": "b"}],
        }
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3.0
    routed = await make_router(adapters, default_timeout=60).run(
        plan, REQUEST, RouteContext(trace_id="t", deadline=deadline)
    )
    assert routed.provider == "b" and routed.attempts[0].status_code == 408
    first_timeout = adapters["a"].calls[0][1].timeout
    second_timeout = adapters["b"].calls[0][1].timeout
    assert first_timeout == pytest.approx(0.2)
    assert second_timeout is not None and 0 < second_timeout <= 3.0 - 0.2


async def test_deadline_reached_in_a_later_target_is_504_with_every_attempt() -> None:
    adapters = {"a": ScriptedAdapter("a", [1.0]), "b": ScriptedAdapter("b", [5.0]), "c": ScriptedAdapter("c", [])}
    plan = plan_of(
        {
            "strategy": {"mode": "fallback"},
            "targets": [{"virtual_key": "a", "request_timeout": 100}, {"virtual_key": "b"}, {"virtual_key": "c"}],
        }
    )
    deadline = asyncio.get_running_loop().time() + 0.4
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters, default_timeout=60).run(
            plan, REQUEST, RouteContext(trace_id="t", deadline=deadline)
        )
    assert info.value.status_code == 504 and info.value.kind is ErrorKind.DEADLINE_EXCEEDED
    assert [a.status_code for a in info.value.attempts] == [408, 504]
    assert not adapters["c"].calls


async def test_a_request_timeout_shorter_than_the_deadline_stays_a_408() -> None:
    adapters = {"a": ScriptedAdapter("a", [1.0])}
    deadline = asyncio.get_running_loop().time() + 30
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters).run(
            plan_of({"virtual_key": "a", "request_timeout": 50}), REQUEST, RouteContext(trace_id="t", deadline=deadline)
        )
    assert info.value.status_code == 408


async def test_an_already_expired_deadline_makes_no_attempt() -> None:
    adapters = adapters_for("a")
    deadline = asyncio.get_running_loop().time() - 1
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters).run(
            plan_of({"virtual_key": "a"}), REQUEST, RouteContext(trace_id="t", deadline=deadline)
        )
    assert info.value.status_code == 504 and not adapters["a"].calls
