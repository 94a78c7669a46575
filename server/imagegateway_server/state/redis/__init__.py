"""State kept in Redis (``IMAGEGW_REDIS_URL``), shared by every replica that names the same server.

One module per kind, each implementing the same interface as its ``state/in_process`` twin and
holding that twin as its fallback: ``link`` is the connection and its health (a bounded timeout per
call, hysteresis before the replica gives up on Redis, a probe to come back), ``events`` the one
pub/sub subscription (breaker transitions, finished shared calls, admin changes), and
``cache_store``, ``flights``, ``limit_counters``, ``breakers``, ``sessions`` and ``changes`` the kinds.
``docs/redis.md`` lists every key, its time to live and what happens while Redis is away.
"""
