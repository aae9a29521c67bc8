"""Critical regions of a saliency map: its top q% pixels (shared by explainers and occlusion)."""
from __future__ import annotations

import math

import numpy as np
import torch


def top_k(q: float, n_pixels: int) -> int:
    """How many pixels the top ``q`` percent of ``n_pixels`` is: round half up, at least 1."""
    return max(1, math.floor(q * n_pixels / 100 + 0.5))


def critical_mask(saliency: np.ndarray | torch.Tensor, q: float = 1.0) -> np.ndarray:
    """Boolean mask of the top ``q`` percent pixels of each map (..., H, W).

    k = round(q * H * W / 100) pixels per map (halves round up; at least 1), computed as
    ``q * n / 100`` so whole percentages are exact. Ties are broken deterministically by flat
    pixel index (row-major): among equal values the lower index is kept.
    """
    if not 0 < q <= 100:
        raise ValueError(f"q is a percentage in (0, 100], got {q}")
    arr = saliency.detach().cpu().numpy() if isinstance(saliency, torch.Tensor) else np.asarray(saliency)
    if arr.ndim < 2:
        raise ValueError(f"saliency must have shape (..., H, W), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("saliency contains NaN or inf")
    flat = arr.reshape(-1, arr.shape[-2] * arr.shape[-1]).astype(np.float64)
    k = top_k(q, flat.shape[1])
    order = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    mask = np.zeros(flat.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask.reshape(arr.shape)
