"""Where the relevant pixels lie: region label maps of the study's crops, the share of a map's top q%
pixels per face region, and the image pairs and geometry warps behind Bhattacharyya comparisons.

Notebooks 02 (parsing), 04 (region statistics) and 05 (Bhattacharyya) tell the story; the numbers
they are compared with, reported by the LEAM work, are typed once, in :mod:`facexai.published`.
Regions are :data:`facexai.parsing.CLASS_NAMES` (sides are the subject's own, see facexai.parsing).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from facexai import align, metrics, parsing, study
from facexai.cache import cache_dir, file_sha256, key, load_npz, save_npz
from facexai.explain import critical_mask
from facexai.occlusion import warp_mask_to
from facexai.profiles import Config
from facexai.published import PUBLISHED as _PUB
from facexai.published import WORKS
from facexai.saliency import MapSet

log = logging.getLogger(__name__)

#: Numbers REPORTED BY THE LEAM WORK (Layer Embedding Activation Mapping for face recognition, as
#: summarised in this study's issue 4), typed here and nowhere else. Not results of this study.
#: The LEAM work's numbers these notebooks compare with, read from :mod:`facexai.published`.
PUBLISHED: dict[str, object] = {
    "source": WORKS["LEAM"],
    "n_models": 9,
    "nose_share": (_PUB["nose_share"].values["lo"], _PUB["nose_share"].values["hi"]),
    "bc_same": (_PUB["bc_same_vs_different"].values["same_lo"], _PUB["bc_same_vs_different"].values["same_hi"]),
    "bc_different": (_PUB["bc_same_vs_different"].values["diff_lo"], _PUB["bc_same_vs_different"].values["diff_hi"]),
}

REGIONS: list[str] = list(parsing.CLASS_NAMES)
OTHER = parsing.CLASS_IDS["other"]
PARSERS = (*parsing.METHODS, "bisenet")
#: How a PERSON map's critical pixels are assigned to regions (see :func:`person_region_shares`).
LABEL_SOURCES: dict[str, str] = {
    "person": "the person map's top q% pixels against each of the person's parsed images' label maps, "
              "averaged over those images (i.e. against the per-pixel label frequencies)",
    "person_mode": "the person map's top q% pixels against the per-pixel majority label of the person's "
                   "parsed images (ties: the lower class id)",
    "image": "each image map's own top q% pixels against that image's labels, averaged over the person's images",
}


# ---------------------------------------------------------------- label maps of the study's crops

def parse_crops(crops: np.ndarray, keys: Sequence[str], parser: str = "mediapipe",
                cache_root: str | Path | None = None, progress: bool = True) -> parsing.ParseResult:
    """Cached label maps of crops with any parser: landmark parsers per crop key, BiSeNet per crop set."""
    if parser in parsing.METHODS:
        return parsing.cached_parse(crops, keys, parser, cache_root, progress)
    if parser != "bisenet":
        raise ValueError(f"unknown parser {parser!r}; valid: {list(PARSERS)}")
    from facexai import parsing_bisenet
    from facexai.models.registry import weights_dir

    weights = parsing_bisenet.BISENET_WEIGHTS.locate(weights_dir())  # WeightsError naming file and source
    definition = key(file_sha256(weights), parsing_bisenet.BISENET_TO_CLASS, parsing_bisenet.INPUT_SIZE)
    path = cache_dir(cache_root) / "parsing" / f"bisenet-{definition[:8]}" / f"{key(list(keys))}.npz"
    if not path.exists():
        result = parsing_bisenet.parse_bisenet(crops, parsing_bisenet.load_bisenet(weights), progress=progress)
        save_npz(path, labels=result.labels)
    labels = load_npz(path)["labels"]
    return parsing.ParseResult(labels, np.zeros((len(labels), 0, 2), np.float32), np.ones(len(labels), bool),
                               "bisenet")


def parse_images(cfg: Config, paths: Sequence[str], geometry: str, parser: str = "mediapipe",
                 progress: bool = True) -> parsing.ParseResult:
    """Label maps of the aligned ``geometry`` crops of ``paths`` (read from, or added to, the parser cache)."""
    crops, keys = study.crops(cfg, list(paths), geometry)
    return parse_crops(crops, keys, parser, cfg.cache_root, progress)


def label_maps(cfg: Config, paths: Sequence[str], geometry: str, parser: str = "mediapipe"
               ) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N, H, W) uint8, ok (N,) bool) of ``paths`` in ``geometry``: what notebooks 04+ intersect maps with."""
    result = parse_images(cfg, paths, geometry, parser)
    return result.labels, result.ok


