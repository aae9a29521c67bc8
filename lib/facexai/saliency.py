"""Saliency maps of the study's images, per model, explainer and layer: computed once, cached.

Notebook 03 computes every selected image's map at every hooked layer (LEAM by default) and later
notebooks (region statistics, Bhattacharyya, occlusion, transfer) read the same cache. Person
maps are means over any subset of a person's images, so the occlusion protocol can build them
from generation images only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from facexai import cache, embed, study
from facexai.explain import LEAM, GradCAM, GradCAMPlusPlus, LayerCAM, person_target
from facexai.models.registry import FaceModel
from facexai.profiles import Config

#: CAM-family explainers by name; all share one forward and one backward pass per batch.
CAM_EXPLAINERS = {"leam": LEAM, "gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "layercam": LayerCAM}
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


def image_maps(cfg: Config, model: FaceModel, images: pd.DataFrame, *, explainer: str = "leam",
               layers: list[str] | None = None, target: str = "cosine", reference: str = "leave_one_out",
               weighting: str = "elementwise", margin: float = 0.2, batch_size: int = 16) -> MapSet:
    """Maps of every image at every layer (default: all the model's named layers), cached in shards.

    ``images`` has columns identity, path, grouped by identity; targets use each image's reference
    embedding among its own person's images (``reference``) and, for ``"arcface"``, a gallery of
    every person's mean embedding.
    """
    if explainer not in CAM_EXPLAINERS:
        raise ValueError(f"unknown explainer {explainer!r}; valid: {sorted(CAM_EXPLAINERS)}")
    names = list(model.layers) if not layers else list(layers)
    layer_paths = {name: model.layer_path(name) for name in names}
    images = images.reset_index(drop=True)
    if not images.identity.is_monotonic_increasing:
        images = images.sort_values(["identity", "path"], kind="stable").reset_index(drop=True)
    crops, keys = study.crops(cfg, images.path.tolist(), model.spec.geometry)
    emb = torch.from_numpy(embed.cached_embed(model, crops, keys, cfg.cache_root))
    sizes = images.groupby("identity", sort=True).size().tolist()
    tgt = person_target(list(emb.split(sizes)), target, reference, 64.0, margin)
    kwargs = {"weighting": weighting} if explainer == "leam" else {}
    device = next(model.parameters()).device
    params = dict(explainer=explainer, layers=names, target=target, reference=reference, weighting=weighting,
                  margin=margin, model=model.spec.name, weights=getattr(model.spec.weights, "sha256", ""))
    folder = cfg.cache_root / "maps" / model.spec.name / f"{cache.key(params)}-{cache.key(keys)}"

    def compute(start: int, stop: int) -> np.ndarray:
        runner = CAM_EXPLAINERS[explainer](model, layer_paths, model.spec.input_size, **kwargs)
        out = []
        for s in range(start, stop, batch_size):
            e = min(s + batch_size, stop)
            x = embed.to_tensor(crops[s:e], device)
            out.append(runner(x, tgt.select(slice(s, e))).cpu().numpy().astype(np.float16))
        return np.concatenate(out)

    maps = cache.sharded_array(folder, len(images), SHARD, compute,
                               progress=lambda r: tqdm(r, desc=f"{explainer} maps {model.spec.name}", unit="shard"))
    return MapSet(model.spec.name, explainer, names, images, maps)
