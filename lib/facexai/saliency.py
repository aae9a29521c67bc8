"""Saliency maps of the study's images, per model, explainer and layer: computed once, cached.

Notebook 03 computes every selected image's map at every hooked layer (LEAM by default) and later
notebooks (region statistics, Bhattacharyya, occlusion, transfer) read the same cache. Person
maps are means over any subset of a person's images, so the occlusion protocol can build them
from generation images only. The RISE family explains the input itself (one map per image, layer
``"input"``); S-RISE and CorrRISE come from one shared set of masked forward passes and are cached
together, so asking for the second is free.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from facexai import cache, embed, study
from facexai.explain import LEAM, SRISE, CorrRISE, GradCAM, GradCAMPlusPlus, LayerCAM, normalise_maps, person_target
from facexai.explain.rise import _RISE
from facexai.models.registry import FaceModel
from facexai.profiles import Config

#: CAM-family explainers by name; all share one forward and one backward pass per batch.
CAM_EXPLAINERS = {"leam": LEAM, "gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "layercam": LayerCAM}
#: RISE-family explainers, in the order of the planes of their shared cache.
RISE_EXPLAINERS = ("srise", "corrrise")
INPUT_LAYER = "input"  # the one "layer" of a RISE map
SHARD = 64  # images per cache shard


@dataclass
class MapSet:
    """Per-image maps [image, layer, H, W] (float16, each map summing to 1) with their images."""

    model: str
    explainer: str
    layers: list[str]
    images: pd.DataFrame  # identity, path: one row per map, grouped by identity
    maps: np.ndarray

    def person_maps(self, paths: list[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Identities and their mean maps [person, layer, H, W] over ``paths`` (default: all images)."""
        rows = self.images if paths is None else self.images[self.images.path.isin(paths)]
        identities = sorted(rows.identity.unique())
        out = np.stack([self.maps[rows.index[rows.identity == who]].astype(np.float32).mean(0) for who in identities])
        return identities, out / out.sum(axis=(-2, -1), keepdims=True)

    def overall(self, maps: np.ndarray) -> np.ndarray:
        """Overall map = mean over layers of [..., layer, H, W] maps."""
        return maps.mean(axis=-3)


class SRISEAndCorrRISE(_RISE):
    """S-RISE and CorrRISE of the same masks and scores, from one set of masked forward passes.

    ``explainer(images, target)`` -> (N, 2, H, W): plane 0 S-RISE, plane 1 CorrRISE, each equal to
    what :class:`SRISE` / :class:`CorrRISE` with the same parameters return.
    """

    min_masks = CorrRISE.min_masks

    def __call__(self, images: torch.Tensor, target) -> torch.Tensor:
        out = super().__call__(images, target)
        return out.reshape(len(images), 2, *out.shape[-2:])

    def _start(self, n_pixels, device):
        return SRISE._start(self, n_pixels, device), CorrRISE._start(self, n_pixels, device)

    def _update(self, state, masks, scores):
        SRISE._update(self, state[0], masks, scores)
        CorrRISE._update(self, state[1], masks, scores)

    def _finish(self, state):
        return torch.stack([SRISE._finish(self, state[0]), CorrRISE._finish(self, state[1])])


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
    """Rows of ``images`` to explain: those of ``paths``, else whole individuals in a seeded order
    until at least ``max_images`` images are taken (None or 0: every row). Sorted."""
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
    people = sorted(images.identity.unique())
    rows: list[int] = []
    for i in np.random.default_rng(seed).permutation(len(people)):
        if len(rows) >= max_images:
            break
        rows.extend(np.flatnonzero((images.identity == people[i]).to_numpy()))
    return np.sort(np.asarray(rows))


