"""Retired models: the table, the chain to a live successor, the per-account memory, the router's one retry."""

from __future__ import annotations

import datetime
import random

import pytest

from imagegateway_server.api.config_json import parse_config
from imagegateway_server.api.config_proto import config_from_proto, config_to_proto
from imagegateway_server.domain.config_document import config_document, config_from_document
from imagegateway_server.domain.errors import AllTargetsFailed, ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.retired_models import load_retired_models, parse_retired_models
from imagegateway_server.routing.model_successors import ModelSuccessors, says_model_is_gone
from imagegateway_server.routing.router import RouteContext, Router
from imagegateway_server.state.breakers import TargetIdentity
from imagegateway_server.state.in_process.gone_models import LocalGoneModels
from tests.credentials import api_key
from tests.unit.test_router import KeyResolver, ScriptedAdapter, plan_of

TODAY = datetime.date(2026, 12, 6)
TABLE = load_retired_models()


def gone(model: str = "dall-e-3") -> ProviderError:
    return ProviderError(
        ErrorKind.NOT_FOUND,
        f"The model `{model}` does not exist or you do not have access to it.",
        provider="openai",
        status_code=404,
        code="model_not_found",
    )


def entry(model: str, successor: str, retired_on: str = "2026-01-01", **more: object) -> dict[str, object]:
    return {"provider": "openai", "model": model, "successor": successor, "retired_on": retired_on, **more}


# -- the table ---------------------------------------------------------------------------------------


def test_the_built_in_table_follows_the_chain_to_a_live_model_on_the_day() -> None:
    request = ImageRequest(prompt="x", model="dall-e-3", quality="hd", style="vivid")
    after_all = TABLE.successor_of("openai", request, TODAY)
    assert after_all is not None and after_all.successor == "gpt-image-2"
    assert after_all.request.quality == "high" and after_all.request.style is None
    assert after_all.notes == ("quality=hd->high", "style=vivid->omitted")
    assert after_all.retired_on == "2026-05-12"
    in_june = TABLE.successor_of("openai", request, datetime.date(2026, 6, 1))
    assert in_june is not None and in_june.successor == "gpt-image-1"  # gpt-image-1 still served then


