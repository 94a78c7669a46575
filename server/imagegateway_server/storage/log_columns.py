"""The analytics columns of a request-log row, computed from its payload in Python.

The PostgreSQL store COPYs log batches straight into ``request_logs`` and fills these columns
here, so a database that several replicas share does no JSON work per row on the write path (that
work was most of its cost per record). The definitions are those of the SQL that fills the same
columns on SQLite (``sqlite.py``) and in the backfill of migration 0006 on both backends:

* ``error_kind``: the payload's error kind ("" for none); ``cache_hit``: the cache answered;
* ``latency_ms``: whole milliseconds (the payload writes them as a decimal string);
* ``image_count``: images served; the attempts that made an upstream call (not skipped by an open
  circuit breaker), those of them that failed, and those that were retries;
* ``first_target``: the first attempt's target; ``last_target``: the served target, else the last tried.

A test keeps this and the SQL in step: both backends must give identical analytics answers.
"""

from __future__ import annotations

import json
import re
from typing import Any

_DECIMAL = re.compile(r"[0-9]+(\.[0-9]*)?")

# error_kind, cache_hit, latency_ms, image_count, attempt_count, failed_attempt_count, retry_count,
# first_target, last_target
LogColumns = tuple[str, bool, int, int, int, int, int, str, str]
NO_COLUMNS: LogColumns = ("", False, 0, 0, 0, 0, 0, "", "")


def _text(value: Any) -> str:
    """What SQL's ``->>`` gives: a string as it is, null as "", anything else as its JSON text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole_milliseconds(value: Any) -> int:
    if _is_number(value) and value >= 0:
        return int(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value.partition(".")[0])
    return 0


def _made_a_call(attempt: Any) -> bool:
    # An attempt skipped by an open breaker says circuit_open: true; absent, false, 0 or null: it called.
    flag = attempt.get("circuit_open") if isinstance(attempt, dict) else None
    return flag is None or flag is False or (_is_number(flag) and flag == 0)


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else None


def log_columns(payload: str) -> LogColumns:
    """The analytics columns of ``payload`` (a request-log message as JSON); zeros if it is not an object."""
    try:
        document = json.loads(payload)
    except ValueError:
        return NO_COLUMNS
    if not isinstance(document, dict):
        return NO_COLUMNS
    images = document.get("images")
    attempts = document.get("attempts")
    attempts = attempts if isinstance(attempts, list) else []
    calls = [attempt for attempt in attempts if _made_a_call(attempt)]
    retry_indexes = (_field(call, "retry_index") for call in calls)
    first_target = _text(_field(attempts[0], "target")) if attempts else ""
    last_target = _text(document.get("served_target")) or (_text(_field(attempts[-1], "target")) if attempts else "")
    return (
        _text(document.get("error_kind")),
        document.get("cache_status") == "CACHE_STATUS_HIT",
        _whole_milliseconds(document.get("latency_ms")),
        len(images) if isinstance(images, list) else 0,
        len(calls),
        sum(1 for call in calls if _text(_field(call, "error_kind"))),
        sum(1 for index in retry_indexes if _is_number(index) and index > 0),
        first_target,
        last_target,
    )
