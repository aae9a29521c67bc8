"""Forward passes of the face models, counted per model and kind, with the wall time spent inside them.

Every :meth:`FaceModel.forward <facexai.models.registry.FaceModel.forward>` goes through
:func:`counted`. A pass is of kind ``"grad"`` when its output carries an autograd graph (the CAM
explainers' forward, which a backward follows), ``"grad_all_layers"`` when the explainer said its
backward reaches the model's first named layer (:func:`grad_kind`: LEAM's pass, about twice the
cost), and ``"nograd"`` otherwise (embeddings, occluded embeddings, RISE masks). The time is the
wall time inside the forward only; what a backward costs enters through the measured table of
per-image costs (:func:`floor_seconds`, whose grad rates are forward + backward). Counting is two
clock reads and a dict update per batch; on CUDA the time is exact only with
``$FACEXAI_PASSES_SYNC=1`` (a synchronize around each forward), else it is the launch time.

A run gives each notebook a folder in ``$FACEXAI_PASSES_DIR``; every process that forwarded a model
writes its own ``passes-<pid>.json`` there, and :func:`read` sums them. A notebook kernel writes it
after every cell (the runner then stops the kernel at once, without the interpreter's teardown);
any other process when it exits. Dask workers outlive a notebook: each shard task returns the passes it
made (:func:`since`), and the kernel that asked for it writes them as ``passes-<pid>-workers.json``
with the workers' thread count and number, so the floor divides them among the workers.
"""
from __future__ import annotations

import atexit
import contextlib
import contextvars
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported by whoever forwards a model; the run manifest reads counts without it
    import torch

ENV = "FACEXAI_PASSES_DIR"  # folder the counts are written to (set by the runner per notebook)
SYNC_ENV = "FACEXAI_PASSES_SYNC"  # "1": synchronize CUDA around each forward, so its time is exact
KINDS = ("nograd", "grad", "grad_all_layers")
_GRAD_KIND: contextvars.ContextVar[str] = contextvars.ContextVar("grad_kind", default="grad")


@dataclass
class Tally:
    """Passes of one (model, kind, device): images forwarded, forward calls (batches), seconds inside."""

    images: int = 0
    calls: int = 0
    seconds: float = 0.0


_COUNTS: dict[tuple[str, str, str], Tally] = {}
_REMOTE: dict[tuple[str, str, str], Tally] = {}  # passes Dask workers made for this process's shard tasks
_REMOTE_SETUP = {"threads": 1, "workers": 1}  # of those workers: torch threads each, how many ran in parallel


@contextlib.contextmanager
def grad_kind(kind: str) -> Iterator[None]:
    """Count the grad passes inside as ``kind`` (``"grad"`` or ``"grad_all_layers"``), the depth of the
    backward that follows them, so the floor prices them at that depth's measured rate."""
    if kind not in KINDS[1:]:
        raise ValueError(f"grad kind must be one of {list(KINDS[1:])}, got {kind!r}")
    token = _GRAD_KIND.set(kind)
    try:
        yield
    finally:
        _GRAD_KIND.reset(token)


