"""Following the request log: each record once, oldest first, late writes inside the overlap caught."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from imagegateway.v1 import logs_pb2
from imagegateway_server.cli.follow import follow_logs

T0 = datetime(2025, 6, 1, tzinfo=UTC)


class FakeLog:
    """A store of records with ListLogs' semantics: newest first, from a start time, up to a limit."""

    def __init__(self) -> None:
        self.records: list[logs_pb2.RequestLog] = []
        self.queries: list[datetime | None] = []

    def add(self, name: str, seconds: float) -> None:
        log = logs_pb2.RequestLog(id=name)
        log.create_time.FromDatetime(T0 + timedelta(seconds=seconds))
        self.records.append(log)

    def list_since(self, since: datetime | None, limit: int) -> list[logs_pb2.RequestLog]:
        self.queries.append(since)
        found = [r for r in self.records if since is None or r.create_time.ToDatetime(tzinfo=UTC) >= since]
        found.sort(key=lambda r: (r.create_time.ToDatetime(tzinfo=UTC), r.id), reverse=True)
        return found[:limit] if limit else found


def follow(store: FakeLog, steps: list[Callable[[], None]], backlog: int) -> list[str]:
    """Runs the follower; before each poll, the next step changes the store. Returns the ids printed."""
    pending = iter(steps)
    printed: list[str] = []

    def sleep(_: float) -> None:
        step = next(pending, None)
        if step is None:
            raise KeyboardInterrupt  # the user pressed Ctrl-C
        step()

    try:
        for log in follow_logs(
            store.list_since, backlog=backlog, interval=1.0, sleep=sleep, overlap=timedelta(seconds=5)
        ):
            printed.append(log.id)
    except KeyboardInterrupt:
        pass
    return printed


def test_starts_with_the_newest_backlog_oldest_first_then_prints_new_records_once() -> None:
    store = FakeLog()
    for i in range(5):
        store.add(f"old-{i}", i)
    printed = follow(
        store,
        [
            lambda: store.add("new-1", 10),
            lambda: None,  # a quiet poll prints nothing again
            lambda: (store.add("new-2", 11), store.add("new-3", 11)),
        ],
        backlog=2,
    )
    assert printed == ["old-3", "old-4", "new-1", "new-2", "new-3"]


def test_no_backlog_prints_only_what_comes_after_the_start() -> None:
    store = FakeLog()
    store.add("old", 1)
    assert follow(store, [lambda: store.add("new", 2)], backlog=0) == ["new"]


def test_an_empty_log_then_records() -> None:
    store = FakeLog()
    assert follow(store, [lambda: store.add("first", 1), lambda: store.add("second", 2)], backlog=10) == [
        "first",
        "second",
    ]


def test_a_record_written_late_but_inside_the_overlap_is_still_printed() -> None:
    store = FakeLog()
    store.add("a", 100)
    printed = follow(
        store,
        [
            lambda: store.add("b", 110),
            lambda: store.add("late", 107),  # created before "b", reached the store after it
        ],
        backlog=1,
    )
    assert printed == ["a", "b", "late"]


def test_polls_reach_back_only_by_the_overlap_from_the_newest_record() -> None:
    store = FakeLog()
    store.add("a", 100)
    follow(store, [lambda: store.add("b", 200), lambda: None], backlog=1)
    assert store.queries[-1] == T0 + timedelta(seconds=195)


def test_many_records_in_one_poll_come_out_in_time_order() -> None:
    store = FakeLog()
    counter = itertools.count()
    printed = follow(store, [lambda: [store.add(f"r{next(counter):03d}", 50 - i) for i in range(50)]], backlog=0)
    assert printed == [f"r{i:03d}" for i in range(49, -1, -1)]
