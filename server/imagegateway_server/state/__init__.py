"""Per-request shared state behind one seam: the response cache store, circuit breakers, rate-limit and
budget counters, and dashboard sessions.

Each kind has an async interface in its own module here (``cache_store``, ``breakers``,
``limit_counters``, ``sessions``), written in the kind's own value types so a backend needs nothing
from the rest of the gateway. ``in_process/`` holds the backends that keep the state in this
process's memory. ``factory.open_state`` is the one place that picks the backends from the settings;
the process calls it once at start and closes what it returns at shutdown.

A shared backend (the scale-out issue's Redis) is one new module per kind beside ``in_process/``
and one branch in ``factory.open_state``; until it exists, ``IMAGEGW_REDIS_URL`` is refused there.
This package imports nothing from the gateway but ``domain``.
"""
