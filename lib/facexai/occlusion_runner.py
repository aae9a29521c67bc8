"""The occlusion runner: hide each person's critical (or random) pixels on their occluded images, measure.

The critical mask is the top q% pixels of the person map (:class:`facexai.person_maps.PersonMaps`)
in the evaluation model's crop geometry (warped through each image's alignment matrices when
the map was made in another geometry); the baseline occludes as many uniformly random pixels.
Measures per occluded image: cosine to the person's reference (the L2-normalised mean embedding
of the generation images), clean and occluded; per verification pair with the occluded image on
one side (:mod:`facexai.occlusion_protocol`), the score against the decision threshold fixed on
the run's clean pairs. Every technique (LEAM, the Grad-CAM family, RISE) goes through this code.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from facexai import align, embed, metrics, occlusion, passes, study
from facexai.explain.topk import critical_mask, top_k
from facexai.models.registry import FaceModel
from facexai.occlusion_protocol import Protocol, hash_int
from facexai.person_maps import PersonMaps
from facexai.profiles import Config

log = logging.getLogger(__name__)

#: The condition of a row: which maps, on which model, how occluded.
CONDITION = ["model", "generation_model", "explainer", "in_sample", "fill", "q", "selection"]
#: Columns of :attr:`OcclusionRun.images` (one row per condition x occluded image).
IMAGE_COLUMNS = [*CONDITION, "seed", "identity", "path", "n_pixels", "clean_cos", "occluded_cos", "drop"]
#: Columns of :attr:`OcclusionRun.pairs` (one row per condition x verification pair).
PAIR_COLUMNS = [*CONDITION, "seed", "identity", "path", "partner", "same", "clean_score", "occluded_score",
                "threshold"]
CRITICAL, RANDOM = "critical", "random"  # the selection column: the maps' top pixels, or as many random ones
CRITICAL_SEED = -1  # the seed column of critical-selection rows (random rows hold their seed)


def clean_embeddings(cfg: Config, model: FaceModel, protocol: Protocol) -> dict[str, np.ndarray]:
    """Raw clean embeddings of the selected images and of the run's pair images (cached as 01 and 03 do)."""
    tag = ("clean", model.fingerprint, str(cfg.cache_root))
    if tag in protocol.memo:
        return protocol.memo[tag]
    pair_paths = list(dict.fromkeys([*protocol.study_pairs.path_a, *protocol.study_pairs.path_b]))
    needed = set(protocol.pairs.partner)
    out: dict[str, np.ndarray] = {}
    for paths in (protocol.images.path.tolist(), pair_paths, sorted(needed - set(protocol.images.path)
                                                                   - set(pair_paths))):
        if paths:
            crops, keys = study.crops(cfg, paths, model.spec.geometry)
            emb = embed.cached_embed(model, crops, keys, cfg.cache_root)
            out.update(zip(paths, emb))
    protocol.memo[tag] = out
    return out


def model_threshold(clean: Mapping[str, np.ndarray], study_pairs: pd.DataFrame) -> float:
    """The model's decision threshold fixed on the run's clean pairs (:func:`metrics.clean_threshold`)."""
    a = np.stack([clean[p] for p in study_pairs.path_a])
    b = np.stack([clean[p] for p in study_pairs.path_b])
    scores = metrics.cosine_similarity(a, b)
    return metrics.clean_threshold(scores, study_pairs.same.to_numpy(bool), study_pairs.fold.to_numpy())


