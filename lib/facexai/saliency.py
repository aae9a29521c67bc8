"""Saliency maps of the study's images, per model, technique and layer: computed once, cached.

Notebook 03 computes every selected image's map at every hooked layer (LEAM by default) and later
notebooks (region statistics, Bhattacharyya, occlusion, transfer) read the same cache. Person
maps (:class:`facexai.person_maps.PersonMaps`) are means over any subset of a person's images,
so the occlusion protocol can build them from generation images only. Techniques come from
:mod:`facexai.techniques`: the CAM family explains named layers, the RISE family the input
itself (one map per image, layer ``"input"``); every RISE technique comes from one shared set
of masked forward passes and is cached with the others, so asking for the second is free.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from facexai import align, cache, embed, executor, study, techniques
from facexai.explain import normalise_maps, person_target
from facexai.explain.rise import RISEFamily
from facexai.explain.targets import Target
from facexai.models.registry import FaceModel
from facexai.person_maps import PersonMaps
from facexai.profiles import Config
from facexai.techniques import CamSettings, RiseSettings, Technique

SHARD = 64  # images per cache shard of CAM-family maps
RISE_SHARD = 4  # a RISE image costs n_masks forwards: few per shard keeps every worker busy and a resume cheap


@dataclass
class MapSet:
    """Per-image maps [image, layer, H, W] (float16, each map summing to 1) with their images."""

    model: str
    explainer: str
    layers: list[str]
    images: pd.DataFrame  # identity, path: one row per map, grouped by identity
    maps: np.ndarray
    geometry: str = ""  # the crop geometry the maps are in
    cache_name: str = ""  # the maps' cache folder name (what they depend on): derived caches key on it

    def persons(self, paths: list[str] | None = None) -> PersonMaps:
        """Each person's mean map per layer over ``paths`` (default: all the set's images)."""
        return PersonMaps.from_image_maps(self.model, self.geometry, self.explainer, self.layers, self.images,
                                          self.maps, paths)

    def overall(self, maps: np.ndarray) -> np.ndarray:
        """Overall map = mean over layers of [..., layer, H, W] maps."""
        return maps.mean(axis=-3)


def rise_to_maps(raw: torch.Tensor) -> torch.Tensor:
    """Raw (N, 2, H, W) S-RISE / CorrRISE saliency -> maps summing to 1, pixel ranking kept.

    S-RISE has no natural zero (every pixel carries the mean score), so its minimum is moved to 0;
    CorrRISE keeps its positive correlations (pixels whose presence raises the similarity).
    """
    srise = raw[:, 0] - raw[:, 0].amin(dim=(-2, -1), keepdim=True)
    maps, _ = normalise_maps(torch.stack([srise, raw[:, 1].clamp_min(0)], 1).double(), "RISE map")
    return maps


def select_rows(images: pd.DataFrame, max_images: int | None = None, paths: Sequence[str] | None = None,
                seed: int = 0) -> np.ndarray:
    """Rows of ``images`` to explain: those of ``paths``, else whole individuals in a seeded order, each
    taken when its images still fit in ``max_images`` (None or 0: every row), so a small budget covers as
    many people as it can rather than one person with many images; when nobody fits, the seeded first
    person. Sorted."""
    if paths is not None:
        wanted = images.path.isin(list(paths))
        missing = set(paths) - set(images.path)
        if missing:
            raise ValueError(f"{len(missing)} path(s) are not among the images, e.g. {sorted(missing)[0]}")
        return np.flatnonzero(wanted.to_numpy())
    if not max_images or max_images >= len(images):
        return np.arange(len(images))
    if max_images < 0:
        raise ValueError(f"max_images must be >= 0, got {max_images}")
    sizes = images.identity.value_counts()
    people = sorted(sizes.index)
    order = [people[i] for i in np.random.default_rng(seed).permutation(len(people))]
    chosen, taken = [], 0
    for who in order:
        if taken + sizes[who] <= max_images:
            chosen.append(who)
            taken += sizes[who]
        if taken == max_images:
            break
    return np.flatnonzero(images.identity.isin(chosen or order[:1]).to_numpy())


def cam_runner(tech: Technique, model: FaceModel, layers: list[str], settings: CamSettings) -> Callable:
    """The CAM explainer of ``tech`` on ``layers``: ``runner(images, target)`` -> maps (N, L, H, W)."""
    options = {name: getattr(settings, name) for name in tech.options}
    return tech.explainer(model, {name: model.layer_path(name) for name in layers}, model.spec.input_size, **options)


def rise_runner(model: FaceModel, settings: RiseSettings, seed: int, statistics: Sequence[type] | None = None,
                progress: bool = True) -> RISEFamily:
    """Every RISE technique's statistic (default) from one set of masks: ``runner(images, target)`` -> (N, P, H, W)."""
    statistics = statistics or [t.explainer.statistics[0] for t in techniques.family("rise")]
    return RISEFamily(model, statistics, n_masks=settings.n_masks, cell_size=settings.cell_size, p=settings.p,
                      seed=seed, batch_size=settings.batch_size, fill=settings.fill,
                      input_size=model.spec.input_size, progress=progress)


