"""The memory of retired models gone, shared through Redis: the 404 one replica was answered spares
the others theirs; a replica starting later, or back from a lost subscription, reads it from Redis;
without Redis each process remembers alone.

Two ``open_state`` results on one real redis-server play two replicas.
"""

from __future__ import annotations

from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.routing.model_successors import ModelSuccessors
from imagegateway_server.settings import Settings
from imagegateway_server.state.breakers import TargetIdentity
from imagegateway_server.state.factory import StateBackends, open_state
from imagegateway_server.state.in_process.gone_models import LocalGoneModels
from imagegateway_server.state.redis.breakers import identity_field
from imagegateway_server.state.redis.gone_models import GONE_PREFIX, RedisGoneModels
from tests.credentials import api_key
from tests.unit.test_model_successors import TABLE, TODAY, gone
from tests.unit.test_state_redis import eventually, link_of, open_replica, replicas

__all__ = ["replicas"]  # the fixture, used by name below

MINE = TargetIdentity.of("openai", None, api_key("sk-mine"), "dall-e-3")
THEIRS = TargetIdentity.of("openai", None, api_key("sk-theirs"), "dall-e-3")
REQUEST = ImageRequest(prompt="x", model="dall-e-3")


def successors(backends: StateBackends, seconds: float = 600) -> ModelSuccessors:
    return ModelSuccessors(TABLE, memory_seconds=seconds, memory=backends.gone_models, today=lambda: TODAY)


async def test_a_404_on_one_replica_sends_the_others_straight_to_the_successor(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    first, second = replicas
    assert isinstance(first.gone_models, RedisGoneModels)
    told, other = successors(first), successors(second)
    assert other.remembered("openai", MINE, REQUEST) is None
    assert told.after_failure("openai", MINE, REQUEST, gone()) is not None
    await eventually(lambda: other.remembered("openai", MINE, REQUEST) is not None)
    remembered = other.remembered("openai", MINE, REQUEST)
    assert remembered is not None and remembered.successor == "gpt-image-2"
    assert other.remembered("openai", THEIRS, REQUEST) is None  # per account, as in process


async def test_the_memory_is_kept_in_redis_for_its_time_and_a_later_replica_reads_it(redis_url: str) -> None:
    first = await open_replica(redis_url)
    try:
        successors(first, seconds=90).after_failure("openai", MINE, REQUEST, gone())
        link = link_of(first)
        await link.drain()
        left = await link.run(lambda client: client.pttl(GONE_PREFIX + identity_field(MINE)))
        assert 0 < left <= 90_000
        late = await open_replica(redis_url)
        try:
            # Read from Redis at start: no message needed.
            await eventually(lambda: late.gone_models.recalls(MINE))
            assert not late.gone_models.recalls(THEIRS)
        finally:
            await late.close()
    finally:
        await first.close()


async def test_a_resubscribed_replica_loads_what_it_missed(replicas: tuple[StateBackends, StateBackends]) -> None:
    first, second = replicas
    assert isinstance(second.gone_models, RedisGoneModels)
    # Written to Redis without the message (as if it was sent while the second replica was away).
    link = link_of(first)
    await link.run(lambda client: client.set(GONE_PREFIX + identity_field(THEIRS), "1", px=60_000))
    assert not second.gone_models.recalls(THEIRS)
    await second.gone_models.load()
    assert second.gone_models.recalls(THEIRS)


async def test_without_redis_the_memory_is_the_processs_own() -> None:
    backends = await open_state(Settings())
    try:
        assert isinstance(backends.gone_models, LocalGoneModels)
        successors(backends).after_failure("openai", MINE, REQUEST, gone())
        assert successors(backends).remembered("openai", MINE, REQUEST) is not None
    finally:
        await backends.close()


def test_the_local_memory_expires_and_drops_the_oldest_when_full() -> None:
    now = [0.0]
    memory = LocalGoneModels(clock=lambda: now[0], max_remembered=2)
    memory.remember(MINE, 10)
    memory.remember(THEIRS, 10)
    third = TargetIdentity.of("openai", None, api_key("sk-third"), "dall-e-3")
    memory.remember(third, 10)
    assert not memory.recalls(MINE) and memory.recalls(THEIRS) and memory.recalls(third)
    now[0] = 11.0
    assert not memory.recalls(THEIRS)
    memory.remember(MINE, 0)
    assert not memory.recalls(MINE)


async def test_a_peer_message_with_an_endless_or_odd_time_is_ignored(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    first, _ = replicas
    gone_models = first.gone_models
    assert isinstance(gone_models, RedisGoneModels)
    field = identity_field(MINE)
    for seconds in ("inf", "nan", 1e300, -5, 0, "soon"):
        gone_models._on_message({"identity": field, "seconds": seconds})
        assert not gone_models.recalls(MINE), seconds
    gone_models._on_message({"identity": field, "seconds": 60})
    assert gone_models.recalls(MINE)
