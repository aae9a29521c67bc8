"""Benchmark of the Dask executor on a quick-profile map step; prints and writes a Markdown table.

The step: LEAM maps (every named layer, the method table's definition) of one model for N images
of the shipped LFW sample (2 cache shards of 64 images for N = 128), from a warm cache of crops
and embeddings, with the model already loaded in every worker (only the maps are recomputed: the
map cache is deleted before each run).
Measured, round-robin over ``--repeats`` rounds (a shared machine: the spread is reported):

1. in-process, torch with 1 thread, and with torch's default threads (today's default path);
2. a LocalCluster of 1 worker (1 thread): its overhead against in-process with 1 thread (target <= 10%);
3. a LocalCluster of 2 workers (1 thread each): strong scaling, beside the cost model
   time = images / (workers x img/s of one worker) + overhead, with img/s and overhead from 1 and 2.

Run by hand:  .venv/bin/python benchmarks/bench_executor.py [--images 128] [--model SFACE] [--repeats 2]
(its cache goes to --cache-dir, default a folder under /tmp; never the study's cache).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from facexai import align, embed, executor, profiles, saliency, study
from facexai.models import load_model

ROOT = Path(__file__).resolve().parents[1]


def sample_images(data_root: Path, n: int, geometry: str, cache_root: Path) -> tuple[pd.DataFrame, list[str]]:
    """Every aligned image of the people with >= 2 aligned images (the targets' references), and the
    first ``n`` of them to explain."""
    paths = sorted(str(p) for p in data_root.glob("*/*.jpg"))
    res = align.align_paths(paths, [geometry], cache_root)
    kept = [str(p) for p in res.paths]
    images = pd.DataFrame({"identity": [Path(p).parent.name for p in kept], "path": kept})
    images = images[images.groupby("identity").path.transform("size") >= 2].sort_values(["identity", "path"])
    if len(images) < n:
        raise SystemExit(f"only {len(images)} usable images under {data_root}; ask for --images <= that")
    return images.reset_index(drop=True), images.path.tolist()[:n]


def timed_maps(cfg: profiles.Config, model, images: pd.DataFrame, paths: list[str]) -> float:
    """Seconds of one map step from an empty map cache."""
    shutil.rmtree(cfg.cache_root / "maps", ignore_errors=True)
    start = time.perf_counter()
    saliency.image_maps(cfg, model, images, paths=paths)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="SFACE")
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "facexai-bench-executor")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_executor.md")
    args = parser.parse_args()
    root = args.cache_dir
    load_start = os.getloadavg()
    started = datetime.datetime.now().isoformat(timespec="seconds")

    cfg = profiles.resolve("quick", cache_root=str(root), run_name="bench-executor")
    model = load_model(args.model, cfg.device, cfg.cache_root)
    images, paths = sample_images(cfg.data_root, args.images, model.spec.geometry, cfg.cache_root)
    embed.cached_embed(model, *study.crops(cfg, images.path.tolist(), model.spec.geometry), cfg.cache_root)
    default_threads = torch.get_num_threads()
    clusters, setup = {}, {}
    for n in (1, 2):
        t0 = time.perf_counter()
        clusters[n] = executor.start_local(n)
        client = executor.use(clusters[n].scheduler_address, cfg.cache_root).client  # connects, checks the cache
        setup[n] = time.perf_counter() - t0
        client.run(executor.worker_model, args.model, cfg.device, str(cfg.cache_root))  # each worker loads it once
    executor.use("")

    def run(setting: str) -> float:
        if setting.startswith("in-process"):
            executor.use("")
            torch.set_num_threads(1 if "1 thread" in setting else default_threads)
        else:
            executor.use(clusters[int(setting[0])].scheduler_address, cfg.cache_root)
        try:
            return timed_maps(cfg, model, images, paths)
        finally:
            torch.set_num_threads(default_threads)

    settings = ["in-process, 1 thread", f"in-process, {default_threads} threads", "1 worker", "2 workers"]
    times: dict[str, list[float]] = {s: [] for s in settings}
    loads = []
    for _ in range(args.repeats):
        for s in settings:
            times[s].append(run(s))
            loads.append(os.getloadavg()[0])
    executor.use("")
    for cluster in clusters.values():
        cluster.close()

    med = {s: statistics.median(v) for s, v in times.items()}
    rate = args.images / med["in-process, 1 thread"]  # img/s of one 1-thread worker's worth of compute
    overhead = max(0.0, med["1 worker"] - args.images / rate)  # 0 when 1 worker was not slower (spread)
    predicted = args.images / (2 * rate) + overhead
    lines = [
        f"# Dask executor benchmark ({args.model} LEAM maps, {args.images} images, every named layer)",
        "",
        f"- {started}, {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"(default {default_threads} threads), dask/distributed {__import__('distributed').__version__}",
        f"- load average (1 min) at start {load_start[0]:.1f}, during the repeats "
        f"{min(loads):.1f}-{max(loads):.1f} (a shared machine: other jobs ran alongside)",
        f"- command: `.venv/bin/python benchmarks/bench_executor.py --model {args.model} --images {args.images} "
        f"--repeats {args.repeats}`; map cache deleted before each run, crops and embeddings cached",
        f"- {args.images // saliency.SHARD + bool(args.images % saliency.SHARD)} shards of {saliency.SHARD} images;"
        f" LocalCluster start + cache check: 1 worker {setup[1]:.1f} s, 2 workers {setup[2]:.1f} s (once per run)",
        "",
        "| setting | median s | min s | max s | img/s (median) |",
        "|---|---|---|---|---|",
    ]
    for s in settings:
        lines.append(f"| {s} | {med[s]:.2f} | {min(times[s]):.2f} | {max(times[s]):.2f} | "
                     f"{args.images / med[s]:.1f} |")
    ratio = med["1 worker"] / med["in-process, 1 thread"]
    lines += [
        "",
        f"- LocalCluster overhead: 1 worker / in-process (1 thread) = {ratio:.3f} (target <= 1.10: "
        f"{'met' if ratio <= 1.10 else 'NOT met'}); against today's default in-process path "
        f"({default_threads} threads): {med['1 worker'] / med[settings[1]]:.3f}",
        f"- strong scaling: 2 workers / 1 worker = {med['2 workers'] / med['1 worker']:.3f} "
        f"(speed-up {med['1 worker'] / med['2 workers']:.2f}x)",
        f"- cost model: time = {args.images} / (workers x {rate:.1f} img/s) + {overhead:.2f} s overhead "
        f"-> 2 workers predicted {predicted:.2f} s, measured {med['2 workers']:.2f} s "
        f"({med['2 workers'] / predicted:.2f}x the prediction)",
        "",
        "Raw times (s), in round order: " + "; ".join(f"{s}: " + ", ".join(f"{t:.2f}" for t in v)
                                                       for s, v in times.items()),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
