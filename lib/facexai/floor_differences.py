"""Each technique's occlusion result minus the random-pixel floor, with a paired bootstrap 95% interval.

Raw recognition rates after occluding 1% of the pixels sit near 1.0 for every technique; the claim
is the *difference* from as many random pixels on the same images. Both selections occlude the same
held-out images, so the difference is paired: the interval resamples people (with all their
occluded images and pairs), and the technique and the floor are recomputed on the same resample.
Notebook 08 plots the result with :func:`facexai.plots.floor_difference_plot`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from facexai import metrics
from facexai.occlusion_runner import OcclusionRun

FLOOR = "random"  # the selection (and technique label) of the random-pixel floor
#: Columns of :func:`floor_differences` after its ``by`` columns.
COLUMNS = ["model", "fill", "q", "technique", "measure", "technique_value", "floor_value", "difference",
           "ci_lo", "ci_hi", "n_people", "n_images", "n_boot"]
MEASURES = ("recognition_rate", "mean_drop")


def _per_person(run: OcclusionRun, measure: str, keys: list[str]) -> pd.DataFrame:
    """Per condition (``keys`` + selection + explainer) and person: the measure's numerator and denominator.

    recognition_rate: accepted genuine pairs and genuine pairs (over every random seed); mean_drop:
    the sum of the images' cosine drops (each image's mean over seeds) and the number of images.
    """
    cond = [*keys, "selection", "explainer"]
    if measure == "recognition_rate":
        genuine = run.pairs[run.pairs.same.astype(bool)]
        genuine = genuine.assign(accepted=(genuine.occluded_score >= genuine.threshold).astype(float), one=1.0)
        per = genuine.groupby([*cond, "identity"], dropna=False).agg(num=("accepted", "sum"), den=("one", "sum"),
                                                                     images=("path", "nunique"))
    elif measure == "mean_drop":
        per_image = run.images.groupby([*cond, "identity", "path"], dropna=False)["drop"].mean()
        per = per_image.groupby([*cond, "identity"], dropna=False).agg(num="sum", den="size")
        per["images"] = per["den"]
    else:
        raise ValueError(f"measure must be one of {MEASURES}, got {measure!r}")
    return per.reset_index()


def _paired_bootstrap(tech: pd.DataFrame, floor: pd.DataFrame, n_boot: int, seed: int
                      ) -> tuple[float, float, float, float, float, int]:
    """Ratio estimates of technique and floor on their common people, their difference and its percentile 95% CI."""
    both = tech.merge(floor, on="identity", suffixes=("_t", "_f"))
    num_t, den_t = both.num_t.to_numpy(float), both.den_t.to_numpy(float)
    num_f, den_f = both.num_f.to_numpy(float), both.den_f.to_numpy(float)
    value_t, value_f = num_t.sum() / den_t.sum(), num_f.sum() / den_f.sum()
    idx = np.random.default_rng(seed).integers(0, len(both), (n_boot, len(both)))
    with np.errstate(invalid="ignore", divide="ignore"):
        diffs = num_t[idx].sum(1) / den_t[idx].sum(1) - num_f[idx].sum(1) / den_f[idx].sum(1)
    lo, hi = metrics.percentile_interval(diffs)
    return value_t, value_f, value_t - value_f, float(lo), float(hi), int(both.images_t.sum())


def floor_differences(run: OcclusionRun, measures: Sequence[str] = MEASURES, by: Sequence[str] = ("dataset",),
                      n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per ``by`` value (e.g. data set), model, fill and q: each critical selection's (technique's) measure minus the
    random floor's on the same people, with a paired percentile bootstrap 95% interval over people.

    The floor is restricted to the people the technique occluded (a technique run on a subset, as RISE
    in the small profiles, is compared on that subset). Conditions without a floor are left out.
    Returns the ``by`` columns, then :data:`COLUMNS`.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    keys = [*by, "model", "fill", "q"]
    missing = sorted(set(by) - (set(run.pairs.columns) & set(run.images.columns)))
    if missing:
        raise ValueError(f"the run has no column {missing}: label its rows (as notebook 08 labels each data set)")
    rows = []
    for measure in measures:
        per = _per_person(run, measure, keys)
        for cond, part in per.groupby(keys, sort=False, dropna=False):
            floor = part[part.selection == FLOOR]
            if floor.empty:
                continue
            floor = floor.groupby("identity", as_index=False)[["num", "den", "images"]].sum()  # one floor per condition
            for technique, tech in part[part.selection != FLOOR].groupby("explainer", sort=False):
                if not set(tech.identity) & set(floor.identity):
                    continue
                values = _paired_bootstrap(tech, floor, n_boot, seed)
                n_people = len(set(tech.identity) & set(floor.identity))
                rows.append({**dict(zip(keys, cond)), "technique": technique, "measure": measure,
                             **dict(zip(["technique_value", "floor_value", "difference", "ci_lo", "ci_hi", "n_images"],
                                        values)), "n_people": n_people, "n_boot": n_boot})
    return pd.DataFrame(rows, columns=[*by, *COLUMNS])
