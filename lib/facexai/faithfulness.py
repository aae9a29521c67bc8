"""Deletion and insertion curves (Petsiuk et al. 2018) for face verification maps.

For an image x, its map, and a baseline image b (x blurred, or x's mean colour), the pixels are
ranked by the map (highest first; ties by flat index). At each declared fraction f of the pixels
(``fractions``, 0 to 1):

- **deletion**: the top f of the pixels are replaced by the baseline: x_f = b on them, x elsewhere;
- **insertion**: the top f of the pixels are restored onto the baseline: x_f = x on them, b elsewhere.

Each x_f is embedded and scored: the **cosine** to the person's reference embedding and the
**genuine acceptance**, the share of the person's other images whose clean embedding has cosine
>= the declared threshold with it. **AUC** = trapezoid rule of the score over the fraction
(``numpy.trapezoid``; fractions from 0 to 1, so the AUC is the mean score). A faithful map makes
deletion fall fast (low AUC) and insertion rise fast (high AUC).

Beside each map order, two controls (:func:`orders`): a **random** order (uniform pixel ranks) and
the **dispersion-matched** order, the map's own ranks cyclically shifted by a random offset (each
axis in [H/4, 3H/4)): at every fraction the removed pixels have the map's shape, component sizes
and layout, only at another place (a cyclic shift keeps the sets nested from 0 to 100%, which a
crop-bounded shift cannot).

Batched: all fractions x orders x images go through the model in chunks of ``batch_size``
perturbed images (one forward pass each), built on the fly from the ranks.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from facexai import occlusion
from facexai.explain.base import check_images, model_device

MODES = ("deletion", "insertion")
BASELINES = ("blur", "mean")


def fractions(n_steps: int) -> np.ndarray:
    """The declared fractions 0, 1/n, ..., 1 (n_steps + 1 points)."""
    if not (isinstance(n_steps, int) and n_steps >= 1):
        raise ValueError(f"n_steps must be an int >= 1, got {n_steps!r}")
    return np.linspace(0.0, 1.0, n_steps + 1)


def map_ranks(maps: np.ndarray) -> np.ndarray:
    """Rank (N, H*W) of every pixel in its map's descending order (0 = most relevant; ties by flat index)."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3 or not np.isfinite(maps).all():
        raise ValueError(f"maps must be finite (N, H, W), got shape {maps.shape}")
    flat = maps.reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None].repeat(len(flat), 0), axis=1)
    return ranks


def random_ranks(n: int, size: Sequence[int], seed: int = 0) -> np.ndarray:
    """Uniformly random pixel ranks (n, H*W), image i from ``default_rng([seed, i])``."""
    n_pixels = int(size[0]) * int(size[1])
    return np.stack([np.random.default_rng([seed, i]).permutation(n_pixels) for i in range(n)])


