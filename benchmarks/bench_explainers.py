"""Benchmark of the explainers, side by side in one run; prints and writes a Markdown table.

1. LEAM on all hooked layers vs a bare forward + backward of the same model and batch.
2. LEAM (one call, all layers) vs pytorch-grad-cam's LayerCAM one layer per call, maps compared;
   2b. vs pytorch-grad-cam's own multi-layer call (all layers in one LayerCAM: one forward, one backward).
3. S-RISE and CorrRISE masked images/s vs the model's plain batched forward; their peak memory.
4. CorrRISE's streaming correlation vs a per-pixel scipy.stats.pearsonr loop, maps compared.

Run by hand:  .venv/bin/python benchmarks/bench_explainers.py [--quick] [--model FN_C]
Default model: facenet-pytorch InceptionResnetV1 with RANDOM weights at 160x160 (timing only).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import facexai  # noqa: F401  (torchvision compat layer before facenet_pytorch)
import numpy as np
import psutil
import torch
import torch.nn.functional as F
from scipy.stats import pearsonr

from facexai.explain import LEAM, CorrRISE, CosineTarget, PearsonAccumulator, RiseMasks, SRISE

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the small model builders shared with the tests
from explain_models import RawFacenet, face_like_images  # noqa: E402

FACENET_10 = {name: f"net.{name}" for name in [
    "conv2d_4b", "repeat_1.0", "repeat_1.4", "mixed_6a", "repeat_2.0", "repeat_2.4", "repeat_2.9",
    "mixed_7a", "repeat_3.2", "block8"]}


def load(name: str | None) -> tuple[torch.nn.Module, dict[str, str], int, str]:
    """(model, layers, input size, description): a registry model, else random InceptionResnetV1."""
    if name:
        try:
            from facexai.models.registry import load_model
            model = load_model(name)
            return model, dict(model.layers), model.spec.input_size, f"{name} (registry, trained weights)"
        except Exception as err:  # noqa: BLE001  (any failure: say why and fall back)
            print(f"!! registry model {name!r} unavailable ({type(err).__name__}: {err}); "
                  "falling back to InceptionResnetV1 with random weights")
    return RawFacenet(), FACENET_10, 160, "facenet-pytorch InceptionResnetV1, random weights, 160x160"


def best_times(fns: dict[str, Callable[[], object]], repeats: int, clock: Callable[[], float],
               warm_up: bool = True) -> dict[str, tuple[float, object]]:
    """Min time (by ``clock``) and last result of each function, called round-robin ``repeats`` times.

    On a shared machine the minimum of interleaved runs is the least disturbed estimate.
    """
    if warm_up:
        for fn in fns.values():
            fn()
    best = {name: (float("inf"), None) for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = clock()
            result = fn()
            best[name] = (min(best[name][0], clock() - start), result)
    return best


def peak_memory(fn: Callable[[], object]) -> tuple[float, float]:
    """(peak RSS increase, tracemalloc peak) in MiB during ``fn``; RSS sampled every 5 ms."""
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak, done = [base], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    tracemalloc.start()
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
        _, traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return (peak[0] - base) / 2**20, traced / 2**20


def minmax(maps: np.ndarray) -> np.ndarray:
    maps = maps - maps.min(axis=(-2, -1), keepdims=True)
    return maps / np.maximum(maps.max(axis=(-2, -1), keepdims=True), 1e-30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="registry model name (facexai.models.registry.load_model)")
    parser.add_argument("--quick", action="store_true", help="small batches and mask counts: checks it runs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_explainers.md")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or this process's CPU time (steadier on a shared machine)")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    quick = args.quick
    batch, repeats = (4, 3) if quick else (8, 5)
    n_masks, n_corr, rise_batch, rise_repeats = (128, 128, 32, 3) if quick else (4000, 1000, 32, 1)

    model, layers, size, described = load(args.model)
    layers = dict(list(layers.items())[:10])
    images = face_like_images(batch, size, seed=0)
    with torch.no_grad():
        dim = model(images[:1]).shape[1]
    reference = F.normalize(torch.randn(dim, generator=torch.Generator().manual_seed(0)), dim=0)
    target = CosineTarget(reference)
    rows: list[tuple[str, str, str, str, str]] = []
    load_avg = os.getloadavg()

    # 1. LEAM (all layers, one forward + one backward) vs a bare forward + backward
    leam = LEAM(model, layers)

    def backward_params():
        model.zero_grad(set_to_none=True)
        target(model(images)).sum().backward()

    def backward_input():
        x = images.clone().requires_grad_(True)
        torch.autograd.grad(target(model(x)).sum(), x)

    t = best_times({"leam": lambda: leam(images, target), "params": backward_params, "input": backward_input},
                   repeats, clock)
    model.zero_grad(set_to_none=True)
    t_leam, ours = t["leam"]
    for key, what in [("params", "fwd + loss.backward() (parameter grads)"),
                      ("input", "fwd + autograd.grad to the input (no parameter grads)")]:
        rows.append((f"1. LEAM, {len(layers)} layers, batch {batch}", f"{batch / t_leam:.2f} img/s",
                     f"{what}: {batch / t[key][0]:.2f} img/s", f"{t_leam / t[key][0]:.2f}x time", "<= 1.3x"))

    # 2. LEAM vs pytorch-grad-cam LayerCAM, one layer per call, same maps
    import pytorch_grad_cam as pgc

    def grad_cam_per_layer() -> tuple[np.ndarray, np.ndarray]:
        """Final maps (N, L, H, W) and raw maps at each layer's resolution (for the check)."""
        final, raw = [], []
        for path in layers.values():
            layer = model.get_submodule(path)
            cam = pgc.LayerCAM(model, [layer])
            final.append(cam(images, [target] * batch))
            acts, grads = (x[0].numpy() for x in (cam.activations_and_grads.activations,
                                                  cam.activations_and_grads.gradients))
            raw.append(np.maximum(cam.get_cam_image(images, layer, None, acts, grads, eigen_smooth=False), 0))
            cam.activations_and_grads.release()
        return np.stack(final, 1), raw

    t = best_times({"leam": lambda: leam(images, target), "pgc": grad_cam_per_layer}, repeats, clock)
    final, raw_theirs = t["pgc"][1]
    diff_final = np.abs(minmax(ours.numpy()) - final).max()
    diff_raw = max(float(np.abs(a.numpy() - b).max() / b.max())
                   for a, b in zip(leam.raw_maps(images, target), raw_theirs))
    rows.append((f"2. LEAM vs pytorch-grad-cam LayerCAM, {len(layers)} layers", f"{batch / t['leam'][0]:.2f} img/s",
                 f"{batch / t['pgc'][0]:.2f} img/s; maps: raw rel. diff {diff_raw:.1e}, "
                 f"min-max diff {diff_final:.1e}", f"{t['pgc'][0] / t['leam'][0]:.1f}x faster", ">= 5x"))

    # 2b. the fair anchor: pytorch-grad-cam's own multi-layer path, all layers given to one LayerCAM
    #     call (one forward, one backward; it returns the layers' mean map, so only the time compares)
    multi = pgc.LayerCAM(model, [model.get_submodule(path) for path in layers.values()])
    t = best_times({"leam": lambda: leam(images, target), "pgc": lambda: multi(images, [target] * batch)},
                   repeats, clock)
    multi.activations_and_grads.release()
    rows.append((f"2b. LEAM vs pytorch-grad-cam LayerCAM(model, {len(layers)} layers), one call",
                 f"{batch / t['leam'][0]:.2f} img/s", f"{batch / t['pgc'][0]:.2f} img/s (one fwd + bwd, mean map)",
                 f"{t['pgc'][0] / t['leam'][0]:.1f}x faster", ">= 1x"))

    # 3. RISE throughput vs plain batched forward over as many images; peak memory (separate runs:
    #    tracemalloc slows the timed code)
    chunk = face_like_images(rise_batch, size, seed=1)
    one = images[:1]
    explainers = {cls.__name__: cls(model, n_masks=n_masks, cell_size=16, p=0.5, batch_size=rise_batch,
                                    progress=False) for cls in (SRISE, CorrRISE)}

    def plain():
        with torch.no_grad():
            for _ in range(0, n_masks, rise_batch):
                model(chunk)

    with torch.no_grad():
        model(chunk)  # warm-up
    runs = {"plain": plain} | {name: (lambda e=e: e(one, target)) for name, e in explainers.items()}
    t = best_times(runs, rise_repeats, clock, warm_up=False)
    fwd_rate = n_masks / t["plain"][0]
    for name, explainer in explainers.items():
        rate = n_masks / t[name][0]
        rows.append((f"3. {name}, N={n_masks}, batch {rise_batch}", f"{rate:.1f} masked img/s",
                     f"plain forward {fwd_rate:.1f} img/s", f"{rate / fwd_rate:.0%}", ">= 90%"))
        rss, traced = peak_memory(lambda: explainer(one, target))
        rows.append((f"3. {name} peak memory, N={n_masks}", f"{rss:.0f} MiB RSS increase",
                     f"tracemalloc peak {traced:.1f} MiB", "", "< 2 GiB"))

    # 4. streaming correlation vs a per-pixel scipy loop on the same masks and scores
    masks = torch.cat(list(RiseMasks(n_corr, size, 16, 0.5).chunks(rise_batch))).flatten(1)
    with torch.no_grad():
        scores = torch.cat([target(model(one * m.view(-1, 1, size, size))) for m in masks.split(rise_batch)])
    m_np, s_np = masks.numpy().astype(np.float64), scores.numpy().astype(np.float64)

    def streaming() -> np.ndarray:
        acc = PearsonAccumulator(masks.shape[1])
        for m, s in zip(masks.split(rise_batch), scores.split(rise_batch)):
            acc.update(m, s)
        return acc.result().numpy()

    def looped() -> np.ndarray:
        return np.array([pearsonr(m_np[:, j], s_np).statistic for j in range(m_np.shape[1])])

    t = best_times({"vec": streaming, "loop": looped}, 1, clock, warm_up=False)
    t_vec = best_times({"vec": streaming}, 5, clock)["vec"][0]
    diff = np.abs(t["vec"][1] - t["loop"][1]).max()
    rows.append((f"4. CorrRISE correlation, N={n_corr}, {size}x{size}", f"{1 / t_vec:.1f} img/s",
                 f"pearsonr loop {1 / t['loop'][0]:.3f} img/s (max diff {diff:.1e})",
                 f"{t['loop'][0] / t_vec:.0f}x faster", ">= 100x"))

    header = (f"# Explainer benchmark ({'quick' if quick else 'full'} run)\n\n"
              f"- {datetime.datetime.now().isoformat(timespec='seconds')}, {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
              f"{args.clock} clock; "
              f"load average at start {load_avg[0]:.1f} (a shared machine: other jobs ran alongside)\n"
              f"- model: {described}\n"
              "- memory: peak process RSS increase during the call (psutil, sampled every 5 ms: torch's CPU "
              "allocations included) and tracemalloc's peak (Python/NumPy allocations only)\n"
              "- times: minimum over interleaved repeats; 3. plain forward = the same number of images in "
              "batches of the same size, no masking\n"
              "- 4. times the correlation stage only (masks and scores given); img/s = correlation maps per second\n\n")
    table = ["| measurement | ours | reference | ratio | target |", "|---|---|---|---|---|"]
    table += [f"| {' | '.join(row)} |" for row in rows]
    text = header + "\n".join(table) + "\n"
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
