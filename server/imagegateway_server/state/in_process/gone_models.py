"""Gone models remembered in this process: a bounded dictionary of expiry times."""

from __future__ import annotations

import time
from collections.abc import Callable

from imagegateway_server.state.breakers import TargetIdentity
from imagegateway_server.state.gone_models import MAX_REMEMBERED


class LocalGoneModels:
    """The memory of one process; the oldest memories go first when it is full."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_remembered: int = MAX_REMEMBERED) -> None:
        self._clock = clock
        self._max = max_remembered
        self._until: dict[TargetIdentity, float] = {}  # -> when the memory expires (clock)

    def remember(self, identity: TargetIdentity, seconds: float) -> None:
        if seconds <= 0:
            return
        self._until.pop(identity, None)
        if len(self._until) >= self._max:
            del self._until[next(iter(self._until))]
        self._until[identity] = self._clock() + seconds

    def recalls(self, identity: TargetIdentity) -> bool:
        until = self._until.get(identity)
        if until is None:
            return False
        if until <= self._clock():
            del self._until[identity]
            return False
        return True

    def remaining(self, identity: TargetIdentity) -> float:
        """Seconds left of a memory (0 when there is none)."""
        until = self._until.get(identity)
        return max(0.0, until - self._clock()) if until is not None else 0.0