def image_maps(cfg: Config, model: FaceModel, images: pd.DataFrame, *, explainer: str = "leam",
               layers: list[str] | None = None, target: str = "cosine", reference: str = "leave_one_out",
               weighting: str = "elementwise", margin: float = 0.2, batch_size: int = 16,
               n_masks: int | None = None, cell_size: int = 16, p: float = 0.5, fill: float = 0.0,
               max_images: int | None = None, paths: Sequence[str] | None = None) -> MapSet:
    """Maps of the images at every layer (default: all the model's named layers), cached in shards.

    ``images`` has columns identity, path; targets use each image's reference embedding among its
    own person's images in ``images`` (``reference``) and, for ``"arcface"``, a gallery of every
    person's mean embedding. ``paths`` or ``max_images`` (whole individuals, seeded by cfg.seed)
    restrict which images are explained, not the references. RISE explainers (``"srise"``,
    ``"corrrise"``) use ``n_masks`` (default cfg.rise_masks) masks of ``cell_size``-pixel cells kept
    with probability ``p``, removed pixels set to ``fill``; ``batch_size`` = images per forward pass.
    """
    if explainer not in (*CAM_EXPLAINERS, *RISE_EXPLAINERS):
        raise ValueError(f"unknown explainer {explainer!r}; valid: {sorted([*CAM_EXPLAINERS, *RISE_EXPLAINERS])}")
    rise = explainer in RISE_EXPLAINERS
    if rise and layers and list(layers) != [INPUT_LAYER]:
        raise ValueError(f"{explainer} explains the input: layers must be None or [{INPUT_LAYER!r}], got {layers}")
    names = [INPUT_LAYER] if rise else list(model.layers) if not layers else list(layers)
    layer_paths = {} if rise else {name: model.layer_path(name) for name in names}
    images = images.reset_index(drop=True)
    if not images.identity.is_monotonic_increasing:
        images = images.sort_values(["identity", "path"], kind="stable").reset_index(drop=True)
    crops, keys = study.crops(cfg, images.path.tolist(), model.spec.geometry)
    emb = torch.from_numpy(embed.cached_embed(model, crops, keys, cfg.cache_root))
    sizes = images.groupby("identity", sort=True).size().tolist()
    tgt = person_target(list(emb.split(sizes)), target, reference, 64.0, margin)
    rows = select_rows(images, max_images, paths, cfg.seed)
    device = next(model.parameters()).device
    params = dict(target=target, reference=reference, margin=margin, model=model.spec.name,
                  weights=getattr(model.spec.weights, "sha256", ""))
    if rise:
        n_masks = cfg.rise_masks if n_masks is None else n_masks
        params |= dict(explainer="+".join(RISE_EXPLAINERS), n_masks=n_masks, cell_size=cell_size, p=p,
                       fill=fill, seed=cfg.seed)
    else:
        params |= dict(explainer=explainer, layers=names, weighting=weighting)
    subset = keys if len(rows) == len(images) else [keys, rows.tolist()]
    folder = cfg.cache_root / "maps" / model.spec.name / f"{cache.key(params)}-{cache.key(subset)}"

    def compute(start: int, stop: int) -> np.ndarray:
        if rise:
            runner = SRISEAndCorrRISE(model, n_masks=n_masks, cell_size=cell_size, p=p, seed=cfg.seed,
                                      batch_size=batch_size, fill=fill, input_size=model.spec.input_size)
        else:
            kwargs = {"weighting": weighting} if explainer == "leam" else {}
            runner = CAM_EXPLAINERS[explainer](model, layer_paths, model.spec.input_size, **kwargs)
        out = []
        step = stop - start if rise else batch_size  # RISE batches the masked copies of each image instead
        for s in range(start, stop, step):
            idx = rows[s:min(s + step, stop)]
            maps = runner(embed.to_tensor(crops[idx], device), tgt.select(torch.as_tensor(idx)))
            out.append((rise_to_maps(maps) if rise else maps).cpu().numpy().astype(np.float16))
        return np.concatenate(out)

    label = "+".join(RISE_EXPLAINERS) if rise else explainer
    maps = cache.sharded_array(folder, len(rows), SHARD, compute,
                               progress=lambda r: tqdm(r, desc=f"{label} maps {model.spec.name}", unit="shard"))
    if rise:
        plane = RISE_EXPLAINERS.index(explainer)
        maps = np.ascontiguousarray(maps[:, plane:plane + 1])
    return MapSet(model.spec.name, explainer, names, images.iloc[rows].reset_index(drop=True), maps)
