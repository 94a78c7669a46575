"""The collector settings the server starts with."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from imagegateway_server import gc_tuning


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_it_freezes_start_up_objects_and_raises_the_thresholds(restored_gc: None) -> None:
    gc_tuning.tune_garbage_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (gc_tuning.YOUNG_THRESHOLD, gc_tuning.MIDDLE_THRESHOLD, gc_tuning.OLD_THRESHOLD)
    assert gc.isenabled()