def image_maps(cfg: Config, model: FaceModel, images: pd.DataFrame, *, explainer: str = "leam",
               layers: list[str] | None = None, settings: CamSettings | RiseSettings | None = None,
               max_images: int | None = None, paths: Sequence[str] | None = None, **overrides) -> MapSet:
    """Maps of the images by technique ``explainer`` at ``layers``, cached in shards.

    ``images`` has columns identity, path; targets use each image's reference embedding among its
    own person's images in ``images`` and, for ``"arcface"``, a gallery of every person's mean
    embedding. ``settings`` (the family's :mod:`facexai.techniques` settings; default: its defaults)
    with ``overrides`` (its field names, e.g. ``target="arcface"``) say how. Layers: default the
    technique's policy (LEAM every named layer, the Grad-CAM family ``settings.cam_layer``, RISE
    the input). ``paths`` or ``max_images`` (whole individuals, seeded by cfg.seed; 0: all) restrict
    which images are explained, not the references; the RISE family explains cfg.rise_images
    images unless told otherwise (the one place that rule lives).
    """
    tech = techniques.get(explainer)
    settings = tech.settings(settings, **overrides)
    rise = tech.family == "rise"
    names = tech.layers_for(list(model.layers), layers, getattr(settings, "cam_layer", -2))
    if rise:
        settings = settings if settings.n_masks is not None else tech.settings(settings, n_masks=cfg.rise_masks)
        max_images = cfg.rise_images if max_images is None else max_images
    images, crops, keys, tgt = explained_inputs(cfg, model, images, settings)
    rows = select_rows(images, max_images or None, paths, cfg.seed)
    planes = [t.name for t in techniques.family("rise")] if rise else [explainer]
    folder = cfg.cache_root / "maps" / model.spec.name / _cache_name(cfg, model, planes, names, settings, keys, rows)
    ref = executor.ModelRef.of(model, cfg.cache_root)

    def compute(start: int, stop: int) -> np.ndarray:
        idx = rows[start:stop]
        return explain_rows(model, explainer, names, settings, cfg.seed, crops[idx], tgt.select(torch.as_tensor(idx)))

    def job(start: int, stop: int) -> MapShard:
        idx = rows[start:stop]
        return MapShard(ref, explainer, tuple(names), settings, cfg.seed, tuple(keys[i] for i in idx),
                        tgt.select(torch.as_tensor(idx)))

    desc = f"{'+'.join(planes)} maps {model.spec.name}"
    maps = executor.current().sharded_array(folder, len(rows), RISE_SHARD if rise else SHARD, compute,
                                            progress=lambda r: tqdm(r, desc=desc, unit="shard"),
                                            job=job if ref else None, desc=desc)
    if rise:
        plane = planes.index(explainer)
        maps = np.ascontiguousarray(maps[:, plane:plane + 1])
    return MapSet(model.spec.name, explainer, names, images.iloc[rows].reset_index(drop=True), maps,
                  model.spec.geometry, folder.name)


