"""Person maps: one map per individual and layer, the mean of the maps of some of their images.

One type for every consumer (occlusion, transfer, generalizability, figures): a
:class:`PersonMaps` value says which model and crop geometry the maps are in, which technique
and layers made them, and which images stand behind each person's map, so no caller passes the
technique or the geometry back by hand. :func:`generation_maps` builds them from the generation
images of an occlusion protocol.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from facexai import passes

if TYPE_CHECKING:
    from facexai.models.registry import FaceModel
    from facexai.occlusion_protocol import Protocol
    from facexai.profiles import Config
    from facexai.techniques import CamSettings, RiseSettings

log = logging.getLogger(__name__)

OVERALL = "overall"  # the layer name of maps given as one map per person
#: A person map from generation images alone needs this many of them: each image's target is the leave-one-out
#: mean of the person's other generation images.
MIN_GENERATION_IMAGES = 2


def mapped_people(protocol: Protocol) -> list[str]:
    """The people of ``protocol`` whose generation images make a person map (:data:`MIN_GENERATION_IMAGES`)."""
    return sorted(p for p, paths in protocol.generation.items() if len(paths) >= MIN_GENERATION_IMAGES)


@dataclass
class PersonMaps:
    """Maps [person, layer, H, W] (float32, each summing to 1) of ``identities``, in ``geometry`` crops."""

    model: str
    geometry: str
    technique: str
    layers: list[str]
    identities: list[str]
    images: dict[str, list[str]]  # identity -> the image paths averaged into its map
    maps: np.ndarray
    forward_passes: int = field(default=0, compare=False)  # images the model forwarded to make them
    seconds: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        if self.maps.ndim != 4 or self.maps.shape[:2] != (len(self.identities), len(self.layers)):
            raise ValueError(f"maps must be [person={len(self.identities)}, layer={len(self.layers)}, H, W], "
                             f"got {self.maps.shape}")

    @classmethod
    def from_image_maps(cls, model: str, geometry: str, technique: str, layers: Sequence[str],
                        images: pd.DataFrame, maps: np.ndarray, paths: Sequence[str] | None = None) -> PersonMaps:
        """Each person's mean over their rows of per-image ``maps`` [image, layer, H, W] (rows of
        ``images``: identity, path) among ``paths`` (default: all), renormalised to sum 1."""
        rows = images.reset_index(drop=True)
        if paths is not None:
            rows = rows[rows.path.isin(list(paths))]
        identities = sorted(rows.identity.unique())
        out = np.stack([maps[rows.index[rows.identity == who]].astype(np.float32).mean(0) for who in identities])
        used = {who: rows.path[rows.identity == who].tolist() for who in identities}
        return cls(model, geometry, technique, list(layers), identities, used,
                   out / out.sum(axis=(-2, -1), keepdims=True))

    @classmethod
    def from_arrays(cls, model: str, geometry: str, technique: str, maps: Mapping[str, np.ndarray],
                    images: Mapping[str, Sequence[str]] | None = None) -> PersonMaps:
        """Person maps from plain arrays {identity: (H, W)} (one layer, ``"overall"``), e.g. made elsewhere."""
        identities = sorted(maps)
        stack = np.stack([np.asarray(maps[who], dtype=np.float32) for who in identities])[:, None]
        used = {who: list((images or {}).get(who, [])) for who in identities}
        return cls(model, geometry, technique, [OVERALL], identities, used, stack)

    def __len__(self) -> int:
        return len(self.identities)

    def __contains__(self, identity: object) -> bool:
        return identity in self.identities

    def overall(self) -> np.ndarray:
        """[person, H, W]: the mean over layers (LEAM's overall map; the map itself for one layer)."""
        return self.maps.mean(axis=1)

    def layer(self, name: str) -> PersonMaps:
        """The maps of layer ``name`` alone."""
        if name not in self.layers:
            raise KeyError(f"layer {name!r} was not explained; layers: {self.layers}")
        j = self.layers.index(name)
        return replace(self, layers=[name], maps=self.maps[:, j:j + 1])

    def of(self, identities: Sequence[str]) -> np.ndarray:
        """The overall map of each listed identity, in order (repeats allowed): (N, H, W)."""
        index = {who: i for i, who in enumerate(self.identities)}
        missing = sorted(set(identities) - set(index))
        if missing:
            raise KeyError(f"no person map for {missing[:5]}")
        return self.overall()[[index[who] for who in identities]]

    def as_dict(self) -> dict[str, np.ndarray]:
        """{identity: overall map (H, W)}."""
        return dict(zip(self.identities, self.overall()))


def generation_maps(cfg: Config, model: FaceModel, protocol: Protocol, technique: str = "leam", *,
                    layers: list[str] | None = None, settings: CamSettings | RiseSettings | None = None,
                    map_images: str = "generation", **overrides) -> PersonMaps:
    """Person maps of ``technique`` from the protocol's generation images only, every explained layer kept.

    ``map_images="generation"`` computes the per-image maps on the generation images alone, so the
    held-out images do not even enter the maps' targets (leave-one-out references need >= 2
    generation images: people with fewer are left out, with a logged count). ``"all"`` reuses the
    maps of every selected image (notebook 03's cache) and still averages only the generation
    images' maps; the held-out images' embeddings then enter those maps' reference embeddings.
    Layers and settings as :func:`facexai.saliency.image_maps` (which also applies the RISE image
    subset); counts the model's forward passes and the wall time.
    """
    from facexai import saliency  # here: saliency builds on this module's type

    if map_images not in ("generation", "all"):
        raise ValueError(f"map_images must be 'generation' or 'all', got {map_images!r}")
    images = protocol.images
    if map_images == "generation":
        keep = mapped_people(protocol)
        dropped = len(protocol.generation) - len(keep)
        if dropped:
            log.warning("%d people have fewer than %d generation images and get no map", dropped,
                        MIN_GENERATION_IMAGES)
        wanted = {p for person in keep for p in protocol.generation[person]}
        images = images[images.path.isin(wanted)].reset_index(drop=True)
    start = time.perf_counter()
    with passes.counting(model.spec.name) as forwarded:
        ms = saliency.image_maps(cfg, model, images, explainer=technique, layers=layers, settings=settings,
                                 **overrides)
    pm = ms.persons(paths=protocol.generation_paths)
    return replace(pm, forward_passes=forwarded.images, seconds=time.perf_counter() - start)
