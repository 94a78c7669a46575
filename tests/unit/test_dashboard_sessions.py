"""Dashboard sessions: opaque ids mapped to a key id and scope, fixed expiry, logout, bounded size."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.state.in_process.sessions import InProcessSessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


KEY_HASH = "ab" * 32


async def test_a_session_id_is_opaque_and_maps_to_the_key_id_and_scope() -> None:
    sessions = InProcessSessionStore()
    token = await sessions.create("key1", "generate", KEY_HASH)
    assert len(token) >= 43 and "key1" not in token and KEY_HASH not in token
    session = await sessions.get(token)
    assert session is not None
    assert (session.key_id, session.scope, session.key_hash) == ("key1", "generate", KEY_HASH)
    assert KEY_HASH not in repr(session)
    assert await sessions.create("key1", "generate", KEY_HASH) != token


async def test_the_store_keeps_a_digest_of_the_session_id_not_the_id() -> None:
    sessions = InProcessSessionStore()
    token = await sessions.create("key1", "admin", KEY_HASH)
    assert token not in repr(vars(sessions)) and token not in str(list(sessions._sessions))


async def test_a_session_ends_at_its_fixed_expiry_even_when_used() -> None:
    clock = Clock()
    sessions = InProcessSessionStore(ttl_seconds=60, clock=clock)
    token = await sessions.create("key1", "admin", KEY_HASH)
    clock.now += 59
    assert await sessions.get(token) is not None
    clock.now += 1
    assert await sessions.get(token) is None
    assert len(sessions) == 0


async def test_logout_ends_the_session_and_ignores_unknown_ids() -> None:
    sessions = InProcessSessionStore()
    token = await sessions.create("key1", "admin", KEY_HASH)
    await sessions.end("not-a-session")
    await sessions.end(None)
    assert await sessions.get(token) is not None
    await sessions.end(token)
    assert await sessions.get(token) is None


@given(st.one_of(st.none(), st.text(max_size=200)))
def test_ids_the_store_did_not_issue_find_nothing(token: str | None) -> None:
    async def scenario() -> None:
        sessions = InProcessSessionStore()
        await sessions.create("key1", "admin", KEY_HASH)
        assert await sessions.get(token) is None

    asyncio.run(scenario())


async def test_a_full_store_drops_expired_sessions_first_then_the_oldest() -> None:
    clock = Clock()
    sessions = InProcessSessionStore(ttl_seconds=100, max_sessions=3, clock=clock)
    first = await sessions.create("a", "admin", KEY_HASH)
    clock.now += 50
    second = await sessions.create("b", "admin", KEY_HASH)
    third = await sessions.create("c", "admin", KEY_HASH)
    fourth = await sessions.create("d", "admin", KEY_HASH)  # full: the oldest goes
    assert await sessions.get(first) is None
    assert all([await sessions.get(t) is not None for t in (second, third, fourth)])
    clock.now += 60  # second, third and fourth expire at 1150
    clock.now += 50
    fifth = await sessions.create("e", "admin", KEY_HASH)
    assert len(sessions) == 1 and await sessions.get(fifth) is not None


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        InProcessSessionStore(ttl_seconds=0)
    with pytest.raises(ValueError):
        InProcessSessionStore(max_sessions=0)
