"""The router's walk over a plan, with scripted in-memory adapters (no HTTP: pure routing logic)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from imagegateway_server.api.config_json import parse_config
from imagegateway_server.domain.credentials import ResolvedCredentials
from imagegateway_server.domain.errors import AllTargetsFailed, ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.routing.plan import Leaf, Node, compile_plan
from imagegateway_server.routing.router import RouteContext, Router
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from tests.credentials import api_key

Behaviour = Callable[[ImageRequest, UpstreamTarget], object]


class ScriptedAdapter:
    """Answers each call with the next scripted outcome (an exception, a delay, or success)."""

    def __init__(self, name: str, script: list[object]) -> None:
        self.name = name
        self.script = list(script)
        self.calls: list[tuple[ImageRequest, UpstreamTarget]] = []

    def default_model(self) -> str:
        return f"{self.name}-default"

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        self.calls.append((request, target))
        step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, float):
            await asyncio.sleep(step)
            step = "ok"
        if isinstance(step, Exception):
            raise step
        return ImageResult(images=(GeneratedImage(b"png", "image/png", 1, 1),), model=request.model or "", created=1)

    async def aclose(self) -> None:
        return None


class KeyResolver:
    async def resolve(self, leaf: Leaf) -> ResolvedCredentials:
        provider = leaf.virtual_key or leaf.provider
        return ResolvedCredentials(provider=provider, credential=api_key(f"key-{provider}", provider), base_url=None)


def fail(kind: ErrorKind, status: int, retry_after: float | None = None) -> ProviderError:
    return ProviderError(kind, f"{status} from upstream", provider="p", status_code=status, retry_after=retry_after)


def plan_of(document: dict) -> Node:
    return compile_plan(parse_config(document), canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy(()))


def fallback(*targets: dict, **strategy: object) -> Node:
    return plan_of({"strategy": {"mode": "fallback", **strategy}, "targets": list(targets)})


class Recorder:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_router(
    adapters: dict[str, ScriptedAdapter], recorder: Recorder | None = None, default_timeout: float = 5.0
) -> Router:
    return Router(
        adapters.__getitem__,
        KeyResolver(),
        default_timeout=default_timeout,
        rng=random.Random(1),
        sleep=(recorder or Recorder()).sleep,
    )


REQUEST = ImageRequest(prompt="a kraken", model="stable-diffusion-v1-6")


async def test_fallback_serves_from_the_second_target_and_marks_it() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [fail(ErrorKind.UNAVAILABLE, 503)]), "oai": ScriptedAdapter("oai", [])}
    plan = fallback({"virtual_key": "stab"}, {"virtual_key": "oai", "override_params": {"model": "dall-e-3"}})
    routed = await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t"))
    assert routed.provider == "oai" and routed.fallback_used and routed.leaf.path == "config.targets[1]"
    assert adapters["oai"].calls[0][0].model == "dall-e-3"
    assert [(a.target, a.status_code, a.error_kind) for a in routed.attempts] == [
        ("config.targets[0]", 503, ErrorKind.UNAVAILABLE),
        ("config.targets[1]", 200, None),
    ]


async def test_first_target_success_is_not_a_fallback() -> None:
    adapters = {"stab": ScriptedAdapter("stab", []), "oai": ScriptedAdapter("oai", [])}
    routed = await make_router(adapters).run(
        fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, RouteContext(trace_id="t")
    )
    assert not routed.fallback_used and routed.retry_count == 0 and not adapters["oai"].calls


@pytest.mark.parametrize(
    "kind,status",
    [
        (ErrorKind.BAD_REQUEST, 400),
        (ErrorKind.AUTHENTICATION, 401),
        (ErrorKind.CONTENT_POLICY, 400),
        (ErrorKind.RATE_LIMITED, 429),
        (ErrorKind.TIMEOUT, 408),
        (ErrorKind.UPSTREAM_BUG, 502),
        (ErrorKind.UNAVAILABLE, 502),
    ],
)
async def test_every_failure_kind_moves_the_chain_on(kind: ErrorKind, status: int) -> None:
    adapters = {"stab": ScriptedAdapter("stab", [fail(kind, status)]), "oai": ScriptedAdapter("oai", [])}
    routed = await make_router(adapters).run(
        fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, RouteContext(trace_id="t")
    )
    assert routed.provider == "oai"


async def test_on_status_codes_stops_the_chain_for_other_statuses() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [fail(ErrorKind.BAD_REQUEST, 400)]), "oai": ScriptedAdapter("oai", [])}
    plan = fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}, on_status_codes=[503])
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t"))
    assert info.value.status_code == 400 and not adapters["oai"].calls


async def test_all_failed_reports_the_last_error_and_every_attempt() -> None:
    adapters = {
        "stab": ScriptedAdapter("stab", [fail(ErrorKind.UNAVAILABLE, 500)]),
        "oai": ScriptedAdapter("oai", [fail(ErrorKind.RATE_LIMITED, 429)]),
    }
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters).run(
            fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, RouteContext(trace_id="t")
        )
    assert info.value.status_code == 429 and info.value.kind is ErrorKind.RATE_LIMITED
    assert [a.status_code for a in info.value.attempts] == [500, 429]


async def test_no_retry_unless_the_config_asks() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [fail(ErrorKind.UNAVAILABLE, 503)])}
    with pytest.raises(AllTargetsFailed):
        await make_router(adapters).run(plan_of({"virtual_key": "stab"}), REQUEST, RouteContext(trace_id="t"))
    assert len(adapters["stab"].calls) == 1


async def test_retry_honours_retry_after_and_counts_retries() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [fail(ErrorKind.RATE_LIMITED, 429, retry_after=2.5)])}
    recorder = Recorder()
    routed = await make_router(adapters, recorder).run(
        plan_of({"virtual_key": "stab", "retry": {"attempts": 2}}), REQUEST, RouteContext(trace_id="t")
    )
    assert routed.retry_count == 1 and recorder.waits == [2.5]
    assert [a.retry_index for a in routed.attempts] == [0, 1]


async def test_retry_skips_statuses_not_listed() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [fail(ErrorKind.BAD_REQUEST, 400)])}
    with pytest.raises(AllTargetsFailed):
        await make_router(adapters).run(
            plan_of({"virtual_key": "stab", "retry": {"attempts": 3}}), REQUEST, RouteContext(trace_id="t")
        )
    assert len(adapters["stab"].calls) == 1


async def test_retry_wait_that_does_not_fit_the_deadline_moves_on_at_once() -> None:
    adapters = {
        "stab": ScriptedAdapter("stab", [fail(ErrorKind.RATE_LIMITED, 429, retry_after=30)]),
        "oai": ScriptedAdapter("oai", []),
    }
    recorder = Recorder()
    deadline = asyncio.get_running_loop().time() + 5
    routed = await make_router(adapters, recorder).run(
        fallback({"virtual_key": "stab", "retry": {"attempts": 2}}, {"virtual_key": "oai"}),
        REQUEST,
        RouteContext(trace_id="t", deadline=deadline),
    )
    assert routed.provider == "oai" and recorder.waits == []


async def test_request_timeout_records_408_and_falls_back() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [1.0]), "oai": ScriptedAdapter("oai", [])}
    routed = await make_router(adapters).run(
        fallback({"virtual_key": "stab", "request_timeout": 50}, {"virtual_key": "oai"}),
        REQUEST,
        RouteContext(trace_id="t"),
    )
    assert routed.attempts[0].status_code == 408 and routed.attempts[0].error_kind is ErrorKind.TIMEOUT
    assert routed.provider == "oai"


async def test_expired_deadline_ends_the_chain_with_504() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [1.0]), "oai": ScriptedAdapter("oai", [])}
    deadline = asyncio.get_running_loop().time() + 0.05
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters).run(
            fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}),
            REQUEST,
            RouteContext(trace_id="t", deadline=deadline),
        )
    assert info.value.status_code == 504 and not adapters["oai"].calls


async def test_adapter_bug_is_recorded_as_internal_and_the_chain_continues() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [KeyError("boom")]), "oai": ScriptedAdapter("oai", [])}
    routed = await make_router(adapters).run(
        fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, RouteContext(trace_id="t")
    )
    assert routed.attempts[0].status_code == 500 and routed.provider == "oai"


async def test_nested_fallback_walks_depth_first() -> None:
    adapters = {name: ScriptedAdapter(name, [fail(ErrorKind.UNAVAILABLE, 503)]) for name in ("a", "b")}
    adapters["c"] = ScriptedAdapter("c", [])
    plan = fallback(
        {"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "a"}, {"virtual_key": "b"}]},
        {"virtual_key": "c"},
    )
    routed = await make_router(adapters).run(plan, REQUEST, RouteContext(trace_id="t"))
    assert [a.target for a in routed.attempts] == [
        "config.targets[0].targets[0]",
        "config.targets[0].targets[1]",
        "config.targets[1]",
    ]


async def test_loadbalance_picks_only_positive_weights() -> None:
    adapters = {"a": ScriptedAdapter("a", []), "b": ScriptedAdapter("b", [])}
    plan = plan_of(
        {
            "strategy": {"mode": "loadbalance"},
            "targets": [{"virtual_key": "a", "weight": 0}, {"virtual_key": "b", "weight": 1}],
        }
    )
    router = make_router(adapters)
    for _ in range(20):
        assert (await router.run(plan, REQUEST, RouteContext(trace_id="t"))).provider == "b"


async def test_missing_model_uses_the_adapter_default() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [])}
    routed = await make_router(adapters).run(
        plan_of({"virtual_key": "stab"}), ImageRequest(prompt="x"), RouteContext(trace_id="t")
    )
    assert adapters["stab"].calls[0][0].model == "stab-default" and routed.result.model == "stab-default"


async def test_exhausted_retries_report_minus_one() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [fail(ErrorKind.UNAVAILABLE, 503)] * 3)}
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters).run(
            plan_of({"virtual_key": "stab", "retry": {"attempts": 2}}), REQUEST, RouteContext(trace_id="t")
        )
    assert info.value.retry_count == -1 and len(adapters["stab"].calls) == 3


async def test_a_failure_that_is_not_retried_reports_the_retries_spent() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [fail(ErrorKind.UNAVAILABLE, 503), fail(ErrorKind.BAD_REQUEST, 400)])}
    with pytest.raises(AllTargetsFailed) as info:
        await make_router(adapters).run(
            plan_of({"virtual_key": "stab", "retry": {"attempts": 3}}), REQUEST, RouteContext(trace_id="t")
        )
    assert info.value.retry_count == 1
