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
    flat = arr.reshape(-1, arr.shape[-2] * arr.shape[-1])
    flat = flat.astype(np.promote_types(flat.dtype, np.float32), copy=False)  # exact; float16 partitions slowly
    k = top_k(q, flat.shape[1])
    return _top_k_mask(flat, k).reshape(arr.shape)


def _top_k_mask(flat: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` largest values, ties at the k-th value taken by lowest index: the first ``k`` of a
    stable descending sort, found by one partition instead of a sort (about 5x faster on 160 x 160 maps)."""
    kth = np.partition(flat, flat.shape[1] - k, axis=1)[:, flat.shape[1] - k, None]
    above = flat > kth
    tied = flat == kth
    room = k - above.sum(1, keepdims=True)  # how many of the tied values fit, in index order
    return above | (tied & (np.cumsum(tied, axis=1) <= room))
