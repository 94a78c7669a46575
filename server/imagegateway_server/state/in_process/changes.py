"""The change feed of a process alone: there is no other replica to tell or to hear from."""

from __future__ import annotations

from imagegateway_server.state.changes import ChangeListener, RecordKind


class LocalChangeFeed:
    """Publishing goes nowhere; listeners are kept but never called."""

    def __init__(self) -> None:
        self.listeners: dict[RecordKind, list[ChangeListener]] = {}

    def publish(self, kind: RecordKind, record_id: str) -> None:
        return None

    def subscribe(self, kind: RecordKind, listener: ChangeListener) -> None:
        self.listeners.setdefault(kind, []).append(listener)
