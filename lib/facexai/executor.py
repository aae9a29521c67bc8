"""Where the shards of a cached step run: in this process (the default) or on Dask workers.

The heavy steps (alignment, embeddings, maps, occluded embeddings) are cached in shards
(:func:`facexai.cache.sharded_array`, one file per aligned image). Each step hands its missing
shards to the *current executor*, chosen once per notebook from the run's ``scheduler`` setting
(``profiles.resolve(..., scheduler=...)`` calls :func:`use`):

- ``""`` (default): in this process, exactly as without this module;
- ``"local:N"``: a ``dask.distributed`` LocalCluster of N worker processes, one thread each;
- ``"tcp://host:8786"``: an existing Dask cluster, by its scheduler's address.

A task is a small picklable description (a module-level callable holding a model reference, the
settings and the shard's rows), never a closure over a loaded model: each worker process loads a
model once (:func:`worker_model`) and writes its shard file into the shared cache atomically, so a
killed worker leaves no partial shard. The cache root must be the same folder for every worker
(a shared filesystem on a cluster): :func:`check_cache_visible` proves it when connecting.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import re
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from facexai import cache, passes

log = logging.getLogger(__name__)

LOCAL = re.compile(r"local:(\d+)")
ADDRESS = re.compile(r"(tcp|tls|ucx|inproc)://\S+")


class CacheNotVisible(RuntimeError):
    """A Dask worker cannot read or write the run's cache root (it must be one shared folder)."""


def check_scheduler(scheduler: str) -> str:
    """``""``, ``local:N`` (N >= 1) or a scheduler address ``tcp://host:port``; ValueError otherwise."""
    scheduler = (scheduler or "").strip()
    match = LOCAL.fullmatch(scheduler)
    if scheduler and not (ADDRESS.fullmatch(scheduler) or (match and int(match.group(1)) >= 1)):
        raise ValueError(f"scheduler: '{scheduler}' is neither empty (in-process), local:N (N >= 1 workers "
                         "on this machine) nor a Dask scheduler address such as tcp://host:8786")
    return scheduler


@dataclass(frozen=True)
class ModelRef:
    """What a worker needs to load a registry model itself: its name, device, cache root and fingerprint."""

    name: str
    device: str
    cache_root: str
    fingerprint: str

    @classmethod
    def of(cls, model: Any, cache_root: Path | str | None) -> ModelRef | None:
        """The reference of a registry model, or None for a model a worker cannot rebuild by name."""
        from facexai.models.registry import MODELS, FaceModel

        if not isinstance(model, FaceModel) or model.spec.name not in MODELS:
            return None
        device = str(next(model.parameters()).device)
        return cls(model.spec.name, device, str(cache.cache_dir(cache_root)), model.fingerprint)

    def load(self) -> Any:
        """The model, loaded once per process (:func:`worker_model`); error when its fingerprint differs."""
        model = worker_model(self.name, self.device, self.cache_root)
        if model.fingerprint != self.fingerprint:
            raise RuntimeError(f"worker {socket.gethostname()}: model {self.name} has fingerprint "
                               f"{model.fingerprint}, the client's has {self.fingerprint} (different weights?)")
        return model


@functools.lru_cache(maxsize=8)
def worker_model(name: str, device: str, cache_root: str) -> Any:
    """A registry model, loaded once per worker process and reused by every task."""
    from facexai.models.registry import load_model

    return load_model(name, device, cache_root)


def write_shard(job: Callable[[], Any], folder: str, start: int, stop: int) -> tuple[list[dict], int]:
    """On a worker: compute rows ``start:stop`` with ``job()`` and write their shard file (atomically).

    Returns the face-model passes it made and the worker's torch threads, for the asking kernel's account."""
    import torch

    before = passes.snapshot()
    cache.write_shard(Path(folder), start, stop, job())
    return passes.since(before), torch.get_num_threads()


