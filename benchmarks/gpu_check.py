"""GPU readiness check: embeddings and every explainer on CPU vs CUDA, their speed, a smoke run.

Run by hand on a machine with CUDA (on a CPU-only machine it runs the CPU half and exits 0):

    .venv/bin/python benchmarks/gpu_check.py [--models FN_C,SFACE] [--images 8] [--no-smoke] [--against cuda:1]

``--against cpu`` runs the second half against the CPU itself: every step of the comparison, the
timing and the smoke run, on a machine without a GPU (the differences are then 0).

For a fixed batch of real faces (centre crops of the shipped LFW sample, resized to each model's
input) it prints, per model: the max abs difference of the L2-normalised embeddings and of each
explainer's maps (LEAM, Grad-CAM, Grad-CAM++, LayerCAM, S-RISE, CorrRISE) between CPU and GPU
against a stated tolerance, and each explainer's img/s on both devices. Then it runs the smoke
profile with ``--device cuda`` through ``run_all.sh``. Exit status 1 when a difference exceeds
its tolerance or the smoke run fails.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import facexai  # noqa: F401  (torchvision compat layer first)
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from facexai.explain import LEAM, SRISE, CorrRISE, CosineTarget, GradCAM, GradCAMPlusPlus, LayerCAM
from facexai.models.registry import PACKAGED, load_model

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "lfw_sample"
#: float32 on different devices sums in different orders: embeddings agree to ~1e-5, maps (each
#: summing to 1 over ~25k pixels, so values ~4e-5) to well under 1e-6 absolute.
TOLERANCE = {"embedding": 1e-4, "map": 1e-6}
RISE_MASKS = 200


def faces(n: int, size: int) -> torch.Tensor:
    """n real faces (N, 3, size, size) in [0, 255]: the central 150 px of LFW sample images."""
    paths = sorted(SAMPLE.glob("*/*.jpg"))[:: max(1, len(sorted(SAMPLE.glob("*/*.jpg"))) // n)][:n]
    crops = [np.asarray(Image.open(p).convert("RGB").crop((50, 50, 200, 200)).resize((size, size))) for p in paths]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()


def explainers(model: torch.nn.Module) -> dict[str, Callable[[torch.Tensor, CosineTarget], torch.Tensor]]:
    """Every technique of the study on the model's last two named layers (RISE: small mask count)."""
    layers = list(model.layers.values())[-2:]
    return {
        "leam": LEAM(model, layers), "gradcam": GradCAM(model, layers), "gradcam++": GradCAMPlusPlus(model, layers),
        "layercam": LayerCAM(model, layers),
        "srise": SRISE(model, n_masks=RISE_MASKS, batch_size=50, progress=False),
        "corrrise": CorrRISE(model, n_masks=RISE_MASKS, batch_size=50, progress=False),
    }


def timed(fn: Callable[[], torch.Tensor], device: str) -> tuple[torch.Tensor, float]:
    """(result on CPU, seconds), synchronising CUDA around the call."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if cuda:
        torch.cuda.synchronize(device)
    return out.detach().float().cpu(), time.perf_counter() - start


def run_device(name: str, images: torch.Tensor, device: str) -> dict[str, tuple[torch.Tensor, float]]:
    """Embeddings and every explainer's maps of ``images`` on ``device``: name -> (result, seconds)."""
    model = load_model(name, device=device)
    x = images.to(device)
    with torch.no_grad():
        out = {"embedding": timed(lambda: F.normalize(model(x), dim=-1), device)}
        reference = model(x).mean(0)  # one shared reference: the batch's mean embedding
    for technique, explain in explainers(model).items():
        out[technique] = timed(lambda: explain(x, CosineTarget(reference)), device)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(PACKAGED), help="comma-separated registry names")
    parser.add_argument("--images", type=int, default=8, help="images in the fixed batch")
    parser.add_argument("--against", default="cuda", help="the device compared with the CPU (cuda, cuda:1, cpu)")
    parser.add_argument("--no-smoke", action="store_true", help="skip the smoke run on that device")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    print(f"torch {torch.__version__}; CUDA available: {cuda}"
          + (f" ({torch.cuda.get_device_name(0)})" if cuda else ""))
    other = None if torch.device(args.against).type == "cuda" and not cuda else args.against
    failed = False
    for name in args.models.split(","):
        size = load_model(name).spec.input_size
        images = faces(args.images, size)
        cpu = run_device(name, images, "cpu")
        second = run_device(name, images, other) if other else {}
        print(f"\n{name} ({args.images} images, {size}x{size})")
        compared = f" {other + ' img/s':>12} {'max |diff|':>11}  verdict" if other else ""
        print(f"  {'what':<10} {'cpu img/s':>10}{compared}")
        for what, (cpu_out, cpu_s) in cpu.items():
            line = f"  {what:<10} {len(images) / cpu_s:>10.2f}"
            if other:
                out, seconds = second[what]
                diff = (cpu_out - out).abs().max().item()
                tol = TOLERANCE["embedding" if what == "embedding" else "map"]
                ok = diff <= tol
                failed |= not ok
                line += f" {len(images) / seconds:>12.2f} {diff:>11.2e}  {'ok' if ok else 'FAIL'} (tol {tol:.0e})"
            print(line)
    if not other:
        print("\nCUDA is not available here: CPU half only (no comparison, no smoke run on cuda).")
        return 0
    if not args.no_smoke:
        res = subprocess.run(["bash", str(ROOT / "run_all.sh"), "--profile", "smoke", "--device", other,
                              "--run-name", f"smoke-{other.replace(':', '')}", "--cache-dir",
                              str(ROOT / "cache" / "gpu-check")], cwd=ROOT)
        print(f"smoke run with --device {other}: {'ok' if res.returncode == 0 else 'FAILED'}")
        failed |= res.returncode != 0
    return int(failed)


if __name__ == "__main__":
    sys.exit(main())
