"""Follows the request log as it grows (``imagegw logs tail``): polls ListLogs and yields each record once.

Each poll lists, newest first, the records created since the newest one already seen minus an
overlap, and yields those not seen before, oldest first. The cursor is the server's own
``create_time``, so the local clock never matters. Records are written off the hot path in
batches (a fraction of a second late), and may reach the store slightly out of ``create_time``
order across replicas: the overlap re-reads that window, and the ids seen in it are remembered so
nothing is printed twice. A record that reaches the store more than ``overlap`` after a newer one
would be missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta

from imagegateway.types import RequestLog

# Lists records created at or after the given time (None: any time), newest first, at most
# ``limit`` of them (0: all).
ListSince = Callable[[datetime | None, int], Iterable[RequestLog]]

DEFAULT_OVERLAP = timedelta(seconds=5)


def _created(log: RequestLog) -> datetime:
    return log.create_time.ToDatetime(tzinfo=UTC)


def follow_logs(
    list_since: ListSince,
    *,
    backlog: int = 10,
    interval: float = 1.0,
    overlap: timedelta = DEFAULT_OVERLAP,
    sleep: Callable[[float], object] | None = None,
) -> Iterator[RequestLog]:
    """Yields the newest ``backlog`` records, then every new record once, oldest first, forever."""
    if backlog < 0:
        raise ValueError("backlog must not be negative")
    pause = sleep or time.sleep
    seen: dict[str, datetime] = {}
    newest: datetime | None = None
    # One record is always fetched, even with no backlog, to learn where "new" starts.
    recent = list(list_since(None, max(backlog, 1)))
    for log in recent:
        seen[log.id] = _created(log)
    if recent:
        newest = max(seen.values())
        # Records already there in the overlap window are old news too, backlog or not.
        for log in list_since(newest - overlap, 0):
            seen[log.id] = _created(log)
    yield from sorted(recent[:backlog], key=lambda log: (_created(log), log.id))
    while True:
        pause(interval)
        since = newest - overlap if newest is not None else None
        fresh = [log for log in list_since(since, 0) if log.id not in seen]
        fresh.sort(key=lambda log: (_created(log), log.id))
        for log in fresh:
            created = _created(log)
            seen[log.id] = created
            if newest is None or created > newest:
                newest = created
        if newest is not None:
            horizon = newest - overlap
            for log_id in [i for i, created in seen.items() if created < horizon]:
                del seen[log_id]  # older than any future poll reaches back
        yield from fresh