def explained_inputs(cfg: Config, model: FaceModel, images: pd.DataFrame, settings: CamSettings | RiseSettings
                     ) -> tuple[pd.DataFrame, np.ndarray, list[str], Target]:
    """What an explanation of ``images`` starts from: the images sorted by person, their crops and crop
    keys in the model's geometry, and each image's target (its reference among its own person's images)."""
    images = images.reset_index(drop=True)
    if not images.identity.is_monotonic_increasing:
        images = images.sort_values(["identity", "path"], kind="stable").reset_index(drop=True)
    crops, keys = study.crops(cfg, images.path.tolist(), model.spec.geometry)
    emb = torch.from_numpy(embed.cached_embed(model, crops, keys, cfg.cache_root))
    sizes = images.groupby("identity", sort=True).size().tolist()
    tgt = person_target(list(emb.split(sizes)), settings.target, settings.reference, 64.0, settings.margin)
    return images, crops, keys, tgt


def explain_rows(model: FaceModel, explainer: str, layers: list[str], settings: CamSettings | RiseSettings,
                 seed: int, crops: np.ndarray, target: Target) -> np.ndarray:
    """float16 maps (N, P, H, W) of ``crops`` by technique ``explainer``, ``target`` one per crop: one cache shard.

    The CAM family runs in batches of ``settings.batch_size``; the RISE family takes the shard at
    once (it batches the masked copies of each image instead) and returns every RISE plane.
    """
    tech = techniques.get(explainer)
    rise = tech.family == "rise"
    runner = rise_runner(model, settings, seed) if rise else cam_runner(tech, model, layers, settings)
    device = next(model.parameters()).device
    step = len(crops) if rise else settings.batch_size
    out = None  # filled batch by batch: no list of parts to concatenate into a second copy
    for s in range(0, len(crops), step):
        batch = torch.arange(s, min(s + step, len(crops)))
        maps = runner(embed.to_tensor(crops[s:s + step], device), target.select(batch))
        maps = (rise_to_maps(maps) if rise else maps).to(torch.float16).cpu().numpy()  # torch casts 6x faster
        if out is None:
            out = np.empty((len(crops), *maps.shape[1:]), np.float16)
        out[s:s + len(maps)] = maps
    return out


@dataclass(frozen=True)
class MapShard:
    """One shard of :func:`image_maps` for a Dask worker: the model by reference, the crops by their cache
    keys (read from the shared aligned-crop cache), the technique, its settings and the shard's targets."""

    model: executor.ModelRef
    explainer: str
    layers: tuple[str, ...]
    settings: CamSettings | RiseSettings
    seed: int
    keys: tuple[str, ...]
    target: Target

    def __call__(self) -> np.ndarray:
        crops = align.cached_crops(self.keys, self.model.cache_root)
        return explain_rows(self.model.load(), self.explainer, list(self.layers), self.settings, self.seed, crops,
                            self.target)


def _cache_name(cfg: Config, model: FaceModel, planes: list[str], layers: list[str],
                settings: CamSettings | RiseSettings, keys: list[str], rows: np.ndarray) -> str:
    """The cache folder name of a map set: what the maps depend on, and which images they are of."""
    params = dict(target=settings.target, reference=settings.reference, margin=settings.margin,
                  model=model.spec.name, weights=model.fingerprint, explainer="+".join(planes))
    if isinstance(settings, RiseSettings):
        params |= dict(n_masks=settings.n_masks, cell_size=settings.cell_size, p=settings.p, fill=settings.fill,
                       seed=cfg.seed)
    else:
        params |= dict(layers=layers, weighting=settings.weighting)
        if settings.antialias:
            params |= dict(antialias=True)
    subset = keys if len(rows) == len(keys) else [keys, rows.tolist()]
    return f"{cache.key(params)}-{cache.key(subset)}"
