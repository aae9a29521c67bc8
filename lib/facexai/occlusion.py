"""Occluding the most relevant pixels of aligned faces: masks, fills, cross-geometry maps, protocol.

Conventions: images are numpy ``(N, H, W, 3)`` (or one ``(H, W, 3)``) RGB, uint8 or float in
[0, 255], and fills return the same shape and dtype (turn them into model input with
:func:`facexai.embed.to_tensor`). Masks and saliency maps are ``(N, H, W)`` or ``(H, W)``.
"""
from __future__ import annotations

import hashlib
import logging
import math
import numbers
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from facexai.align import warp_between
from facexai.explain.topk import critical_mask

log = logging.getLogger(__name__)

__all__ = ["FILLS", "critical_mask", "random_mask", "dataset_mean_colour", "fill", "blur_kernel_size",
           "warp_mask_to", "split_generation_evaluation"]

FILLS = ("black", "white", "random", "mean", "blur")
DEFAULT_BLUR_SIGMA = 5.0  # px: removes detail below ~1/20 of a 112-160 px face crop


def random_mask(shape: Sequence[int], k: int, seed: int = 0) -> np.ndarray:
    """Boolean mask of ``shape`` (..., H, W) with exactly ``k`` uniformly random pixels per map (the baseline).

    Each map gets its own draw from one generator seeded with ``seed``; the same (shape, k, seed) gives
    the same mask. Use the critical mask's count, e.g. ``critical.sum((-2, -1))[0]``, for a fair baseline.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"shape must be (..., H, W), got {shape}")
    n = shape[-2] * shape[-1]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] for maps of {shape[-2]}x{shape[-1]}, got {k}")
    keys = np.random.default_rng(seed).random((math.prod(shape[:-2]), n))
    chosen = np.argpartition(keys, k - 1, axis=1)[:, :k]
    mask = np.zeros(keys.shape, dtype=bool)
    np.put_along_axis(mask, chosen, True, axis=1)
    return mask.reshape(shape)


def dataset_mean_colour(crops: np.ndarray) -> np.ndarray:
    """Mean RGB colour (3,) float64 of a stack of crops (..., H, W, 3), the "mean" fill's colour."""
    crops = np.asarray(crops)
    if crops.ndim < 3 or crops.shape[-1] != 3 or crops.size == 0:
        raise ValueError(f"expected a non-empty stack of RGB crops (..., H, W, 3), got {crops.shape}")
    return crops.reshape(-1, 3).mean(axis=0, dtype=np.float64)


def blur_kernel_size(sigma: float) -> int:
    """Side of the Gaussian kernel used by the "blur" fill: 2 * ceil(3 sigma) + 1 (covers +-3 sigma)."""
    return 2 * math.ceil(3 * sigma) + 1


def _fill_values(images: np.ndarray, kind: str, seed: int, mean_colour: np.ndarray | None,
                 blur_sigma: float) -> np.ndarray | float:
    """What the masked pixels become: a scalar or an array broadcastable to ``images`` (float, [0, 255])."""
    if kind == "black":
        return 0.0
    if kind == "white":
        return 255.0
    if kind == "random":
        return np.random.default_rng(seed).integers(0, 256, images.shape, dtype=np.uint8)
    if kind == "mean":
        if mean_colour is None:
            raise ValueError('fill kind "mean" needs mean_colour (see dataset_mean_colour)')
        colour = np.asarray(mean_colour, dtype=np.float64)
        if colour.shape != (3,):
            raise ValueError(f"mean_colour must be an RGB triple, got shape {colour.shape}")
        return colour
    if blur_sigma <= 0:
        raise ValueError(f"blur_sigma must be > 0, got {blur_sigma}")
    size = blur_kernel_size(blur_sigma)
    flat = images.reshape(-1, *images.shape[-3:]).astype(np.float32)
    blurred = [cv2.GaussianBlur(img, (size, size), blur_sigma, sigmaY=blur_sigma,
                                borderType=cv2.BORDER_REFLECT_101) for img in flat]
    return np.stack(blurred).reshape(images.shape)


def fill(images: np.ndarray, masks: np.ndarray, kind: str, seed: int = 0,
         mean_colour: np.ndarray | None = None, blur_sigma: float = DEFAULT_BLUR_SIGMA) -> np.ndarray:
    """Copy of ``images`` whose masked pixels are replaced; every unmasked pixel stays bit-identical.

    ``kind``: "black" (0), "white" (255), "random" (uniform integers 0..255 per pixel and channel,
    drawn for the whole stack from ``seed``, so a pixel's noise does not depend on the mask),
    "mean" (``mean_colour``, e.g. :func:`dataset_mean_colour` of the clean crops), "blur" (the same
    image blurred in float32 by ``cv2.GaussianBlur`` with ``blur_sigma`` px, kernel
    :func:`blur_kernel_size`, reflect-101 border). uint8 images get values rounded to nearest.
    ``masks`` is (N, H, W) or one (H, W) mask for all images. Holds a few copies of ``images`` in memory:
    pass large sets in batches.
    """
    if kind not in FILLS:
        raise ValueError(f"unknown fill kind {kind!r}; valid: {list(FILLS)}")
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a numpy (N, H, W, 3) array, got {type(images).__name__}")
    if images.ndim not in (3, 4) or images.shape[-1] != 3:
        raise ValueError(f"images must be (N, H, W, 3) or (H, W, 3) RGB, got {images.shape}")
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise ValueError(f"images must be uint8 or float in [0, 255], got {images.dtype}")
    masks = np.asarray(masks)
    if masks.dtype != bool:
        raise ValueError(f"masks must be boolean, got {masks.dtype}")
    try:
        masks = np.broadcast_to(masks, images.shape[:-1])
    except ValueError:
        raise ValueError(f"masks {masks.shape} do not fit images {images.shape} (need (N, H, W) or (H, W))") from None
    values = np.broadcast_to(_fill_values(images, kind, seed, mean_colour, blur_sigma), images.shape)
    values = values[masks]
    if images.dtype == np.uint8:
        values = np.clip(np.rint(values), 0, 255)
    out = images.copy()
    out[masks] = values.astype(images.dtype)
    return out