def test_a_model_outside_the_table_has_no_successor() -> None:
    assert TABLE.successor_of("openai", ImageRequest(prompt="x", model="gpt-image-2"), TODAY) is None
    assert TABLE.successor_of("azure-openai", ImageRequest(prompt="x", model="dall-e-3"), TODAY) is None


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([entry("a", "b"), entry("b", "a")], "lead back"),
        ([entry("a", "a")], "successor: must differ"),
        ([entry("a", "b", retired_on="May 12")], "retired_on: must be a date"),
        ([entry("a", "b", params={"n": {"1": "2"}})], "params.n: must be one of"),
        ([entry("a", "b"), entry("A", "c")], "already in the table"),
        ([{**entry("a", "b"), "enabled": True}], "enabled: unknown field"),
    ],
)
def test_a_bad_table_is_refused_naming_the_field(models: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_retired_models({"models": models})


# -- when the model is gone, and the memory --------------------------------------------------------------


def test_only_a_model_not_found_answer_says_the_model_is_gone() -> None:
    assert says_model_is_gone(gone())
    assert not says_model_is_gone(ProviderError(ErrorKind.NOT_FOUND, "no such deployment", provider="p", code="x"))
    assert not says_model_is_gone(ProviderError(ErrorKind.BAD_REQUEST, "bad", provider="p", code="model_not_found"))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_memory_is_per_account_and_expires() -> None:
    clock = Clock()
    successors = ModelSuccessors(TABLE, memory_seconds=60, memory=LocalGoneModels(clock=clock), today=lambda: TODAY)
    request = ImageRequest(prompt="x", model="dall-e-3")
    mine = TargetIdentity.of("openai", None, api_key("sk-mine"), "dall-e-3")
    theirs = TargetIdentity.of("openai", None, api_key("sk-theirs"), "dall-e-3")
    assert successors.remembered("openai", mine, request) is None
    assert successors.after_failure("openai", mine, request, gone()) is not None
    remembered = successors.remembered("openai", mine, request)
    assert remembered is not None and remembered.successor == "gpt-image-2"
    assert successors.remembered("openai", theirs, request) is None
    clock.now += 61
    assert successors.remembered("openai", mine, request) is None


def test_memory_seconds_zero_remembers_nothing() -> None:
    successors = ModelSuccessors(TABLE, memory_seconds=0, today=lambda: TODAY)
    request = ImageRequest(prompt="x", model="dall-e-3")
    identity = TargetIdentity.of("openai", None, api_key("sk-mine"), "dall-e-3")
    assert successors.after_failure("openai", identity, request, gone()) is not None
    assert successors.remembered("openai", identity, request) is None


# -- the router ----------------------------------------------------------------------------------------


def router(adapter: ScriptedAdapter, successors: ModelSuccessors | None = None) -> Router:
    return Router(
        {"openai": adapter}.__getitem__,
        KeyResolver(),
        rng=random.Random(1),
        successors=successors or ModelSuccessors(TABLE, today=lambda: TODAY),
    )


REQUEST = ImageRequest(prompt="a harbour", model="dall-e-3", quality="hd")


async def test_a_gone_model_is_retried_once_with_its_successor_then_called_directly() -> None:
    adapter = ScriptedAdapter("openai", [gone()])
    gateway_router = router(adapter)
    plan = plan_of({"provider": "openai", "api_key": "sk-x"})
    routed = await gateway_router.run(plan, REQUEST, RouteContext(trace_id="t"))
    assert [call[0].model for call in adapter.calls] == ["dall-e-3", "gpt-image-2"]
    assert adapter.calls[1][0].quality == "high"
    assert routed.substitution is not None and routed.substitution.reason == "retired"
    assert routed.result.translations[:2] == ("model=dall-e-3->gpt-image-2", "quality=hd->high")
    assert [(a.model, a.status_code) for a in routed.attempts] == [("dall-e-3", 404), ("gpt-image-2", 200)]
    assert routed.retry_count == 0

    again = await gateway_router.run(plan, REQUEST, RouteContext(trace_id="t2"))
    assert [call[0].model for call in adapter.calls] == ["dall-e-3", "gpt-image-2", "gpt-image-2"]
    assert again.substitution is not None and again.substitution.reason == "remembered"


async def test_the_successor_is_tried_once_only() -> None:
    adapter = ScriptedAdapter("openai", [gone(), gone("gpt-image-2")])
    plan = plan_of({"provider": "openai", "api_key": "sk-x", "retry": {"attempts": 0}})
    with pytest.raises(AllTargetsFailed) as failed:
        await router(adapter).run(plan, REQUEST, RouteContext(trace_id="t"))
    assert [call[0].model for call in adapter.calls] == ["dall-e-3", "gpt-image-2"]
    assert failed.value.last.status_code == 404


@pytest.mark.parametrize("target", [{"model_successor": False}, {"strict": True}])
async def test_an_opted_out_or_strict_target_keeps_the_404(target: dict[str, object]) -> None:
    adapter = ScriptedAdapter("openai", [gone()])
    plan = plan_of({"provider": "openai", "api_key": "sk-x", **target})
    with pytest.raises(AllTargetsFailed):
        await router(adapter).run(plan, REQUEST, RouteContext(trace_id="t"))
    assert [call[0].model for call in adapter.calls] == ["dall-e-3"]


async def test_model_successor_is_inherited_by_child_targets() -> None:
    adapter = ScriptedAdapter("openai", [gone()])
    plan = plan_of(
        {
            "strategy": {"mode": "fallback"},
            "model_successor": False,
            "targets": [{"provider": "openai", "api_key": "k"}],
        }
    )
    with pytest.raises(AllTargetsFailed):
        await router(adapter).run(plan, REQUEST, RouteContext(trace_id="t"))
    assert len(adapter.calls) == 1


async def test_a_model_outside_the_table_is_not_replaced() -> None:
    adapter = ScriptedAdapter("openai", [gone("gpt-image-9")])
    plan = plan_of({"provider": "openai", "api_key": "sk-x"})
    with pytest.raises(AllTargetsFailed):
        await router(adapter).run(plan, ImageRequest(prompt="x", model="gpt-image-9"), RouteContext(trace_id="t"))
    assert len(adapter.calls) == 1


def test_model_successor_survives_the_proto_the_json_and_the_stored_document() -> None:
    config = parse_config({"provider": "openai", "api_key": "sk-x", "model_successor": False})
    assert config.model_successor is False
    assert config_from_proto(config_to_proto(config)).model_successor is False
    assert config_from_document(config_document(config)).model_successor is False
    assert parse_config({"provider": "openai", "api_key": "sk-x"}).model_successor is None
