"""The change feed on Redis pub/sub (``igw:events:changes``): a change saved on one replica reaches
the others in milliseconds. A message lost while a replica's subscription was down is made up for
by dropping every cached record when it subscribes again; while Redis is unreachable, the services'
own short cache lifetimes (seconds) bound how stale a replica can be."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagegateway_server.state.changes import ALL, ChangeListener, RecordKind
from imagegateway_server.state.redis.events import CHANGES_CHANNEL, Events
from imagegateway_server.state.redis.link import RedisLink


class RedisChangeFeed:
    """Publishes changes to, and hears them from, every replica on this Redis."""

    def __init__(self, link: RedisLink, events: Events) -> None:
        self._link = link
        self._events = events
        self._listeners: dict[RecordKind, list[ChangeListener]] = {}
        events.on(CHANGES_CHANNEL, self._on_message)
        events.on_resubscribed(self._drop_everything)
        link.add_return_hook(self._drop_everything)

    def publish(self, kind: RecordKind, record_id: str) -> None:
        self._link.spawn(self._events.publish(CHANGES_CHANNEL, {"kind": kind.value, "id": record_id}))

    def subscribe(self, kind: RecordKind, listener: ChangeListener) -> None:
        self._listeners.setdefault(kind, []).append(listener)

    def _on_message(self, message: Mapping[str, Any]) -> None:
        try:
            kind = RecordKind(message.get("kind"))
        except ValueError:
            return
        record_id = message.get("id")
        if isinstance(record_id, str):
            for listener in self._listeners.get(kind, ()):
                listener(record_id)

    async def _drop_everything(self) -> None:
        for listeners in self._listeners.values():
            for listener in listeners:
                listener(ALL)