class InProcess:
    """Run every shard here, in order: the behaviour (and the cache files) of a run without Dask."""

    distributed = False
    name = "in-process"

    def sharded_array(self, folder: Path, n: int, shard: int, compute: Callable[[int, int], np.ndarray],
                      progress: Callable[[range], Any], job: Callable[[int, int], Callable[[], Any]] | None,
                      desc: str) -> np.ndarray:
        """:func:`cache.sharded_array` with ``compute`` (``job`` and ``desc`` are for the distributed executor)."""
        return cache.sharded_array(folder, n, shard, compute, progress)


class Distributed:
    """Run missing shards as tasks on a Dask cluster; the shard files they write are read back here."""

    distributed = True

    def __init__(self, client: Any, name: str, cluster: Any = None):
        self.client, self.name, self.cluster = client, name, cluster
        self.visible: set[Path] = set()  # cache roots every worker was shown to see

    def sharded_array(self, folder: Path, n: int, shard: int, compute: Callable[[int, int], np.ndarray],
                      progress: Callable[[range], Any], job: Callable[[int, int], Callable[[], Any]] | None,
                      desc: str) -> np.ndarray:
        """Compute the missing shards on the workers (one tqdm bar of finished shards), then load all of them.

        ``job(start, stop)`` gives the picklable computation of rows ``start:stop``; None when the
        step cannot leave this process (e.g. a model that is not in the registry): then it runs
        here with ``compute``, as in-process.
        """
        if job is None:
            log.info("%s: runs in this process (its model cannot be rebuilt on a worker)", desc)
            return cache.sharded_array(folder, n, shard, compute, progress)
        missing = cache.missing_shards(folder, n, shard)
        if missing:
            done = self.run([functools.partial(write_shard, job(a, b), str(folder), a, b) for a, b in missing], desc)
            workers = len(_workers(self.client))
            for made, threads in done:
                passes.add_remote(made, threads, workers)
        return cache.sharded_array(folder, n, shard, compute)  # reads them all (a damaged one is recomputed here)

    def run(self, tasks: Sequence[Callable[[], Any]], desc: str) -> list[Any]:
        """Submit every task, show finished ones on one tqdm bar, return their results in order.

        A failed task (including a killed worker, after Dask's own retries) raises here; the shards
        other tasks finished stay in the cache, so a rerun computes only what is missing.
        """
        from distributed import as_completed

        futures = [self.client.submit(t, pure=False) for t in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        out: list[Any] = [None] * len(futures)
        try:
            with tqdm(total=len(futures), desc=desc, unit="shard") as bar:
                for future in as_completed(futures):
                    out[index[future.key]] = future.result()
                    bar.update()
        except BaseException:
            self.client.cancel(futures)
            raise
        return out

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


_current: InProcess | Distributed = InProcess()


def current() -> InProcess | Distributed:
    """The executor the cached steps of this process use (in-process unless :func:`use` chose another)."""
    return _current


def use(scheduler: str, cache_root: Path | str | None = None) -> InProcess | Distributed:
    """Make ``scheduler`` ("", "local:N" or an address) the current executor; connect once, check the cache.

    Called by :func:`facexai.profiles.resolve`; a second call with the same scheduler reuses the
    connection (the workers keep their loaded models) and checks a cache root not checked before.
    """
    global _current
    scheduler = check_scheduler(scheduler)
    if scheduler != ("" if not _current.distributed else _current.name):
        if _current.distributed:
            _current.close()
        _current = InProcess() if not scheduler else connect(scheduler)
    root = cache.cache_dir(cache_root)
    if _current.distributed and root not in _current.visible:
        check_cache_visible(_current.client, root)
        _current.visible.add(root)
    return _current


@contextlib.contextmanager
def in_process() -> Iterator[None]:
    """Within the block, every cached step runs in this process (used to read back what workers wrote)."""
    global _current
    saved, _current = _current, InProcess()
    try:
        yield
    finally:
        _current = saved


def connect(scheduler: str) -> Distributed:
    """A client of the scheduler at an address, or of a new LocalCluster for ``local:N`` (N processes, 1 thread each)."""
    from distributed import Client

    match = LOCAL.fullmatch(scheduler)
    if not match:
        return Distributed(Client(scheduler, timeout="30s"), scheduler)
    cluster = start_local(int(match.group(1)))
    return Distributed(Client(cluster), scheduler, cluster)


#: glibc's largest dynamic mmap threshold. Dask starts workers with MALLOC_TRIM_THRESHOLD_ set, which
#: turns glibc's dynamic threshold off: every large tensor is then mmapped and page-faulted afresh,
#: and LEAM took 1.5x the CPU time of the same shard in-process (benchmarks/results_executor.md).
MMAP_THRESHOLD = 32 * 2**20


def start_local(workers: int) -> Any:
    """A LocalCluster on this machine: ``workers`` processes with one thread each, no dashboard.

    This process's environment is put back once the workers run: each nanny writes its workers'
    pre-spawn settings (OMP_NUM_THREADS=1, malloc thresholds) into it, and every kernel or subprocess
    started later would inherit one torch thread.
    """
    import dask
    from distributed import LocalCluster

    before = dict(os.environ)
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR,
                               # progress: one bar, here; passes: returned with each shard, not written at exit
                               env={"TQDM_DISABLE": "1", passes.ENV: ""})
    restore_environ(before)
    return cluster


