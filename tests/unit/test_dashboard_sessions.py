"""Dashboard sessions: opaque ids mapped to a key id and scope, fixed expiry, logout, bounded size."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.api.dashboard_sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


KEY_HASH = "ab" * 32


def test_a_session_id_is_opaque_and_maps_to_the_key_id_and_scope() -> None:
    sessions = SessionStore()
    token = sessions.create("key1", "generate", KEY_HASH)
    assert len(token) >= 43 and "key1" not in token and KEY_HASH not in token
    session = sessions.get(token)
    assert session is not None
    assert (session.key_id, session.scope, session.key_hash) == ("key1", "generate", KEY_HASH)
    assert KEY_HASH not in repr(session)
    assert sessions.create("key1", "generate", KEY_HASH) != token


def test_the_store_keeps_a_digest_of_the_session_id_not_the_id() -> None:
    sessions = SessionStore()
    token = sessions.create("key1", "admin", KEY_HASH)
    assert token not in repr(vars(sessions)) and token not in str(list(sessions._sessions))


def test_a_session_ends_at_its_fixed_expiry_even_when_used() -> None:
    clock = Clock()
    sessions = SessionStore(ttl_seconds=60, clock=clock)
    token = sessions.create("key1", "admin", KEY_HASH)
    clock.now += 59
    assert sessions.get(token) is not None
    clock.now += 1
    assert sessions.get(token) is None
    assert len(sessions) == 0


def test_logout_ends_the_session_and_ignores_unknown_ids() -> None:
    sessions = SessionStore()
    token = sessions.create("key1", "admin", KEY_HASH)
    sessions.end("not-a-session")
    sessions.end(None)
    assert sessions.get(token) is not None
    sessions.end(token)
    assert sessions.get(token) is None


@given(st.one_of(st.none(), st.text(max_size=200)))
def test_ids_the_store_did_not_issue_find_nothing(token: str | None) -> None:
    sessions = SessionStore()
    sessions.create("key1", "admin", KEY_HASH)
    assert sessions.get(token) is None


def test_a_full_store_drops_expired_sessions_first_then_the_oldest() -> None:
    clock = Clock()
    sessions = SessionStore(ttl_seconds=100, max_sessions=3, clock=clock)
    first = sessions.create("a", "admin", KEY_HASH)
    clock.now += 50
    second = sessions.create("b", "admin", KEY_HASH)
    third = sessions.create("c", "admin", KEY_HASH)
    fourth = sessions.create("d", "admin", KEY_HASH)  # full: the oldest goes
    assert sessions.get(first) is None
    assert all(sessions.get(t) is not None for t in (second, third, fourth))
    clock.now += 60  # second, third and fourth expire at 1150
    clock.now += 50
    fifth = sessions.create("e", "admin", KEY_HASH)
    assert len(sessions) == 1 and sessions.get(fifth) is not None


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        SessionStore(ttl_seconds=0)
    with pytest.raises(ValueError):
        SessionStore(max_sessions=0)
