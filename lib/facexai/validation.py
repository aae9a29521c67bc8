"""Occlusion validation of person maps: hide each person's critical pixels on held-out images, measure.

Protocol (notebooks 06, 07, 08): per person, the images are split (seeded) into GENERATION images,
whose maps make the person map, and held-out EVALUATION images, which are occluded (the in-sample
variant occludes the generation images instead, whose clean embeddings are then part of the
reference, and is labelled so in every row). The critical mask is the top
q% pixels of the person map in the evaluation model's crop geometry (warped through each image's
alignment matrices when the map was made in another geometry); the baseline occludes as many
uniformly random pixels. Measures per occluded image: cosine to the person's reference (the
L2-normalised mean embedding of the generation images), clean and occluded; per verification pair
with the occluded image on one side, the score against the decision threshold fixed on the run's
clean pairs (recognition rate over genuine pairs, balanced accuracy over genuine and impostor pairs).

The runner takes any person maps ``{identity: (S, S) map}`` in a named source geometry, so every
explainer (LEAM, the Grad-CAM family, RISE) goes through the same code.
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

from facexai import align, embed, metrics, occlusion, saliency, study
from facexai.explain.topk import critical_mask, top_k
from facexai.models.registry import FaceModel
from facexai.profiles import REPO_ROOT, Config
from facexai.published import PUBLISHED, WORKS

log = logging.getLogger(__name__)

CONDITION = ["model", "generation_model", "explainer", "in_sample", "fill", "q", "selection"]
IMAGE_COLUMNS = [*CONDITION, "seed", "identity", "path", "n_pixels", "clean_cos", "occluded_cos", "drop"]
PAIR_COLUMNS = [*CONDITION, "seed", "identity", "path", "partner", "same", "clean_score", "occluded_score",
                "threshold"]
CRITICAL_SEED = -1  # the seed column of critical-selection rows (random rows hold their seed)


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


def _hash_int(*parts: object) -> int:
    """A stable 63-bit integer of the parts (seeds per image, independent of batch order)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _built_pairs(images: pd.DataFrame, occluded: Mapping[str, Sequence[str]], n_impostors: int,
                 seed: int) -> pd.DataFrame:
    """Each occluded image with every other image of its person (genuine) and ``n_impostors`` others' images."""
    by_person = images.groupby("identity").path.apply(sorted).to_dict()
    rows = []
    for person, paths in sorted(occluded.items()):
        pool = sorted(images.path[images.identity != person])
        for path in paths:
            rows += [(person, path, other, True) for other in by_person[person] if other != path]
            rng = np.random.default_rng(_hash_int(seed, "impostors", path))
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


def generation_maps(cfg: Config, model: FaceModel, protocol: Protocol, *, explainer: str = "leam",
                    layers: list[str] | None = None, map_images: str = "generation",
                    **map_kwargs) -> dict[str, np.ndarray]:
    """Overall person maps (mean over layers) {identity: (S, S)} from the generation images only.

    ``map_images="generation"`` computes the per-image maps on the generation images alone, so the
    held-out images do not even enter the maps' targets (leave-one-out references need >= 2
    generation images: people with fewer are left out, with a logged count). ``"all"`` reuses the
    maps of every selected image (notebook 03's cache) and still averages only the generation
    images' maps; the held-out images' embeddings then enter those maps' reference embeddings.
    """
    if map_images not in ("generation", "all"):
        raise ValueError(f"map_images must be 'generation' or 'all', got {map_images!r}")
    images = protocol.images
    if map_images == "generation":
        keep = [p for p, paths in protocol.generation.items() if len(paths) >= 2]
        dropped = len(protocol.generation) - len(keep)
        if dropped:
            log.warning("%d people have fewer than 2 generation images and get no map", dropped)
        wanted = {p for person in keep for p in protocol.generation[person]}
        images = images[images.path.isin(wanted)].reset_index(drop=True)
    ms = saliency.image_maps(cfg, model, images, explainer=explainer, layers=layers, **map_kwargs)
    ids, maps = ms.person_maps(paths=protocol.generation_paths)
    return dict(zip(ids, ms.overall(maps)))


def clean_embeddings(cfg: Config, model: FaceModel, protocol: Protocol) -> dict[str, np.ndarray]:
    """Raw clean embeddings of the selected images and of the run's pair images (cached as 01 and 03 do)."""
    tag = ("clean", model.spec.name, str(getattr(model.spec.weights, "sha256", "")), str(cfg.cache_root))
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


