"""Control masks for occlusion: what the critical pixels are compared with, beyond uniform random pixels.

Uniform random pixels are scattered, while a map's top q% pixels form a few blobs, and scattered
pixels and blobs hurt a model differently; "critical beats random" then mixes WHERE the pixels are
with HOW they are dispersed. These controls hold one of the two fixed:

- :func:`shifted_masks`: the critical mask itself moved to a random position (same shape, layout
  and pixel count; only the location changes);
- :func:`component_masks`: each connected component of the critical mask moved to its own random
  position, components never touching (same pixel count and component sizes, random layout);
- :func:`region_random_masks`: uniformly random pixels, but inside the face region only (same
  pixel count; the location is restricted to the face, the dispersion is that of uniform pixels).

Masks are boolean (N, H, W); mask i is drawn from ``numpy.random.default_rng([seed, i])``.
"""
from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage, signal

log = logging.getLogger(__name__)

EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity: diagonal neighbours belong to one component


def _check_masks(masks: np.ndarray) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.dtype != bool or masks.ndim != 3:
        raise ValueError(f"masks must be boolean (N, H, W), got {masks.dtype} {masks.shape}")
    if not masks.any(axis=(1, 2)).all():
        raise ValueError("every mask needs at least one pixel")
    return masks


def component_sizes(mask: np.ndarray) -> list[int]:
    """Sizes of the 8-connected components of one (H, W) mask, largest first."""
    labels, n = ndimage.label(np.asarray(mask, dtype=bool), structure=EIGHT)
    return sorted(np.bincount(labels.ravel())[1:].tolist(), reverse=True) if n else []


def shifted_masks(masks: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each mask translated by a random non-zero offset, drawn uniformly among those keeping it inside the crop."""
    masks = _check_masks(masks)
    height, width = masks.shape[1:]
    out = np.zeros_like(masks)
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        dys = np.arange(-rows[0], height - rows[-1])
        dxs = np.arange(-cols[0], width - cols[-1])
        if len(dys) * len(dxs) < 2:
            raise ValueError(f"mask {i} spans the whole crop and cannot be moved")
        rng = np.random.default_rng([seed, i])
        while True:
            dy, dx = int(rng.choice(dys)), int(rng.choice(dxs))
            if dy or dx:
                break
        out[i, rows[0] + dy:rows[-1] + 1 + dy, cols[0] + dx:cols[-1] + 1 + dx] = \
            mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return out


def component_masks(masks: np.ndarray, seed: int = 0) -> np.ndarray:
    """Each mask's 8-connected components placed, largest first, at independent uniformly random
    positions where they neither overlap nor touch an earlier one (so the component sizes are kept)."""
    masks = _check_masks(masks)
    out = np.zeros_like(masks)
    for i, mask in enumerate(masks):
        labels, n = ndimage.label(mask, structure=EIGHT)
        boxes = ndimage.find_objects(labels)
        patches = sorted((labels[box] == c + 1 for c, box in enumerate(boxes)), key=lambda p: -int(p.sum()))
        rng = np.random.default_rng([seed, i])
        for patch in patches:
            blocked = ndimage.binary_dilation(out[i], structure=EIGHT).astype(np.float32)
            conflicts = signal.correlate(blocked, patch.astype(np.float32), mode="valid")
            free = np.argwhere(conflicts < 0.5)  # float correlation: 0 conflicts, up to rounding
            if not len(free):
                raise ValueError(f"mask {i}: no free place for a component of {int(patch.sum())} pixels "
                                 f"among {n} components (the mask is too large to rearrange)")
            r, c = free[rng.integers(len(free))]
            out[i, r:r + patch.shape[0], c:c + patch.shape[1]] |= patch
    return out


def face_regions(labels: np.ndarray, ok: np.ndarray, other: int = 0) -> tuple[np.ndarray, int]:
    """Face region (N, H, W) = pixels a face parser labels as any face class (not ``other``), and how many
    images fell back to the whole crop because their parse failed (``ok`` False) or found no face pixel."""
    labels, ok = np.asarray(labels), np.asarray(ok, dtype=bool)
    if labels.ndim != 3 or ok.shape != labels.shape[:1]:
        raise ValueError(f"labels must be (N, H, W) with one ok flag each, got {labels.shape} and {ok.shape}")
    regions = labels != other
    failed = ~ok | ~regions.any(axis=(1, 2))
    regions[failed] = True
    if failed.any():
        log.warning("%d of %d images have no parsed face region: their face-region control uses the whole crop",
                    int(failed.sum()), len(labels))
    return regions, int(failed.sum())


def region_random_masks(regions: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Exactly ``k`` uniformly random pixels inside each region (N, H, W) (ValueError if a region is smaller)."""
    regions = np.asarray(regions, dtype=bool)
    if regions.ndim != 3:
        raise ValueError(f"regions must be (N, H, W), got {regions.shape}")
    sizes = regions.sum(axis=(1, 2))
    if k < 1 or (sizes < k).any():
        raise ValueError(f"k = {k} pixels do not fit: the smallest region has {int(sizes.min())} pixels")
    out = np.zeros_like(regions)
    for i, region in enumerate(regions):
        inside = np.flatnonzero(region.ravel())
        chosen = np.random.default_rng([seed, i]).choice(inside, size=k, replace=False)
        out[i].ravel()[chosen] = True
    return out
