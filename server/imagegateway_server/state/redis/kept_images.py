"""Kept images in Redis: ``igw:image:<log id>`` holds the MIME type, a newline and the image bytes,
for ``TTL_SECONDS``, so an image kept by one replica shows on every replica's dashboard. Memory is
bounded by Redis's eviction policy (an evicted image is simply no longer shown). While Redis is
unreachable the in-process keeper (on disk) keeps and serves this replica's images."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from imagegateway_server.state.kept_images import Keepable, KeptImages
from imagegateway_server.state.redis.events import PREFIX
from imagegateway_server.state.redis.link import RedisLink, RedisUnavailable

KEY_PREFIX = PREFIX + "image:"
TTL_SECONDS = 7 * 86400


class RedisKeptImages:
    """Images in Redis with a time to live; ``fallback`` keeps and serves them while Redis is unreachable."""

    def __init__(self, link: RedisLink, fallback: KeptImages, keepable: Keepable) -> None:
        self._link = link
        self._fallback = fallback
        self._keepable = keepable

    async def keep(self, log_id: str, data: bytes, mime_type: str) -> bool:
        if not self._keepable(log_id, data, mime_type):
            return False
        value = mime_type.encode() + b"\n" + data
        try:
            await self._link.run(lambda client: client.set(KEY_PREFIX + log_id, value, ex=TTL_SECONDS))
        except RedisUnavailable:
            return await self._fallback.keep(log_id, data, mime_type)
        return True

    async def get(self, log_id: str) -> tuple[bytes, str] | None:
        try:
            value = await self._link.run(lambda client: client.get(KEY_PREFIX + log_id))
        except RedisUnavailable:
            value = None
        if isinstance(value, bytes) and b"\n" in value:
            mime_type, _, data = value.partition(b"\n")
            return data, mime_type.decode()
        return await self._fallback.get(log_id)

    async def kept_among(self, log_ids: Iterable[str]) -> set[str]:
        wanted = list(log_ids)
        found = await self._fallback.kept_among(wanted)
        if not wanted:
            return found

        async def exists(client: Any) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                for log_id in wanted:
                    pipe.exists(KEY_PREFIX + log_id)
                result: list[Any] = await pipe.execute()
                return result

        try:
            flags = await self._link.run(exists)
        except RedisUnavailable:
            return found
        return found | {log_id for log_id, flag in zip(wanted, flags, strict=True) if flag}
