"""Dashboard login sessions: what a session holds, and the async interface every session backend
implements.

A session id is an opaque random value (256 bits) in a cookie, mapped to a key id and scope; the
gateway key itself is never kept. Backends key sessions by ``session_key(id)``, the SHA-256 of the
id, so a memory dump or a look at the shared store shows no usable cookie. Sessions end at a fixed
expiry (no sliding renewal), on logout, or when the backend must make room.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Protocol, TypeGuard

DEFAULT_TTL_SECONDS = 8 * 3600
# token_urlsafe(32) is 43 characters; anything much longer is not ours and is not hashed.
MAX_TOKEN_LENGTH = 64


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """Who a session belongs to. ``key_hash`` is the stored verifier of the key, to notice revocation."""

    key_id: str
    scope: str
    key_hash: str = dataclasses.field(repr=False)
    expires: float


def could_be_session_id(token: str | None) -> TypeGuard[str]:
    """False for a cookie value no backend issued (absent, empty, or too long to be ours): not looked up."""
    return bool(token) and len(token or "") <= MAX_TOKEN_LENGTH


def session_key(token: str) -> str:
    """What a backend stores a session under: the digest of its id, never the id."""
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore(Protocol):
    """Creates, finds and ends dashboard sessions."""

    @property
    def ttl_seconds(self) -> float:
        """How long a session lives from its creation (the cookie's max-age)."""
        ...

    async def create(self, key_id: str, scope: str, key_hash: str) -> str:
        """Starts a session and returns its id, the cookie value."""
        ...

    async def get(self, token: str | None) -> Session | None:
        """The live session with this id, or None (unknown, expired or malformed)."""
        ...

    async def end(self, token: str | None) -> None:
        """Ends the session (logout); unknown ids are ignored."""
        ...
