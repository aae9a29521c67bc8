"""Where the relevant pixels lie: region label maps of the study's crops (notebook 02) and the share of
a map's top q% pixels per face region (notebook 04).

The numbers they are compared with, reported by the LEAM work, are typed once, in
:mod:`facexai.published`. Regions are :data:`facexai.parsing.CLASS_NAMES` (sides are the subject's
own, see facexai.parsing). The tables the notebooks write have the ``*_COLUMNS`` constants beside
each producer (shares are fractions, never percent); the claims ledger reads them.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from facexai import metrics, parsing, published, study
from facexai.cache import cache_dir, file_sha256, key, read_npz, save_npz
from facexai.explain import critical_mask
from facexai.person_maps import OVERALL  # the overall map (mean over layers), after a MapSet's layer names
from facexai.profiles import Config
from facexai.saliency import MapSet

log = logging.getLogger(__name__)

REGIONS: list[str] = list(parsing.CLASS_NAMES)
OTHER = parsing.CLASS_IDS["other"]
PARSERS = (*parsing.METHODS, "bisenet")
NOSE = "nose"  # the region whose share the LEAM work reports
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
    cached = read_npz(path, ("labels",))  # None: absent, or corrupt (logged, deleted): recompute
    if cached is None or len(cached["labels"]) != len(crops):
        labels = parsing_bisenet.parse_bisenet(crops, parsing_bisenet.load_bisenet(weights), progress=progress).labels
        save_npz(path, labels=labels)
    else:
        labels = cached["labels"]
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


#: polygon_definitions.csv (:func:`polygon_table`).
POLYGON_COLUMNS = ("parser", "region", "paint_order", "filled_as", "n_points", "landmark_indices")


def polygon_table() -> pd.DataFrame:
    """The landmark polygons of every landmark parser: one row per (parser, region), in paint order."""
    rows = [(method, name, parsing.PAINT_ORDER.index(name) + 1, "convex hull" if region.hull else "polygon",
             len(region.indices), " ".join(map(str, region.indices)))
            for method, table in parsing.REGIONS.items() for name, region in table.items()]
    return (pd.DataFrame(rows, columns=list(POLYGON_COLUMNS)).sort_values(["parser", "paint_order"], kind="stable")
            .reset_index(drop=True))


#: parse_counts.csv and parse_failures.csv (:func:`parse_report`): per geometry, images parsed and not
#: found; one row per image whose face the parser did not find, with the reason.
PARSE_COUNTS_COLUMNS = ("geometry", "images", "parsed", "not found (excluded)", "notes")
PARSE_FAILURES_COLUMNS = ("geometry", "identity", "image", "reason")


def parse_report(parsed: Mapping[str, parsing.ParseResult], images: pd.DataFrame
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(counts, failures) of label maps per geometry, row-aligned with ``images`` [identity, path]."""
    for geometry, res in parsed.items():
        if len(res.ok) != len(images):
            raise ValueError(f"{geometry}: {len(res.ok)} label maps for {len(images)} images")
    counts = pd.DataFrame([(g, len(res.ok), int(res.ok.sum()), len(res.failed), len(res.notes))
                           for g, res in parsed.items()], columns=list(PARSE_COUNTS_COLUMNS))
    failures = pd.DataFrame([(g, images.identity.iloc[i], Path(images.path.iloc[i]).name, res.reasons.get(i, ""))
                             for g, res in parsed.items() for i in res.failed], columns=list(PARSE_FAILURES_COLUMNS))
    return counts, failures


#: area_shares.csv (:func:`area_table`): each region's share of the image area (a fraction, mean over
#: the parsed images), per geometry.
AREA_SHARES_COLUMNS = ("geometry", "region", "area_share", "n_images")
AREA_SHARES_NUMERIC = ("area_share", "n_images")


def area_table(parsed: Mapping[str, parsing.ParseResult]) -> pd.DataFrame:
    """Per geometry and region, the mean share of the image area over the parsed images."""
    return pd.concat([res.area_shares().mean().rename("area_share").rename_axis("region").reset_index()
                      .assign(geometry=g, n_images=int(res.ok.sum())) for g, res in parsed.items()]
                     )[list(AREA_SHARES_COLUMNS)]


