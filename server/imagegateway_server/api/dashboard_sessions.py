"""Dashboard login sessions: an opaque random id in a cookie, mapped server-side to a key id and scope.

The cookie carries 256 random bits and nothing else; the gateway key itself is never kept. The
map is keyed by the SHA-256 of the session id, so a memory dump or a debugger shows no usable
cookie. Sessions end at a fixed expiry (no sliding renewal), on logout, or when the map is full
(oldest first). They live in this process: behind a load balancer, use sticky sessions or log in
per replica.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

DEFAULT_TTL_SECONDS = 8 * 3600
DEFAULT_MAX_SESSIONS = 10_000
# token_urlsafe(32) is 43 characters; anything much longer is not ours and is not hashed.
_MAX_TOKEN_LENGTH = 64


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """Who a session belongs to. ``key_hash`` is the stored verifier of the key, to notice revocation."""

    key_id: str
    scope: str
    key_hash: str = dataclasses.field(repr=False)
    expires: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore:
    """Creates, finds and ends sessions. Used from one event loop; not thread-safe."""

    def __init__(self, ttl_seconds: float = DEFAULT_TTL_SECONDS, max_sessions: int = DEFAULT_MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_seconds <= 0 or max_sessions <= 0:
            raise ValueError("ttl_seconds and max_sessions must be positive")
        self.ttl_seconds = ttl_seconds
        self._max = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, key_id: str, scope: str, key_hash: str) -> str:
        """Starts a session and returns its id, the cookie value."""
        now = self._clock()
        if len(self._sessions) >= self._max:
            for stale in [d for d, s in self._sessions.items() if s.expires <= now]:
                del self._sessions[stale]
            while len(self._sessions) >= self._max:
                self._sessions.popitem(last=False)
        token = secrets.token_urlsafe(32)
        self._sessions[_digest(token)] = Session(key_id, scope, key_hash, now + self.ttl_seconds)
        return token

    def get(self, token: str | None) -> Session | None:
        """The live session with this id, or None (unknown, expired or malformed)."""
        if not token or len(token) > _MAX_TOKEN_LENGTH:
            return None
        digest = _digest(token)
        session = self._sessions.get(digest)
        if session is None:
            return None
        if session.expires <= self._clock():
            del self._sessions[digest]
            return None
        return session

    def end(self, token: str | None) -> None:
        """Ends the session (logout); unknown ids are ignored."""
        if token and len(token) <= _MAX_TOKEN_LENGTH:
            self._sessions.pop(_digest(token), None)
