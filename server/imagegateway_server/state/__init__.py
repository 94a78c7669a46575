"""Per-request shared state behind one seam: the response cache store, circuit breakers, rate-limit and
budget counters, and dashboard sessions.

Each kind has an async interface in its own module here (``cache_store``, ``breakers``,
``limit_counters``, ``sessions``), written in the kind's own value types so a backend needs nothing
from the rest of the gateway. ``in_process/`` holds the backends that keep the state in this
process's memory. ``factory.open_state`` is the one place that picks the backends from the settings;
the process calls it once at start and closes what it returns at shutdown.

``redis/`` holds the shared backends (``IMAGEGW_REDIS_URL``), one module per kind, each serving
from its in-process twin while Redis is unreachable; ``flights`` (one upstream call per identical
miss across replicas) and ``changes`` (admin changes told to every replica) exist for them.
This package imports nothing from the gateway but ``domain``.
"""
