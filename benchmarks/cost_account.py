"""The cost account of a run, per notebook: its face-model passes, their floor, its wall time, wall / floor.

Reads a run's manifest (``figures/<run>/manifest.json``, whose notebook entries carry ``cost``,
written by the runner) and the measured img/s table (``benchmarks/results_models.json``), and
prints a Markdown table: passes (images per model and kind), seconds inside the forwards, the
floor (passes at the measured img/s), wall time, wall / floor against the 1.5x target, and the
cost model's prediction  time ~ passes / (N x img/s) + remainder  (remainder = wall - floor) for
N CPU workers (``--workers``, ``--worker-threads`` each) and for a device at ``--img-per-s``.

    .venv/bin/python benchmarks/cost_account.py figures/smoke-h14c/manifest.json --workers 1 2 --img-per-s 500
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from facexai import passes
from facexai.provenance import COSTS_FILE, RATIO_TARGET


def fmt(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f}"


def passes_text(cost: dict[str, Any]) -> str:
    """``FN_C nograd 240, FN_C grad 16``: images per model and kind (device named when not the CPU)."""
    if not cost.get("recorded"):
        return "none"
    return ", ".join(f"{r['model']} {r['kind']} {r['images']}" + ("" if r["device"] == "cpu" else f" ({r['device']})")
                     for r in cost["passes"]) or "none"


def repriced(entry: dict[str, Any], costs: dict[str, Any]) -> dict[str, Any]:
    """A notebook's account recomputed from its recorded passes with ``costs`` (the table may be newer than the run)."""
    stored = entry["cost"]
    if not stored.get("recorded"):
        return {"recorded": False, "wall_seconds": entry["seconds"], "floor_seconds": None, "ratio": None}
    if stored.get("dask_workers") and "groups" not in stored:
        return stored  # written before the per-process split was kept: repricing would count workers' passes as the kernel's
    counts = {"processes": stored["processes"], "threads": [stored["threads"]], "rows": stored["passes"],
              "groups": stored.get("groups")}  # a run with Dask workers: their passes apart, shared among them
    return passes.account(counts, costs, entry["seconds"])


def table(manifest: dict[str, Any], costs: dict[str, Any], workers: list[int], worker_threads: int,
          img_per_s: float | None) -> list[str]:
    """The Markdown lines of the account: one row per notebook with a cost entry, then the run's totals."""
    predictions = [f"{n} worker{'s' if n > 1 else ''} x {worker_threads} thr (s)" for n in workers]
    if img_per_s:
        predictions.append(f"device at {img_per_s:g} img/s (s)")
    head = ["notebook", "passes (images)", "forward s", "floor s", "wall s", f"wall / floor (<= {RATIO_TARGET})",
            "wall / forward s", *predictions]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    totals = {"wall": 0.0, "floor": 0.0, "pred": [0.0] * len(predictions)}
    for stem, entry in manifest["notebooks"].items():
        if "cost" not in entry:
            continue
        cost = repriced(entry, costs)
        ratio = cost.get("ratio")
        mark = "n/a" if ratio is None else f"{ratio:.2f} " + ("ok" if ratio <= RATIO_TARGET else "**above**")
        forward = cost.get("forward_seconds")
        same_run = f"{cost['wall_seconds'] / forward:.1f}" if forward else "n/a"  # the passes as they ran here
        values = [passes.predicted_seconds(cost, costs, n, worker_threads) for n in workers]
        if img_per_s:
            values.append(passes.predicted_seconds(cost, costs, img_per_s=img_per_s))
        # a notebook without a floor (no passes) takes its wall time whatever the workers
        values = [cost["wall_seconds"] if v is None and not cost.get("floor_seconds") else v for v in values]
        lines.append("| " + " | ".join([stem, passes_text(cost), fmt(cost.get("forward_seconds")),
                                        fmt(cost.get("floor_seconds")), fmt(cost["wall_seconds"]), mark,
                                        same_run, *map(fmt, values)]) + " |")
        totals["wall"] += cost["wall_seconds"]
        totals["floor"] += cost.get("floor_seconds") or 0.0
        totals["pred"] = [t + v if t is not None and v is not None else None for t, v in zip(totals["pred"], values)]
    ratio = totals["wall"] / totals["floor"] if totals["floor"] else None
    lines.append("| " + " | ".join(["**all**", "", "", fmt(totals["floor"]), fmt(totals["wall"]),
                                    "n/a" if ratio is None else f"{ratio:.2f}", "", *map(fmt, totals["pred"])]) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="figures/<run>/manifest.json")
    parser.add_argument("--costs", type=Path, default=COSTS_FILE, help="measured img/s table (bench_models.py)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="CPU worker counts to predict")
    parser.add_argument("--worker-threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--img-per-s", type=float, help="a device's no-grad img/s (e.g. a GPU's), for every model")
    args = parser.parse_args(argv)
    manifest = json.loads(args.manifest.read_text())
    costs = passes.load_costs(args.costs)
    if costs is None:
        print(f"no measured table at {args.costs}: run benchmarks/bench_models.py first", file=sys.stderr)
        return 2
    if not any("cost" in e for e in manifest["notebooks"].values()):
        print(f"{args.manifest} has no cost accounts (run before pass counting existed?)", file=sys.stderr)
        return 2
    print(f"Cost account of run `{manifest['run_name']}` (profile {manifest['profile']}; img/s measured "
          f"{costs['measured']}):\n")
    print("\n".join(table(manifest, costs, args.workers, args.worker_threads, args.img_per_s)))
    print(f"\nfloor (recomputed from the recorded passes with {args.costs.name}) = passes x the fastest measured per-image cost of each model and kind at the kernel's torch "
          f"threads (grad: forward + backward to the Grad-CAM layer, a lower bound for any explainer; grad_all_layers: "
          f"forward + backward to every named layer, LEAM's pass); forward s = wall time "
          f"inside the models' forwards as they ran in this run (backward not included, so wall / forward s is an upper bound of wall over the passes' own time); prediction = passes / (N x img/s) + max(wall - floor, 0); "
          f"a device's grad rate = its img/s x the model's measured grad / no-grad ratio.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
