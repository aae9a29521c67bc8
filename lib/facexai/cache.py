"""On-disk artifact store: content-addressed keys, atomic writes, verified reads, resumable steps.

Every cached artifact is written to a temporary file in the same folder and renamed into
place, so a killed run never leaves a half-written file: it either exists whole or not at all.
Every array file is an ``.npz`` (a zip whose members carry a CRC-32), so a damaged file is
detected on read, logged as "corrupt cache file X: recomputing", deleted and recomputed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_REPO_ROOT = Path(__file__).resolve().parents[2]
TMP_SUFFIX = ".facexai-tmp"  # every temporary file this module writes ends so (and starts with ".")
_TMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+" + re.escape(TMP_SUFFIX) + "$")
STALE_TMP_SECONDS = 3600.0  # a temporary file untouched this long belongs to a killed writer
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # what open() would give: group-readable under the usual umask 022 / 002
_cleaned: set[Path] = set()


class CorruptCacheFile(ValueError):
    """A cached file exists but cannot be read back whole (damaged, truncated, wrong layout)."""


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache root: ``override``, else $FACEXAI_CACHE, else ``<repo>/cache`` (stale temp files removed once)."""
    path = Path(override or os.environ.get("FACEXAI_CACHE") or _REPO_ROOT / "cache")
    path.mkdir(parents=True, exist_ok=True)
    if path.resolve() not in _cleaned:
        _cleaned.add(path.resolve())
        clean_stale_tmp(path)
    return path


def clean_stale_tmp(root: str | os.PathLike, max_age: float = STALE_TMP_SECONDS) -> list[Path]:
    """Delete temporary files a killed writer left under ``root``: only our name pattern, only older than ``max_age`` s."""
    now, removed = time.time(), []
    for folder, _, names in os.walk(root):
        for name in names:
            if not _TMP_NAME.match(name):
                continue
            path = Path(folder) / name
            try:
                if now - path.stat().st_mtime > max_age:
                    path.unlink()
                    removed.append(path)
            except FileNotFoundError:  # another process finished or removed it meanwhile
                continue
    if removed:
        log.info("removed %d stale temporary files under %s (e.g. %s)", len(removed), root, removed[0].name)
    return removed


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
    """The one cache-key scheme: a short stable hash of JSON-serialisable parts (dict order does not matter).

    Keys of derived artifacts include what defines them (code version, crop geometry definition,
    weights fingerprint), never names or absolute paths alone.
    """
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; a shared cache needs group-readable files
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


def load_npz(path: str | os.PathLike, required: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file, CRC-checked; :class:`CorruptCacheFile` naming it when damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as err:
        raise CorruptCacheFile(f"corrupt cache file {path}: {type(err).__name__}: {err}") from err
    missing = [name for name in required if name not in arrays]
    if missing:
        raise CorruptCacheFile(f"corrupt cache file {path}: no arrays {missing}")
    return arrays


def read_npz(path: str | os.PathLike, required: Sequence[str] = ()) -> dict[str, np.ndarray] | None:
    """A cached ``.npz`` file's arrays, or None when it is absent or corrupt (then logged and deleted: recompute it)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return load_npz(path, required)
    except CorruptCacheFile as err:
        log.warning("%s: recomputing", err)
        path.unlink(missing_ok=True)
        return None


def save_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, default=str)))


def shard_path(folder: str | os.PathLike, start: int, stop: int) -> Path:
    """The file of rows ``start:stop`` of a sharded array (the row range is part of the name)."""
    return Path(folder) / f"rows{start:08d}-{stop:08d}.npz"


def read_shard(folder: str | os.PathLike, start: int, stop: int) -> np.ndarray | None:
    """Rows ``start:stop`` from their shard file, or None when absent, damaged or mis-sized (then recompute)."""
    path = shard_path(folder, start, stop)
    entry = read_npz(path, ["rows"])
    if entry is not None and len(entry["rows"]) != stop - start:
        log.warning("corrupt cache file %s: %d rows instead of %d: recomputing", path, len(entry["rows"]),
                    stop - start)
        entry = None
    return None if entry is None else entry["rows"]


def write_shard(folder: str | os.PathLike, start: int, stop: int, rows: Any) -> np.ndarray:
    """Check that ``rows`` holds rows ``start:stop`` and write their shard file atomically."""
    part = np.asarray(rows)
    if len(part) != stop - start:
        raise ValueError(f"compute({start}, {stop}) returned {len(part)} rows instead of {stop - start}")
    save_npz(shard_path(folder, start, stop), rows=part)
    return part


def missing_shards(folder: str | os.PathLike, n: int, shard: int) -> list[tuple[int, int]]:
    """The row ranges of a sharded array that have no shard file yet (a damaged file is found when read)."""
    ranges = [(start, min(start + shard, n)) for start in range(0, n, shard)]
    return [(a, b) for a, b in ranges if not shard_path(folder, a, b).is_file()]


def sharded_array(folder: str | os.PathLike, n: int, shard: int, compute: Callable[[int, int], np.ndarray],
                  progress: Callable[[range], Any] = iter) -> np.ndarray:
    """Rows ``0..n`` of an array computed in shards of ``shard`` rows, each cached as a CRC-checked ``.npz``.

    ``compute(start, stop)`` returns rows ``start:stop``; existing shard files are loaded instead,
    so an interrupted computation resumes where it stopped. Each file is named by its row range
    (the layout is part of the key) and must hold exactly those rows: a damaged or mis-sized shard
    is recomputed, so the result always has ``n`` rows. ``progress`` may wrap the shard range (tqdm).
    """
    parts = []
    for start in progress(range(0, n, shard)):
        stop = min(start + shard, n)
        part = read_shard(folder, start, stop)
        parts.append(part if part is not None else write_shard(folder, start, stop, compute(start, stop)))
    return np.concatenate(parts) if parts else np.zeros((0,))