def polygon_table() -> pd.DataFrame:
    """The landmark polygons of every landmark parser: one row per (parser, region), in paint order."""
    rows = [{"parser": method, "region": name, "paint_order": parsing.PAINT_ORDER.index(name) + 1,
             "filled_as": "convex hull" if region.hull else "polygon", "n_points": len(region.indices),
             "landmark_indices": " ".join(map(str, region.indices))}
            for method, table in parsing.REGIONS.items() for name, region in table.items()]
    return pd.DataFrame(rows).sort_values(["parser", "paint_order"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- region shares of critical pixels

def one_hot(labels: np.ndarray) -> np.ndarray:
    """Label maps (..., H, W) as per-pixel class distributions (..., H, W, R) float32."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= len(REGIONS):
        raise ValueError(f"labels must be integer class ids 0..{len(REGIONS) - 1} ({REGIONS})")
    return np.eye(len(REGIONS), dtype=np.float32)[labels]


def region_shares(critical: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Fraction of the critical pixels of each mask (..., H, W) in each region (..., R); sums to 1 over R.

    ``probs`` (..., H, W, R) gives each pixel's class distribution (:func:`one_hot` of a label map, or
    label frequencies); leading dimensions broadcast.
    """
    critical = np.asarray(critical)
    if critical.dtype != bool:
        raise ValueError(f"critical must be a boolean mask, got {critical.dtype}")
    probs = np.asarray(probs, dtype=np.float32)
    if probs.shape[-3:-1] != critical.shape[-2:] or probs.shape[-1] != len(REGIONS):
        raise ValueError(f"masks {critical.shape} and class distributions {probs.shape} do not fit "
                         f"(need (..., H, W) and (..., H, W, {len(REGIONS)}))")
    n = critical.sum(axis=(-2, -1))
    if (n == 0).any():
        raise ValueError("a mask has no critical pixels")
    hw = critical.shape[-2] * critical.shape[-1]
    flat = critical.reshape(*critical.shape[:-2], 1, hw).astype(np.float32)
    counts = (flat @ probs.reshape(*probs.shape[:-3], hw, len(REGIONS)))[..., 0, :]  # broadcasting matmul
    return counts / np.expand_dims(n, -1)


def _with_overall(ms: MapSet, maps: np.ndarray) -> np.ndarray:
    """[..., layer, H, W] maps followed by their overall map (mean over layers) as one more 'layer'."""
    return np.concatenate([maps, ms.overall(maps)[..., None, :, :]], axis=-3)


@dataclass
class RegionShares:
    """Per individual, the share of each map's critical pixels per region, and the regions' area shares."""

    model: str
    identities: list[str]
    maps: list[str]  # the MapSet's layers, then "overall"
    shares: np.ndarray  # (P, M, R), sums to 1 over R
    area: np.ndarray  # (P, R) each region's share of the image area under the same label source
    n_images: np.ndarray  # (P,) parsed images behind each individual
    source: str
    q: float


def person_region_shares(ms: MapSet, labels: np.ndarray, ok: np.ndarray, q: float = 1.0,
                         source: str = "person", progress: bool = True) -> RegionShares:
    """Region shares of the top ``q``% pixels of each individual's maps (every layer and the overall map).

    ``labels`` / ``ok`` are row-aligned with ``ms.images`` (:func:`label_maps` of ``ms.images.path``);
    images the parser could not read are left out of both the maps and the labels, and individuals
    with none left are dropped (logged). ``source`` is a key of :data:`LABEL_SOURCES`.
    """
    if source not in LABEL_SOURCES:
        raise ValueError(f"unknown label source {source!r}; valid: {list(LABEL_SOURCES)}")
    labels, ok = np.asarray(labels), np.asarray(ok, bool)
    if labels.shape != (len(ms.maps), *ms.maps.shape[-2:]) or ok.shape != (len(ms.maps),):
        raise ValueError(f"labels {labels.shape} / ok {ok.shape} do not match the maps {ms.maps.shape}")
    identity = ms.images.identity.to_numpy()
    kept, shares, areas, counts = [], [], [], []
    for who in tqdm(sorted(set(identity)), desc=f"region shares {ms.model}", unit="person", disable=not progress):
        rows = np.flatnonzero((identity == who) & ok)
        if not len(rows):
            continue
        probs = one_hot(labels[rows])  # (n, H, W, R)
        if source == "image":
            crit = critical_mask(_with_overall(ms, ms.maps[rows].astype(np.float32)), q)  # (n, M, H, W)
            share = region_shares(crit, probs[:, None]).mean(0)
            area = probs.mean((0, 1, 2))
        else:
            _, person = ms.person_maps(ms.images.path.iloc[rows].tolist())
            freq = probs.mean(0)
            if source == "person_mode":
                freq = one_hot(freq.argmax(-1))
            share = region_shares(critical_mask(_with_overall(ms, person[0]), q), freq)
            area = freq.mean((0, 1))
        kept.append(who)
        shares.append(share)
        areas.append(area)
        counts.append(len(rows))
    dropped = len(set(identity)) - len(kept)
    if dropped:
        log.warning("%s: %d individuals have no parsed image and are left out", ms.model, dropped)
    if not kept:
        raise ValueError(f"{ms.model}: no individual has a parsed image")
    return RegionShares(ms.model, kept, [*ms.layers, "overall"], np.stack(shares), np.stack(areas),
                        np.array(counts), source, q)


def summarize_shares(rs: RegionShares, seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """Tidy table: model, layer, region, share (mean over individuals), bootstrap 95% CI, area share,
    enrichment (= mean share / mean area share; NaN for a region with no area), n_individuals."""
    area = rs.area.mean(0)
    rows = []
    for m, layer in enumerate(rs.maps):
        for r, region in enumerate(REGIONS):
            values = rs.shares[:, m, r]
            lo, hi = metrics.bootstrap_ci(values, n=n_boot, seed=seed)
            rows.append({"model": rs.model, "layer": layer, "region": region, "share": float(values.mean()),
                         "ci_lo": lo, "ci_hi": hi, "area_share": float(area[r]),
                         "enrichment": float(values.mean() / area[r]) if area[r] > 0 else np.nan,
                         "n_individuals": len(values)})
    return pd.DataFrame(rows)


def spread(shares: np.ndarray, threshold: float = 0.10) -> pd.DataFrame:
    """How spread each distribution (P, R) of critical pixels is over the FACE regions (``other`` set aside).

    Per row: on_face (share not in ``other``), n_regions (face regions holding >= ``threshold`` of the
    on-face critical pixels), entropy (of the on-face distribution, / log of the number of face
    regions: 0 = one region, 1 = even), top_region and top_share (of the on-face pixels).
    """
    shares = np.asarray(shares, dtype=np.float64)
    if shares.ndim != 2 or shares.shape[1] != len(REGIONS):
        raise ValueError(f"shares must be (P, {len(REGIONS)}), got {shares.shape}")
    face_ids = [i for i in range(len(REGIONS)) if i != OTHER]
    face = shares[:, face_ids]
    on_face = face.sum(1)
    seen = on_face > 0
    dist = face / np.where(seen, on_face, 1.0)[:, None]
    entropy = -np.where(dist > 0, dist * np.log(np.where(dist > 0, dist, 1.0)), 0.0).sum(1) / np.log(len(face_ids))
    return pd.DataFrame({"on_face": on_face,
                         "n_regions": np.where(seen, (dist >= threshold).sum(1), 0),
                         "entropy": np.where(seen, entropy, np.nan),
                         "top_region": np.where(seen, np.array(REGIONS)[face_ids][dist.argmax(1)], "none"),
                         "top_share": np.where(seen, dist.max(1), np.nan)})


def summarize_spread(rs: RegionShares, threshold: float = 0.10, seed: int = 0, n_boot: int = 2000) -> dict:
    """One model's spread of the OVERALL map: means over individuals (with 95% CIs) of :func:`spread`."""
    per = spread(rs.shares[:, rs.maps.index("overall")], threshold).dropna()
    row = {"model": rs.model, "n_individuals": len(per), "threshold": threshold,
           "on_face": float(per.on_face.mean())}
    for col in ("n_regions", "entropy", "top_share"):
        lo, hi = metrics.bootstrap_ci(per[col].to_numpy(), n=n_boot, seed=seed)
        row.update({col: float(per[col].mean()), f"{col}_ci_lo": lo, f"{col}_ci_hi": hi})
    row["share_with_2plus_regions"] = float((per.n_regions >= 2).mean())
    row["most_common_top_region"] = per.top_region.mode().iloc[0]
    return row


def published_nose_comparison(summary: pd.DataFrame) -> pd.DataFrame:
    """Our nose share of the overall map's critical pixels per model beside the LEAM work's range."""
    lo, hi = PUBLISHED["nose_share"]
    ours = summary[(summary.layer == "overall") & (summary.region == "nose")]
    return pd.DataFrame({"model": ours.model.to_numpy(), "quantity": "nose share of critical pixels (overall map)",
                         "ours": ours.share.to_numpy(), "ci_lo": ours.ci_lo.to_numpy(), "ci_hi": ours.ci_hi.to_numpy(),
                         "published_lo": lo, "published_hi": hi,
                         "within_published_range": ours.share.between(lo, hi).to_numpy()})


# ---------------------------------------------------------------- Bhattacharyya: pairs and common geometry

def sample_pairs(identities: Sequence[str], seed: int = 0, max_same_per_person: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs (n, 2) of images of one individual and as many pairs of two individuals.

    Same: every pair of two different images of a person (at most ``max_same_per_person`` per person,
    drawn from ``seed``). Different: distinct image pairs drawn uniformly among all pairs whose
    identities differ, from the same generator, until the counts match.
    """
    identities = np.asarray(identities)
    rng = np.random.default_rng(seed)
    same = []
    for who in sorted(set(identities.tolist())):
        combos = list(combinations(np.flatnonzero(identities == who).tolist(), 2))
        if max_same_per_person is not None and len(combos) > max_same_per_person:
            combos = [combos[i] for i in sorted(rng.choice(len(combos), max_same_per_person, replace=False))]
        same.extend(combos)
    n = len(same)
    _, sizes = np.unique(identities, return_counts=True)
    available = len(identities) * (len(identities) - 1) // 2 - int((sizes * (sizes - 1) // 2).sum())
    if n > available:
        raise ValueError(f"{n} same-person pairs but only {available} different-person pairs exist")
    chosen: dict[tuple[int, int], None] = {}
    while len(chosen) < n:
        a, b = rng.integers(0, len(identities), (2, 2 * (n - len(chosen)) + 8))
        for i, j in zip(a.tolist(), b.tolist()):
            if identities[i] != identities[j] and len(chosen) < n:
                chosen.setdefault((min(i, j), max(i, j)), None)
    return np.array(same, dtype=np.int64).reshape(-1, 2), np.array(list(chosen), dtype=np.int64).reshape(-1, 2)


def common_person_maps(cfg: Config, ms: MapSet, geometry: str, target: str) -> tuple[list[str], np.ndarray]:
    """Each individual's overall map in the ``target`` geometry: every image's overall map (made in the
    model's ``geometry``) is carried through that image's own alignment matrices, normalised to sum 1,
    and the person map is the mean over the person's images (normalised)."""
    paths = ms.images.path.tolist()
    aligned = align.align_paths(paths, sorted({geometry, target}), cfg.cache_root, device=cfg.device)
    idx = aligned.index(paths)
    overall = ms.overall(ms.maps).astype(np.float32)  # float16 mean (float32 inside) avoids a full copy
    warped = warp_mask_to(overall, aligned.matrices[geometry][idx], aligned.matrices[target][idx],
                          align.GEOMETRIES[target].size)
    warped /= warped.sum(axis=(-2, -1), keepdims=True)
    identities = sorted(ms.images.identity.unique())
    person = np.stack([warped[(ms.images.identity == who).to_numpy()].mean(0) for who in identities])
    return identities, person / person.sum(axis=(-2, -1), keepdims=True)


def cross_model_bc(person_maps: dict[str, np.ndarray], seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """BC of two models' person maps (one geometry, same individuals in the same order), every model pair.

    Tidy rows model_a, model_b, group ("same person": P pairs; "different people": all P(P-1) pairs
    of distinct individuals), mean, bootstrap 95% CI, n. For model_a == model_b the "same person" row is
    1 by construction and "different people" is the within-model baseline.
    """
    rows = []
    for a, pa in person_maps.items():
        for b, pb in person_maps.items():
            if pa.shape != pb.shape:
                raise ValueError(f"person maps of {a} {pa.shape} and {b} {pb.shape} differ: warp them to one geometry")
            bc = metrics.pairwise_bhattacharyya(pa, pb)
            groups = {"same person": np.diag(bc), "different people": bc[~np.eye(len(bc), dtype=bool)]}
            for group, values in groups.items():
                lo, hi = metrics.bootstrap_ci(values, n=n_boot, seed=seed)
                rows.append({"model_a": a, "model_b": b, "group": group, "mean": float(values.mean()),
                             "ci_lo": lo, "ci_hi": hi, "n": len(values)})
    return pd.DataFrame(rows)


def summarize_bc(model: str, maps: Sequence[str], same: np.ndarray, different: np.ndarray, seed: int = 0,
                 n_boot: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BC of same-person (n, M) and different-people (n', M) pairs per map (layers, overall): tidy means
    with bootstrap 95% CIs (model, layer, group, mean, ci_lo, ci_hi, n), and per map the one-sided
    Mann-Whitney test same > different with effect sizes (model, layer, U, p_value, rank_biserial, cohens_d)."""
    same, different = np.asarray(same).reshape(len(same), -1), np.asarray(different).reshape(len(different), -1)
    if same.shape[1] != len(maps) or different.shape[1] != len(maps):
        raise ValueError(f"{len(maps)} maps but BC arrays of {same.shape} and {different.shape}")
    means, tests = [], []
    for m, layer in enumerate(maps):
        for group, values in (("same", same[:, m]), ("different", different[:, m])):
            lo, hi = metrics.bootstrap_ci(values, n=n_boot, seed=seed)
            means.append({"model": model, "layer": layer, "group": group, "mean": float(values.mean()),
                          "ci_lo": lo, "ci_hi": hi, "n": len(values)})
        tests.append({"model": model, "layer": layer, **metrics.compare_samples(same[:, m], different[:, m])})
    return pd.DataFrame(means), pd.DataFrame(tests)


def published_bc_comparison(means: pd.DataFrame) -> pd.DataFrame:
    """Our overall-map BC, same person and different people, per model beside the LEAM work's ranges."""
    rows = []
    for (model, group), row in means[means.layer == "overall"].set_index(["model", "group"]).iterrows():
        lo, hi = PUBLISHED[f"bc_{group}"]
        rows.append({"model": model, "group": group, "ours": row["mean"], "ci_lo": row.ci_lo, "ci_hi": row.ci_hi,
                     "published_lo": lo, "published_hi": hi, "within_published_range": lo <= row["mean"] <= hi})
    return pd.DataFrame(rows)
