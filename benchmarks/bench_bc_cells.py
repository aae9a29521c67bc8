"""Benchmark of notebook 10's BC cells at full-LFW size; prints and writes a Markdown table.

One layer aggregation's cells (2 levels x the declared sharpenings) of one map set the size of the
paper run (5,217 images of 1,000 people, 8 layers of 160 x 160 float16 maps, as FN_C's), on synthetic maps with
a seeded, skewed number of images per person. Two paths, round-robin over ``--repeats`` rounds:

1. ``before``: every BC from unit roots, one Gram (or pair-by-pair product) per pair set, top-k masks
   as float maps (the code before bit-count masks);
2. ``now``: :func:`facexai.map_definitions.aggregation_bcs` (the pairs' own float64 dot products, a Gram only
   where the pairs fill it, top-k masks from one sort and by bit counts), whose values must equal ``before``
   to float32 rounding (checked, the largest difference printed);
3. ``now, pair by pair``: the same with the Gram path off (``DENSE = 0``), which says whether
   :data:`~facexai.map_definitions.DENSE` should send the person level's pairs to one Gram.

Run by hand:  .venv/bin/python benchmarks/bench_bc_cells.py [--images 5217] [--people 1000] [--repeats 2]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from facexai import map_definitions as md
from facexai.bhattacharyya import sample_pairs
from facexai.protocol import grid

ROOT = Path(__file__).resolve().parents[1]


def synthetic_maps(n_images: int, n_people: int, layers: int, size: int, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random maps [image, layer, size, size] (float16, each summing to 1) and identities: every
    person >= 2 images, the rest spread by a seeded log-normal weight (a few people with many images)."""
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, 1.2, n_people)
    extra = rng.multinomial(n_images - 2 * n_people, weights / weights.sum())
    identities = np.repeat([f"p{i:04d}" for i in range(n_people)], 2 + extra)
    coarse = rng.random((n_images, layers, 7, 7)).astype(np.float32)  # LEAM maps are upsampled layer grids
    maps = np.kron(coarse, np.ones((1, 1, -(-size // 7), -(-size // 7)), np.float32))[..., :size, :size]
    maps += 1e-3 * rng.random(maps.shape, dtype=np.float32)  # no exact ties
    return (maps / maps.sum(axis=(-2, -1), keepdims=True)).astype(np.float16), identities


def before(maps, identities, how, levels, sharpening, image_pairs, seed) -> dict[str, np.ndarray]:
    """The earlier path: float masks, one product per pair set."""
    agg = md.aggregate(maps, how)
    out = {}
    for level in levels:
        stack, same, diff = md.level_stack(agg, identities, level, image_pairs, seed)
        for sh in sharpening:
            roots = md.unit_roots(md.sharpen(stack, sh).astype(np.float32))
            out[md.value_key(level, sh, "same")] = md.pair_bc(roots, same)
            out[md.value_key(level, sh, "different")] = md.pair_bc(roots, diff)
    return out


def pair_by_pair(*work) -> dict[str, np.ndarray]:
    """``aggregation_bcs`` with the Gram path off."""
    kept, md.DENSE = md.DENSE, 0
    try:
        return md.aggregation_bcs(*work)
    finally:
        md.DENSE = kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5217)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--size", type=int, default=160)  # FN_C / FN_M: 8 layers of 160 x 160
    parser.add_argument("--aggregation", default="sum1_mean")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_bc_cells.md")
    args = parser.parse_args()
    started = datetime.datetime.now().isoformat(timespec="seconds")
    load_start = os.getloadavg()[0]
    g = grid("paper")
    maps, identities = synthetic_maps(args.images, args.people, args.layers, args.size)
    image_pairs = sample_pairs(identities, 0)
    work = (maps, identities, args.aggregation, g.bc_levels, g.bc_sharpening, image_pairs, 0)
    paths = {"before": before, "now": md.aggregation_bcs, "now, pair by pair": pair_by_pair}
    times: dict[str, list[float]] = {k: [] for k in paths}
    values, loads = {}, []
    for _ in range(args.repeats):
        for name, path in paths.items():
            t0 = time.perf_counter()
            values[name] = path(*work)
            times[name].append(time.perf_counter() - t0)
            loads.append(os.getloadavg()[0])
    worst = max(float(np.abs(values[p][k] - values["before"][k]).max()) for p in paths for k in values["before"])
    if worst > 1e-4:  # float32 sums of 25,600 terms
        raise SystemExit(f"the paths disagree: largest |difference| {worst:.2e} > 1e-4")
    med = {k: statistics.median(v) for k, v in times.items()}
    n_agg = len(md.AGGREGATIONS) + args.layers
    cells = len(g.bc_levels) * len(g.bc_sharpening)
    lines = [
        f"# BC cells benchmark (one aggregation, `{args.aggregation}`: {cells} cells of {args.images:,} maps)",
        "",
        f"- {started}, {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}; load average (1 min) "
        f"at start {load_start:.1f}, during the repeats {min(loads):.1f}-{max(loads):.1f}",
        f"- command: `.venv/bin/python benchmarks/bench_bc_cells.py --images {args.images} --people {args.people} "
        f"--layers {args.layers} --size {args.size} --repeats {args.repeats}`",
        f"- synthetic maps: {args.people:,} people, {args.images:,} images, {args.layers} layers of {args.size} x "
        f"{args.size} (float16); {len(image_pairs[0]):,} same-person + {len(image_pairs[1]):,} different-people "
        f"image pairs; person level {min(md.PERSON_PAIRS_MAX, args.people * (args.people - 1)):,} different pairs; "
        f"sharpenings {', '.join(g.bc_sharpening)}",
        f"- the paths agree: largest |difference| of a BC {worst:.1e}",
        "",
        "| path | median s | min s | max s | s per cell | one model x variant set ({n} aggregations), min |".format(n=n_agg),
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in paths:
        lines.append(f"| {name} | {med[name]:.1f} | {min(times[name]):.1f} | {max(times[name]):.1f} | "
                     f"{med[name] / cells:.2f} | {med[name] * n_agg / 60:.1f} |")
    lines += ["", f"- speed-up: {med['before'] / med['now']:.1f}x (pair by pair: {med['before'] / med['now, pair by pair']:.1f}x)",
              "", "Raw times (s), in round order: " + "; ".join(
                  f"{k}: " + ", ".join(f"{t:.1f}" for t in v) for k, v in times.items())]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
