"""Measured images/s of every packaged face model: the per-image costs the cost accounts price passes at.

Per model (FN_C, FN_M, SFACE, DLIB, trained weights) and torch thread count (1 and 2):
- ``nograd``: batched forward under ``torch.no_grad()`` (embeddings, occlusions, RISE), batch 32;
- ``grad``: forward + ``torch.autograd.grad`` of a cosine target to the Grad-CAM layer (the method
  table's ``cam_layer``, second-to-last named layer), batch 16: the cheapest explainer pass, so the
  floor it gives is a lower bound for every grad pass;
- ``grad_all_layers``: the same to all named layers (LEAM's pass: the backward reaches the earliest
  one), the rate of the passes an explainer counts as ``grad_all_layers`` (:func:`facexai.passes.grad_kind`).
Each cell is measured ``--repeats`` times (interleaved, each timing ``--seconds`` of batches after a
warm-up); the table gives the fastest, the median and the spread (max - min) / median. Writes
``benchmarks/results_models.md`` and ``results_models.json`` (read by the run manifest).

Run by hand (the machine is shared: normal priority, and read the load line):
    nice -n 0 .venv/bin/python benchmarks/bench_models.py
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from facexai import passes
from facexai.explain.cam import resolve_layers
from facexai.models.registry import PACKAGED, load_model
from facexai.profiles import method

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the small image builder shared with the tests
from explain_models import face_like_images  # noqa: E402

BATCH = {"nograd": 32, "grad": 16, "grad_all_layers": 16}


def pass_functions(model, layer_names: dict[str, list[str]]) -> dict[str, Callable[[torch.Tensor], None]]:
    """One pass of each kind on a batch: no-grad forward, and forward + autograd.grad to the given layers."""
    def nograd(x):
        with torch.no_grad():
            model(x)

    def grad_to(names):
        layers = resolve_layers(model, {n: model.layer_path(n) for n in names})

        def run(x):
            acts = []
            handles = [m.register_forward_hook(lambda mod, i, o: acts.append(o)) for m in layers.values()]
            try:
                with torch.enable_grad():
                    emb = model(x)
                    score = torch.nn.functional.cosine_similarity(emb, emb.detach().roll(1, 0)).sum()
                torch.autograd.grad(score, acts)
            finally:
                for h in handles:
                    h.remove()
        return run

    return {"nograd": nograd, "grad": grad_to(layer_names["grad"]),
            "grad_all_layers": grad_to(layer_names["grad_all_layers"])}


def rates(fn: Callable[[torch.Tensor], None], images: torch.Tensor, seconds: float) -> float:
    """img/s of ``fn`` on ``images``: whole batches for at least ``seconds`` (at least 2 batches)."""
    n, start = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - start < seconds:
        fn(images)
        n += 1
    return n * len(images) / (time.perf_counter() - start)


def counting_overhead(calls: int = 20000) -> float:
    """Seconds :func:`passes.counted` adds per forward call (a trivial forward, timed with and without it)."""
    x = torch.zeros(1, 3, 2, 2)
    start = time.perf_counter()
    for _ in range(calls):
        x.view(-1)
    bare = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(calls):
        passes.counted("overhead", x, lambda: x.view(-1))
    passes.reset()
    return max(0.0, (time.perf_counter() - start - bare) / calls)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "load average %.2f, %.2f, %.2f" % os.getloadavg()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(PACKAGED))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement (whole batches)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_models")
    args = parser.parse_args()

    started = datetime.datetime.now().isoformat(timespec="seconds")
    loads = [f"start: {uptime()}"]
    print(loads[0], flush=True)
    cam_layer = method().cam_layer
    rows = []
    for name in args.models:
        model = load_model(name)
        names = list(model.layers)
        fns = pass_functions(model, {"grad": [names[cam_layer]], "grad_all_layers": names})
        size = model.spec.input_size
        for threads in args.threads:
            torch.set_num_threads(threads)
            batches = {kind: face_like_images(BATCH[kind], size, seed=1) for kind in fns}
            for kind, fn in fns.items():
                fn(batches[kind])  # warm-up
            measured = {kind: [] for kind in fns}
            for _ in range(args.repeats):  # interleaved: a burst of load hits every kind alike
                for kind, fn in fns.items():
                    measured[kind].append(rates(fn, batches[kind], args.seconds))
            for kind, values in measured.items():
                median = statistics.median(values)
                rows.append({"model": name, "kind": kind, "threads": threads, "batch": BATCH[kind],
                             "img_per_s": [round(v, 2) for v in values],
                             "spread": round((max(values) - min(values)) / median, 3)})
                print(f"{name:6s} {threads} thr {kind:16s} best {max(values):7.1f} img/s  "
                      f"median {median:7.1f}  spread {rows[-1]['spread']:.0%}", flush=True)
        loads.append(f"after {name}: {uptime()}")
        print(loads[-1], flush=True)
    overhead = counting_overhead()
    fastest_batch = min(r["batch"] / max(r["img_per_s"]) for r in rows)
    data = {"measured": started, "command": ("nice -n 0 .venv/bin/python benchmarks/bench_models.py "
                                            + " ".join(sys.argv[1:])).strip(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
            "load": loads, "cam_layer": cam_layer, "repeats": args.repeats, "seconds_per_measurement": args.seconds,
            "counting_overhead_us_per_call": round(overhead * 1e6, 2),
            "counting_overhead_share_of_fastest_batch": overhead / fastest_batch, "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(data))
    print(markdown(data))


def markdown(data: dict) -> str:
    """The measured table as the README shows it."""
    lines = [f"# Measured img/s per model ({data['measured']})", "",
             f"- command: `{data['command']}`", f"- machine: {data['machine']}",
             "- load (`uptime` before and after each model; other jobs on the machine raise it): "
             + "; ".join(f"{s}" for s in data["load"]),
             f"- kinds: `nograd` = batched forward under no_grad (batch 32); `grad` = forward + autograd.grad to "
             f"the Grad-CAM layer (named layer {data['cam_layer']}; batch 16), the floor's rate for `grad` passes; "
             "`grad_all_layers` = the same to every named layer, the rate of LEAM's passes (counted as `grad_all_layers`)",
             f"- {data['repeats']} interleaved repeats of {data['seconds_per_measurement']} s each; best = fastest "
             "repeat (used by the floor), spread = (max - min) / median",
             f"- counting overhead: {data['counting_overhead_us_per_call']} us per forward call "
             f"({data['counting_overhead_share_of_fastest_batch']:.1e} of the fastest batch)", "",
             "| model | threads | kind | batch | best img/s | median img/s | spread | repeats (img/s) |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for r in data["rows"]:
        v = r["img_per_s"]
        lines.append(f"| {r['model']} | {r['threads']} | {r['kind']} | {r['batch']} | {max(v):.1f} | "
                     f"{statistics.median(v):.1f} | {r['spread']:.0%} | {', '.join(f'{x:.1f}' for x in v)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