def eval_maps(cfg: Config, maps: PersonMaps, identities: Sequence[str], paths: Sequence[str],
              geometry: str) -> np.ndarray:
    """Each image's person map in ``geometry`` (N, S, S): as is in the maps' own geometry, else warped.

    Across geometries the map is carried into every image's crop through that image's own
    alignment matrices (:func:`occlusion.warp_mask_to`), not resized.
    """
    size = align.GEOMETRIES[maps.geometry].size
    stack = maps.of(identities)
    if stack.shape[1:] != (size, size):
        raise ValueError(f"person maps are {stack.shape[1:]}, but geometry {maps.geometry!r} crops are "
                         f"{size}x{size}: person maps must be in their own crop geometry")
    if maps.geometry == geometry:
        return stack
    res = align.align_paths([Path(p) for p in paths], [maps.geometry, geometry], cfg.cache_root, device=cfg.device)
    rows = res.index(paths)
    return occlusion.warp_mask_to(stack, res.matrices[maps.geometry][rows], res.matrices[geometry][rows],
                                  align.GEOMETRIES[geometry].size)


def mask_seed(cfg: Config, k: int) -> int:
    """Seed of the k-th random-pixel draw of a run."""
    return cfg.seed * 100_003 + k


def random_masks(keys: Sequence[str], size: int, k: int, seed: int) -> np.ndarray:
    """(N, S, S) masks of exactly ``k`` random pixels, each drawn from (seed, the image's key): order-independent."""
    return np.stack([occlusion.random_mask((size, size), k, hash_int(seed, "random mask", key)) for key in keys])


def occlude(crops: np.ndarray, masks: np.ndarray, kind: str, keys: Sequence[str], seed: int = 0,
            mean_colour: np.ndarray | None = None,
            blur_sigma: float = occlusion.DEFAULT_BLUR_SIGMA) -> tuple[np.ndarray, list[str]]:
    """Occluded crops and their cache keys (crop key + fill + mask digest); random-fill noise is per image."""
    out = np.empty_like(crops)
    okeys = []
    for i, key in enumerate(keys):
        noise_seed = hash_int(seed, "fill noise", key)
        out[i] = occlusion.fill(crops[i], masks[i], kind, noise_seed, mean_colour, blur_sigma)
        detail = {"random": noise_seed, "blur": blur_sigma,
                  "mean": None if mean_colour is None else np.round(mean_colour, 3).tolist()}.get(kind, "")
        digest = hashlib.sha256(np.packbits(masks[i]).tobytes()).hexdigest()[:16]
        okeys.append(f"{key}|occ:{kind}:{detail}:{digest}")
    return out, okeys


@dataclass
class OcclusionRun:
    """Tidy results of one runner call: one row per condition x occluded image, and per condition x pair."""

    images: pd.DataFrame
    pairs: pd.DataFrame
    forward_passes: int = 0
    seconds: float = 0.0
    skipped_people: list[str] = field(default_factory=list)


def combine(runs: Sequence[OcclusionRun]) -> OcclusionRun:
    """One run from several (rows concatenated, counts added)."""
    return OcclusionRun(pd.concat([r.images for r in runs], ignore_index=True),
                        pd.concat([r.pairs for r in runs], ignore_index=True),
                        sum(r.forward_passes for r in runs), sum(r.seconds for r in runs),
                        sorted({p for r in runs for p in r.skipped_people}))


def occlusion_experiment(cfg: Config, model: FaceModel, maps: PersonMaps, protocol: Protocol, *,
                         fills: Sequence[str] = ("black",), qs: Sequence[float] = (1.0,),
                         random_seeds: Sequence[int] = (0,), blur_sigma: float = occlusion.DEFAULT_BLUR_SIGMA,
                         batch_size: int = 32) -> OcclusionRun:
    """Occlude every occluded image of ``protocol`` with its person's critical / random pixels, on ``model``.

    ``maps``: the person maps (their overall map: the mean over their layers), made by any model
    in any geometry; their model labels the rows' ``generation_model``, their technique the
    ``explainer``. People without a map are skipped (counted). For each q, fill and selection
    (critical, random seed k) one batched, cached embedding pass. Counts the model's actual
    forward passes (cache hits need none).
    """
    unknown = set(fills) - set(occlusion.FILLS)
    if unknown:
        raise ValueError(f"unknown fill kinds {sorted(unknown)}; valid: {list(occlusion.FILLS)}")
    start = time.perf_counter()
    with passes.counting(model.spec.name) as forwarded:
        run = _run(cfg, model, maps, protocol, fills, qs, random_seeds, blur_sigma, batch_size)
    run.forward_passes, run.seconds = forwarded.images, time.perf_counter() - start
    return run


