"""Kept images: only opted-in image types under the size cap, oldest evicted past the total, survive restarts."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest

from imagegateway_server.settings import Settings
from imagegateway_server.storage.kept_images import ImageKeeper, is_log_id

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100


def new_id() -> str:
    return "log_" + uuid.uuid4().hex


def test_an_image_is_kept_and_read_back_with_its_type(tmp_path: Path) -> None:
    keeper = ImageKeeper(tmp_path / "kept")
    log_id = new_id()
    assert keeper.keep(log_id, PNG, "image/png")
    assert keeper.has(log_id)
    assert keeper.get(log_id) == (PNG, "image/png")
    assert keeper.get(new_id()) is None
    assert stat.S_IMODE(os.stat(tmp_path / "kept").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "kept" / f"{log_id}.png").st_mode) == 0o600


@pytest.mark.parametrize(
    ("log_id", "data", "mime_type"),
    [
        (new_id(), PNG, "image/svg+xml"),  # could carry script
        (new_id(), PNG, "text/html"),
        (new_id(), b"", "image/png"),
        (new_id(), b"x" * 1001, "image/png"),  # over the per-image cap
        ("../../etc/passwd", PNG, "image/png"),
        ("log_" + "0" * 31 + "/", PNG, "image/png"),
    ],
)
def test_what_is_not_keepable_is_not_kept(tmp_path: Path, log_id: str, data: bytes, mime_type: str) -> None:
    keeper = ImageKeeper(tmp_path / "kept", max_image_bytes=1000)
    assert not keeper.keep(log_id, data, mime_type)
    assert list((tmp_path / "kept").iterdir()) == []
    assert list(tmp_path.iterdir()) == [tmp_path / "kept"]


def test_the_oldest_images_go_once_the_total_is_over_the_cap(tmp_path: Path) -> None:
    keeper = ImageKeeper(tmp_path, max_image_bytes=1000, max_total_bytes=2500)
    ids = [new_id() for _ in range(4)]
    for log_id in ids:
        assert keeper.keep(log_id, b"j" * 1000, "image/jpeg")
    assert [keeper.has(i) for i in ids] == [False, False, True, True]
    assert keeper.total_bytes == 2000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{i}.jpg" for i in ids[2:])


def test_a_new_keeper_finds_the_images_kept_before_a_restart(tmp_path: Path) -> None:
    first = ImageKeeper(tmp_path)
    log_id = new_id()
    first.keep(log_id, PNG, "image/png")
    (tmp_path / f"{new_id()}.png.tmp").write_bytes(b"half")  # a write cut short
    (tmp_path / "notes.txt").write_text("left alone")
    again = ImageKeeper(tmp_path)
    assert again.get(log_id) == (PNG, "image/png")
    assert again.total_bytes == len(PNG)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{log_id}.png", "notes.txt"])


def test_a_restart_with_a_smaller_cap_evicts_at_once(tmp_path: Path) -> None:
    first = ImageKeeper(tmp_path)
    ids = [new_id() for _ in range(3)]
    for log_id in ids:
        first.keep(log_id, PNG, "image/webp")
    smaller = ImageKeeper(tmp_path, max_total_bytes=len(PNG))
    assert smaller.total_bytes == len(PNG) and sum(smaller.has(i) for i in ids) == 1


def test_log_ids_have_one_shape() -> None:
    assert is_log_id("log_" + "a1" * 16)
    assert not is_log_id("log_" + "A1" * 16) and not is_log_id("log_x") and not is_log_id("")


def test_keeping_images_is_off_unless_the_setting_says_true() -> None:
    assert Settings.load(environ={}).keep_images is False
    assert Settings.load(environ={"IMAGEGW_KEEP_IMAGES": "true"}).keep_images is True
    assert Settings.load({"keep_images": "false"}, environ={"IMAGEGW_KEEP_IMAGES": "true"}).keep_images is False
    with pytest.raises(ValueError, match="IMAGEGW_KEEP_IMAGES"):
        Settings.load(environ={"IMAGEGW_KEEP_IMAGES": "sometimes"})
