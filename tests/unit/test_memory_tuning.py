"""The malloc tuning applies on glibc and leaves an operator's own setting alone."""

from __future__ import annotations

import platform

import pytest

from imagegateway_server import memory_tuning


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_it_applies_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert memory_tuning.tune_malloc_for_large_buffers() is True


def test_an_operator_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert memory_tuning.tune_malloc_for_large_buffers() is False
