"""Changes to admin records (saved configs, virtual keys, gateway API keys) told to every replica, so
each drops what it cached of them within a second instead of waiting for its cache to expire.

The service that made the change drops its own cached copy itself; ``publish`` tells the others.
The in-process backend has no others; a shared one (Redis pub/sub) delivers at most once, and after
losing its subscription tells every listener to drop everything (``ALL``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol

# The id a listener gets when every cached record of its kind must be dropped.
ALL = "*"


class RecordKind(enum.Enum):
    """Which admin records changed."""

    CONFIG = "config"
    VIRTUAL_KEY = "virtual_key"
    API_KEY = "api_key"


# Told the id of a record another replica changed (or ``ALL``).
ChangeListener = Callable[[str], None]


class ChangeFeed(Protocol):
    """Tells other replicas of changes, and this one of theirs."""

    def publish(self, kind: RecordKind, record_id: str) -> None:
        """Tells the other replicas that ``record_id`` changed. Synchronous: a shared backend queues it."""
        ...

    def subscribe(self, kind: RecordKind, listener: ChangeListener) -> None:
        """Calls ``listener`` with the id of each record of ``kind`` another replica changes."""
        ...
