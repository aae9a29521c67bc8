"""Atomic writes: a failed write leaves neither a partial file nor a temporary one."""
import numpy as np
import pytest

from facexai import cache


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "a" / "x.npz"

    def boom(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.atomic_write(target, boom)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_npz_roundtrip_and_key(tmp_path):
    path = cache.save_npz(tmp_path / "a.npz", x=np.arange(3), y=np.eye(2))
    data = cache.load_npz(path)
    np.testing.assert_array_equal(data["x"], np.arange(3))
    assert cache.key({"a": 1, "b": 2}) == cache.key({"b": 2, "a": 1})
    assert cache.key({"a": 1}) != cache.key({"a": 2})


def test_file_sha256(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert cache.file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