def _run(cfg: Config, model: FaceModel, person_maps: PersonMaps, protocol: Protocol, fills: Sequence[str],
         qs: Sequence[float], random_seeds: Sequence[int], blur_sigma: float, batch_size: int) -> OcclusionRun:
    geometry, size = model.spec.geometry, align.GEOMETRIES[model.spec.geometry].size
    generation_model = person_maps.model
    skipped = sorted(p for p in protocol.occluded if p not in person_maps)
    if skipped:
        log.warning("%d of %d people have no person map and are not occluded: %s", len(skipped),
                    len(protocol.occluded), ", ".join(skipped[:5]))
    people = [p for p in sorted(protocol.occluded) if p in person_maps]
    identities = [p for p in people for _ in protocol.occluded[p]]
    paths = [path for p in people for path in protocol.occluded[p]]
    if not paths:
        raise ValueError("no image to occlude: no person of the protocol has a person map")
    crops, keys = study.crops(cfg, paths, geometry)
    maps = eval_maps(cfg, person_maps, identities, paths, geometry)
    raw = clean_embeddings(cfg, model, protocol)
    threshold = model_threshold(raw, protocol.study_pairs)
    refs = {p: _unit(np.mean([raw[g] for g in protocol.generation[p]], axis=0)) for p in people}  # raw mean
    ref = np.stack([refs[p] for p in identities])
    clean_occ = np.stack([_unit(raw[p]) for p in paths])
    clean_cos = (clean_occ * ref).sum(1)
    pairs = protocol.pairs[protocol.pairs.path.isin(set(paths))].reset_index(drop=True)
    row_of = {p: i for i, p in enumerate(paths)}
    pair_rows = pairs.path.map(row_of).to_numpy()
    partners = np.stack([_unit(raw[p]) for p in pairs.partner]) if len(pairs) else np.zeros((0, clean_occ.shape[1]))
    clean_score = (clean_occ[pair_rows] * partners).sum(1)
    mean_colour = _mean_colour(cfg, protocol, geometry) if "mean" in fills else None
    base = {"model": model.spec.name, "generation_model": generation_model, "explainer": person_maps.technique,
            "in_sample": protocol.in_sample}
    image_frames, pair_frames = [], []
    todo = [(q, f) for q in qs for f in fills]
    for q, kind in tqdm(todo, desc=f"occlusion {generation_model}->{model.spec.name}", unit="condition"):
        k = top_k(q, size * size)
        selections = [(CRITICAL, CRITICAL_SEED, critical_mask(maps, q))]
        selections += [(RANDOM, s, random_masks(keys, size, k, mask_seed(cfg, s))) for s in random_seeds]
        for selection, seed, masks in selections:
            occluded, okeys = occlude(crops, masks, kind, keys, cfg.seed, mean_colour, blur_sigma)
            emb = embed.cached_embed(model, occluded, okeys, cfg.cache_root, batch_size)
            emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
            occ_cos = (emb * ref).sum(1)
            cond = {**base, "fill": kind, "q": float(q), "selection": selection, "seed": seed}
            image_frames.append(pd.DataFrame({
                **cond, "identity": identities, "path": paths, "n_pixels": masks.sum((1, 2)),
                "clean_cos": clean_cos, "occluded_cos": occ_cos, "drop": clean_cos - occ_cos}))
            pair_frames.append(pd.DataFrame({
                **cond, "identity": pairs.identity, "path": pairs.path, "partner": pairs.partner,
                "same": pairs.same.astype(bool), "clean_score": clean_score,
                "occluded_score": (emb[pair_rows] * partners).sum(1), "threshold": threshold}))
    return OcclusionRun(pd.concat(image_frames, ignore_index=True)[IMAGE_COLUMNS],
                        pd.concat(pair_frames, ignore_index=True)[PAIR_COLUMNS], skipped_people=skipped)


