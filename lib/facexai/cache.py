"""On-disk artifact store: content-addressed keys, atomic writes, resumable steps.

Every cached artifact is written to a temporary file in the same folder and renamed into
place, so a killed run never leaves a half-written file: it either exists whole or not at all.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

_REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache root: ``override``, else $FACEXAI_CACHE, else ``<repo>/cache``."""
    path = Path(override or os.environ.get("FACEXAI_CACHE") or _REPO_ROOT / "cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Hex digest (any hashlib algorithm) of a file's bytes, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file: the key of every cached artifact derived from it."""
    return file_digest(path, "sha256")


def key(*parts: Any) -> str:
    """A short stable key for any JSON-serialisable parameters (dict order does not matter)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Atomically write arrays to an uncompressed ``.npz`` file."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    return atomic_write(path, write)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Atomically write one array to a ``.npy`` file."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, array)

    return atomic_write(path, write)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file into memory."""
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def save_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, default=str)))


def sharded_array(folder: str | os.PathLike, n: int, shard: int, compute: Callable[[int, int], np.ndarray],
                  progress: Callable[[range], Any] = iter) -> np.ndarray:
    """Rows ``0..n`` of an array computed in shards of ``shard`` rows, each cached as ``.npy``.

    ``compute(start, stop)`` returns rows ``start:stop``; existing shard files are loaded instead,
    so an interrupted computation resumes where it stopped. ``progress`` may wrap the shard range (tqdm).
    """
    folder = Path(folder)
    parts = []
    for start in progress(range(0, n, shard)):
        path = folder / f"{start // shard:05d}.npy"
        if path.is_file():
            parts.append(np.load(path))
            continue
        part = compute(start, min(start + shard, n))
        save_npy(path, part)
        parts.append(part)
    return np.concatenate(parts) if parts else np.zeros((0,))