def eval_maps(cfg: Config, person_maps: Mapping[str, np.ndarray], source_geometry: str, identities: Sequence[str],
              paths: Sequence[str], geometry: str) -> np.ndarray:
    """Each image's person map in ``geometry`` (N, S, S): as is in the same geometry, else warped.

    Across geometries the map is carried into every image's crop through that image's own
    alignment matrices (:func:`occlusion.warp_mask_to`), not resized.
    """
    size = align.GEOMETRIES[source_geometry].size
    stack = np.stack([np.asarray(person_maps[who], dtype=np.float32) for who in identities])
    if stack.shape[1:] != (size, size):
        raise ValueError(f"person maps are {stack.shape[1:]}, but geometry {source_geometry!r} crops are "
                         f"{size}x{size}: pass maps in their own crop geometry")
    if source_geometry == geometry:
        return stack
    res = align.align_paths([Path(p) for p in paths], [source_geometry, geometry], cfg.cache_root, device=cfg.device)
    rows = res.index(paths)
    return occlusion.warp_mask_to(stack, res.matrices[source_geometry][rows], res.matrices[geometry][rows],
                                  align.GEOMETRIES[geometry].size)


def _mask_seed(cfg: Config, k: int) -> int:
    """Seed of the k-th random-pixel draw of a run."""
    return cfg.seed * 100_003 + k


def random_masks(keys: Sequence[str], size: int, k: int, seed: int) -> np.ndarray:
    """(N, S, S) masks of exactly ``k`` random pixels, each drawn from (seed, the image's key): order-independent."""
    return np.stack([occlusion.random_mask((size, size), k, _hash_int(seed, "random mask", key)) for key in keys])


def occlude(crops: np.ndarray, masks: np.ndarray, kind: str, keys: Sequence[str], seed: int = 0,
            mean_colour: np.ndarray | None = None,
            blur_sigma: float = occlusion.DEFAULT_BLUR_SIGMA) -> tuple[np.ndarray, list[str]]:
    """Occluded crops and their cache keys (crop key + fill + mask digest); random-fill noise is per image."""
    out = np.empty_like(crops)
    okeys = []
    for i, key in enumerate(keys):
        noise_seed = _hash_int(seed, "fill noise", key)
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


def occlusion_experiment(cfg: Config, model: FaceModel, person_maps: Mapping[str, np.ndarray],
                         source_geometry: str, protocol: Protocol, *, explainer: str = "leam",
                         generation_model: str | None = None, fills: Sequence[str] = ("black",),
                         qs: Sequence[float] = (1.0,), random_seeds: Sequence[int] = (0,),
                         blur_sigma: float = occlusion.DEFAULT_BLUR_SIGMA, batch_size: int = 32) -> OcclusionRun:
    """Occlude every occluded image of ``protocol`` with its person's critical / random pixels, on ``model``.

    ``person_maps`` {identity: (S, S)} are in ``source_geometry`` (e.g. the generation model's);
    people without a map are skipped (counted). For each q, fill and selection (critical, random
    seed k) one batched, cached embedding pass. ``generation_model`` labels the rows (default: the
    evaluation model). Counts the model's actual forward passes (cache hits need none).
    """
    unknown = set(fills) - set(occlusion.FILLS)
    if unknown:
        raise ValueError(f"unknown fill kinds {sorted(unknown)}; valid: {list(occlusion.FILLS)}")
    start, passes = time.perf_counter(), [0]
    hook = model.register_forward_hook(lambda _m, _i, out: passes.__setitem__(0, passes[0] + len(out)))
    try:
        run = _run(cfg, model, person_maps, source_geometry, protocol, explainer,
                   generation_model or model.spec.name, fills, qs, random_seeds, blur_sigma, batch_size)
    finally:
        hook.remove()
    run.forward_passes, run.seconds = passes[0], time.perf_counter() - start
    return run


def _run(cfg: Config, model: FaceModel, person_maps: Mapping[str, np.ndarray], source_geometry: str,
         protocol: Protocol, explainer: str, generation_model: str, fills: Sequence[str], qs: Sequence[float],
         random_seeds: Sequence[int], blur_sigma: float, batch_size: int) -> OcclusionRun:
    geometry, size = model.spec.geometry, align.GEOMETRIES[model.spec.geometry].size
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
    maps = eval_maps(cfg, person_maps, source_geometry, identities, paths, geometry)
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
    base = {"model": model.spec.name, "generation_model": generation_model, "explainer": explainer,
            "in_sample": protocol.in_sample}
    image_frames, pair_frames = [], []
    todo = [(q, f) for q in qs for f in fills]
    for q, kind in tqdm(todo, desc=f"occlusion {generation_model}->{model.spec.name}", unit="condition"):
        k = top_k(q, size * size)
        selections = [("critical", CRITICAL_SEED, critical_mask(maps, q))]
        selections += [("random", s, random_masks(keys, size, k, _mask_seed(cfg, s))) for s in random_seeds]
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


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _mean_colour(cfg: Config, protocol: Protocol, geometry: str) -> np.ndarray:
    """The "mean" fill's colour: mean RGB of the selected images' clean crops in ``geometry``."""
    tag = ("mean colour", geometry, str(cfg.cache_root))
    if tag not in protocol.memo:
        crops = study.crops(cfg, protocol.images.path.tolist(), geometry)[0]
        protocol.memo[tag] = occlusion.dataset_mean_colour(crops)
    return protocol.memo[tag]


