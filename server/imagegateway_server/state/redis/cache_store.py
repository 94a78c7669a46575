"""The response cache in Redis: each answer one string value with its time to live, keyed as today.

A look-up that misses also takes the key's shared-call lock (``flights``) in the same script, so a
miss costs one round trip, not two. An answer is stored as ``IGC1``, a 4-byte length, a JSON header
(every image field but its bytes, and the answer's own fields), then the images' bytes one after
another. No pickle: whoever can write to Redis must not be able to run code in the gateway. Memory
is bounded by Redis's own ``maxmemory`` and eviction policy (an evicted answer is a miss), not by
``IMAGEGW_CACHE_MAX_BYTES``, which bounds only the in-process fallback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import struct
from collections.abc import Awaitable, Mapping
from typing import Any

from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.state.cache_store import CachedAnswer, CacheStore
from imagegateway_server.state.redis.events import PREFIX
from imagegateway_server.state.redis.flights import LOCK_TTL_MILLISECONDS, RedisFlights, flight_key
from imagegateway_server.state.redis.link import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

KEY_PREFIX = PREFIX + "cache:"
MAGIC = b"IGC2"  # the format: a blob of another version reads as a miss
_HEADER_LENGTH = struct.Struct(">I")
# Every field of an image but its bytes, and of a result but its images, so that a field added to
# either travels through Redis without an edit here (each is a JSON value: text, numbers, a mapping).
_IMAGE_FIELDS = tuple(f.name for f in dataclasses.fields(GeneratedImage) if f.name != "data")
_RESULT_FIELDS = tuple(f.name for f in dataclasses.fields(ImageResult) if f.name != "images")


def cache_key(key: str) -> str:
    return KEY_PREFIX + key


def encode_answer(answer: CachedAnswer) -> bytes:
    result = answer.result
    header = {
        "provider": answer.provider,
        "served_target": answer.served_target,
        "identity": answer.identity,
        "result": {
            name: dict(value) if isinstance(value, Mapping) else list(value) if isinstance(value, tuple) else value
            for name in _RESULT_FIELDS
            for value in (getattr(result, name),)
        },
        "images": [
            {
                **{name: getattr(image, name) for name in _IMAGE_FIELDS},
                "bytes": None if image.data is None else len(image.data),
            }
            for image in result.images
        ],
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    return b"".join([MAGIC, _HEADER_LENGTH.pack(len(head)), head, *(image.data or b"" for image in result.images)])


def decode_answer(blob: bytes) -> CachedAnswer | None:
    """The answer ``blob`` holds, or None if it is not one this code wrote (a miss, not a crash)."""
    try:
        if not blob.startswith(MAGIC):
            return None
        (length,) = _HEADER_LENGTH.unpack_from(blob, len(MAGIC))
        start = len(MAGIC) + _HEADER_LENGTH.size
        header: dict[str, Any] = json.loads(blob[start : start + length])
        offset = start + length
        images = []
        for fields in header["images"]:
            size = fields.pop("bytes")
            data = None
            if size is not None:
                data = blob[offset : offset + size]
                if len(data) != size:
                    return None
                offset += size
            images.append(GeneratedImage(data=data, **fields))
        fields = header["result"]
        fields["translations"] = tuple(fields["translations"])
        result = ImageResult(images=tuple(images), **fields)
        return CachedAnswer(result, header["provider"], header["served_target"], header["identity"])
    except (ValueError, KeyError, TypeError, struct.error):
        return None


# KEYS: 1 the answer, 2 the key's shared-call lock. ARGV: 1 a claim token, 2 the lock's time to live (ms).
# The answer if there is one; else the lock is taken for this replica if free: a miss is followed by
# the shared-call claim (routing/cache.py), and doing both here saves that claim its own round trip.
_GET_OR_CLAIM = """
local answer = redis.call('GET', KEYS[1])
if answer then
  return {answer, 0}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {false, 1}
