"""Channel-level activation patterns: per image and layer, a distribution over the layer's channels.

The BC claim of the LEAM work compares *maps* (distributions over pixels); a layer's activations
can also be read per channel. For every hooked layer with activation A (C, h, w) and gradient
G = dS/dA of the explanation target S, a pattern is one non-negative value per channel, scaled to
sum 1 over the layer's channels:

- ``activation``: the spatial mean of |A_c|;
- ``grad_x_activation``: the spatial mean of |A_c * G_c| (the channel's share of the first-order
  contribution, the quantity LEAM's map sums over channels instead).

Both come from the one forward and one backward pass of the CAM machinery
(:meth:`facexai.explain.BaseCAM.activations_and_gradients`), every layer at once, and are cached in
shards under the :func:`facexai.cache.key` scheme and sharded by :mod:`facexai.executor`, like the
maps (:mod:`facexai.saliency`).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from facexai import align, cache, embed, executor, techniques
from facexai.explain import LEAM
from facexai.explain.targets import Target
from facexai.models.registry import FaceModel
from facexai.profiles import Config
from facexai.saliency import SHARD, explained_inputs, select_rows

log = logging.getLogger(__name__)

#: statistic name -> (A, G) (N, C, h, w) -> (N, C) non-negative per-channel values
STATISTICS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "activation": lambda a, g: a.abs().mean(dim=(2, 3)),
    "grad_x_activation": lambda a, g: (a * g).abs().mean(dim=(2, 3)),
}
VERSION = 1  # of the statistics' definitions (part of the cache key)


def normalise_channels(values: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Per-row (N, C) non-negative values scaled to sum 1; an all-zero row becomes uniform (counted, logged)."""
    if not torch.isfinite(values).all() or (values < 0).any():
        raise FloatingPointError("channel values must be finite and non-negative")
    sums = values.sum(dim=1, keepdim=True)
    zero = sums <= 0
    n_zero = int(zero.sum())
    if n_zero:
        log.warning("%d all-zero channel pattern(s) replaced by uniform ones", n_zero)
    uniform = torch.full_like(values, 1.0 / values.shape[1])
    return torch.where(zero, uniform, values / sums.clamp_min(torch.finfo(values.dtype).tiny)), n_zero


def channel_statistics(acts: Sequence[torch.Tensor], grads: Sequence[torch.Tensor],
                       statistics: Sequence[str]) -> torch.Tensor:
    """Patterns (N, statistic, sum of the layers' channels) of one pass: for each statistic, every layer's
    per-channel values scaled to sum 1 within the layer, layers concatenated in order."""
    unknown = [s for s in statistics if s not in STATISTICS]
    if unknown:
        raise ValueError(f"unknown channel statistics {unknown}; valid: {list(STATISTICS)}")
    planes = []
    for name in statistics:
        per_layer = [normalise_channels(STATISTICS[name](a, g).double())[0] for a, g in zip(acts, grads)]
        planes.append(torch.cat(per_layer, dim=1))
    return torch.stack(planes, dim=1).float()


@dataclass
class ChannelPatterns:
    """Patterns [image, statistic, channel] (float32) of ``images``; layer j owns ``slice(j)`` of the channels."""

    model: str
    layers: list[str]
    channels: list[int]  # channels per layer, in order
    statistics: list[str]
    images: pd.DataFrame  # identity, path: one row per pattern, grouped by identity
    patterns: np.ndarray

    def slice(self, j: int) -> slice:
        """The channel columns of layer ``j`` (Python index)."""
        j = range(len(self.layers))[j]
        start = int(np.sum(self.channels[:j]))
        return slice(start, start + self.channels[j])

    def layer_patterns(self, statistic: str) -> list[np.ndarray]:
        """Each layer's patterns (N, C_l) of one statistic, each row summing to 1."""
        plane = self.patterns[:, self.statistics.index(statistic)]
        return [plane[:, self.slice(j)] for j in range(len(self.layers))]


