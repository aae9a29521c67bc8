"""Critical regions of a saliency map: its top q% pixels (shared by explainers and occlusion)."""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

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
    return next(critical_masks(saliency, [q]))


def critical_masks(saliency: np.ndarray | torch.Tensor, qs: Sequence[float]) -> Iterator[np.ndarray]:
    """:func:`critical_mask` of each q of ``qs`` in turn. Every q's k-th largest value comes from one sort
    of each map (numpy's SIMD sort costs less than even one partition), then each mask is that value's
    excess plus its first ties."""
    bad = [q for q in qs if not 0 < q <= 100]
    if bad:
        raise ValueError(f"q is a percentage in (0, 100], got {bad[0]}")
    arr = saliency.detach().cpu().numpy() if isinstance(saliency, torch.Tensor) else np.asarray(saliency)
    if arr.ndim < 2:
        raise ValueError(f"saliency must have shape (..., H, W), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("saliency contains NaN or inf")
    flat = arr.reshape(-1, arr.shape[-2] * arr.shape[-1])
    n = flat.shape[1]
    ks = [top_k(q, n) for q in qs]
    kths = np.sort(flat, axis=1)[:, [n - k for k in ks]]
    for k, kth in zip(ks, kths.T):
        yield _k_largest(flat, k, kth[:, None]).reshape(arr.shape)


def _k_largest(flat: np.ndarray, k: int, kth: np.ndarray) -> np.ndarray:
    """Mask of the k largest values of each row of ``flat`` (N, P) given each row's k-th largest ``kth``
    (N, 1): every value above it, then its ties in row-major order (only rows where not all ties fit)."""
    above = flat > kth
    tied = flat == kth
    room = k - above.sum(axis=1)
    cut = np.flatnonzero(tied.sum(axis=1) > room)
    row, col = np.nonzero(tied[cut])  # row-major: each row's ties in flat-index order
    rank = np.arange(len(row)) - np.searchsorted(row, row)  # a tie's place among its row's ties
    late = rank >= room[cut][row]
    tied[cut[row[late]], col[late]] = False
    return above | tied