end
return {false, 0}
"""


def _settle(found: asyncio.Future[CachedAnswer | None], fallback: asyncio.Future[CachedAnswer | None]) -> None:
    if found.done():
        if not fallback.cancelled():
            fallback.exception()  # seen: nobody waits for it any more
    elif fallback.cancelled():
        found.cancel()
    elif (error := fallback.exception()) is not None:
        found.set_exception(error)
    else:
        found.set_result(fallback.result())


class RedisCacheStore:
    """Answers in Redis; the in-process ``fallback`` serves while Redis is unreachable.

    With ``flights`` (the shared-call backend), a miss also takes the key's shared-call lock in the
    same round trip when it is free, and hands it to ``flights`` for the claim that follows.
    """

    def __init__(self, link: RedisLink, fallback: CacheStore, flights: RedisFlights | None = None) -> None:
        self._link = link
        self._fallback = fallback
        self._flights = flights
        self._get_or_claim_sha = link.script(_GET_OR_CLAIM)

    def get(self, key: str) -> Awaitable[CachedAnswer | None]:
        """The answer under ``key``. The look-up is queued when called, so it travels with the commands
        queued beside it (the key's limits) however late it is awaited, and the answer is a future no task
        stands behind: decoded by a callback when the reply comes, ready for the caller when it looks."""
        flights = self._flights
        token = ""
        try:
            if flights is None:
                reply = self._link.send(lambda pipe: pipe.get(cache_key(key)))
            else:
                token = flights.new_token()
                reply = self._link.send(
                    lambda pipe: pipe.evalsha(
                        self._get_or_claim_sha, 2, cache_key(key), flight_key(key), token, LOCK_TTL_MILLISECONDS
                    )
                )
        except RedisUnavailable:
            return self._fallback.get(key)
        found: asyncio.Future[CachedAnswer | None] = asyncio.get_running_loop().create_future()
        reply.add_done_callback(lambda done: self._found(done, key, token, found))
        return found

    def _found(
        self, reply: asyncio.Future[Any], key: str, token: str, found: asyncio.Future[CachedAnswer | None]
    ) -> None:
        if reply.cancelled() or reply.exception() is not None:  # RedisUnavailable
            if not found.done():
                fallback = asyncio.ensure_future(self._fallback.get(key))
                fallback.add_done_callback(lambda done: _settle(found, done))
            return
        blob = reply.result()
        if self._flights is not None:
            blob, claimed = blob
            if claimed:
                self._flights.preclaimed(key, token)
                if found.done():  # the request went away meanwhile: it will not claim the lock
                    self._flights.abandon(key)
        if not found.done():
            found.set_result(decode_answer(blob) if isinstance(blob, bytes) else None)

    async def put(self, key: str, answer: CachedAnswer, ttl_seconds: float) -> None:
        """Queues the write and returns without waiting for Redis. It goes once the request has its answer
        (``RedisLink.send(after_answer=True)``), or with a call that comes first, so neither the write nor
        the answer's encoding (when the pipeline is built) is on the caller's path or the next request's.
        Queued now, the SET goes before anything queued after it (the shared-call end,
        ``RedisFlights.finish``): a replica told the call ended finds the answer, and one that asks before
        is still held off by the call's lock."""
        milliseconds = int(ttl_seconds * 1000)
        if milliseconds <= 0:
            return
        try:
            stored = self._link.send(
                lambda pipe: pipe.set(cache_key(key), encode_answer(answer), px=milliseconds), after_answer=True
            )
        except RedisUnavailable:
            await self._fallback.put(key, answer, ttl_seconds)
            return
        stored.add_done_callback(lambda done: self._stored(done, key, answer, ttl_seconds))

    def _stored(self, done: asyncio.Future[Any], key: str, answer: CachedAnswer, ttl_seconds: float) -> None:
        if not done.cancelled() and done.exception() is not None:
            self._link.spawn(self._fallback.put(key, answer, ttl_seconds))

    async def delete(self, key: str) -> None:
        try:
            await self._link.run(lambda client: client.delete(cache_key(key)))
        except RedisUnavailable:
            pass
        await self._fallback.delete(key)
