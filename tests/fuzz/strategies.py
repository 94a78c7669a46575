"""Hypothesis strategies over the fuzz generators: each draws its choices, so failures shrink."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import strategies as st

from tests.fuzz.choosers import Chooser, DrawChooser, RandomChooser

T = TypeVar("T")


def drawn(generator: Callable[[Chooser], T]) -> st.SearchStrategy[T]:
    """``generator`` driven by hypothesis draws."""

    @st.composite
    def strategy(draw: st.DrawFn) -> T:
        return generator(DrawChooser(draw))

    return strategy()


def seeded(generator: Callable[[Chooser], T], batch: int) -> st.SearchStrategy[list[T]]:
    """``batch`` cases from ``generator`` with a seeded RNG: cheap bulk, reproducible from the seed."""

    def build(seed: int) -> list[T]:
        chooser = RandomChooser(seed)
        return [generator(chooser) for _ in range(batch)]

    return st.integers(0, 2**64 - 1).map(build)


def first_failure(cases: list[Any], check: Callable[[Any], object]) -> None:
    """Runs ``check`` on every case of a seeded batch; a failure names the case that caused it."""
    for case in cases:
        try:
            check(case)
        except Exception as exc:
            raise AssertionError(f"failed on generated case {case!r:.2000}") from exc