def shifted_ranks(ranks: np.ndarray, size: Sequence[int], seed: int = 0) -> np.ndarray:
    """The ranks (N, H*W) cyclically shifted by a random offset per image, each axis in [S/4, 3S/4)."""
    height, width = int(size[0]), int(size[1])
    out = np.empty_like(ranks)
    for i, r in enumerate(ranks):
        rng = np.random.default_rng([seed, i, 1])
        dy, dx = rng.integers(height // 4, max(height // 4 + 1, 3 * height // 4)), \
            rng.integers(width // 4, max(width // 4 + 1, 3 * width // 4))
        out[i] = np.roll(r.reshape(height, width), (int(dy), int(dx)), axis=(0, 1)).ravel()
    return out


def orders(maps: Mapping[str, np.ndarray], seed: int = 0, random: bool = True) -> dict[str, np.ndarray]:
    """Pixel ranks of each map set {name: (N, H, W)}, its dispersion-matched control ``"<name> shifted"``,
    and (``random``) one ``"random"`` order shared by all."""
    out: dict[str, np.ndarray] = {}
    size = None
    for name, m in maps.items():
        ranks = map_ranks(m)
        size = m.shape[-2:]
        out[name] = ranks
        out[f"{name} shifted"] = shifted_ranks(ranks, size, seed)
    if random:
        if size is None:
            raise ValueError("no maps given: the random order needs the images' size")
        out["random"] = random_ranks(len(next(iter(maps.values()))), size, seed)
    return out


def baseline_images(images: torch.Tensor, kind: str = "blur",
                    blur_sigma: float = occlusion.DEFAULT_BLUR_SIGMA) -> torch.Tensor:
    """The image every pixel goes to (deletion) or comes from (insertion): blurred (occlusion's "blur"
    fill, sigma ``blur_sigma`` px) or each image's mean colour."""
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; valid: {list(BASELINES)}")
    if kind == "mean":
        return images.mean(dim=(-2, -1), keepdim=True).expand_as(images).clone()
    hwc = images.detach().permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)
    blurred = occlusion.fill(hwc, np.ones(hwc.shape[:-1], bool), "blur", blur_sigma=blur_sigma)
    return torch.from_numpy(blurred).permute(0, 3, 1, 2).to(images.device, images.dtype)


@torch.no_grad()
def curves(model: nn.Module, images: torch.Tensor, ranks: Mapping[str, np.ndarray], references: torch.Tensor, *,
           steps: np.ndarray, baseline: str | torch.Tensor = "blur", partners: Sequence[torch.Tensor] | None = None,
           threshold: float | None = None, modes: Sequence[str] = MODES, batch_size: int = 32,
           input_size: int | Sequence[int] | None = None, progress: bool = True) -> pd.DataFrame:
    """Deletion / insertion scores of every image at every fraction, for every order in ``ranks``.

    ``images`` (N, 3, H, W) in [0, 255]; ``ranks`` {order: (N, H*W)} (see :func:`orders`);
    ``references`` (N, D) each image's reference embedding; ``partners`` (optional) the clean
    embeddings (n_i, D) of each image's genuine partners, scored against ``threshold``. Returns a
    tidy table: image, mode, order, fraction, cosine, acceptance (NaN without partners).
    """
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"unknown modes {sorted(unknown)}; valid: {list(MODES)}")
    steps = np.asarray(steps, dtype=np.float64)
    if steps.ndim != 1 or len(steps) < 2 or steps.min() < 0 or steps.max() > 1 or (np.diff(steps) <= 0).any():
        raise ValueError(f"steps must be increasing fractions in [0, 1], got {steps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = model_device(model)
    images = check_images(images, input_size).to(device)
    n, _, height, width = images.shape
    n_pixels = height * width
    for name, r in ranks.items():
        if r.shape != (n, n_pixels):
            raise ValueError(f"ranks of {name!r} must be ({n}, {n_pixels}), got {r.shape}")
    if (partners is None) != (threshold is None):
        raise ValueError("give both partners and threshold, or neither")
    if partners is not None and len(partners) != n:
        raise ValueError(f"partners must list the partner embeddings of each of the {n} images")
    base = baseline_images(images, baseline) if isinstance(baseline, str) else baseline.to(device, images.dtype)
    refs = F.normalize(references.to(device, torch.float32), dim=-1)
    rank_t = {name: torch.as_tensor(r, device=device) for name, r in ranks.items()}
    counts = np.floor(steps * n_pixels + 0.5).astype(np.int64)  # pixels changed at each fraction
    jobs = [(mode, name, s, i) for mode in modes for name in ranks for s in range(len(steps)) for i in range(n)]
    scores = np.empty(len(jobs))
    accepted = np.full(len(jobs), np.nan)
    units = [F.normalize(p.to(device, torch.float32), dim=-1) for p in partners] if partners is not None else []
    for start in tqdm(range(0, len(jobs), batch_size), desc="deletion/insertion", disable=not progress):
        chunk = jobs[start:start + batch_size]
        idx = torch.tensor([i for *_, i in chunk], device=device)
        top = torch.stack([rank_t[name][i] < int(counts[s]) for _, name, s, i in chunk]).view(-1, 1, height, width)
        deleting = torch.tensor([mode == "deletion" for mode, *_ in chunk], device=device).view(-1, 1, 1, 1)
        take_base = top == deleting  # deletion: the top pixels become baseline; insertion: the others do
        batch = torch.where(take_base, base[idx], images[idx])
        emb = F.normalize(model(batch).float(), dim=-1)
        scores[start:start + len(chunk)] = (emb * refs[idx]).sum(-1).cpu().numpy()
        if partners is not None:
            for j, (*_, i) in enumerate(chunk):
                accepted[start + j] = float(((units[i] @ emb[j]) >= threshold).float().mean())
    return pd.DataFrame({"image": [i for *_, i in jobs], "mode": [m for m, *_ in jobs],
                         "order": [name for _, name, *_ in jobs], "fraction": [steps[s] for _, _, s, _ in jobs],
                         "cosine": scores, "acceptance": accepted})


def auc(table: pd.DataFrame, value: str = "cosine") -> pd.DataFrame:
    """Area under each image's curve by the trapezoid rule over the fraction: image, mode, order, auc."""
    rows = []
    for (image, mode, order), g in table.groupby(["image", "mode", "order"], sort=True):
        g = g.sort_values("fraction")
        rows.append({"image": image, "mode": mode, "order": order,
                     "auc": float(np.trapezoid(g[value].to_numpy(), g.fraction.to_numpy()))})
    return pd.DataFrame(rows)


def faithfulness_verdicts(aucs: pd.DataFrame, explainers: Sequence[str], model: str) -> pd.DataFrame:
    """Per explainer and mode: passes when its mean AUC beats both controls (random and dispersion-matched):
    lower for deletion, higher for insertion. Columns explainer, model, check, verdict, auc_map,
    auc_random, auc_shifted, n_images, rule."""
    mean = aucs.groupby(["mode", "order"]).auc.mean()
    n_images = aucs.image.nunique()
    rows = []
    for name in explainers:
        for mode in sorted(aucs["mode"].unique()):
            own, rand, shifted = mean[(mode, name)], mean[(mode, "random")], mean[(mode, f"{name} shifted")]
            better = (own < min(rand, shifted)) if mode == "deletion" else (own > max(rand, shifted))
            rule = ("passes when the map's mean AUC is below both the random and the dispersion-matched order's"
                    if mode == "deletion" else
                    "passes when the map's mean AUC is above both the random and the dispersion-matched order's")
            rows.append({"explainer": name, "model": model, "check": f"faithfulness ({mode})",
                         "verdict": "passes" if better else "fails", "auc_map": own, "auc_random": rand,
                         "auc_shifted": shifted, "n_images": n_images, "rule": rule})
    return pd.DataFrame(rows)