def channel_patterns(cfg: Config, model: FaceModel, images: pd.DataFrame, *, statistics: Sequence[str],
                     target: str = "cosine", max_images: int | None = None, batch_size: int = 16) -> ChannelPatterns:
    """Patterns of every named layer of ``model`` for the images (whole individuals up to ``max_images``,
    seeded as :func:`facexai.saliency.select_rows`; 0: all), the target of :func:`facexai.saliency.image_maps`
    (each image's reference among its person's images in ``images``; other settings from the method table)."""
    settings = techniques.get("leam").settings(None, target=target)
    images, crops, keys, tgt = explained_inputs(cfg, model, images, settings)
    rows = select_rows(images, max_images or None, None, cfg.seed)
    names = list(model.layers)
    params = dict(what="channel patterns", version=VERSION, statistics=list(statistics), target=settings.target,
                  reference=settings.reference, margin=settings.margin, model=model.spec.name,
                  weights=model.fingerprint, layers=names)
    subset = keys if len(rows) == len(keys) else [keys, rows.tolist()]
    folder = cfg.cache_root / "channels" / model.spec.name / f"{cache.key(params)}-{cache.key(subset)}"
    layout: dict[str, list[int]] = {}
    ref = executor.ModelRef.of(model, cfg.cache_root)

    def compute(start: int, stop: int) -> np.ndarray:
        idx = rows[start:stop]
        patterns, layout["channels"] = explain_channels(model, names, statistics, crops[idx],
                                                        tgt.select(torch.as_tensor(idx)), batch_size)
        return patterns

    def job(start: int, stop: int) -> ChannelShard:
        idx = rows[start:stop]
        return ChannelShard(ref, tuple(names), tuple(statistics), tuple(keys[i] for i in idx),
                            tgt.select(torch.as_tensor(idx)), batch_size)

    desc = f"channel patterns {model.spec.name}"
    patterns = executor.current().sharded_array(folder, len(rows), SHARD, compute,
                                                progress=lambda r: tqdm(r, desc=desc, unit="shard"),
                                                job=job if ref else None, desc=desc)
    meta = folder / "layout.json"  # the channel count of each layer (not known before a pass)
    if layout:
        cache.save_json(meta, layout)
    elif meta.is_file():
        layout = json.loads(meta.read_text())
    else:  # shards cached (or computed on Dask workers) without the layout: one image's pass gives it
        compute(0, 1)
        cache.save_json(meta, layout)
    channels = [int(c) for c in layout["channels"]]
    if sum(channels) != patterns.shape[-1]:
        raise ValueError(f"{folder}: layout {channels} does not match patterns of {patterns.shape[-1]} channels")
    return ChannelPatterns(model.spec.name, names, channels, list(statistics),
                           images.iloc[rows].reset_index(drop=True), patterns.astype(np.float32))


def explain_channels(model: FaceModel, layers: Sequence[str], statistics: Sequence[str], crops: np.ndarray,
                     target: Target, batch_size: int) -> tuple[np.ndarray, list[int]]:
    """Patterns (N, statistic, channels) of ``crops`` (one cache shard) and the channel count of each layer,
    from one forward and one backward pass per batch of ``batch_size``."""
    explainer = LEAM(model, {name: model.layer_path(name) for name in layers}, model.spec.input_size)
    device = next(model.parameters()).device
    out, channels = [], []
    for s in range(0, len(crops), batch_size):
        batch = torch.arange(s, min(s + batch_size, len(crops)))
        acts, grads = explainer.activations_and_gradients(embed.to_tensor(crops[s:s + batch_size], device),
                                                          target.select(batch))
        channels = [int(a.shape[1]) for a in acts]
        out.append(channel_statistics(acts, grads, statistics).cpu().numpy())
    return np.concatenate(out), channels


@dataclass(frozen=True)
class ChannelShard:
    """One shard of :func:`channel_patterns` for a Dask worker: the model by reference, the crops by their
    cache keys (read from the shared aligned-crop cache), the layers, statistics and the shard's targets."""

    model: executor.ModelRef
    layers: tuple[str, ...]
    statistics: tuple[str, ...]
    keys: tuple[str, ...]
    target: Target
    batch_size: int

    def __call__(self) -> np.ndarray:
        crops = align.cached_crops(self.keys, self.model.cache_root)
        return explain_channels(self.model.load(), self.layers, self.statistics, crops, self.target,
                                self.batch_size)[0]