def _batch(matrix: np.ndarray, name: str) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape[-2:] != (2, 3) or matrix.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2x3 matrix or (N, 2, 3) matrices, got {matrix.shape}")
    return matrix.reshape(-1, 2, 3)


def warp_mask_to(saliency: np.ndarray, m_from: np.ndarray, m_to: np.ndarray, out_size: int) -> np.ndarray:
    """Saliency made in one crop geometry carried into another through the source image (float32).

    ``m_from`` / ``m_to`` are the 2x3 source->crop matrices of the map's geometry and of the target
    geometry (``AlignmentResult.matrices[geometry]``); pass (N, 2, 3) stacks to warp N maps, or one
    (H, W) map into N images. A PERSON map (mean over the generation images in the generation
    geometry) has no source image of its own: it is carried to each evaluation image with that
    image's own matrices, m_from = its matrix in the generation geometry, m_to = its matrix in the
    evaluation geometry, i.e. the map is read as lying on the evaluation face as it would be cropped
    in the generation geometry. Pixels with no source (outside the map's crop) get the map's minimum,
    so they are never preferred. Choose the top q% afterwards, in the target geometry, with
    :func:`critical_mask`.
    """
    maps = np.asarray(saliency, dtype=np.float32)
    if maps.ndim not in (2, 3):
        raise ValueError(f"saliency must be (H, W) or (N, H, W), got {maps.shape}")
    if not np.isfinite(maps).all():
        raise ValueError("saliency contains NaN or inf")
    single = maps.ndim == 2 and np.asarray(m_from).ndim == 2 and np.asarray(m_to).ndim == 2
    maps = maps.reshape(-1, *maps.shape[-2:])
    m_from, m_to = _batch(m_from, "m_from"), _batch(m_to, "m_to")
    n = max(len(maps), len(m_from), len(m_to))
    if any(len(a) not in (1, n) for a in (maps, m_from, m_to)):
        raise ValueError(f"counts of maps ({len(maps)}), m_from ({len(m_from)}) and m_to ({len(m_to)}) differ")
    out = np.empty((n, out_size, out_size), dtype=np.float32)
    for i in tqdm(range(n), desc="warp maps", unit="map", disable=n < 2000, leave=False):
        src = maps[i % len(maps)]
        out[i] = warp_between(src, m_from[i % len(m_from)], m_to[i % len(m_to)], out_size,
                              border_value=float(src.min()))
    return out[0] if single else out


def _person_rng(seed: int, person: str) -> np.random.Generator:
    """Generator of one person's split: depends on the seed and the name only, not on the other people."""
    return np.random.default_rng([seed, int.from_bytes(hashlib.sha256(person.encode()).digest()[:8], "little")])


def split_generation_evaluation(images_by_person: Mapping[str, Sequence[str]], n_eval: int | float,
                                seed: int = 0) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Per person, disjoint generation images (for the person map) and held-out evaluation images.

    ``n_eval``: an int is a count per person, a float in (0, 1) a fraction (rounded to nearest); either
    is clipped to [1, n - 1] so each person keeps at least one image of each kind (clipped people are
    logged). People with fewer than 2 distinct images are excluded and counted in the log. Each
    person's images are de-duplicated and sorted before a shuffle seeded by (seed, name), so the split
    is reproducible and independent of input order and of the other people. Lists come back sorted.
    """
    is_count = isinstance(n_eval, numbers.Integral) and not isinstance(n_eval, bool)
    if not (is_count and n_eval >= 1 or not is_count and isinstance(n_eval, numbers.Real) and 0 < n_eval < 1):
        raise ValueError(f"n_eval must be an int count >= 1 or a float fraction in (0, 1), got {n_eval!r}")
    gen: dict[str, list[str]] = {}
    held: dict[str, list[str]] = {}
    excluded = clipped = 0
    for person, images in images_by_person.items():
        unique = sorted({str(p) for p in images})
        if len(unique) < 2:
            excluded += 1
            continue
        wanted = int(n_eval) if is_count else round(float(n_eval) * len(unique))
        k = min(max(wanted, 1), len(unique) - 1)
        clipped += k != wanted
        order = _person_rng(seed, person).permutation(len(unique))
        held[person] = sorted(unique[i] for i in order[:k])
        gen[person] = sorted(unique[i] for i in order[k:])
    if excluded:
        log.warning("split: %d of %d people have fewer than 2 images and are excluded",
                    excluded, len(images_by_person))
    if clipped:
        log.info("split: %d people got a clipped number of evaluation images (n_eval=%s)", clipped, n_eval)
    return gen, held
