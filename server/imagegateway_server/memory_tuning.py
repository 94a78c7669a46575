"""glibc malloc settings for a process that handles megabyte-sized buffers on every request.

Every image crosses the gateway as a few 1-2 MB buffers (the provider's body, the base64 text, the
image, the REST body). glibc serves each one with a fresh ``mmap`` and returns it with ``munmap``, so
every request pays a page fault per 4 KiB touched: ~0.3 ms per MiB here, more than decoding it. With
the mmap threshold raised (which also stops glibc's own threshold from moving) and the trim
threshold above it, freed buffers stay in the heap and the next request reuses warm pages. The cost
is that the process keeps up to ``TRIM_THRESHOLD_BYTES`` of freed heap instead of returning it.

Skipped when the operator set ``MALLOC_MMAP_THRESHOLD_`` (glibc's own variable: theirs wins) and on
a C library other than glibc (musl has no ``mallopt``).
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's ceiling for this value on 64-bit
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024


def tune_malloc_for_large_buffers() -> bool:
    """Applies the settings above; True when they took effect."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    if not applied:
        log.info("malloc tuning for large buffers was not applied")
    return applied