def counted(model: str, images: torch.Tensor, forward: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Run ``forward()`` on the batch ``images`` of ``model`` and count it (images, kind, time)."""
    sync = images.is_cuda and os.environ.get(SYNC_ENV) == "1"
    if sync:
        sys.modules["torch"].cuda.synchronize(images.device)
    start = time.perf_counter()
    out = forward()
    if sync:
        sys.modules["torch"].cuda.synchronize(images.device)
    seconds = time.perf_counter() - start
    tally = _COUNTS.setdefault((model, _GRAD_KIND.get() if out.requires_grad else "nograd", images.device.type),
                               Tally())
    tally.images += len(images)
    tally.calls += 1
    tally.seconds += seconds
    return out


def rows(counts: dict[tuple[str, str, str], Tally] | None = None) -> list[dict[str, Any]]:
    """This process's counts so far (or ``counts``), one row per (model, kind, device)."""
    return [{"model": m, "kind": k, "device": d, "images": t.images, "calls": t.calls, "seconds": t.seconds}
            for (m, k, d), t in sorted((_COUNTS if counts is None else counts).items())]


def reset() -> None:
    """Forget this process's counts (a forked child starts from zero, see below)."""
    _COUNTS.clear()
    _REMOTE.clear()
    _REMOTE_SETUP.update(threads=1, workers=1)


def _add(counts: dict[tuple[str, str, str], Tally], made: list[dict[str, Any]]) -> None:
    """Add rows (as :func:`rows` gives them) to ``counts``."""
    for r in made:
        t = counts.setdefault((r["model"], r["kind"], r["device"]), Tally())
        t.images, t.calls, t.seconds = t.images + r["images"], t.calls + r["calls"], t.seconds + r["seconds"]


def snapshot() -> dict[tuple[str, str, str], tuple[int, int, float]]:
    """This process's counts now, for :func:`since`."""
    return {key: (t.images, t.calls, t.seconds) for key, t in _COUNTS.items()}


def since(before: dict[tuple[str, str, str], tuple[int, int, float]]) -> list[dict[str, Any]]:
    """The passes this process made after ``before`` (a :func:`snapshot`), as :func:`rows`."""
    out = []
    for r in rows():
        images, calls, seconds = before.get((r["model"], r["kind"], r["device"]), (0, 0, 0.0))
        if r["calls"] > calls:
            out.append({**r, "images": r["images"] - images, "calls": r["calls"] - calls,
                        "seconds": r["seconds"] - seconds})
    return out


def add_remote(made: list[dict[str, Any]], threads: int, workers: int) -> None:
    """Count passes a Dask worker made for this process (rows of :func:`since`); ``workers`` ran in parallel."""
    _add(_REMOTE, made)
    _REMOTE_SETUP.update(threads=max(int(threads or 1), 1), workers=max(workers, _REMOTE_SETUP["workers"]))


def worker_rows() -> list[dict[str, Any]]:
    """The passes Dask workers made for this process so far (:func:`add_remote`), as :func:`rows`."""
    return rows(_REMOTE)


@dataclass
class Count:
    """Images one model forwarded inside a :func:`counting` block (set when the block ends)."""

    images: int = 0


def images_forwarded(model: str) -> int:
    """Images ``model`` forwarded so far in this process and on the Dask workers that ran its shard tasks."""
    return sum(t.images for counts in (_COUNTS, _REMOTE) for (m, _k, _d), t in counts.items() if m == model)


@contextlib.contextmanager
def counting(model: str) -> Iterator[Count]:
    """Count the images ``model`` forwards inside the block, in this process and on the Dask workers that ran
    its shard tasks (cache hits forward nothing)."""
    count, before = Count(), images_forwarded(model)
    try:
        yield count
    finally:
        count.images = images_forwarded(model) - before


def write(folder: str | os.PathLike) -> list[Path]:
    """Write this process's counts to ``folder/passes-<pid>.json`` and the passes its Dask workers made to
    ``passes-<pid>-workers.json`` (each a temporary name, then renamed)."""
    torch = sys.modules.get("torch")
    files = []
    if _COUNTS:
        files.append(_write_file(Path(folder) / f"passes-{os.getpid()}.json",
                                 {"threads": torch.get_num_threads() if torch else None, "rows": rows()}))
    if _REMOTE:
        files.append(_write_file(Path(folder) / f"passes-{os.getpid()}-workers.json",
                                 {**_REMOTE_SETUP, "rows": worker_rows()}))
    return files


def _write_file(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), **data}, indent=1))
    os.replace(tmp, path)
    return path


