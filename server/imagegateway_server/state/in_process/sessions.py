"""Dashboard sessions kept in this process: a map from session key to session, oldest first, bounded.

Behind a load balancer each replica has its own: use sticky sessions, or log in per replica.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from imagegateway_server.state.sessions import DEFAULT_TTL_SECONDS, Session, could_be_session_id, session_key

DEFAULT_MAX_SESSIONS = 10_000


class InProcessSessionStore:
    """Creates, finds and ends sessions. Used from one event loop; not thread-safe.

    A full map drops expired sessions first, then the oldest.
    """

    def __init__(
        self,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_sessions <= 0:
            raise ValueError("ttl_seconds and max_sessions must be positive")
        self._ttl = ttl_seconds
        self._max = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # oldest first

    @property
    def ttl_seconds(self) -> float:
        return self._ttl

    def __len__(self) -> int:
        return len(self._sessions)

    async def create(self, key_id: str, scope: str, key_hash: str) -> str:
        now = self._clock()
        if len(self._sessions) >= self._max:
            for stale in [d for d, s in self._sessions.items() if s.expires <= now]:
                del self._sessions[stale]
            while len(self._sessions) >= self._max:
                self._sessions.popitem(last=False)
        token = secrets.token_urlsafe(32)
        self._sessions[session_key(token)] = Session(key_id, scope, key_hash, now + self._ttl)
        return token

    async def get(self, token: str | None) -> Session | None:
        if not could_be_session_id(token):
            return None
        key = session_key(token)
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires <= self._clock():
            del self._sessions[key]
            return None
        return session

    async def end(self, token: str | None) -> None:
        if could_be_session_id(token):
            self._sessions.pop(session_key(token), None)