def restore_environ(before: dict[str, str]) -> None:
    """Make ``os.environ`` equal to ``before`` again (undoes what a nanny wrote when it (re)started a worker)."""
    os.environ.clear()
    os.environ.update(before)


def _probe(path: str, token: str, dask_worker: Any = None) -> str:
    """On a worker (``client.run`` passes it): "" when it reads ``token`` from ``path`` and can write beside it,
    else why not."""
    try:
        if Path(path).read_text() != token:
            return f"{path} holds another probe"
        Path(f"{path}.{_slug(dask_worker.address)}").write_text(token)
    except OSError as err:
        return f"{type(err).__name__}: {err}"
    return ""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text)


def check_cache_visible(client: Any, root: Path) -> None:
    """Every worker reads a probe file written here under ``root`` and writes one back that this process reads.

    CacheNotVisible names each worker (address, host) that cannot see the same folder.
    """
    workers = _workers(client)
    if not workers:
        raise CacheNotVisible(f"the Dask scheduler {client.scheduler.address} has no workers")
    probe = Path(root) / f".facexai-probe-{uuid.uuid4().hex}"
    token = uuid.uuid4().hex
    probe.write_text(token)
    try:
        answers = client.run(_probe, str(probe), token)
        bad = {w: why for w, why in answers.items() if why}
        for w in answers:
            back = Path(f"{probe}.{_slug(w)}")
            if w not in bad and not (back.is_file() and back.read_text() == token):
                bad[w] = "its probe file did not appear here"
    finally:
        for path in Path(root).glob(probe.name + "*"):
            path.unlink(missing_ok=True)
    if bad:
        hosts = {w: workers.get(w, {}).get("host", "") for w in bad}
        raise CacheNotVisible(
            f"the cache root {root} is not the same folder for {len(bad)} of {len(answers)} Dask worker(s): "
            + "; ".join(f"worker {w} (host {hosts[w]}): {why}" for w, why in sorted(bad.items()))
            + ". Give every worker the same shared folder at the same path (--cache-dir).")
    log.info("cache root %s visible to all %d workers", root, len(answers))


def _workers(client: Any) -> dict[str, Any]:
    """The scheduler's workers, every one (newer schedulers list only a few unless asked for all)."""
    return client.scheduler_info(n_workers=-1)["workers"] if _takes_n_workers(client) else \
        client.scheduler_info()["workers"]


def _takes_n_workers(client: Any) -> bool:
    return "n_workers" in inspect.signature(client.scheduler_info).parameters