def read(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The counts of every process that wrote into ``folder``, summed; None when none did.

    ``{"processes": n, "threads": [torch threads per process], "rows": [...], "groups": [...]}``; each
    group is one file's ``{"threads", "workers", "rows"}`` (``workers``: processes that made its passes
    in parallel, 1 but for Dask workers).
    """
    files = sorted(Path(folder).glob("passes-*.json"))
    if not files:
        return None
    total: dict[tuple[str, str, str], Tally] = {}
    threads, groups = [], []
    for path in files:
        data = json.loads(path.read_text())
        threads.append(data["threads"])
        groups.append({"threads": data["threads"] or 1, "workers": data.get("workers", 1), "rows": data["rows"]})
        _add(total, data["rows"])
    return {"processes": len(files), "threads": sorted({t for t in threads if t}),
            "rows": [{**r, "seconds": round(r["seconds"], 3)} for r in rows(total)], "groups": groups}


def write_requested(*_args: Any) -> None:
    """Write the counts into ``$FACEXAI_PASSES_DIR`` when the runner set it (a process that forwarded nothing
    writes no file): at exit, and in a notebook kernel after every cell."""
    folder = os.environ.get(ENV)
    if folder:
        write(folder)


def _after_every_cell() -> None:
    """In an IPython kernel, call :func:`write_requested` after each cell, so its counts are on disk before the
    runner stops the kernel (which skips the kernel's exit)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is not None and write_requested not in shell.events.callbacks["post_run_cell"]:
        shell.events.register("post_run_cell", write_requested)


atexit.register(write_requested)
_after_every_cell()
os.register_at_fork(after_in_child=reset)  # a forked worker counts only its own passes


# --- the floor: passes x the measured per-image cost of each model and kind ---------------------------

def load_costs(path: str | os.PathLike) -> dict[str, Any] | None:
    """The measured table (benchmarks/results_models.json, written by benchmarks/bench_models.py); None if absent."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def rate(costs: dict[str, Any], model: str, kind: str, threads: int) -> tuple[float, int] | None:
    """(img/s, threads measured) of ``model`` and ``kind``: the fastest repeat measured at up to ``threads``
    threads (a process can always run on fewer, and on a shared machine the fastest repeat is the least
    disturbed; with none measured that low, the lowest thread count measured); None if not measured."""
    found = [r for r in costs["rows"] if r["model"] == model and r["kind"] == kind]
    if not found:
        return None
    usable = [r for r in found if r["threads"] <= threads] or \
        [r for r in found if r["threads"] == min(f["threads"] for f in found)]
    best = max(usable, key=lambda r: max(r["img_per_s"]))
    return max(best["img_per_s"]), best["threads"]


def priced_seconds(rows: list[dict[str, Any]], rate_of: Callable[[str, str], float | None]) -> tuple[float, list[str]]:
    """(seconds the CPU passes take at ``rate_of(model, kind)`` img/s, the rows without a rate: other models or devices)."""
    total, unpriced = 0.0, []
    for r in rows:
        found = rate_of(r["model"], r["kind"]) if r["device"] == "cpu" else None
        if found is None:
            unpriced.append(f"{r['model']}/{r['kind']}/{r['device']}")
        else:
            total += r["images"] / found
    return total, unpriced


def table_rate(costs: dict[str, Any], threads: int) -> Callable[[str, str], float | None]:
    """``rate_of(model, kind)`` from the measured table at ``threads`` (see :func:`rate`)."""
    return lambda model, kind: (rate(costs, model, kind, threads) or (None,))[0]


def floor_seconds(rows: list[dict[str, Any]], costs: dict[str, Any], threads: int) -> tuple[float, list[str]]:
    """(seconds the passes take at the measured rates, the rows that have no rate: other devices or models)."""
    return priced_seconds(rows, table_rate(costs, threads))


def predicted_seconds(cost: dict[str, Any], costs: dict[str, Any], workers: int = 1, worker_threads: int = 1,
                      img_per_s: float | None = None) -> float | None:
    """The cost model: a notebook's time ~ its passes / (workers x img/s) + the non-pass remainder.

    ``cost`` is a notebook's :func:`account`. The remainder is wall - floor (everything but the
    passes at their measured speed, including any slowdown of the passes themselves), assumed not
    to shrink with workers, and never negative (a floor above the wall means the rate table is slower
    than the run was: the prediction then prices every pass at the table's rates). Rates: the table at ``worker_threads`` per worker, or, for a GPU,
    ``img_per_s`` for every no-grad forward and ``img_per_s`` x (the table's grad / no-grad rate
    of the model) for grad passes. None when the account has no floor or a pass has no rate.
    """
    if not cost.get("recorded") or cost["floor_seconds"] is None or cost["unpriced"]:
        return None
    if img_per_s is None:
        rate_of = table_rate(costs, worker_threads)
    else:
        measured = table_rate(costs, cost["threads"])

        def rate_of(model: str, kind: str) -> float | None:
            grad, nograd = measured(model, kind), measured(model, "nograd")
            return None if grad is None or nograd is None else img_per_s * grad / nograd
    seconds, unpriced = priced_seconds(cost["passes"], rate_of)
    if unpriced:
        return None
    return seconds / workers + max(cost["wall_seconds"] - cost["floor_seconds"], 0.0)


def account(counts: dict[str, Any] | None, costs: dict[str, Any] | None, wall_seconds: float) -> dict[str, Any]:
    """One notebook's cost account: its passes, the time inside them, their floor and wall / floor.

    ``counts`` is :func:`read`'s result (None: the kernel wrote none), ``costs`` :func:`load_costs`'s.
    The ratio is None when there is no floor (no passes, or no table).
    """
    if counts is None:
        return {"recorded": False}
    threads, wall_seconds = max(counts["threads"], default=1), round(wall_seconds, 1)
    out: dict[str, Any] = {
        "recorded": True, "processes": counts["processes"], "threads": threads, "passes": counts["rows"],
        "forward_seconds": round(sum(r["seconds"] for r in counts["rows"]), 1),
        "wall_seconds": wall_seconds, "floor_seconds": None, "ratio": None, "unpriced": []}
    workers = max((g["workers"] for g in counts.get("groups") or []), default=1)
    if workers > 1:  # the split by process, so the account can be repriced (benchmarks/cost_account.py)
        out.update(dask_workers=workers, groups=counts["groups"])
    if costs is not None and counts["rows"]:
        floor, unpriced = 0.0, []  # each process's passes at its threads' rate, Dask workers' shared among them
        for g in counts.get("groups") or [{"threads": threads, "workers": 1, "rows": counts["rows"]}]:
            seconds, missing = floor_seconds(g["rows"], costs, g["threads"])
            floor, unpriced = floor + seconds / g["workers"], unpriced + [m for m in missing if m not in unpriced]
        out.update(floor_seconds=round(floor, 1), unpriced=unpriced, costs_measured=costs.get("measured"))
        if floor > 0:
            out["ratio"] = round(wall_seconds / floor, 2)
    return out
