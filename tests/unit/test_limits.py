"""Key limits: their validation, the limiter's checks and refusals, spend accounting, the router's
virtual-key gate, and spend recomputed from the request log after a restart."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import pytest

from imagegateway_server.api.config_json import parse_config
from imagegateway_server.core.accounting import RequestAccounting
from imagegateway_server.core.limits import BUDGET_EXCEEDED, RATE_LIMITED, Limiter, LimitExceeded
from imagegateway_server.core.pricing import load_price_table
from imagegateway_server.domain.calls import Caller, GenerationCall, RoutingSpec
from imagegateway_server.domain.credentials import ResolvedCredentials
from imagegateway_server.domain.errors import AllTargetsFailed, ErrorKind, InvalidArgument, ProviderError
from imagegateway_server.domain.limits import NO_LIMITS, Limits
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import AttemptRecord, GeneratedImage, ImageResult, RoutedResult
from imagegateway_server.observability.metrics import Metrics
from imagegateway_server.observability.recorder import RequestRecorder
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.routing.plan import Leaf, Node, compile_plan, direct_leaf
from imagegateway_server.routing.router import RouteContext, Router
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.state.in_process.limit_counters import InProcessLimitCounters
from imagegateway_server.state.limit_counters import Period, to_micros
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.records import LogRecord
from tests.credentials import api_key

PRICES = load_price_table()
NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
DALL_E_3 = ImageRequest(prompt="a kraken", model="dall-e-3")  # 0.04 USD an image by the built-in table
OPENAI = direct_leaf("openai", credential=api_key("sk-test", "openai"))


class Clock:
    def __init__(self, when: datetime = NOON) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def limiter(
    vk_limits: dict[str, Limits] | None = None,
    clock: Clock | None = None,
    counters: InProcessLimitCounters | None = None,
) -> Limiter:
    async def virtual_key_limits(vk: str) -> Limits:
        return (vk_limits or {}).get(vk, NO_LIMITS)

    return Limiter(
        counters or InProcessLimitCounters(), PRICES, virtual_key_limits=virtual_key_limits, clock=clock or Clock()
    )


def plan_of(document: dict[str, object]) -> Node:
    return compile_plan(parse_config(document), canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy(()))


async def serve(gate: Limiter, key: str, limits: Limits, request: ImageRequest = DALL_E_3, cost: float = 0.04) -> None:
    """One request through the gateway key: admitted, charged its cost, released."""
    ticket = await gate.admit(key, limits, OPENAI, request)
    gate.record_spend(key, "", cost, NOON)
    ticket.release()


# -- the limits themselves ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ((-1, 0.0, 0.0), "limits.requests_per_minute"),
        ((0, -0.01, 0.0), "limits.usd_per_day"),
        ((0, 0.0, -5.0), "limits.usd_per_month"),
        ((0, math.nan, 0.0), "limits.usd_per_day"),
        ((0, 0.0, math.inf), "limits.usd_per_month"),
        ((0, 2e9, 0.0), "limits.usd_per_day"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(values: tuple[int, float, float], field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        Limits.checked(*values)
    assert refused.value.param == field and refused.value.message.startswith(field)


def test_zero_switches_a_limit_off() -> None:
    assert Limits.checked(0, 0.0, 0.0).unlimited
    assert not Limits.checked(0, 0.0, 1.5).unlimited and Limits(0, 0.0, 1.5).has_budget
    assert not Limits(5).has_budget


# -- requests per minute ----------------------------------------------------------------------------


async def test_a_gateway_key_over_its_requests_per_minute_is_refused_with_the_wait() -> None:
    gate = limiter()
    limits = Limits(requests_per_minute=2)
    for _ in range(2):
        (await gate.admit("key-1", limits, OPENAI, DALL_E_3)).release()
    with pytest.raises(LimitExceeded) as refused:
        await gate.admit("key-1", limits, OPENAI, DALL_E_3)
    error = refused.value
    assert (error.reason, error.limit, error.key_kind, error.key_id) == (
        RATE_LIMITED,
        "requests_per_minute",
        "gateway key",
        "key-1",
    )
    assert (error.kind, error.status_code, error.code) == (ErrorKind.RATE_LIMITED, 429, "rate_limit_exceeded")
    # Noon is a minute's first instant: the two requests fill it, and the next is let in after it ends.
    assert error.retry_after == 61 and "2 requests per minute" in error.message


async def test_a_key_without_limits_is_never_refused() -> None:
    gate = limiter()
    for _ in range(100):
        (await gate.admit("free", NO_LIMITS, OPENAI, DALL_E_3)).release()


# -- budgets ----------------------------------------------------------------------------------------


async def test_a_daily_budget_is_reached_after_some_requests_and_reopens_at_utc_midnight() -> None:
    clock = Clock()
    gate = limiter(clock=clock)
    limits = Limits(usd_per_day=0.1)
    await serve(gate, "key-1", limits)
    await serve(gate, "key-1", limits)
    with pytest.raises(LimitExceeded) as refused:  # 0.08 spent + 0.04 estimated > 0.10
        await gate.admit("key-1", limits, OPENAI, DALL_E_3)
    error = refused.value
    assert (error.reason, error.limit, error.code) == (BUDGET_EXCEEDED, "usd_per_day", "budget_exceeded")
    assert error.retry_after == 12 * 3600  # noon to midnight
    assert "resets at 2025-03-15T00:00:00Z" in error.message
    clock.now += error.retry_after
    (await gate.admit("key-1", limits, OPENAI, DALL_E_3)).release()


async def test_with_both_budgets_spent_the_request_waits_for_the_month() -> None:
    gate = limiter()
    limits = Limits(usd_per_day=0.04, usd_per_month=0.04)
    await serve(gate, "key-1", limits)
    with pytest.raises(LimitExceeded) as refused:
        await gate.admit("key-1", limits, OPENAI, DALL_E_3)
    assert refused.value.limit == "usd_per_month"
    assert refused.value.retry_after == (datetime(2025, 4, 1, tzinfo=UTC) - NOON).total_seconds()


async def test_a_model_the_price_table_does_not_know_is_refused_only_once_the_budget_is_spent() -> None:
    gate = limiter()
    limits = Limits(usd_per_day=0.05)
    mystery = ImageRequest(prompt="x", model="mystery-model")
    await serve(gate, "key-1", limits, mystery, cost=0.049)
    await serve(gate, "key-1", limits, mystery, cost=0.001)
    with pytest.raises(LimitExceeded):
        await gate.admit("key-1", limits, OPENAI, mystery)


async def test_the_estimate_covers_n_images_and_the_first_targets_overrides() -> None:
    gate = limiter()
    limits = Limits(usd_per_day=0.2)
    with pytest.raises(LimitExceeded):  # 6 dall-e-3 images at 0.04
        await gate.admit("key-1", limits, OPENAI, ImageRequest(prompt="x", model="dall-e-3", n=6))
    plan = plan_of(
        {
            "strategy": {"mode": "fallback"},
            "targets": [
                {"virtual_key": "sd", "override_params": {"model": "stable-diffusion-v1-6", "n": 6}},
                {"virtual_key": "oai", "override_params": {"model": "dall-e-3"}},
            ],
        }
    )
    (await gate.admit("key-1", limits, plan, ImageRequest(prompt="x", model="dall-e-3"))).release()


async def test_requests_in_flight_hold_their_estimate_until_they_end() -> None:
    counters = InProcessLimitCounters()
    gate = limiter(counters=counters)
    limits = Limits(usd_per_day=0.05)
    first = await gate.admit("key-1", limits, OPENAI, DALL_E_3)
    with pytest.raises(LimitExceeded):  # 0.04 held + 0.04 > 0.05: concurrent requests cannot overspend
        await gate.admit("key-1", limits, OPENAI, DALL_E_3)
    first.release()
    first.release()  # idempotent
    assert counters.held("api_key:key-1") == 0
    (await gate.admit("key-1", limits, OPENAI, DALL_E_3)).release()


async def test_a_rate_refusal_gives_back_the_estimate_it_was_about_to_hold() -> None:
    counters = InProcessLimitCounters()
    gate = limiter(counters=counters)
    limits = Limits(requests_per_minute=1, usd_per_day=10)
    first = await gate.admit("key-1", limits, OPENAI, DALL_E_3)
    with pytest.raises(LimitExceeded) as refused:
        await gate.admit("key-1", limits, OPENAI, DALL_E_3)
    assert refused.value.reason == RATE_LIMITED
    assert counters.held("api_key:key-1") == to_micros(0.04)
    first.release()


async def test_spend_is_charged_to_the_gateway_key_and_the_virtual_key() -> None:
    counters = InProcessLimitCounters()
    gate = limiter(counters=counters)
    gate.record_spend("key-1", "vk-a", 0.04, NOON)
    gate.record_spend("key-1", "", 0.02, NOON)
    gate.record_spend("key-1", "vk-a", 0.0, NOON)
    assert counters.spent("api_key:key-1", Period.DAY, NOON) == to_micros(0.06)
    assert counters.spent("virtual_key:vk-a", Period.MONTH, NOON) == to_micros(0.04)


# -- virtual keys, in the router ----------------------------------------------------------------------


class Adapter:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def default_model(self) -> str:
        return "dall-e-3"

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        self.calls += 1
        return ImageResult(
            images=(GeneratedImage(b"png", "image/png", 1024, 1024),), model=request.model or "", created=1
        )

    async def aclose(self) -> None:
        return None


class VirtualKeys:
    """Each virtual key reaches the provider ``providers`` names, by default a provider named like the key."""

    def __init__(self, providers: dict[str, str] | None = None) -> None:
        self.providers = providers or {}

    async def resolve(self, leaf: Leaf) -> ResolvedCredentials:
        vk = leaf.virtual_key or ""
        return ResolvedCredentials(provider=self.providers.get(vk, vk), credential=api_key("sk", vk), base_url=None)


def router(adapters: dict[str, Adapter], providers: dict[str, str] | None = None) -> Router:
    return Router(adapters.__getitem__, VirtualKeys(providers))


SPENT_VK = {"vk-a": Limits(usd_per_day=0.04), "vk-b": NO_LIMITS}


async def spent_gate() -> Limiter:
    gate = limiter(SPENT_VK)
    gate.record_spend("someone", "vk-a", 0.04, NOON)
    return gate


async def test_a_fallback_moves_past_a_virtual_key_over_its_budget_without_calling_it() -> None:
    gate = await spent_gate()
    adapters = {"vk-a": Adapter("vk-a"), "vk-b": Adapter("vk-b")}
    plan = plan_of({"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "vk-a"}, {"virtual_key": "vk-b"}]})
    ticket = await gate.admit("key-1", NO_LIMITS, plan, DALL_E_3)
    routed = await router(adapters).run(plan, DALL_E_3, RouteContext(trace_id="t", target_gate=ticket))
    assert routed.provider == "vk-b" and routed.fallback_used and adapters["vk-a"].calls == 0
    skipped = routed.attempts[0]
    assert (skipped.status_code, skipped.error_kind, skipped.virtual_key) == (429, ErrorKind.RATE_LIMITED, "vk-a")
    assert "virtual key vk-a has reached its budget" in skipped.error


async def test_a_virtual_key_refusal_is_a_429_to_on_status_codes() -> None:
    gate = await spent_gate()
    adapters = {"vk-a": Adapter("vk-a"), "vk-b": Adapter("vk-b")}
    plan = plan_of(
        {
            "strategy": {"mode": "fallback", "on_status_codes": [503]},
            "targets": [{"virtual_key": "vk-a"}, {"virtual_key": "vk-b"}],
        }
    )
    ticket = await gate.admit("key-1", NO_LIMITS, plan, DALL_E_3)
    with pytest.raises(AllTargetsFailed) as failed:
        await router(adapters).run(plan, DALL_E_3, RouteContext(trace_id="t", target_gate=ticket))
    assert isinstance(failed.value.last, LimitExceeded) and adapters["vk-b"].calls == 0


async def test_direct_routing_by_a_virtual_key_over_its_limit_is_answered_with_the_refusal() -> None:
    gate = limiter({"vk-a": Limits(requests_per_minute=1)})
    adapters = {"vk-a": Adapter("vk-a")}
    plan = direct_leaf("", virtual_key="vk-a")
    for expected_calls in (1, 1):
        ticket = await gate.admit("key-1", NO_LIMITS, plan, DALL_E_3)
        try:
            await router(adapters).run(plan, DALL_E_3, RouteContext(trace_id="t", target_gate=ticket))
        except AllTargetsFailed as failed:
            assert isinstance(failed.last, LimitExceeded) and failed.last.key_kind == "virtual key"
            assert failed.last.retry_after >= 1
        finally:
            ticket.release()
        assert adapters["vk-a"].calls == expected_calls


async def test_a_virtual_keys_estimate_is_held_by_the_request_that_called_it() -> None:
    counters = InProcessLimitCounters()
    gate = limiter({"vk-a": Limits(usd_per_month=1)}, counters=counters)
    plan = direct_leaf("", virtual_key="vk-a")
    ticket = await gate.admit("key-1", NO_LIMITS, plan, DALL_E_3)
    await router({"openai": Adapter("openai")}, {"vk-a": "openai"}).run(
        plan, DALL_E_3, RouteContext(trace_id="t", target_gate=ticket)
    )
    assert counters.held("virtual_key:vk-a") == to_micros(0.04)  # priced as the vk's provider prices dall-e-3
    ticket.release()
    assert counters.held("virtual_key:vk-a") == 0


# -- spend recorded after the request -----------------------------------------------------------------


class Writer:
    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    def submit(self, record: LogRecord) -> None:
        self.records.append(record)


def call(virtual_key: str | None = None) -> GenerationCall:
    return GenerationCall(
        request=ImageRequest(prompt="p", model="dall-e-3"),
        routing=RoutingSpec(config_id="cfg") if virtual_key is None else RoutingSpec(virtual_key=virtual_key),
        caller=Caller("key-1", "generate"),
        transport="rest",
    )


def test_a_served_requests_cost_is_charged_to_the_virtual_key_that_served_it() -> None:
    counters = InProcessLimitCounters()
    gate, writer = limiter(counters=counters), Writer()
    recorder = RequestAccounting(RequestRecorder(writer, Metrics()), PRICES, spend=gate)  # type: ignore[arg-type]
    leaf = Leaf(
        path="config.targets[1]",
        provider="",
        virtual_key="vk-b",
        credential=None,
        custom_host=None,
        override_params=MappingProxyType({}),
        request_timeout_ms=None,
        retry=None,
        forward_headers=(),
    )
    routed = RoutedResult(
        result=ImageResult(images=(GeneratedImage(b"png", "image/png", 1024, 1024),), model="dall-e-3", created=1),
        leaf=leaf,
        provider="openai",
        retry_count=0,
        fallback_used=True,
        attempts=(
            AttemptRecord("config.targets[0]", "stability-ai", "sd", 503, 1, virtual_key="vk-a"),
            AttemptRecord("config.targets[1]", "openai", "dall-e-3", 200, 1, virtual_key="vk-b"),
        ),
    )
    recorder.success(call(), routed, trace_id="t", started=0.0, config_id="cfg", config_version=1)
    [record] = writer.records
    assert (record.virtual_key_id, record.cost_usd) == ("vk-b", pytest.approx(0.04))
    when = record.create_time
    assert counters.spent("virtual_key:vk-b", Period.DAY, when) == to_micros(0.04)
    assert counters.spent("api_key:key-1", Period.DAY, when) == to_micros(0.04)
    assert counters.spent("virtual_key:vk-a", Period.DAY, when) == 0


def test_a_failed_request_is_charged_to_the_virtual_key_tried_last() -> None:
    from imagegateway_server.domain.errors import RequestFailed

    writer = Writer()
    recorder = RequestAccounting(
        RequestRecorder(writer, Metrics()),
        PRICES,  # type: ignore[arg-type]
        spend=limiter(),
    )
    error = ProviderError(ErrorKind.UNAVAILABLE, "down", provider="openai", status_code=503)
    failure = RequestFailed(
        error,
        attempts=(
            AttemptRecord(
                "config.targets[0]", "openai", "dall-e-3", 503, 1, error_kind=ErrorKind.UNAVAILABLE, virtual_key="vk-a"
            ),
            AttemptRecord(
                "config.targets[1]", "openai", "dall-e-3", 503, 1, error_kind=ErrorKind.UNAVAILABLE, virtual_key="vk-b"
            ),
        ),
    )
    recorder.failure(call(), failure, trace_id="t", started=0.0, config_id="cfg", config_version=1)
    recorder.failure(call("vk-direct"), RequestFailed(error), trace_id="t", started=0.0, config_id="", config_version=0)
    assert [r.virtual_key_id for r in writer.records] == ["vk-b", "vk-direct"]


# -- after a restart ----------------------------------------------------------------------------------


def log_record(n: int, when: datetime, key: str, cost: float, vk: str = "") -> LogRecord:
    return LogRecord(
        id=f"log_{n}",
        trace_id=f"t{n}",
        create_time=when,
        status_code=200,
        provider="openai",
        model="dall-e-3",
        caller_key_id=key,
        config_id="",
        fallback_used=False,
        payload="{}",
        virtual_key_id=vk,
        cost_usd=cost,
    )


async def test_spend_is_recomputed_from_the_request_log_after_a_restart(any_store: Store) -> None:
    store = any_store
    await store.append_logs(
        [
            log_record(1, datetime(2025, 2, 28, 23, 59, tzinfo=UTC), "key-1", 5.0, "vk-a"),  # last month
            log_record(2, datetime(2025, 3, 2, 9, 0, tzinfo=UTC), "key-1", 1.0, "vk-a"),
            log_record(3, NOON - timedelta(hours=2), "key-1", 0.25, "vk-a"),
            log_record(4, NOON - timedelta(hours=1), "key-2", 0.5),
            log_record(5, NOON - timedelta(minutes=5), "key-2", 0.0, "vk-a"),  # a failure or a cache hit
        ]
    )
    counters = InProcessLimitCounters()
    gate = limiter(counters=counters)
    await gate.restore(store)
    assert counters.spent("api_key:key-1", Period.MONTH, NOON) == to_micros(1.25)
    assert counters.spent("api_key:key-1", Period.DAY, NOON) == to_micros(0.25)
    assert counters.spent("api_key:key-2", Period.DAY, NOON) == to_micros(0.5)
    assert counters.spent("virtual_key:vk-a", Period.MONTH, NOON) == to_micros(1.25)
    assert counters.spent("virtual_key:vk-a", Period.DAY, NOON) == to_micros(0.25)
    # And the recomputed spend limits: 0.25 + 0.04 fits 0.3 once, not twice.
    limits = Limits(usd_per_day=0.3)
    await serve(gate, "key-1", limits)
    with pytest.raises(LimitExceeded):
        await gate.admit("key-1", limits, OPENAI, DALL_E_3)


# -- estimates from the price table ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "size", "quality", "n", "provider", "usd"),
    [
        ("dall-e-3", None, None, 1, "", 0.04),
        ("dall-e-3", "1792x1024", "hd", 2, "", 0.24),
        ("DALL-E-3", "auto", None, 3, "openai", 0.12),
        ("stable-image-core", None, None, 1, "", 0.03),  # an alias
        ("dall-e-3", None, None, 1, "stability-ai", 0.0),  # not that provider's model
        ("mystery", None, None, 4, "", 0.0),
        (None, None, None, 1, "openai", 0.0),
    ],
)
def test_the_estimate_prices_what_was_asked_where_the_table_knows_it(
    model: str | None, size: str | None, quality: str | None, n: int, provider: str, usd: float
) -> None:
    assert PRICES.estimate(model, size, quality, n, provider=provider) == pytest.approx(usd)
