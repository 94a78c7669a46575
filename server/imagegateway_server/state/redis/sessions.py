"""Dashboard sessions in Redis: ``igw:session:<SHA-256 of the id>`` holds the session as JSON, and
expires with it, so a login on one replica is good on every replica.

While Redis is unreachable, new logins are kept by the in-process fallback (good on this replica
only) and sessions kept in Redis cannot be read: their users log in again.
"""

from __future__ import annotations

import json
import secrets
import time

from imagegateway_server.state.in_process.sessions import InProcessSessionStore
from imagegateway_server.state.redis.events import PREFIX
from imagegateway_server.state.redis.link import RedisLink, RedisUnavailable
from imagegateway_server.state.sessions import Session, could_be_session_id, session_key

KEY_PREFIX = PREFIX + "session:"


class RedisSessionStore:
    """Sessions in Redis with their time to live; ``fallback`` serves while Redis is unreachable."""

    def __init__(self, link: RedisLink, fallback: InProcessSessionStore) -> None:
        self._link = link
        self._fallback = fallback

    @property
    def ttl_seconds(self) -> float:
        return self._fallback.ttl_seconds

    async def create(self, key_id: str, scope: str, key_hash: str) -> str:
        token = secrets.token_urlsafe(32)
        expires = time.time() + self.ttl_seconds
        value = json.dumps({"key_id": key_id, "scope": scope, "key_hash": key_hash, "expires": expires})
        try:
            await self._link.run(
                lambda client: client.set(KEY_PREFIX + session_key(token), value, px=int(self.ttl_seconds * 1000))
            )
        except RedisUnavailable:
            return await self._fallback.create(key_id, scope, key_hash)
        return token

    async def get(self, token: str | None) -> Session | None:
        if not could_be_session_id(token):
            return None
        try:
            value = await self._link.run(lambda client: client.get(KEY_PREFIX + session_key(token)))
        except RedisUnavailable:
            return await self._fallback.get(token)
        if value is None:
            return await self._fallback.get(token)  # made while Redis was away
        try:
            fields = json.loads(value)
            session = Session(fields["key_id"], fields["scope"], fields["key_hash"], float(fields["expires"]))
        except (ValueError, KeyError, TypeError):
            return None
        # ``expires`` of the interface is the backend's clock: this one's is the wall clock.
        return session if session.expires > time.time() else None

    async def end(self, token: str | None) -> None:
        if not could_be_session_id(token):
            return
        try:
            await self._link.run(lambda client: client.delete(KEY_PREFIX + session_key(token)))
        except RedisUnavailable:
            pass
        await self._fallback.end(token)
