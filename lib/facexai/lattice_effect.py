"""The lattice treatment's effect on the study's numbers: each number with and without anti-aliasing.

Per model, the same people are measured twice, on plain and on anti-aliased LEAM maps: the nose
share of each person map's top q% pixels (as notebook 04), BC of same-person and different-people
image pairs of the overall maps (as 05), and the cosine drop after occluding each person's top q%
pixels on held-out images, beside as many random pixels (as 06). The treatment's effect is the
paired difference (anti-aliased minus plain) over the same units (people, pairs, images), with a
percentile bootstrap interval; units that do not match between the two arms are an error.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from facexai import bhattacharyya, metrics, occlusion_runner, person_maps, regions
from facexai.models.registry import FaceModel
from facexai.occlusion_protocol import Protocol
from facexai.profiles import Config, Method
from facexai.saliency import MapSet

NOSE = "nose"
#: Columns of :func:`paired_differences`' rows.
DIFFERENCE_COLUMNS = ["model", "measure", "plain", "anti_aliased", "difference", "ci_lo", "ci_hi", "n"]


@dataclass(frozen=True)
class Measures:
    """One model's numbers under one treatment, each indexed by the unit it is paired on."""

    nose: pd.Series  # per identity: nose share of the overall person map's critical pixels
    bc: pd.DataFrame  # per image pair, in sample_pairs' order: group, bc (overall maps)
    drop: pd.Series  # per occluded image path: cosine drop, critical pixels occluded
    random_drop: pd.Series  # per occluded image path: cosine drop, as many random pixels occluded
    images: tuple[str, ...]  # the map set's image paths: the BC pairs are the same only on the same images


def measure(cfg: Config, model: FaceModel, ms: MapSet, protocol: Protocol, method: Method,
            antialias: bool) -> Measures:
    """The three numbers on one model's LEAM maps ``ms`` (made with ``antialias``), and its generation
    maps of ``protocol`` occluded with the method's fill at its q, random seed 0."""
    labels, ok = regions.label_maps(cfg, ms.images.path.tolist(), model.spec.geometry)
    shares = regions.person_region_shares(ms, labels, ok, method.q)
    nose = shares.shares[:, shares.maps.index(person_maps.OVERALL), regions.REGIONS.index(NOSE)]
    bc = bhattacharyya.overall_pair_bc(ms, cfg.seed)
    generation = person_maps.generation_maps(cfg, model, protocol, "leam", antialias=antialias)
    run = occlusion_runner.occlusion_experiment(cfg, model, generation, protocol, fills=[method.fill],
                                                qs=[method.q], random_seeds=[0])
    drops = {selection: run.images[run.images.selection == selection].set_index("path")["drop"].sort_index()
             for selection in (occlusion_runner.CRITICAL, occlusion_runner.RANDOM)}
    return Measures(pd.Series(nose, index=shares.identities, name=NOSE),
                    bc[["group", "bc"]],
                    drops[occlusion_runner.CRITICAL], drops[occlusion_runner.RANDOM], tuple(ms.images.path))


def summary_row(model: str, antialias: bool, m: Measures) -> dict:
    """One row of the effect table: the arm's means and its units' counts."""
    bc = m.bc.groupby("group").bc.mean()
    return {"model": model, "antialias": antialias, "nose_share": float(m.nose.mean()),
            **{f"bc_{group.split()[0]}": float(value) for group, value in bc.items()},
            "drop_critical": float(m.drop.mean()), "drop_random": float(m.random_drop.mean()),
            "n_people": len(m.nose), "n_occluded": len(m.drop)}


def _paired(measure_name: str, plain: pd.Series, treated: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The two arms' values on the same units, in the same order; ValueError naming the measure otherwise."""
    if not plain.index.equals(treated.index):
        only = sorted(set(map(str, plain.index.symmetric_difference(treated.index))))[:3]
        raise ValueError(f"{measure_name}: the two arms are not measured on the same units "
                         f"({len(plain)} vs {len(treated)}; e.g. {only or 'the same units in another order'})")
    return plain.to_numpy(float), treated.to_numpy(float)


def paired_differences(model: str, plain: Measures, treated: Measures, seed: int = 0,
                       n_boot: int = 1000) -> list[dict]:
    """Anti-aliased minus plain, per measure: the arms' means, the mean paired difference, its percentile
    bootstrap 95% interval over the units (people, pairs of each group, occluded images) and their number."""
    if plain.images != treated.images:
        raise ValueError(f"{model}: the two arms' maps are of different images, so their BC pairs differ")
    if not plain.bc.group.equals(treated.bc.group):
        raise ValueError(f"{model}: the two arms' BC pairs differ")
    measures = [("nose share", plain.nose, treated.nose)]
    for group in sorted(plain.bc.group.unique()):
        rows = plain.bc.group == group
        measures.append((f"BC {group}", plain.bc.bc[rows], treated.bc.bc[rows]))
    measures.append(("cosine drop (critical)", plain.drop, treated.drop))
    out = []
    for name, a, b in measures:
        before, after = _paired(name, a, b)
        diff = after - before
        lo, hi = metrics.bootstrap_ci(diff, n=n_boot, seed=seed)
        out.append({"model": model, "measure": name, "plain": float(before.mean()), "anti_aliased": float(after.mean()),
                    "difference": float(diff.mean()), "ci_lo": lo, "ci_hi": hi, "n": len(diff)})
    return out


def treatment_effect(cfg: Config, models: Mapping[str, FaceModel], leam_maps: Mapping[tuple[str, bool], MapSet],
                     protocol: Protocol, method: Method) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each model's two arms (``leam_maps[name, antialias]``): the effect table (one row per model and arm)
    and the paired differences (one row per model and measure)."""
    effect, differences = [], []
    for name, model in models.items():
        arms = {aa: measure(cfg, model, leam_maps[name, aa], protocol, method, aa) for aa in (False, True)}
        effect += [summary_row(name, aa, arms[aa]) for aa in (False, True)]
        differences += paired_differences(name, arms[False], arms[True], cfg.seed)
    return pd.DataFrame(effect), pd.DataFrame(differences, columns=DIFFERENCE_COLUMNS)
