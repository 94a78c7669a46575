"""Python garbage-collector settings for a server that allocates thousands of objects per request.

With CPython's default thresholds (700, 10, 10) a request at concurrency 32 triggers several
young-generation collections, and every tenth of those a middle one, each walking the objects that
32 requests in flight keep alive; the full collections walk everything imported at start as well
(protobuf descriptors, gRPC, aiohttp). On a 256 KiB image at concurrency 32 that was ~5 % of the
gateway's CPU (perf, bench/NOTES.md). The gateway's per-request objects are freed by reference
counting; the collector only finds reference cycles, which are rare here, so it can run less often:

* ``gc.freeze()`` once start-up is done moves everything alive then into a generation the collector
  never walks again (those objects live as long as the process anyway);
* the young-generation threshold goes from 700 to ``YOUNG_THRESHOLD`` allocations, so cycles are
  still collected, in fewer, larger passes (a pass over 10,000 young objects takes well under 1 ms).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 20


def tune_garbage_collector() -> None:
    """Freezes what start-up left alive and raises the collection thresholds; call once, before serving."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