def transfer_experiment(cfg: Config, zoo: Mapping[str, FaceModel], maps: Mapping[str, PersonMaps], protocol: Protocol,
                        *, fill: str = "black", q: float = 1.0, random_seeds: Sequence[int] = (0,)) -> OcclusionRun:
    """Every generation model's person maps (``maps`` {model: PersonMaps}) occluded on every evaluation model
    of ``zoo`` (the second work's Table 2); the random floor once per evaluation model (on its diagonal run)."""
    runs = []
    for ev, model in zoo.items():
        for gen, person in maps.items():
            run = occlusion_experiment(cfg, model, person, protocol, fills=[fill], qs=[q],
                                       random_seeds=random_seeds if gen == ev else ())
            log.info("%s -> %s (%s): %d forward passes, %.0f s", gen, ev, person.technique, run.forward_passes,
                     run.seconds)
            runs.append(run)
    return combine(runs)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _mean_colour(cfg: Config, protocol: Protocol, geometry: str) -> np.ndarray:
    """The "mean" fill's colour: mean RGB of the selected images' clean crops in ``geometry``."""
    tag = ("mean colour", geometry, str(cfg.cache_root))
    if tag not in protocol.memo:
        crops = study.crops(cfg, protocol.images.path.tolist(), geometry)[0]
        protocol.memo[tag] = occlusion.dataset_mean_colour(crops)
    return protocol.memo[tag]


def example_image(protocol: Protocol, maps: Sequence[PersonMaps], seed: int) -> tuple[str, str]:
    """(person, held-out path) of the figures' example: a seeded draw among the occluded people that every
    one of ``maps`` has a person map of (one with a single generation image has none)."""
    people = sorted(p for p in protocol.occluded if all(p in m for m in maps))
    if not people:
        raise ValueError("no occluded person has a person map in every model: nothing to show")
    who = people[np.random.default_rng(seed).integers(len(people))]
    return who, protocol.occluded[who][0]


def occlusion_examples(cfg: Config, maps: PersonMaps, protocol: Protocol, path: str, geometry: str,
                       fills: Sequence[str], q: float = 1.0, random_seed: int = 0,
                       blur_sigma: float = occlusion.DEFAULT_BLUR_SIGMA) -> dict[str, np.ndarray]:
    """What the runner feeds the model for one occluded image: "original", "map", "critical" and "random"
    masks, and "critical:<fill>" / "random:<fill>" crops (same masks, seeds and fills as the runner)."""
    identity = next(p for p, paths in protocol.occluded.items() if path in paths)
    crops, keys = study.crops(cfg, [path], geometry)
    warped = eval_maps(cfg, maps, [identity], [path], geometry)
    size = crops.shape[1]
    masks = {"critical": critical_mask(warped, q),
             "random": random_masks(keys, size, top_k(q, size * size), mask_seed(cfg, random_seed))}
    colour = _mean_colour(cfg, protocol, geometry) if "mean" in fills else None
    out = {"original": crops[0], "map": warped[0], **{k: m[0] for k, m in masks.items()}}
    for sel, m in masks.items():
        for kind in fills:
            out[f"{sel}:{kind}"] = occlude(crops, m, kind, keys, cfg.seed, colour, blur_sigma)[0][0]
    return out


def label(run: OcclusionRun, **columns) -> OcclusionRun:
    """The run with constant columns (e.g. dataset, subset, a sweep's setting) on its image and pair rows."""
    return OcclusionRun(run.images.assign(**columns), run.pairs.assign(**columns), run.forward_passes,
                        run.seconds, run.skipped_people)


def restrict(run: OcclusionRun, paths: set[str]) -> OcclusionRun:
    """The run's rows of occluded images in ``paths`` (e.g. the people RISE explained)."""
    return OcclusionRun(run.images[run.images.path.isin(paths)].reset_index(drop=True),
                        run.pairs[run.pairs.path.isin(paths)].reset_index(drop=True))
