"""Are the maps personal? Bhattacharyya coefficients (BC) of LEAM maps: same person vs different people,
per model and layer, and the same person across architectures (notebook 05).

The coefficient itself lives in :mod:`facexai.metrics`; this module draws the image pairs, carries
maps into one geometry, and summarises. The tables it returns are what notebook 05 writes and the
claims ledger reads; their columns are the ``*_COLUMNS`` constants beside each producer.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from facexai import align, metrics, published
from facexai.explain import critical_mask
from facexai.occlusion import warp_mask_to
from facexai.person_maps import OVERALL, PersonMaps
from facexai.profiles import Config
from facexai.saliency import MapSet

SAME, DIFFERENT = "same", "different"  # the groups of image pairs (bc_same_different, bc_tests)
SAME_PERSON, DIFFERENT_PEOPLE = "same person", "different people"  # the groups of person-map pairs (cross model)

#: bc_same_different.csv and bc_critical_same_different.csv (:func:`summarize_bc`): one row per
#: model, map (a layer or ``overall``) and group (SAME / DIFFERENT); mean BC with its bootstrap 95% CI
#: over pairs (fractions in [0, 1]), n pairs.
BC_SAME_DIFFERENT_COLUMNS = ("model", "layer", "group", "mean", "ci_lo", "ci_hi", "n")
BC_SAME_DIFFERENT_NUMERIC = ("mean", "ci_lo", "ci_hi", "n")
#: bc_tests.csv and bc_critical_tests.csv (:func:`summarize_bc`): one-sided Mann-Whitney same >
#: different per model and map, with the rank-biserial correlation and Cohen's d.
BC_TESTS_COLUMNS = ("model", "layer", "U", "p_value", "rank_biserial", "cohens_d")
BC_TESTS_NUMERIC = ("U", "p_value", "rank_biserial", "cohens_d")
#: bc_cross_model.csv (:func:`cross_model_bc`): every ordered model pair, group SAME_PERSON /
#: DIFFERENT_PEOPLE, mean BC of overall person maps in one geometry, bootstrap 95% CI, n.
BC_CROSS_MODEL_COLUMNS = ("model_a", "model_b", "group", "mean", "ci_lo", "ci_hi", "n")
BC_CROSS_MODEL_NUMERIC = ("mean", "ci_lo", "ci_hi", "n")
#: bc_published_comparison.csv (:func:`published_bc_comparison`): our overall-map BC beside the LEAM work's range.
BC_PUBLISHED_COLUMNS = ("model", "group", "ours", "ci_lo", "ci_hi", "published_lo", "published_hi",
                        "within_published_range")
BC_PUBLISHED_NUMERIC = ("ours", "ci_lo", "ci_hi", "published_lo", "published_hi")
#: :func:`overall_summary`: one row per model, the overall map's groups side by side with the test.
BC_OVERALL_COLUMNS = ("model", SAME, DIFFERENT, "difference", "U", "p_value", "rank_biserial", "cohens_d")


def published_ranges() -> dict[str, tuple[float, float]]:
    """The LEAM work's overall-map BC range per group (SAME, DIFFERENT), read from :mod:`facexai.published`."""
    values = published.PUBLISHED["bc_same_vs_different"].values
    return {SAME: (values["same_lo"], values["same_hi"]), DIFFERENT: (values["diff_lo"], values["diff_hi"])}


# ---------------------------------------------------------------- pairs of images

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


# ---------------------------------------------------------------- summaries

