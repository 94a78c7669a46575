"""The latency histogram analytics rollups keep: log-linear bins, mergeable by adding counts.

Values below 64 ms are their own bin; above, each doubling is split into 32 bins, so a bin is at
most 1/32 of its lower bound wide and its midpoint, the value it reports, is within 1/64 (1.6 %) of
any value in it. A percentile read from the histogram is the bin of the exact nearest-rank value,
so it is within that error of the exact percentile. Integer arithmetic only: the same bins on every
backend and in every language.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence

# Values below 2 * _SUB_BINS ms are their own bin; above, each doubling of
# the value is split into _SUB_BINS bins, so a bin is at most 1/_SUB_BINS of its lower bound wide
# and its midpoint is within 1/(2 * _SUB_BINS) of any value in it.
_SUB_BINS = 32
LATENCY_RELATIVE_ERROR = 1 / (2 * _SUB_BINS)


def latency_bin(latency_ms: int) -> int:
    """The histogram bin of a latency; bins are ordered like the values they hold."""
    if latency_ms < 2 * _SUB_BINS:
        return max(latency_ms, 0)
    shift = latency_ms.bit_length() - _SUB_BINS.bit_length()
    return shift * _SUB_BINS + (latency_ms >> shift)


def bin_latency(bin_index: int) -> int:
    """The value a bin stands for: its midpoint (the value itself below 64 ms)."""
    if bin_index < 2 * _SUB_BINS:
        return bin_index
    shift = bin_index // _SUB_BINS - 1
    low = (bin_index - shift * _SUB_BINS) << shift
    return low + (1 << shift) // 2


def histogram_percentiles(bins: Mapping[int, int], fractions: Sequence[float]) -> list[int]:
    """The nearest-rank percentiles of the values a histogram counts, each as its bin's value (0 for
    an empty histogram): the first bin whose running count reaches the rank, found by bisection."""
    ordered = sorted(bins)
    running = list(itertools.accumulate(bins[bin_index] for bin_index in ordered))
    total = running[-1] if running else 0
    if total <= 0:
        return [0 for _ in fractions]
    ranks = (max(1, math.ceil(fraction * total)) for fraction in fractions)  # as analytics.percentile
    return [bin_latency(ordered[bisect.bisect_left(running, rank)]) for rank in ranks]


def histogram_percentile(bins: Mapping[int, int], fraction: float) -> int:
    """The nearest-rank percentile of the values a histogram counts, as its bin's value (0 for none)."""
    return histogram_percentiles(bins, [fraction])[0]
