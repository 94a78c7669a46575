"""The replica's one pub/sub subscription, and publishing to it.

Every replica subscribes to a few channels (breaker transitions, finished shared calls, admin
changes, models gone) on one connection of its own and hands each message to the handler of its channel.
Messages are small JSON objects carrying the sender's ``replica_id``, so a replica can skip its own.

Pub/sub delivers at most once: a message sent while this replica's subscription was down is lost.
So after every (re)subscription the ``on_resubscribed`` handlers run, and each kind resyncs in its
own way (breakers reload the open ones, caches of admin records are emptied).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from redis.exceptions import RedisError

from imagegateway_server.state.redis.link import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

PREFIX = "igw:"
BREAKERS_CHANNEL = PREFIX + "events:breakers"
FLIGHTS_CHANNEL = PREFIX + "events:flights"
CHANGES_CHANNEL = PREFIX + "events:changes"
GONE_CHANNEL = PREFIX + "events:gone"
# How long to wait before subscribing again after the connection dropped.
RESUBSCRIBE_DELAY_SECONDS = 0.25
# An idle subscription is pinged this often, and given up (then made again) after this long unheard.
PING_EVERY_SECONDS = 5.0
SILENT_SECONDS = 15.0

Handler = Callable[[Mapping[str, Any]], None]
Resync = Callable[[], Awaitable[None]]


class Events:
    """Subscribes to the state channels and dispatches their messages; publishes through the link."""

    def __init__(self, link: RedisLink) -> None:
        self._link = link
        self._handlers: dict[str, Handler] = {}
        self._resyncs: list[Resync] = []
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def on(self, channel: str, handler: Handler) -> None:
        """Hands every message of ``channel`` from another replica to ``handler``."""
        self._handlers[channel] = handler

    def on_resubscribed(self, resync: Resync) -> None:
        """Runs ``resync`` after every subscription but the first (messages may have been missed)."""
        self._resyncs.append(resync)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._listen())
        if not self._link.up:
            return  # unreachable at start: subscribing is retried in the background
        # A short wait, so that tests and the first requests see messages; never blocks a start.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._link.timeout * 4):
                await self._subscribed.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def payload(self, message: Mapping[str, Any]) -> str:
        """``message`` as published (for a script that publishes it itself)."""
        return json.dumps({**message, "replica": self._link.replica_id}, separators=(",", ":"))

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        """Sends ``message`` to every replica; RedisUnavailable when it cannot (the caller carries on)."""
        payload = self.payload(message)
        await self._link.run(lambda client: client.publish(channel, payload))

    async def _listen(self) -> None:
        client = self._link.subscriber_client()
        first = True
        try:
            while True:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                try:
                    await pubsub.subscribe(*self._handlers)
                    self._subscribed.set()
                    if not first:
                        await self._resync()
                    first = False
                    await self._receive(pubsub)
                except (RedisError, OSError, RedisUnavailable, TimeoutError):
                    pass
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                await asyncio.sleep(RESUBSCRIBE_DELAY_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _receive(self, pubsub: Any) -> None:
        """Dispatches messages until the connection fails, or stays silent past ``SILENT_SECONDS``
        although pinged (a connection a network partition cut without a word: TimeoutError)."""
        loop = asyncio.get_running_loop()
        heard = pinged = loop.time()
        while True:
            message = await pubsub.get_message(timeout=PING_EVERY_SECONDS)
            now = loop.time()
            if message is not None:
                heard = now
                if message.get("type") == "message":
                    self._dispatch(message)
            if now - heard > SILENT_SECONDS:
                raise TimeoutError
            if now - pinged >= PING_EVERY_SECONDS:
                pinged = now
                await pubsub.ping()

    async def _resync(self) -> None:
        for resync in self._resyncs:
            try:
                await resync()
            except (RedisError, OSError, TimeoutError, RedisUnavailable):
                pass  # Redis went away again; the next subscription resyncs
            except Exception:
                log.exception("resyncing state after a pub/sub reconnect failed")

    def _dispatch(self, message: Mapping[str, Any]) -> None:
        channel = message.get("channel")
        handler = self._handlers.get(channel.decode() if isinstance(channel, bytes) else str(channel))
        if handler is None:
            return
        try:
            body = json.loads(message["data"])
        except (ValueError, TypeError, KeyError):
            return  # not ours
        if not isinstance(body, dict) or body.get("replica") == self._link.replica_id:
            return
        try:
            handler(body)
        except Exception:
            log.exception("handling a state message failed")
