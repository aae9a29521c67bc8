"""The occlusion protocol: whose images make a person's map, whose are occluded, against which pairs.

Per person, the images are split (seeded) into GENERATION images, whose maps make the person map,
and held-out EVALUATION images, which are occluded (the in-sample variant occludes the generation
images instead, whose clean embeddings are then part of the reference, and is labelled so in
every row). Verification pairs put an occluded image on one side: the run's official pairs when
there are enough of them, else pairs built from the selected people. Used by notebooks 06, 07, 08
through :mod:`facexai.occlusion_runner`.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from facexai import occlusion, study

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Protocol:
    """Who is occluded and against whom: the per-person split and the verification pairs."""

    images: pd.DataFrame  # identity, path: the study's selected images (clean embedding order)
    generation: dict[str, list[str]]
    evaluation: dict[str, list[str]]
    in_sample: bool
    pairs: pd.DataFrame  # identity, path (occluded), partner, same
    pair_source: str
    study_pairs: pd.DataFrame  # the run's clean verification pairs: fold, path_a, path_b, same
    memo: dict = field(default_factory=dict, compare=False, repr=False)  # clean embeddings, colours per model

    @property
    def occluded(self) -> dict[str, list[str]]:
        """Images to occlude: the held-out evaluation images (or, in-sample, the generation images)."""
        return self.generation if self.in_sample else self.evaluation

    @property
    def generation_paths(self) -> list[str]:
        return sorted(p for paths in self.generation.values() for p in paths)


def hash_int(*parts: object) -> int:
    """A stable 63-bit integer of the parts (seeds per image, independent of batch order)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _built_pairs(images: pd.DataFrame, occluded: Mapping[str, Sequence[str]], n_impostors: int,
                 seed: int) -> pd.DataFrame:
    """Each occluded image with every other image of its person (genuine) and ``n_impostors`` others' images.

    Each image's impostor draw is seeded by its path relative to the images' common folder (the
    data root), so a clone in another folder draws the same pairs.
    """
    by_person = images.groupby("identity").path.apply(sorted).to_dict()
    root = os.path.commonpath(list(images.path)) if len(images) else "."
    rows = []
    for person, paths in sorted(occluded.items()):
        pool = sorted(images.path[images.identity != person])
        for path in paths:
            rows += [(person, path, other, True) for other in by_person[person] if other != path]
            relative = Path(os.path.relpath(path, root)).as_posix()
            rng = np.random.default_rng(hash_int(seed, "impostors", relative))
            picks = rng.choice(len(pool), size=min(n_impostors, len(pool)), replace=False) if pool else []
            rows += [(person, path, pool[i], False) for i in sorted(picks)]
    return pd.DataFrame(rows, columns=["identity", "path", "partner", "same"])


def _official_pairs(study_pairs: pd.DataFrame, occluded: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """The study's (official) pairs with an occluded image on one side, turned so it comes first."""
    owner = {p: person for person, paths in occluded.items() for p in paths}
    rows = []
    for r in study_pairs.itertuples():
        for path, partner in ((r.path_a, r.path_b), (r.path_b, r.path_a)):
            if path in owner and partner != path:
                rows.append((owner[path], path, partner, bool(r.same)))
                break
    return pd.DataFrame(rows, columns=["identity", "path", "partner", "same"])


def make_protocol(st: study.Study, n_eval: int | float = 1, seed: int = 0, *, in_sample: bool = False,
                  n_impostors: int = 5, official: bool = False, min_official_pairs: int = 100) -> Protocol:
    """Split every selected person's images and choose the verification pairs of the occluded images.

    Pairs: with ``official`` (the run's pairs come from an official list such as LFW View 2) the
    official pairs that have an occluded image on one side, when there are at least
    ``min_official_pairs`` genuine and as many impostor ones; otherwise pairs built from the
    selected people: each occluded image with every other selected image of its person (genuine)
    and with ``n_impostors`` images of other people drawn from ``seed`` (impostor).
    """
    images = st.images.reset_index(drop=True)
    if not images.identity.is_monotonic_increasing:  # the order saliency.image_maps embeds them in
        images = images.sort_values(["identity", "path"], kind="stable").reset_index(drop=True)
    by_person = images.groupby("identity").path.apply(list).to_dict()
    gen, held = occlusion.split_generation_evaluation(by_person, n_eval, seed)
    occluded = gen if in_sample else held
    source = f"built from the selected people (all genuine partners, {n_impostors} impostors each, seed {seed})"
    pairs = None
    if official:
        cand = _official_pairs(st.pairs, occluded)
        n_gen, n_imp = int(cand.same.sum()), int((~cand.same).sum())
        if min(n_gen, n_imp) >= min_official_pairs:
            pairs, source = cand, f"official pairs with an occluded image ({n_gen} genuine, {n_imp} impostor)"
        else:
            log.warning("only %d genuine / %d impostor official pairs touch an occluded image (< %d): "
                        "building pairs from the selected people instead", n_gen, n_imp, min_official_pairs)
            source += f"; official pairs too few ({n_gen} genuine, {n_imp} impostor)"
    if pairs is None:
        pairs = _built_pairs(images, occluded, n_impostors, seed)
    return Protocol(images, gen, held, in_sample, pairs.reset_index(drop=True), source,
                    st.pairs.reset_index(drop=True))