def occlusion_examples(cfg: Config, person_maps: Mapping[str, np.ndarray], source_geometry: str,
                       protocol: Protocol, path: str, geometry: str, fills: Sequence[str], q: float = 1.0,
                       random_seed: int = 0, blur_sigma: float = occlusion.DEFAULT_BLUR_SIGMA) -> dict[str, np.ndarray]:
    """What the runner feeds the model for one occluded image: "original", "map", "critical" and "random"
    masks, and "critical:<fill>" / "random:<fill>" crops (same masks, seeds and fills as the runner)."""
    identity = next(p for p, paths in protocol.occluded.items() if path in paths)
    crops, keys = study.crops(cfg, [path], geometry)
    maps = eval_maps(cfg, person_maps, source_geometry, [identity], [path], geometry)
    size = crops.shape[1]
    masks = {"critical": critical_mask(maps, q),
             "random": random_masks(keys, size, top_k(q, size * size), _mask_seed(cfg, random_seed))}
    colour = _mean_colour(cfg, protocol, geometry) if "mean" in fills else None
    out = {"original": crops[0], "map": maps[0], **{k: m[0] for k, m in masks.items()}}
    for sel, m in masks.items():
        for kind in fills:
            out[f"{sel}:{kind}"] = occlude(crops, m, kind, keys, cfg.seed, colour, blur_sigma)[0][0]
    return out


def explainer_layers(model: FaceModel, explainer: str, layers: Sequence[str] = (), cam_layer: int = -2
                     ) -> list[str] | None:
    """Layers to explain: ``layers`` if given; else every named layer for LEAM (None) and, for the
    Grad-CAM family, the single named layer ``cam_layer`` (default the second-to-last)."""
    if layers:
        return list(layers)
    if explainer == "leam" or explainer not in saliency.CAM_EXPLAINERS:
        return None
    return [list(model.layers)[cam_layer]]


def resolve_files(spec: str) -> list[Path]:
    """Comma-separated file names, relative ones taken from the repository root."""
    paths = [Path(s.strip()).expanduser() for s in spec.split(",") if s.strip()]
    return [p if p.is_absolute() else (REPO_ROOT / p).resolve() for p in paths]