def parser_agreement_columns(parser: str, other: str) -> tuple[str, ...]:
    """parser_agreement.csv (:func:`parser_agreement`): per geometry and class, pooled and mean per-image
    IoU of two parsers' label maps, each parser's mean area share, and the images both parsed."""
    return ("geometry", "class", "iou", "iou_image_mean", f"share_{parser}", f"share_{other}", "n_images")


def parser_agreement(cfg: Config, paths: Sequence[str], parsed: Mapping[str, parsing.ParseResult], parser: str,
                     other: str) -> pd.DataFrame:
    """Agreement of ``parser`` (its label maps ``parsed`` per geometry) with ``other`` on the images both parsed."""
    if other not in parsing.METHODS or other == parser:
        raise ValueError(f"compare with a landmark parser other than {parser!r}: {list(parsing.METHODS)}")
    rows = []
    for g, res in parsed.items():
        alt = parse_images(cfg, paths, g, other)
        both = res.ok & alt.ok
        table = parsing.compare_parsers(res.labels[both], alt.labels[both], (parser, other))
        rows.append(table.reset_index().assign(geometry=g, n_images=int(both.sum())))
    return pd.concat(rows)[list(parser_agreement_columns(parser, other))]


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


def check_rows(ms: MapSet, labels: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` (N, H, W) / ``ok`` (N,) as arrays, or a ValueError unless they are row-aligned with ``ms.maps``."""
    labels, ok = np.asarray(labels), np.asarray(ok, bool)
    if labels.shape != (len(ms.maps), *ms.maps.shape[-2:]) or ok.shape != (len(ms.maps),):
        raise ValueError(f"labels {labels.shape} / ok {ok.shape} do not match the maps {ms.maps.shape}")
    return labels, ok


def parsed_rows(ms: MapSet, ok: np.ndarray, who: str) -> np.ndarray:
    """Rows of ``ms.images`` (and of its label maps) that show ``who`` and were parsed (``ok``)."""
    return np.flatnonzero((ms.images.identity.to_numpy() == who) & np.asarray(ok, bool))


def parsed_person_maps(ms: MapSet, rows: np.ndarray) -> np.ndarray:
    """The person map [layer, H, W] of one individual's ``rows``: the mean of those images' maps only."""
    return ms.persons(ms.images.path.iloc[rows].tolist()).maps[0]


@dataclass
class RegionShares:
    """Per individual, the share of each map's critical pixels per region, and the regions' area shares."""

    model: str
    identities: list[str]
    maps: list[str]  # the MapSet's layers, then OVERALL
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
    labels, ok = check_rows(ms, labels, ok)
    identity = ms.images.identity.to_numpy()
    kept, shares, areas, counts = [], [], [], []
    for who in tqdm(sorted(set(identity)), desc=f"region shares {ms.model}", unit="person", disable=not progress):
        rows = parsed_rows(ms, ok, who)
        if not len(rows):
            continue
        probs = one_hot(labels[rows])  # (n, H, W, R)
        if source == "image":
            crit = critical_mask(_with_overall(ms, ms.maps[rows].astype(np.float32)), q)  # (n, M, H, W)
            share = region_shares(crit, probs[:, None]).mean(0)
            area = probs.mean((0, 1, 2))
        else:
            person = parsed_person_maps(ms, rows)
            freq = probs.mean(0)
            if source == "person_mode":
                freq = one_hot(freq.argmax(-1))
            share = region_shares(critical_mask(_with_overall(ms, person), q), freq)
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
    return RegionShares(ms.model, kept, [*ms.layers, OVERALL], np.stack(shares), np.stack(areas),
                        np.array(counts), source, q)


def critical_example(cfg: Config, ms: MapSet, labels: np.ndarray, ok: np.ndarray, who: str, geometry: str,
                     q: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """What one individual's critical region looks like: (crop of the first parsed image, its label map,
    the top ``q``% pixels of the overall person map of the parsed images); None when none was parsed."""
    labels, ok = check_rows(ms, labels, ok)
    rows = parsed_rows(ms, ok, who)
    if not len(rows):
        return None
    crop, _ = study.crops(cfg, [ms.images.path.iloc[rows[0]]], geometry)
    return crop[0], labels[rows[0]], critical_mask(ms.overall(parsed_person_maps(ms, rows)), q)


#: region_shares.csv (:func:`summarize_shares`): one row per model, map (a layer or OVERALL) and region;
#: share of the critical pixels (a fraction, mean over individuals) with its bootstrap 95% CI, the
#: region's area share, enrichment = share / area share, n_individuals.
REGION_SHARES_COLUMNS = ("model", "layer", "region", "share", "ci_lo", "ci_hi", "area_share", "enrichment",
                         "n_individuals")
REGION_SHARES_NUMERIC = ("share", "ci_lo", "ci_hi", "area_share", "enrichment", "n_individuals")


def summarize_shares(rs: RegionShares, seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """Tidy table (:data:`REGION_SHARES_COLUMNS`): share = mean over individuals, enrichment = mean share /
    mean area share (NaN for a region with no area)."""
    area = rs.area.mean(0)
    rows = []
    for m, layer in enumerate(rs.maps):
        for r, region in enumerate(REGIONS):
            values = rs.shares[:, m, r]
            lo, hi = metrics.bootstrap_ci(values, n=n_boot, seed=seed)
            rows.append((rs.model, layer, region, float(values.mean()), lo, hi, float(area[r]),
                         float(values.mean() / area[r]) if area[r] > 0 else np.nan, len(values)))
    return pd.DataFrame(rows, columns=list(REGION_SHARES_COLUMNS))


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


_SPREAD_MEASURES = ("n_regions", "entropy", "top_share")  # the per-individual measures averaged with a CI
#: spread.csv (:func:`summarize_spread`): one row per model, the overall map's spread over the face
#: regions: means over individuals (fractions, counts) with bootstrap 95% CIs.
SPREAD_COLUMNS = ("model", "n_individuals", "threshold", "on_face",
                  *(f"{m}{end}" for m in _SPREAD_MEASURES for end in ("", "_ci_lo", "_ci_hi")),
                  "share_with_2plus_regions", "most_common_top_region")
SPREAD_NUMERIC = SPREAD_COLUMNS[1:-1]


def summarize_spread(results: Sequence[RegionShares], threshold: float = 0.10, seed: int = 0,
                     n_boot: int = 2000) -> pd.DataFrame:
    """Per model, the spread of the OVERALL map (:data:`SPREAD_COLUMNS`): means over individuals of
    :func:`spread`, with 95% CIs."""
    rows = []
    for rs in results:
        per = spread(rs.shares[:, rs.maps.index(OVERALL)], threshold).dropna()
        row = {"model": rs.model, "n_individuals": len(per), "threshold": threshold,
               "on_face": float(per.on_face.mean())}
        for col in _SPREAD_MEASURES:
            lo, hi = metrics.bootstrap_ci(per[col].to_numpy(), n=n_boot, seed=seed)
            row.update({col: float(per[col].mean()), f"{col}_ci_lo": lo, f"{col}_ci_hi": hi})
        row["share_with_2plus_regions"] = float((per.n_regions >= 2).mean())
        row["most_common_top_region"] = per.top_region.mode().iloc[0]
        rows.append(row)
    return pd.DataFrame(rows, columns=list(SPREAD_COLUMNS))


#: published_comparison.csv (:func:`published_nose_comparison`): our nose share beside the LEAM work's range.
NOSE_COMPARISON_COLUMNS = ("model", "quantity", "ours", "ci_lo", "ci_hi", "published_lo", "published_hi",
                           "within_published_range")
NOSE_COMPARISON_NUMERIC = ("ours", "ci_lo", "ci_hi", "published_lo", "published_hi")


def published_nose_range() -> tuple[float, float]:
    """The LEAM work's range of the nose share of the critical pixels, read from :mod:`facexai.published`."""
    values = published.PUBLISHED["nose_share"].values
    return values["lo"], values["hi"]


def published_nose_comparison(summary: pd.DataFrame) -> pd.DataFrame:
    """Our nose share of the overall map's critical pixels per model beside the LEAM work's range."""
    lo, hi = published_nose_range()
    ours = summary[(summary.layer == OVERALL) & (summary.region == NOSE)]
    return pd.DataFrame({"model": ours.model.to_numpy(), "quantity": "nose share of critical pixels (overall map)",
                         "ours": ours.share.to_numpy(), "ci_lo": ours.ci_lo.to_numpy(), "ci_hi": ours.ci_hi.to_numpy(),
                         "published_lo": lo, "published_hi": hi,
                         "within_published_range": ours.share.between(lo, hi).to_numpy()},
                        columns=list(NOSE_COMPARISON_COLUMNS))
