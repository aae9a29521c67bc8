"""Cached artifacts are verified on read: damaged or mis-sized files are recomputed, never returned."""
from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from facexai import align, cache, data


def _flip_bytes(path: Path, offset: int, n: int = 8) -> None:
    blob = bytearray(path.read_bytes())
    blob[offset:offset + n] = bytes(255 - b for b in blob[offset:offset + n])
    path.write_bytes(bytes(blob))


class _Rows:
    """compute(start, stop) of a known array, counting the rows it was asked for."""

    def __init__(self, n: int, dim: int = 6):
        self.table = np.arange(n * dim, dtype=np.float32).reshape(n, dim)
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, stop: int) -> np.ndarray:
        self.calls.append((start, stop))
        return self.table[start:stop].copy()


def test_flipped_bytes_in_a_shard_are_detected_and_recomputed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = _Rows(10)
    cache.sharded_array(tmp_path, 10, 4, rows)
    shard = sorted(tmp_path.iterdir())[1]
    _flip_bytes(shard, shard.stat().st_size // 2)
    rows.calls.clear()
    with caplog.at_level(logging.WARNING):
        out = cache.sharded_array(tmp_path, 10, 4, rows)
    np.testing.assert_array_equal(out, rows.table)
    assert rows.calls == [(4, 8)]
    assert f"corrupt cache file {shard}" in caplog.text and "recomputing" in caplog.text


def test_a_changed_shard_size_never_changes_the_row_count(tmp_path: Path) -> None:
    rows = _Rows(10)
    cache.sharded_array(tmp_path, 10, 4, rows)
    out = cache.sharded_array(tmp_path, 10, 5, rows)
    assert out.shape == (10, 6)
    np.testing.assert_array_equal(out, rows.table)


def test_a_shard_with_the_wrong_rows_is_recomputed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = _Rows(10)
    cache.sharded_array(tmp_path, 10, 5, rows)
    first = sorted(tmp_path.iterdir())[0]
    cache.save_npz(first, rows=np.zeros((6, 6), np.float32))  # e.g. written by another layout's code
    with caplog.at_level(logging.WARNING):
        out = cache.sharded_array(tmp_path, 10, 5, rows)
    np.testing.assert_array_equal(out, rows.table)
    assert "6 rows instead of 5" in caplog.text


def test_load_npz_names_the_damaged_file(tmp_path: Path) -> None:
    path = cache.save_npz(tmp_path / "x.npz", a=np.arange(1000.0))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(cache.CorruptCacheFile, match=f"corrupt cache file {path}"):
        cache.load_npz(path)
    assert cache.read_npz(path) is None and not path.exists()


def test_cache_files_are_group_readable(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = cache.save_npz(tmp_path / "x.npz", a=np.arange(3))
    finally:
        os.umask(old)
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode & stat.S_IRGRP, oct(mode)
    assert mode == cache.FILE_MODE


def test_stale_temporary_files_are_cleaned_safely(tmp_path: Path) -> None:
    sub = tmp_path / "aligned" / "ab"
    sub.mkdir(parents=True)
    old_ours = sub / f".x.npz.k2j4_a9z{cache.TMP_SUFFIX}"
    fresh_ours = sub / f".y.npz.q8w7e6r5{cache.TMP_SUFFIX}"
    foreign = [sub / ".x.npz.k2j4_a9z.tmp", sub / "notes.facexai-tmp", sub / "data.npz"]
    for path in [old_ours, fresh_ours, *foreign]:
        path.write_bytes(b"half")
    hour_ago = time.time() - 2 * cache.STALE_TMP_SECONDS
    for path in [old_ours, *foreign]:
        os.utime(path, (hour_ago, hour_ago))
    removed = cache.clean_stale_tmp(tmp_path)
    assert removed == [old_ours]
    assert not old_ours.exists() and fresh_ours.exists() and all(p.exists() for p in foreign)


def test_a_killed_write_leaves_a_file_the_next_start_removes(tmp_path: Path) -> None:
    def killed(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        os.utime(tmp, (0, 0))
        raise SystemExit  # atomic_write removes its own temp file ...

    with pytest.raises(SystemExit):
        cache.atomic_write(tmp_path / "a.npz", killed)
    assert list(tmp_path.iterdir()) == []
    leftover = tmp_path / f".a.npz.abcdefgh{cache.TMP_SUFFIX}"  # ... a SIGKILL would leave this one
    leftover.write_bytes(b"half")
    os.utime(leftover, (0, 0))
    cache.cache_dir(tmp_path)
    assert not leftover.exists()


@pytest.fixture(scope="module")
def two_faces(sample_dir: Path) -> list[Path]:
    return [files[0] for files in list(data.load_lfw(sample_dir).identities.values())[:2]]


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_detection_and_crop_files_are_recomputed(two_faces: list[Path], tmp_path: Path, damage: str,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    first = align.align_paths(two_faces, ["arcface112"], cache_dir=tmp_path)
    files = sorted(p for p in (tmp_path / "detections").rglob("*.npz")) + \
        sorted(p for p in (tmp_path / "aligned").rglob("*.npz"))
    assert len(files) == 4
    for path in files[::3]:  # one detection file, one crop file
        if damage == "truncate":
            path.write_bytes(path.read_bytes()[:100])
        else:
            _flip_bytes(path, path.stat().st_size // 2)
    with caplog.at_level(logging.WARNING):
        again = align.align_paths(two_faces, ["arcface112"], cache_dir=tmp_path)
    assert again.paths == first.paths and not again.failed
    # MTCNN alone in a batch may differ from a batch of two in the last float bits
    np.testing.assert_allclose(again.landmarks, first.landmarks, atol=0.05)
    diff = np.abs(again.crops["arcface112"].astype(int) - first.crops["arcface112"])
    assert np.percentile(diff, 99) <= 2
    for path in files[::3]:
        assert f"corrupt cache file {path}" in caplog.text
    assert all(cache.read_npz(p) is not None for p in files)


def test_a_corrupt_label_map_is_recomputed(two_faces: list[Path], tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    from facexai import parsing

    crops = align.align_paths(two_faces, ["arcface112"], cache_dir=tmp_path).crops["arcface112"]
    keys = [f"face{i}" for i in range(len(crops))]
    first = parsing.cached_parse(crops, keys, "mediapipe", cache_root=tmp_path, progress=False)
    (damaged, *_) = sorted((tmp_path / "parsing").rglob("*.npz"))
    _flip_bytes(damaged, damaged.stat().st_size // 2)
    with caplog.at_level(logging.WARNING):
        again = parsing.cached_parse(crops, keys, "mediapipe", cache_root=tmp_path, progress=False)
    assert f"corrupt cache file {damaged}" in caplog.text
    np.testing.assert_array_equal(again.labels, first.labels)
    assert again.failed == first.failed