def _rate_ci(accepted: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    return metrics.bootstrap_ci(accepted.astype(float), n=n_boot, seed=seed) if len(accepted) else (np.nan, np.nan)


def summarize(run: OcclusionRun, by: Sequence[str] = (), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per condition (and ``by`` columns, e.g. a subgroup): mean drop with bootstrap CI, recognition, balanced accuracy.

    Random selections pool their seeds: an image's drop is its mean over seeds, and the CI resamples
    images. The recognition rate is the share of genuine pairs still accepted at the clean
    threshold (CI resamples pairs); balanced accuracy weighs genuine acceptance and impostor
    rejection equally. ``clean_*`` columns give the same on unoccluded images.
    """
    keys = [*CONDITION, *by]
    pairs_by = {k: g for k, g in run.pairs.groupby(keys, sort=False, dropna=False)}
    rows = []
    for cond, grp in run.images.groupby(keys, sort=False, dropna=False):
        per_image = grp.groupby("path")["drop"].mean().to_numpy()
        lo, hi = metrics.bootstrap_ci(per_image, n=n_boot, seed=seed)
        p = pairs_by.get(cond, run.pairs.iloc[:0])
        gen, imp = p[p.same], p[~p.same]
        thr = float(p.threshold.iloc[0]) if len(p) else np.nan
        row = dict(zip(keys, cond))
        row.update(mean_drop=float(per_image.mean()), ci_lo=lo, ci_hi=hi,
                   recognition_rate=metrics.recognition_rate(gen.occluded_score, thr) if len(gen) else np.nan,
                   balanced_accuracy=(metrics.balanced_accuracy(gen.occluded_score, imp.occluded_score, thr)
                                      if len(gen) and len(imp) else np.nan),
                   n_images=len(per_image))
        rr_lo, rr_hi = _rate_ci((gen.occluded_score >= thr).to_numpy(), n_boot, seed)
        row.update(rr_ci_lo=rr_lo, rr_ci_hi=rr_hi,
                   clean_recognition_rate=metrics.recognition_rate(gen.clean_score, thr) if len(gen) else np.nan,
                   clean_balanced_accuracy=(metrics.balanced_accuracy(gen.clean_score, imp.clean_score, thr)
                                            if len(gen) and len(imp) else np.nan),
                   mean_clean_cos=float(grp.clean_cos.mean()), mean_occluded_cos=float(grp.occluded_cos.mean()),
                   n_seeds=grp.seed.nunique(), n_genuine=len(gen), n_impostor=len(imp), threshold=thr)
        rows.append(row)
    return pd.DataFrame(rows)


def transfer_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Generation x evaluation rows (Table-2 form); random selections become generation ``"random"`` (the floor)."""
    crit = summary[summary.selection == "critical"].assign(generation=lambda d: d.generation_model)
    rand = summary[summary.selection == "random"].assign(generation="random")
    rand = rand.drop_duplicates(["model", "explainer", "fill", "q", "in_sample"])
    out = pd.concat([crit, rand], ignore_index=True).rename(columns={"model": "evaluation"})
    cols = ["generation", "evaluation", "explainer", "fill", "q", "recognition_rate", "balanced_accuracy",
            "mean_drop", "n_images", "in_sample", "ci_lo", "ci_hi", "clean_recognition_rate"]
    return out[cols].reset_index(drop=True)


def published_comparison(summary: pd.DataFrame, fill: str = "black") -> pd.DataFrame:
    """The published occlusion drops (:data:`facexai.published.PUBLISHED`) next to this run's, per model.

    Same-model maps, top 1%, ``fill`` (the LEAM abstract does not name its fill type).
    """
    pub = PUBLISHED["occlusion_drop"]
    own = summary[(summary.model == summary.generation_model) & np.isclose(summary.q, 1.0) & (summary.fill == fill)]
    rows = []
    for selection, key in (("critical", "map"), ("random", "random")):
        for r in own[own.selection == selection].itertuples():
            rows.append({"claim": "occlusion_drop", "selection": selection, "published": pub.values[key],
                         "model": r.model, "explainer": r.explainer, "in_sample": r.in_sample, "fill": r.fill,
                         "ours": r.mean_drop, "ci_lo": r.ci_lo, "ci_hi": r.ci_hi, "n_images": r.n_images,
                         "work": WORKS[pub.work], "where": pub.where, "statement": pub.text})
    return pd.DataFrame(rows)


def read_attributes(files: Sequence[str | Path], images: pd.DataFrame) -> tuple[pd.Series, dict]:
    """Per-image groups {path: group} of the selected ``images`` from an external annotation, and a report.

    ``files``: one CSV with columns ``path_or_name,group`` (a full path, an image file name or a
    person's name), or several name lists (one image file name a line; the group is the file's
    stem without ``_names``, e.g. female_names.txt -> female). Images labelled with two groups
    (conflicts) and images in no list (gaps) are left out and counted in the report.
    """
    files = [Path(f) for f in files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"attribute file(s) not found: {missing}")
    if len(files) == 1 and files[0].suffix.lower() == ".csv":
        table = pd.read_csv(files[0], dtype=str)
        if not {"path_or_name", "group"} <= set(table.columns):
            raise ValueError(f"{files[0]}: needs columns path_or_name,group; has {list(table.columns)}")
    elif all(f.suffix.lower() == ".txt" for f in files):
        table = pd.concat([pd.DataFrame({"path_or_name": [s.strip() for s in f.read_text().splitlines() if s.strip()],
                                         "group": f.stem.removesuffix("_names")}) for f in files])
    else:
        raise ValueError(f"attribute files must be one .csv (path_or_name,group) or name lists (.txt), got {files}")
    labels: dict[str, set[str]] = {}
    for key, group in zip(table.path_or_name, table.group):
        labels.setdefault(key, set()).add(group)
    groups, conflicts, gaps = {}, [], []
    for who, path in zip(images.identity, images.path):
        found = set().union(*(labels.get(k, set()) for k in (path, Path(path).name, who)))
        if len(found) == 1:
            groups[path] = found.pop()
        elif found:
            conflicts.append(Path(path).name)
        else:
            gaps.append(Path(path).name)
    series = pd.Series(groups, name="group", dtype=str)
    report = {"files": [str(f) for f in files], "entries": len(table),
              "entries_in_two_groups": sum(len(g) > 1 for g in labels.values()),
              "selected_images": len(images), "labelled": len(series), "conflicts": len(conflicts),
              "gaps": len(gaps), "conflict_examples": conflicts[:5], "gap_examples": gaps[:5],
              "groups": series.value_counts().to_dict()}
    return series, report


def with_groups(run: OcclusionRun, groups: pd.Series) -> OcclusionRun:
    """The run restricted to occluded images that have a group, with a ``group`` column."""
    images = run.images[run.images.path.isin(groups.index)].assign(group=lambda d: d.path.map(groups))
    pairs = run.pairs[run.pairs.path.isin(groups.index)].assign(group=lambda d: d.path.map(groups))
    return OcclusionRun(images.reset_index(drop=True), pairs.reset_index(drop=True))