def summarize_bc(model: str, maps: Sequence[str], same: np.ndarray, different: np.ndarray, seed: int = 0,
                 n_boot: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """BC of same-person (n, M) and different-people (n', M) pairs per map (layers, overall): tidy means
    with bootstrap 95% CIs (:data:`BC_SAME_DIFFERENT_COLUMNS`), and per map the one-sided Mann-Whitney
    test same > different with effect sizes (:data:`BC_TESTS_COLUMNS`)."""
    same, different = np.asarray(same).reshape(len(same), -1), np.asarray(different).reshape(len(different), -1)
    if same.shape[1] != len(maps) or different.shape[1] != len(maps):
        raise ValueError(f"{len(maps)} maps but BC arrays of {same.shape} and {different.shape}")
    means, tests = [], []
    for m, layer in enumerate(maps):
        for group, values in ((SAME, same[:, m]), (DIFFERENT, different[:, m])):
            lo, hi = metrics.bootstrap_ci(values, n=n_boot, seed=seed)
            means.append((model, layer, group, float(values.mean()), lo, hi, len(values)))
        tests.append({"model": model, "layer": layer, **metrics.compare_samples(same[:, m], different[:, m])})
    return pd.DataFrame(means, columns=list(BC_SAME_DIFFERENT_COLUMNS)), pd.DataFrame(tests, columns=list(BC_TESTS_COLUMNS))


def overall_summary(means: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """Per model, the overall map's same and different mean BC, their difference and the test (:data:`BC_OVERALL_COLUMNS`)."""
    wide = means[means.layer == OVERALL].pivot(index="model", columns="group", values="mean")
    out = wide.join(tests[tests.layer == OVERALL].set_index("model").drop(columns="layer")).reset_index()
    return out.assign(difference=out[SAME] - out[DIFFERENT])[list(BC_OVERALL_COLUMNS)]


def published_bc_comparison(means: pd.DataFrame) -> pd.DataFrame:
    """Our overall-map BC, same person and different people, per model beside the LEAM work's ranges."""
    ranges = published_ranges()
    rows = []
    for (model, group), row in means[means.layer == OVERALL].set_index(["model", "group"]).iterrows():
        lo, hi = ranges[group]
        rows.append((model, group, row["mean"], row.ci_lo, row.ci_hi, lo, hi, lo <= row["mean"] <= hi))
    return pd.DataFrame(rows, columns=list(BC_PUBLISHED_COLUMNS))


# ---------------------------------------------------------------- one model: same person vs different people

@dataclass
class ModelBC:
    """One model's BC tables (whole maps and critical regions) and its values per pair of the overall map."""

    model: str
    maps: list[str]  # the MapSet's layers, then OVERALL
    means: pd.DataFrame  # BC_SAME_DIFFERENT_COLUMNS
    tests: pd.DataFrame  # BC_TESTS_COLUMNS
    critical_means: pd.DataFrame  # the same, of the overall maps' top q% pixels (layer OVERALL only)
    critical_tests: pd.DataFrame
    values: pd.DataFrame  # model, group, bc: the overall-map BC of every pair (for the distribution figure)
    n_same: int
    n_different: int


def same_vs_different(ms: MapSet, q: float = 1.0, seed: int = 0, max_same_per_person: int | None = None,
                      n_boot: int = 2000) -> ModelBC:
    """BC of :func:`sample_pairs`' same-person and different-people image pairs of one model's maps.

    Every layer and the overall map (mean over layers), and, as a sensitivity check, the overall
    maps' top ``q``% pixels as uniform distributions (BC = fraction of critical pixels shared).
    """
    same, different = sample_pairs(ms.images.identity, seed, max_same_per_person)
    pairs = np.vstack([same, different])
    overall = ms.overall(ms.maps)
    bc = np.hstack([metrics.pair_bhattacharyya(ms.maps, pairs),
                    metrics.pair_bhattacharyya(overall[:, None], pairs)])  # layers, then overall
    maps = [*ms.layers, OVERALL]
    means, tests = summarize_bc(ms.model, maps, bc[:len(same)], bc[len(same):], seed, n_boot)
    top = metrics.pair_bhattacharyya(critical_mask(overall, q).astype(np.float32)[:, None], pairs)
    critical_means, critical_tests = summarize_bc(ms.model, [OVERALL], top[:len(same)], top[len(same):], seed, n_boot)
    values = _pair_values(ms.model, len(same), len(different), bc[:, -1])
    return ModelBC(ms.model, maps, means, tests, critical_means, critical_tests, values, len(same), len(different))


def overall_pair_bc(ms: MapSet, seed: int = 0, max_same_per_person: int | None = None) -> pd.DataFrame:
    """:attr:`ModelBC.values` alone (model, group, bc of the overall maps of every :func:`sample_pairs` pair),
    without the per-layer BC, the bootstraps and the critical regions of :func:`same_vs_different`."""
    same, different = sample_pairs(ms.images.identity, seed, max_same_per_person)
    bc = metrics.pair_bhattacharyya(ms.overall(ms.maps)[:, None], np.vstack([same, different]))
    return _pair_values(ms.model, len(same), len(different), bc[:, 0])


def _pair_values(model: str, n_same: int, n_different: int, bc: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"model": model, "group": [SAME] * n_same + [DIFFERENT] * n_different, "bc": bc})


def combine(results: Sequence[ModelBC]) -> dict[str, pd.DataFrame]:
    """The models' tables stacked: means, tests, critical_means, critical_tests, values."""
    fields = ("means", "tests", "critical_means", "critical_tests", "values")
    return {f: pd.concat([getattr(r, f) for r in results], ignore_index=True) for f in fields}


# ---------------------------------------------------------------- across architectures

def common_person_maps(cfg: Config, ms: MapSet, geometry: str, target: str) -> PersonMaps:
    """Each individual's overall map in the ``target`` geometry (one layer, :data:`OVERALL`): every
    image's overall map (made in the model's ``geometry``) is carried through that image's own
    alignment matrices, normalised to sum 1, and the person map is the mean over the person's
    images (normalised)."""
    paths = ms.images.path.tolist()
    aligned = align.align_paths(paths, sorted({geometry, target}), cfg.cache_root, device=cfg.device)
    idx = aligned.index(paths)
    overall = ms.overall(ms.maps).astype(np.float32)  # float16 mean (float32 inside) avoids a full copy
    warped = warp_mask_to(overall, aligned.matrices[geometry][idx], aligned.matrices[target][idx],
                          align.GEOMETRIES[target].size)
    warped /= warped.sum(axis=(-2, -1), keepdims=True)
    return PersonMaps.from_image_maps(ms.model, target, ms.explainer, [OVERALL], ms.images, warped[:, None])


def cross_model_bc(person_maps: Sequence[PersonMaps], seed: int = 0, n_boot: int = 2000) -> pd.DataFrame:
    """BC of two models' overall person maps (one geometry, the same individuals), every ordered model pair.

    Tidy rows (:data:`BC_CROSS_MODEL_COLUMNS`): group SAME_PERSON (P pairs) and DIFFERENT_PEOPLE (all
    P(P-1) pairs of distinct individuals). For model_a == model_b the SAME_PERSON row is 1 by
    construction and DIFFERENT_PEOPLE is the within-model baseline.
    """
    if len({(p.geometry, tuple(p.identities)) for p in person_maps}) > 1:
        raise ValueError("the models' person maps cover different individuals or geometries: "
                         + "; ".join(f"{p.model}: {p.geometry}, {len(p.identities)} individuals" for p in person_maps))
    rows = []
    for a in person_maps:
        for b in person_maps:
            bc = metrics.pairwise_bhattacharyya(a.overall(), b.overall())
            groups = {SAME_PERSON: np.diag(bc), DIFFERENT_PEOPLE: bc[~np.eye(len(bc), dtype=bool)]}
            for group, values in groups.items():
                lo, hi = metrics.bootstrap_ci(values, n=n_boot, seed=seed)
                rows.append((a.model, b.model, group, float(values.mean()), lo, hi, len(values)))
    return pd.DataFrame(rows, columns=list(BC_CROSS_MODEL_COLUMNS))


def cross_model_grid(cross: pd.DataFrame, group: str, models: Sequence[str]) -> pd.DataFrame:
    """model_a x model_b grid of the mean BC of one group of :func:`cross_model_bc`, in ``models`` order."""
    grid = cross[cross.group == group].pivot(index="model_a", columns="model_b", values="mean")
    return grid.loc[list(models), list(models)]


def layer_profile(means: pd.DataFrame, model: str, maps: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per group, one model's mean BC and CI per map in ``maps`` order (input to output, then overall)."""
    rows = means[means.model == model]
    return {group: rows[rows.group == group].set_index("layer").loc[list(maps)] for group in (SAME, DIFFERENT)}

