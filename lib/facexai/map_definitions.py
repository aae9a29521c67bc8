"""Definitions of "the map" that a Bhattacharyya comparison can use (notebook 10's BC arm).

From per-image, per-layer maps (each summing to 1, :class:`facexai.saliency.MapSet`): layer
AGGREGATION (:func:`aggregate`), SHARPENING (:func:`sharpen`) and map LEVEL (image maps, or person
maps of two disjoint halves of each person's images, :func:`half_person_maps`). Every result is a
non-negative map per image or person that :func:`facexai.metrics.pair_bhattacharyya` compares.
Beside the spatial maps, the REPRESENTATION can be a channel-level activation pattern
(:mod:`facexai.channel_patterns`: a distribution over each layer's channels), compared the same way
(:func:`channel_bc_cells`).
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from facexai import cache, channel_patterns, saliency
from facexai.bhattacharyya import sample_pairs
from facexai.explain.topk import critical_mask, critical_masks
from facexai.models.registry import FaceModel
from facexai.profiles import Config
from facexai.protocol import Cell, Grid, cell, definition

AGGREGATIONS = ("sum1_mean", "minmax_mean", "max")  # plus "layer<index>" (one named layer, e.g. layer-1)
SPATIAL, CHANNEL = "spatial", "channel_"  # representations: the maps, or channel_<statistic> patterns
CHUNK = 64  # images aggregated at a time


def minmax(maps: np.ndarray) -> np.ndarray:
    """Each map (..., H, W) scaled to [0, 1] (a constant map becomes 0)."""
    lo = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - lo
    out = maps - lo  # a constant map is 0 here already
    return np.divide(out, span, out=out, where=span > 0)


def aggregate(maps: np.ndarray, how: str) -> np.ndarray:
    """Per-layer maps [N, layer, H, W] -> one map per image [N, H, W] (float32).

    ``sum1_mean``: mean of the sum-1 layer maps (the study's "overall" map); ``minmax_mean``: mean of
    the min-max scaled layer maps; ``max``: pixel-wise max of the min-max scaled maps;
    ``layer<i>``: layer i alone (Python index: ``layer-1`` is the last named layer).
    """
    if np.ndim(maps) != 4:
        raise ValueError(f"maps must be [N, layer, H, W], got {np.shape(maps)}")
    found = re.fullmatch(r"layer(-?\d+)", how)
    if found:
        i = int(found.group(1))
        if not -maps.shape[1] <= i < maps.shape[1]:
            raise ValueError(f"{how}: the maps have {maps.shape[1]} layers")
        return np.asarray(maps[:, i], dtype=np.float32)
    if len(maps) > CHUNK:  # float16 caches stay float16; float32 copies of one chunk at a time
        return np.concatenate([aggregate(maps[s:s + CHUNK], how) for s in range(0, len(maps), CHUNK)])
    maps = np.asarray(maps, dtype=np.float32)
    if how == "sum1_mean":
        return maps.mean(axis=1)
    if how == "minmax_mean":
        return minmax(maps).mean(axis=1)
    if how == "max":
        return minmax(maps).max(axis=1)
    raise ValueError(f"unknown aggregation {how!r}; valid: {list(AGGREGATIONS)} or layer<i>")


def sharpen(maps: np.ndarray, how: str) -> np.ndarray:
    """Maps [N, H, W] sharpened: ``none``; ``top<K>`` the top K% pixels as a binary mask (bool,
    :func:`facexai.explain.topk.critical_mask`, the study's top-q definition); ``power<P>`` map**P."""
    maps = np.asarray(maps, dtype=np.float32)
    kind, value = sharpening_kind(how)
    if kind == "none":
        return maps
    if kind == "top":
        return critical_mask(maps, value)
    scaled = maps / maps.max(axis=(-2, -1), keepdims=True).clip(min=np.finfo(np.float32).tiny)
    return np.power(scaled, value, out=scaled)  # scaled first so high powers do not underflow float32


def sharpening_kind(how: str) -> tuple[str, float]:
    """``none`` / ``top<K>`` / ``power<P>`` as ("none", 0) / ("top", K) / ("power", P); ValueError for anything else."""
    if how == "none":
        return "none", 0.0
    found = re.fullmatch(r"(top|power)(\d+(?:\.\d+)?)", how)
    if not found:
        raise ValueError(f"unknown sharpening {how!r}; valid: none, top<K>, power<P>")
    return found.group(1), float(found.group(2))


def sharpened(maps: np.ndarray, sharpening: Sequence[str]) -> Iterator[tuple[str, np.ndarray]]:
    """(how, :func:`sharpen` (maps, how)) for each of ``sharpening`` in turn, every top<K> mask from one
    sort of the maps (:func:`facexai.explain.topk.critical_masks`; none when no top<K> is asked for)."""
    tops = {how: value for how in sharpening for kind, value in [sharpening_kind(how)] if kind == "top"}
    masks = critical_masks(np.asarray(maps, dtype=np.float32), list(tops.values()))
    for how in sharpening:
        yield how, next(masks) if how in tops else sharpen(maps, how)


def unit_roots(maps: np.ndarray) -> np.ndarray:
    """sqrt of each map (N, H, W) scaled to sum 1, flattened to (N, H * W) float32: BC(a, b) = roots[a] . roots[b]."""
    flat = np.asarray(maps, dtype=np.float32).reshape(len(maps), -1)
    total = flat.sum(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    if not (flat.min(initial=0.0) >= 0 and np.isfinite(total).all()):  # a NaN fails the first, an inf the second
        raise ValueError("maps must be finite and non-negative")
    if (total == 0).any():
        raise ValueError("a map sums to zero")
    roots = np.divide(flat, total)
    return np.sqrt(roots, out=roots)


DENSE = 8  # one Gram of the pairs' rows when it has at most this many entries per pair (person level: every pair)
PAIR_CHUNK = 32  # pairs dotted at a time otherwise: two gathers of 32 maps (6.6 MB at 160 x 160) stay in cache
GRAM_BLOCK = 256  # columns of a Gram summed in float32 at a time, the blocks' sums in float64


def pair_bc(roots: np.ndarray, pairs: np.ndarray, chunk: int = PAIR_CHUNK) -> np.ndarray:
    """BC of each row pair (n, 2) from :func:`unit_roots` (as :func:`facexai.metrics.pair_bhattacharyya`):
    one Gram of the pairs' first rows x second rows when the pairs fill most of it (:data:`DENSE`), else
    the pairs' own dot products in float64, ``chunk`` at a time (image level: a Gram of every map would be
    N^2 / n times the work); rounding capped at 1. By numpy's own loops (einsum), not BLAS: OpenBLAS's
    threads make these small products 10-100x slower while other jobs hold the cores."""
    firsts, i = np.unique(pairs[:, 0], return_inverse=True)
    seconds, j = np.unique(pairs[:, 1], return_inverse=True)
    if len(firsts) * len(seconds) <= DENSE * len(pairs):
        return np.minimum(gram(roots[firsts], roots[seconds])[i, j], 1.0)
    values = [np.einsum("ij,ij->i", roots[pairs[s:s + chunk, 0]], roots[pairs[s:s + chunk, 1]], dtype=np.float64)
              for s in range(0, len(pairs), chunk)]
    return np.minimum(np.concatenate(values), 1.0)


def gram(a: np.ndarray, b: np.ndarray, block: int = GRAM_BLOCK) -> np.ndarray:
    """``a @ b.T`` (float64) from float32 rows: float32 einsum over :data:`GRAM_BLOCK` columns at a time,
    summed in float64 (as exact as a float64 product at the cost of a float32 one)."""
    out = np.zeros((len(a), len(b)))
    for s in range(0, a.shape[1], block):
        out += np.einsum("ik,jk->ij", a[:, s:s + block], b[:, s:s + block])
    return out


MASK_CHUNK = 16_384  # mask pairs counted at a time (two gathers of 16,384 packed masks: about 50 MB at 112 x 112)


def mask_bc(masks: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """BC of each row pair (n, 2) of binary masks (N, ...): of the uniform distributions on masks A and B,
    |A & B| / sqrt(|A| |B|), exact from bit counts of the packed masks (32x fewer bytes to read than
    float32 maps); ValueError for an empty mask."""
    flat = np.asarray(masks, dtype=bool).reshape(len(masks), -1)
    sizes = flat.sum(axis=1)
    if (sizes == 0).any():
        raise ValueError("a map sums to zero")
    width = -flat.shape[1] % 64  # pad to whole 64-bit words
    words = np.packbits(np.pad(flat, ((0, 0), (0, width))), axis=1).view(np.uint64)
    common = np.empty(len(pairs), dtype=np.int64)
    for s in range(0, len(pairs), MASK_CHUNK):
        a, b = pairs[s:s + MASK_CHUNK, 0], pairs[s:s + MASK_CHUNK, 1]
        common[s:s + MASK_CHUNK] = np.bitwise_count(words[a] & words[b]).sum(axis=1, dtype=np.int64)
    return common / np.sqrt(sizes[pairs[:, 0]] * sizes[pairs[:, 1]].astype(np.float64))


def map_bc(maps: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """BC of each row pair (n, 2) of non-negative maps (N, ...): binary (bool) masks by :func:`mask_bc`,
    any other map by :func:`pair_bc` of its :func:`unit_roots`. Pass every pair set of one map stack at
    once (concatenated): a person level's same and different pairs then fill one Gram, not two."""
    maps = np.asarray(maps)
    return mask_bc(maps, pairs) if maps.dtype == bool else pair_bc(unit_roots(maps), pairs)


def half_split(identities: np.ndarray, seed: int = 0) -> np.ndarray:
    """Half label (0 / 1) per row: each person's rows shuffled (seeded) and dealt alternately, so the
    two halves of a person differ in size by at most one. People with one image get half 0 only."""
    identities = np.asarray(identities)
    half = np.zeros(len(identities), dtype=np.int8)
    rng = np.random.default_rng(seed)
    for who in sorted(set(identities.tolist())):
        rows = np.flatnonzero(identities == who)
        half[rng.permutation(rows)[1::2]] = 1
    return half


def half_person_maps(maps: np.ndarray, identities: np.ndarray, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Each person's two half maps [person, 2, H, W] (the mean of each half's sum-1 maps, renormalised)
    for people with >= 2 images, and those people's names."""
    identities = np.asarray(identities)
    half = half_split(identities, seed)
    unit = maps / maps.sum(axis=(-2, -1), keepdims=True).clip(min=np.finfo(np.float32).tiny)
    people = [w for w in sorted(set(identities.tolist())) if (identities == w).sum() >= 2]
    out = np.stack([[unit[(identities == w) & (half == h)].mean(0) for h in (0, 1)] for w in people])
    return people, out / out.sum(axis=(-2, -1), keepdims=True)


PERSON_PAIRS_MAX = 20_000  # different-people pairs of the person level: all up to this many, else a seeded sample


def person_pairs(n_people: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs into a flattened [person * 2] half-map stack: same (p0, p1) and different (p0, q1), q != p.

    Every ordered different pair while there are at most :data:`PERSON_PAIRS_MAX` (60 people: 3,540);
    beyond, that many drawn without replacement (seeded), so 1,000 people's 999,000 pairs do not make
    the bootstrap hold a 1,000 x 999,000 resampling table (8 GB)."""
    same = np.stack([2 * np.arange(n_people), 2 * np.arange(n_people) + 1], axis=1)
    n_different = n_people * (n_people - 1)
    if n_different <= PERSON_PAIRS_MAX:
        index = np.arange(n_different)
    else:
        index = np.sort(np.random.default_rng(seed).choice(n_different, PERSON_PAIRS_MAX, replace=False))
    p, r = np.divmod(index, max(n_people - 1, 1))
    q = r + (r >= p)  # the r-th person other than p
    return same, np.stack([2 * p, 2 * q + 1], axis=1)


def level_stack(agg: np.ndarray, identities: np.ndarray, level: str, image_pairs: tuple[np.ndarray, np.ndarray],
                seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a BC cell of ``level`` compares: (stack of maps or half maps, same pairs, different pairs) into it.

    ``agg`` (N, ..., W) has one row per image; image level keeps it with ``image_pairs``; person level
    gives each person's two half maps (:func:`half_person_maps`) with :func:`person_pairs`."""
    if level == "image":
        return agg, *image_pairs
    if level == "person":
        people, halves = half_person_maps(agg, identities, seed)
        return halves.reshape(-1, *halves.shape[2:]), *person_pairs(len(people), seed)
    raise ValueError(f"unknown level {level!r}; valid: image, person")


BC_VERSION = 2  # of the BC values' definitions (part of their cache key)
SIDES = ("same", "different")


def value_key(level: str, sharpening: str, side: str) -> str:
    """The name of one BC value array of :func:`aggregation_bcs` (and of its cache file's member)."""
    return f"{level} {sharpening} {side}"


def aggregation_bcs(maps: np.ndarray, identities: np.ndarray, how: str, levels: Sequence[str],
                    sharpening: Sequence[str], image_pairs: tuple[np.ndarray, np.ndarray], seed: int = 0
                    ) -> dict[str, np.ndarray]:
    """The BC values of one layer aggregation: ``{value_key(level, sharpening, same|different): values}``."""
    agg = aggregate(maps, how)
    out = {}
    for level in levels:
        stack, same, diff = level_stack(agg, identities, level, image_pairs, seed)
        for sh, sharp in sharpened(stack, sharpening):
            values = map_bc(sharp, np.concatenate([same, diff]))
            out[value_key(level, sh, "same")] = values[:len(same)]
            out[value_key(level, sh, "different")] = values[len(same):]
    return out


def bc_cells(maps: np.ndarray, identities: np.ndarray, model: str, levels: Sequence[str],
             aggregations: Sequence[str], sharpening: Sequence[str], variant: Mapping[str, object],
             seed: int = 0, cache_folder: Path | None = None) -> list[Cell]:
    """BC same person / different people cells of every level x aggregation x sharpening of one map set.

    ``maps`` [N, layer, H, W] of images grouped by ``identities``; the aggregation ``"layers"``
    expands to every layer alone (``layer-1`` = last). Image level: the pairs of notebook 05
    (:func:`facexai.bhattacharyya.sample_pairs`: every same-person pair, as many different-people pairs);
    person level: each person's two half maps (same) and every half of one person with the other
    half of another (different). ``variant`` (target, antialias, representation) labels the definitions.
    With ``cache_folder`` (one per map set), each aggregation's values are cached there, so a killed run
    resumes aggregation by aggregation. Aggregations run on the process's torch threads at once (numpy
    releases the GIL in its sorts and loops), each on one core, in a fixed order of results.
    """
    identities = np.asarray(identities)
    expanded = [a for how in aggregations
                for a in ([f"layer{i - maps.shape[1]}" for i in range(maps.shape[1])] if how == "layers" else [how])]
    image_pairs = sample_pairs(identities, seed)
    keys = [value_key(level, sh, side) for level in levels for sh in sharpening for side in SIDES]

    def values_of(how: str) -> dict[str, np.ndarray]:
        path = None if cache_folder is None else Path(cache_folder) / (
            cache.key("bc", BC_VERSION, how, list(levels), list(sharpening), seed, PERSON_PAIRS_MAX) + ".npz")
        values = None if path is None else cache.read_npz(path, keys)  # a file without every key: recomputed
        if values is None:
            values = aggregation_bcs(maps, identities, how, levels, sharpening, image_pairs, seed)
            if path is not None:
                cache.save_npz(path, **values)
        return values

    out = []
    with ThreadPoolExecutor(max_workers=torch.get_num_threads()) as pool:
        done = tqdm(pool.map(values_of, expanded), total=len(expanded), desc=f"BC cells {model}", unit="aggregation")
        for how, values in zip(expanded, done):
            for level in levels:
                for sh in sharpening:
                    d = definition(level=level, aggregation=how, sharpening=sh, **variant)
                    out += [cell(f"bc_{side}", d, model, (1.0, values[value_key(level, sh, side)])) for side in SIDES]
    return out


CHANNEL_AGGREGATIONS = ("sum1_mean", "layers")


def channel_bc_cells(layer_patterns: Sequence[np.ndarray], identities: np.ndarray, model: str,
                     levels: Sequence[str], aggregations: Sequence[str], sharpening: Sequence[str],
                     variant: Mapping[str, object], seed: int = 0) -> list[Cell]:
    """BC cells of channel patterns (:mod:`facexai.channel_patterns`), the pairs and levels of :func:`bc_cells`.

    ``layer_patterns``: per layer (N, C_l), each row a distribution over the layer's channels. Sharpening
    acts within each layer's channels (topK: the top K% channels as a binary mask). Aggregations:
    ``layers`` = every layer alone (``layer-1`` = last); ``sum1_mean`` = the mean over layers of the
    per-layer BC, which is the BC of the layers' patterns concatenated with weight 1/L each (patterns
    of different lengths have no pixel-wise min-max mean or max)."""
    unknown = set(aggregations) - set(CHANNEL_AGGREGATIONS)
    if unknown:
        raise ValueError(f"unknown channel aggregations {sorted(unknown)}; valid: {list(CHANNEL_AGGREGATIONS)}")
    identities = np.asarray(identities)
    n_layers = len(layer_patterns)
    image_pairs = sample_pairs(identities, seed)
    out = []
    for level in levels:
        for sh in sharpening:
            same, diff = [], []
            for patterns in layer_patterns:  # (N, C) as (N, 1, C): one row of "pixels" per image
                stack, s_pairs, d_pairs = level_stack(np.asarray(patterns, np.float32)[:, None, :], identities,
                                                      level, image_pairs, seed)
                values = map_bc(sharpen(stack, sh), np.concatenate([s_pairs, d_pairs]))
                same.append(values[:len(s_pairs)])
                diff.append(values[len(s_pairs):])
            chosen = [(how, None) for how in aggregations if how != "layers"]
            chosen += [(f"layer{i - n_layers}", i) for i in range(n_layers)] if "layers" in aggregations else []
            for how, i in chosen:
                d = definition(level=level, aggregation=how, sharpening=sh, **variant)
                s_val = np.mean(same, axis=0) if i is None else same[i]
                d_val = np.mean(diff, axis=0) if i is None else diff[i]
                out.append(cell("bc_same", d, model, (1.0, s_val)))
                out.append(cell("bc_different", d, model, (1.0, d_val)))
    return out


def model_bc_cells(cfg: Config, model: FaceModel, images: pd.DataFrame, grid: Grid, variants: bool) -> list[Cell]:
    """Every spatial BC cell of one model: its LEAM maps (notebook 03's cache) under each declared definition
    and, with ``variants``, every map variant of ``grid.bc_variants``, all on the same whole individuals up to
    ``grid.variant_max_images`` images (the default variant's maps read in full, then that subset kept)."""
    out = []
    subset = grid.variant_max_images if variants else 0
    for target, antialias in grid.bc_variants if variants else [("cosine", False)]:
        default = (target, antialias) == ("cosine", False)
        ms = saliency.image_maps(cfg, model, images, target=target, antialias=antialias,
                                 max_images=0 if default else subset)
        rows = saliency.select_rows(ms.images, subset, seed=cfg.seed) if default else np.arange(len(ms.images))
        label = {"target": target, "antialias": "yes" if antialias else "no", "representation": SPATIAL}
        ids = ms.images.identity.to_numpy()[rows]
        folder = cfg.cache_root / "bc_cells" / model.spec.name / f"{ms.cache_name}-{cache.key(rows.tolist(), ids.tolist())}"
        out += bc_cells(ms.maps[rows], ids, model.spec.name, grid.bc_levels,
                        grid.bc_aggregations, grid.bc_sharpening, label, cfg.seed, folder)
    return out


def model_channel_cells(cfg: Config, model: FaceModel, images: pd.DataFrame, grid: Grid) -> list[Cell]:
    """The channel-level BC cells of one model (``channel_<statistic>`` of ``grid.bc_representations``): its
    channel patterns under the cosine target (one forward + backward pass per image, every layer and
    statistic at once, cached) on the images of its map variants (whole individuals up to
    ``grid.variant_max_images``, the same seeded choice), every level x channel aggregation x sharpening."""
    statistics = [r.removeprefix(CHANNEL) for r in grid.bc_representations if r.startswith(CHANNEL)]
    if not statistics:
        return []
    cp = channel_patterns.channel_patterns(cfg, model, images, statistics=statistics, target="cosine",
                                           max_images=grid.variant_max_images)
    out = []
    for statistic in statistics:
        label = {"target": "cosine", "antialias": "no", "representation": CHANNEL + statistic}
        out += channel_bc_cells(cp.layer_patterns(statistic), cp.images.identity.to_numpy(), model.spec.name,
                                grid.bc_levels, grid.channel_aggregations, grid.bc_sharpening, label, cfg.seed)
    return out
