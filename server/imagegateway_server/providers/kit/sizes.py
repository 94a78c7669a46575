"""Which image sizes a model makes, and the nearest one it makes for any WIDTHxHEIGHT.

"Nearest" means, in this order: the smallest aspect-ratio distance, then the nearest area, then the
larger image, then the wider one. Both distances are exact ratios (``max(a/b, b/a)`` as a
``Fraction``), so a tie is a real tie and the answer never depends on float rounding.

A pixel rule is a set of columns, each one width with its allowed heights as a ``range``: a fixed
list (dall-e-3's three sizes, SDXL's nine) is one column per size, a lattice (v1-6's multiples of 64,
gpt-image-2's multiples of 16) one column per width. The nearest size is then among the two heights
around ``width * H / W`` in each column, which keeps a search over gpt-image-2's ~30,000 sizes at a
few hundred candidates; answers are cached because callers send few distinct sizes.
``requested_size`` reads a caller's size, refusing one that is not ``WIDTHxHEIGHT``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from fractions import Fraction

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.request import parse_size
from imagegateway_server.providers.kit.errors import refuse_parameter

AUTO = "auto"


def requested_size(provider: str, size: str) -> tuple[int, int]:
    """The width and height of a caller's ``WIDTHxHEIGHT`` size; BAD_REQUEST naming ``size`` for anything else."""
    try:
        return parse_size(size)
    except InvalidArgument:
        raise refuse_parameter(provider, "size", f"must look like 1024x1024, got {size!r}") from None


def format_size(width: int, height: int) -> str:
    return f"{width}x{height}"


@dataclasses.dataclass(frozen=True, eq=False)
class SizeRule:
    """The WIDTHxHEIGHT sizes one model makes. Compared and hashed by identity: rules are constants.

    ``auto`` says the model takes the literal size ``auto``; ``describe`` is the allowed set in words,
    for error messages.
    """

    columns: tuple[tuple[int, range], ...]
    describe: str
    auto: bool = False
    _by_width: dict[int, tuple[range, ...]] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_width: dict[int, list[range]] = {}
        for width, heights in self.columns:
            by_width.setdefault(width, []).append(heights)
        object.__setattr__(self, "_by_width", {w: tuple(hs) for w, hs in by_width.items()})

    def allows(self, width: int, height: int) -> bool:
        return any(height in heights for heights in self._by_width.get(width, ()))

    def sizes(self) -> Iterable[tuple[int, int]]:
        """Every allowed size (for tests and small rules; a lattice can be large)."""
        for width, heights in self.columns:
            for height in heights:
                yield width, height

    def nearest(self, width: int, height: int) -> tuple[int, int]:
        """The allowed size nearest to width x height (itself when allowed)."""
        if width <= 0 or height <= 0:
            raise ValueError(f"size must be positive, got {width}x{height}")
        return _nearest(self, width, height)


def fixed_sizes(sizes: Iterable[tuple[int, int]], *, auto: bool = False) -> SizeRule:
    """A rule allowing exactly ``sizes`` (and ``auto`` if said)."""
    listed = tuple(sizes)
    words = ", ".join(format_size(w, h) for w, h in listed) + (", auto" if auto else "")
    return SizeRule(tuple((w, range(h, h + 1)) for w, h in listed), f"one of {words}", auto)


def grid(min_side: int, max_side: int, step: int) -> SizeRule:
    """Each side a multiple of ``step`` from ``min_side`` to ``max_side`` (Stability v1-6)."""
    sides = range(min_side, max_side + 1, step)
    return SizeRule(
        tuple((w, sides) for w in sides),
        f"each side a multiple of {step} from {min_side} to {max_side}",
    )


def bounded(step: int, max_ratio: int, max_long: int, max_short: int, *, auto: bool = False) -> SizeRule:
    """Sides multiples of ``step``, aspect at most ``max_ratio``:1 either way, the long side at most
    ``max_long`` and the short side at most ``max_short`` (gpt-image-2's arbitrary sizes)."""
    columns = []
    for width in range(step, max_long + 1, step):
        # Smallest multiple of step with max_ratio * h >= width.
        low = -(-width // (max_ratio * step)) * step
        high = min(width * max_ratio, max_long, max_short if width > max_short else max_long)
        high -= high % step
        if low <= high:
            columns.append((width, range(low, high + 1, step)))
    return SizeRule(
        tuple(columns),
        f"sides multiples of {step}, aspect ratio within 1:{max_ratio} to {max_ratio}:1, "
        f"at most {max_long}x{max_short}",
        auto,
    )


def ratio_distance(width: int, height: int, target_width: int, target_height: int) -> Fraction:
    """How far apart two aspect ratios are: 1 when equal, growing either way, symmetric."""
    a, b = width * target_height, height * target_width
    return Fraction(max(a, b), min(a, b))


def area_distance(width: int, height: int, target_width: int, target_height: int) -> Fraction:
    a, b = width * height, target_width * target_height
    return Fraction(max(a, b), min(a, b))


def _rank(width: int, height: int, target_width: int, target_height: int) -> tuple[Fraction, Fraction, int, int]:
    return (
        ratio_distance(width, height, target_width, target_height),
        area_distance(width, height, target_width, target_height),
        -width * height,
        -width,
    )


@functools.lru_cache(maxsize=4096)
def _nearest(rule: SizeRule, width: int, height: int) -> tuple[int, int]:
    best: tuple[int, int] | None = None
    best_rank: tuple[Fraction, Fraction, int, int] | None = None
    for column_width, heights in rule.columns:
        # For a fixed width the ratio distance falls then rises in height, so only the two allowed
        # heights around the ideal one can be nearest.
        ideal = column_width * height // width
        index = (ideal - heights.start) // heights.step
        for i in {min(max(index, 0), len(heights) - 1), min(max(index + 1, 0), len(heights) - 1)}:
            candidate_height = heights[i]
            rank = _rank(column_width, candidate_height, width, height)
            if best_rank is None or rank < best_rank:
                best, best_rank = (column_width, candidate_height), rank
    assert best is not None, "a size rule is never empty"
    return best


@dataclasses.dataclass(frozen=True, eq=False)
class AspectRatios:
    """A model sized by aspect ratio only (Stability v2beta): the provider picks the pixels."""

    ratios: tuple[str, ...]

    def __post_init__(self) -> None:
        for ratio in self.ratios:
            parse_ratio(ratio)

    @property
    def describe(self) -> str:
        return "one of " + ", ".join(self.ratios)

    def allows(self, ratio: str) -> bool:
        return ratio in self.ratios

    def nearest(self, width: int, height: int) -> tuple[str, bool]:
        """The allowed ratio nearest to width:height, and whether it is exactly that ratio."""
        if width <= 0 or height <= 0:
            raise ValueError(f"size must be positive, got {width}x{height}")
        return _nearest_ratio(self, width, height)


@functools.lru_cache(maxsize=4096)
def _nearest_ratio(rule: AspectRatios, width: int, height: int) -> tuple[str, bool]:
    # min() keeps the first of equally near ratios, so ties follow the table's order.
    best = min(rule.ratios, key=lambda r: ratio_distance(*parse_ratio(r), width, height))
    return best, ratio_distance(*parse_ratio(best), width, height) == 1


def parse_ratio(ratio: str) -> tuple[int, int]:
    """``"16:9"`` as (16, 9); ValueError for anything else."""
    w, sep, h = ratio.partition(":")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) <= 0 or int(h) <= 0:
        raise ValueError(f"not an aspect ratio: {ratio!r}")
    return int(w), int(h)
