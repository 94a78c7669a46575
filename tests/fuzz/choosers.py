"""The source of random choices behind every fuzz generator, in two interchangeable forms.

Generators in this package ask a ``Chooser`` for integers, picks and text instead of calling
hypothesis or ``random`` directly, so one generator serves two drivers:

* ``DrawChooser`` draws through hypothesis: failures shrink to a small case, at about 20 µs a choice.
* ``RandomChooser`` uses a seeded ``random.Random`` (the seed itself comes from hypothesis, so a
  failure still reproduces): a hundred times cheaper, which is what lets CI run tens of thousands of
  cases in seconds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import ClassVar, Protocol, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")

# Characters that break naive text handling: controls, quotes, escapes, bidi and combining marks,
# non-BMP, JSON and header punctuation.
_AWKWARD = "\x00\x01\t\n\r \"'\\/{}[]:,;=@%$.*?#&+<>`~|\u00e9\u00ff\u0301\u200b\u202e\ufeff\u4e2d\U0001f600"
_ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F)) + "\u00e9\u00ff\t"


class Chooser(Protocol):
    """Where a generator gets its randomness."""

    def integer(self, low: int, high: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...

    def chance(self, percent: int) -> bool: ...

    def text(self, max_size: int, alphabet: str | None = None) -> str: ...

    def real(self) -> float: ...

    def raw(self, max_size: int) -> bytes: ...


_CHARACTERS = st.sampled_from(_ASCII + _AWKWARD) | st.characters(exclude_categories=("Cs",))


class DrawChooser:
    """Choices drawn through hypothesis, so failing cases shrink."""

    # Shared by every instance: one text strategy per shape for the whole run.
    _texts: ClassVar[dict[tuple[int, str | None], st.SearchStrategy[str]]] = {}

    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw

    def integer(self, low: int, high: int) -> int:
        return self._draw(st.integers(low, high))

    def choice(self, options: Sequence[T]) -> T:
        return options[self._draw(st.integers(0, len(options) - 1))]

    def chance(self, percent: int) -> bool:
        # Shrinks toward "no": the simpler case leaves the optional thing out.
        return self._draw(st.integers(0, 99)) >= 100 - percent

    def text(self, max_size: int, alphabet: str | None = None) -> str:
        key = (max_size, alphabet)
        strategy = self._texts.get(key)
        if strategy is None:  # built once per shape: building strategies per draw is the slow part
            characters = st.sampled_from(alphabet) if alphabet is not None else _CHARACTERS
            strategy = self._texts[key] = st.text(alphabet=characters, max_size=max_size)
        return self._draw(strategy)

    def real(self) -> float:
        return self._draw(st.floats())

    def raw(self, max_size: int) -> bytes:
        return self._draw(st.binary(max_size=max_size))


class RandomChooser:
    """Choices from a seeded ``random.Random``: fast, reproducible from the seed."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def choice(self, options: Sequence[T]) -> T:
        return options[self._rng.randrange(len(options))]

    def chance(self, percent: int) -> bool:
        return self._rng.randrange(100) < percent

    def text(self, max_size: int, alphabet: str | None = None) -> str:
        rng = self._rng
        size = rng.randint(0, max_size) if rng.random() < 0.8 else min(max_size, rng.randint(0, 3))
        if alphabet is not None:
            return "".join(rng.choice(alphabet) for _ in range(size))
        pool = _ASCII if rng.random() < 0.6 else _ASCII + _AWKWARD
        out = []
        for _ in range(size):
            if rng.random() < 0.03:
                code = rng.randint(0x80, 0x10FFFF)
                out.append(chr(code) if not 0xD800 <= code <= 0xDFFF else "?")
            else:
                out.append(rng.choice(pool))
        return "".join(out)

    def real(self) -> float:
        rng = self._rng
        kind = rng.randrange(6)
        if kind == 0:
            return rng.choice(
                (
                    0.0,
                    -0.0,
                    1e-300,
                    5e-324,
                    1.7976931348623157e308,
                    -1.7976931348623157e308,
                    float("nan"),
                    float("inf"),
                    float("-inf"),
                )
            )
        if kind == 1:
            return float(rng.randint(-(2**63), 2**63))
        return rng.uniform(-1e3, 1e3) * 10 ** rng.randint(-5, 12)

    def raw(self, max_size: int) -> bytes:
        return self._rng.randbytes(self._rng.randint(0, max_size))
