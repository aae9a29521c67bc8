"""The claims ledger: each claim of the two reproduced works beside this study's number on the same measure.

A claim is a small declarative spec: its wording (from :mod:`facexai.published`, the only place the
works' numbers live), the table(s) it reads (written by earlier notebooks, relative to
``figures/<run>/``), a function measuring our numbers from them, and its rule. Every rule is
judged twice, and the verdict follows from both:

- **direction**: does the effect point the way the work says, against the right baseline (the
  random floor, the different-people BC, the clean rate) and beyond the 95% intervals;
- **magnitude**: is our estimate's interval compatible with the published value or range, within
  the tolerance stated in :data:`TOLERANCES`.

A measurement that cannot discriminate (an interval spanning both answers, a ceiling where
nothing moves the rate, n below :data:`MIN_IMAGES`) is **not judgeable**; a claim the run's
tables cannot answer at all is **not testable here**. Every row records the files it read
(path, SHA-256, modification time), checked against the run's stamp (:mod:`facexai.runstamp`).

Every table is read against the schema its producer declares (:data:`SCHEMAS`: the producers'
``*_COLUMNS`` constants) and matched on the values the producers write (their named constants:
groups, selections, techniques, the loss sweep's labels); a table lacking a declared column is a
:class:`SchemaError` naming the table and the column, never a guess.
"""
from __future__ import annotations

import html
import inspect
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from facexai import (bhattacharyya, cache, layer_similarity, occlusion_runner, occlusion_summary, profiles,
                     protocol, provenance, regions)
from facexai import generalizability as xai
from facexai import runstamp, sanity, techniques
from facexai.bhattacharyya import DIFFERENT, DIFFERENT_PEOPLE, SAME, SAME_PERSON
from facexai.metrics import Z95, wilson
from facexai.person_maps import OVERALL
from facexai.published import PUBLISHED, TABLE1, TABLE2, TABLE2_DATASET, WORKS, Published

REPRODUCED, PARTLY, NOT_REPRODUCED = "reproduced", "partly", "not reproduced"
NOT_JUDGEABLE, NOT_TESTABLE = "not judgeable", "not testable here"
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_JUDGEABLE, NOT_TESTABLE)
# direction outcomes (per case and overall)
HOLDS, FAILS, MIXED, UNCLEAR, NO_DIRECTION = "holds", "fails", "mixed", "not judgeable", "n/a (a level)"
# magnitude outcomes
COMPATIBLE, OFF, FAR_OFF, NO_NUMBER = "compatible", "off", "off by more than x3", "no published number"

#: Tolerances and minimums of every rule, each with the reason for its value (printed in the rules table).
TOLERANCES: dict[str, tuple[float, str]] = {
    "MAG_TOL": (0.25, "relative slack around a published value or range: the works' own between-model spread "
                      "(nose 18.9-29.7% is +-22% around its centre, BC same 0.32-0.57 +-28%)"),
    "FAR_FACTOR": (3.0, "beyond a factor 3 from the published value (half an order of magnitude) the size is "
                        "not 'partly' reproduced: the verdict is 'not reproduced' even when the direction holds"),
    "MIN_IMAGES": (20, "below 20 held-out images a 95% interval of a recognition rate near 0.8 spans more than "
                       "+-0.15 (Wilson), wider than most differences the works report"),
    "MIN_CASES": (2, "a 'best setting' claim needs >= 2 informative technique x model cases, not 1 of 1"),
    "MIN_REGIONS": (2.0, "'multiple facial fragments': at least two regions each holding >= 10% of a person's "
                         "critical pixels"),
    "NEGLIGIBLE": (0.05, "'negligible impact': occluding the pixels lowers the recognition rate by less than 0.05 "
                         "(the Wilson half-width of a rate of 0.9 on ~140 images)"),
}
MAG_TOL, FAR_FACTOR, MIN_IMAGES, MIN_CASES, MIN_REGIONS, NEGLIGIBLE = (v for v, _ in TOLERANCES.values())


class NotTestable(Exception):
    """The tables cannot answer the claim (missing table, columns or rows); the message says why."""


class NotJudgeable(Exception):
    """The tables answer, but the measurement cannot discriminate (ceiling, n too small); the message says why."""


class SchemaError(ValueError):
    """A table lacks columns its producer declares: not the table the ledger reads (the message names both)."""


@dataclass
class Measurement:
    """Our numbers for one claim: traced values, readable text, n, the cases judged and forest-plot rows."""

    values: dict[str, float]
    text: str
    measured_on: list[str]
    n: str = ""
    interval: str = ""  # our headline estimate with its 95% interval, readable
    cases: list[tuple[str, str]] = field(default_factory=list)  # (case, direction outcome)
    magnitudes: list[tuple[str, str]] = field(default_factory=list)  # (case, magnitude outcome)
    forest: list[dict] = field(default_factory=list)  # label, unit, estimate, lo, hi, published_lo, published_hi


@dataclass(frozen=True)
class Claim:
    """One ledger row's recipe: measure ``table`` (and ``extra`` tables) with ``measure``, judged by its rules.

    A measure that judges the declared occlusion (q and main fill) takes it as the keyword ``occlusion``
    (:func:`declared_occlusion`, read once per ledger).
    """

    key: str
    table: str  # relative to figures/<run>/
    measure: Callable[..., Measurement]
    direction_rule: str
    magnitude_rule: str = NO_NUMBER
    extra: tuple[str, ...] = ()  # further tables the measure reads (baselines)
    alternatives: tuple[str, ...] = ()  # preferred tables read instead of ``table`` when they exist
    explainers: tuple[str, ...] = ("leam",)  # whose sanity checks the claim rests on
    figure: str = ""  # preferred link (relative to figures/<run>/), used when it exists
    published: str = ""  # key of PUBLISHED when another measure of the same claim (default: key)
    label: str = ""  # what the row measures, when several rows share one published claim
    untestable: str = ""  # why no table of this study can answer the claim

    @property
    def said(self) -> Published:
        return PUBLISHED[self.published or self.key]


# ---------------------------------------------------------------- table helpers (pure)

XAI = "08_xai_generalizability"
TRANSFER = "07_transferability/transfer_table.csv"
TRANSFER_GPP = ("07_transferability/transfer_table_gradcampp.csv", "07_transferability/transfer_table_gradcam++.csv")
#: Every table a claim reads, with the columns its producer declares (and where they are declared).
SCHEMAS: dict[str, tuple[Sequence[str], str]] = {
    "03_leam_layers/layer_bhattacharyya.csv": (layer_similarity.LAYER_BC_COLUMNS, "layer_similarity.LAYER_BC_COLUMNS"),
    "04_region_statistics/region_shares.csv": (regions.REGION_SHARES_COLUMNS, "regions.REGION_SHARES_COLUMNS"),
    "04_region_statistics/spread.csv": (regions.SPREAD_COLUMNS, "regions.SPREAD_COLUMNS"),
    **{f"05_bhattacharyya/{name}.csv": (bhattacharyya.BC_SAME_DIFFERENT_COLUMNS,
                                        "bhattacharyya.BC_SAME_DIFFERENT_COLUMNS")
       for name in ("bc_same_different", "bc_critical_same_different")},
    "05_bhattacharyya/bc_cross_model.csv": (bhattacharyya.BC_CROSS_MODEL_COLUMNS,
                                            "bhattacharyya.BC_CROSS_MODEL_COLUMNS"),
    "06_occlusion_validation/occlusion_summary.csv": (occlusion_summary.SUMMARY_COLUMNS,
                                                      "occlusion_summary.SUMMARY_COLUMNS"),
    "06_occlusion_validation/occlusion_subgroups.csv": (occlusion_summary.SUBGROUP_COLUMNS,
                                                        "occlusion_summary.SUBGROUP_COLUMNS"),
    **{rel: (occlusion_summary.TRANSFER_COLUMNS, "occlusion_summary.TRANSFER_COLUMNS")
       for rel in (TRANSFER, *TRANSFER_GPP)},
    **{f"{XAI}/{name}.csv": (xai.TABLE_COLUMNS, "generalizability.TABLE_COLUMNS")
       for name in ("main_table", "rise_subset_table", "fill_table")},
    f"{XAI}/sweeps.csv": (xai.SWEEP_COLUMNS, "generalizability.SWEEP_COLUMNS"),
}


def _columns_checked(table: pd.DataFrame, rel: str, columns: Sequence[str], declared: str) -> pd.DataFrame:
    """``table`` (read from ``rel``), or a SchemaError naming the table and the ``declared`` columns it lacks."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SchemaError(f"table {rel} lacks column(s) {missing} of {declared}; it has {list(table.columns)}")
    return table


def read_table(figures_dir: Path, rel: str) -> pd.DataFrame:
    """The run's table ``rel`` (relative to figures/<run>/), checked against its producer's declared columns."""
    if rel not in SCHEMAS:
        raise SchemaError(f"table {rel} has no declared schema in facexai.claims.SCHEMAS")
    return _columns_checked(pd.read_csv(figures_dir / rel), rel, *SCHEMAS[rel])


def where(df: pd.DataFrame, **equal: object) -> pd.DataFrame:
    """Rows whose columns equal the values (numbers compared numerically); NotTestable when none does."""
    keep = pd.Series(True, index=df.index)
    for col, value in equal.items():
        if isinstance(value, (int, float)):
            keep &= np.isclose(df[col].astype(float), value)
        else:
            keep &= df[col] == value
    out = df[keep]
    if out.empty:
        have = {col: sorted(map(str, df[col].unique()))[:8] for col in equal}
        raise NotTestable(f"no rows with {equal}; the table has {have}")
    return out


def _fmt(x: float, pct: bool = False) -> str:
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def _count_span(values) -> str:
    """'60' or '45-60': the range of a count column."""
    lo, hi = int(np.nanmin(values)), int(np.nanmax(values))
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _span(values, pct: bool = False) -> str:
    lo, hi = float(np.min(values)), float(np.max(values))
    return _fmt(lo, pct) if math.isclose(lo, hi) else f"{_fmt(lo, pct)}-{_fmt(hi, pct)}"


# ---------------------------------------------------------------- statistics (pure)

def difference(a: float, a_lo: float, a_hi: float, b: float, b_lo: float, b_hi: float) -> tuple[float, float, float]:
    """a - b with a 95% interval from the two intervals (normal approximation, independent estimates;
    for paired estimates on the same images this is conservative)."""
    se = math.hypot((a_hi - a_lo) / (2 * Z95), (b_hi - b_lo) / (2 * Z95))
    d = a - b
    return d, d - Z95 * se, d + Z95 * se


def sign_of(lo: float, hi: float) -> str:
    """Direction of an effect whose 95% interval is [lo, hi], claimed positive."""
    return HOLDS if lo > 0 else FAILS if hi < 0 else UNCLEAR


def overall_direction(cases: Sequence[tuple[str, str]]) -> str:
    """All cases hold: holds; all unclear: not judgeable; more cases fail than hold: fails; else mixed."""
    outcomes = [o for _, o in cases]
    if not outcomes or all(o == UNCLEAR for o in outcomes):
        return UNCLEAR
    if all(o == HOLDS for o in outcomes):
        return HOLDS
    return FAILS if outcomes.count(FAILS) > outcomes.count(HOLDS) else MIXED


def magnitude(lo: float, hi: float, estimate: float, pub_lo: float, pub_hi: float, tol: float = MAG_TOL) -> str:
    """Our interval [lo, hi] against the published range [pub_lo, pub_hi] widened by ``tol`` (relative)."""
    if not np.isfinite([lo, hi, estimate]).all():
        return UNCLEAR
    if hi >= pub_lo * (1 - tol) and lo <= pub_hi * (1 + tol):
        return COMPATIBLE
    nearest = pub_lo if estimate < pub_lo else pub_hi
    if nearest <= 0 or estimate <= 0:
        return FAR_OFF
    ratio = estimate / nearest
    return FAR_OFF if ratio > FAR_FACTOR or ratio < 1 / FAR_FACTOR else OFF


def overall_magnitude(cases: Sequence[tuple[str, str]]) -> str:
    """All compatible: compatible; all far off: far off; any unjudgeable: not judgeable; else off."""
    outcomes = [o for _, o in cases]
    if not outcomes:
        return NO_NUMBER
    if all(o == COMPATIBLE for o in outcomes):
        return COMPATIBLE
    if all(o == FAR_OFF for o in outcomes):
        return FAR_OFF
    return UNCLEAR if UNCLEAR in outcomes else OFF


def verdict_of(direction: str, size: str) -> str:
    """The overall verdict from the direction and the magnitude (see the module docstring)."""
    if direction == UNCLEAR or (direction == NO_DIRECTION and size in (UNCLEAR, NO_NUMBER)):
        return NOT_JUDGEABLE
    if direction == FAILS or size == FAR_OFF:
        return NOT_REPRODUCED
    if direction == MIXED or size in (OFF, UNCLEAR):
        return PARTLY
    return REPRODUCED


def _count(cases: Sequence[tuple[str, str]], outcome: str) -> str:
    return f"{sum(o == outcome for _, o in cases)} of {len(cases)}"


def _cases_text(cases: Sequence[tuple[str, str]]) -> str:
    return "; ".join(f"{c}: {o}" for c, o in cases)


# ---------------------------------------------------------------- LEAM: Bhattacharyya same vs different people

def _bc_groups(df: pd.DataFrame) -> pd.DataFrame:
    """Per model, same- and different-people BC (mean, ci_lo, ci_hi, n) of the overall maps, columns suffixed
    _same/_diff."""
    rows = where(df, layer=OVERALL)
    kind = rows.group.map({SAME: "same", DIFFERENT: "diff"})
    rows = rows.assign(kind=kind)[kind.notna()]
    wide = rows.pivot_table(index="model", columns="kind", values=["mean", "ci_lo", "ci_hi", "n"], sort=False)
    if "same" not in wide["mean"] or "diff" not in wide["mean"] or wide["mean"].isna().any().any():
        raise NotTestable(f"needs 'same' and 'different' groups per model; groups: {sorted(rows.group.unique())}")
    wide.columns = [f"{m}_{k}" for m, k in wide.columns]
    return wide


def measure_bc(df: pd.DataFrame, of: str = "whole maps") -> Measurement:
    """Per model: BC same person - BC different people of the overall maps, with its 95% interval."""
    t = _bc_groups(df)
    pub = PUBLISHED["bc_same_vs_different"].values
    gap_lo, gap_hi = pub["same_lo"] - pub["diff_hi"], pub["same_hi"] - pub["diff_lo"]
    cases, sizes, gaps = [], [], []
    for model, r in t.iterrows():
        d, lo, hi = difference(r.mean_same, r.ci_lo_same, r.ci_hi_same, r.mean_diff, r.ci_lo_diff, r.ci_hi_diff)
        gaps.append((d, lo, hi))
        cases.append((model, sign_of(lo, hi)))
        sizes.append((model, magnitude(lo, hi, d, gap_lo, gap_hi)))
    g = np.array(gaps)
    return Measurement(
        {"same_min": t.mean_same.min(), "same_max": t.mean_same.max(), "diff_min": t.mean_diff.min(),
         "diff_max": t.mean_diff.max(), "gap_min": g[:, 0].min(), "gap_max": g[:, 0].max(), "models": len(t)},
        f"{of}: same {_span(t.mean_same)} vs different {_span(t.mean_diff)}; gap {_span(g[:, 0])} "
        f"(the work's ranges imply {gap_lo:.2f}-{gap_hi:.2f})", list(t.index),
        n=f"{_count_span(t.n_same)} same / {_count_span(t.n_diff)} different-people pairs per model",
        interval=f"gap {_span(g[:, 0])}, 95% CIs {g[:, 1].min():.3f} to {g[:, 2].max():.3f}",
        cases=cases, magnitudes=sizes,
        forest=[{"label": f"BC same - different ({of})", "unit": "Bhattacharyya coefficient",
                 "estimate": float(g[:, 0].mean()), "lo": float(g[:, 1].min()), "hi": float(g[:, 2].max()),
                 "published_lo": gap_lo, "published_hi": gap_hi}])


# ---------------------------------------------------------------- LEAM: region shares and spread

def measure_nose(df: pd.DataFrame) -> Measurement:
    """Per model, the nose's share of the overall map's critical pixels with its interval."""
    rows = where(df, layer=OVERALL, region=regions.NOSE)
    rows = rows.groupby("model", sort=False)[["share", "ci_lo", "ci_hi", "n_individuals"]].mean()
    lo, hi = regions.published_nose_range()
    sizes = [(m, magnitude(r.ci_lo, r.ci_hi, r.share, lo, hi)) for m, r in rows.iterrows()]
    return Measurement({"min": rows.share.min(), "max": rows.share.max(), "models": len(rows)},
                       f"nose {_span(rows.share, pct=True)}", list(rows.index),
                       n=f"{int(rows.n_individuals.min())} individuals per model",
                       interval=f"model 95% CIs {_fmt(rows.ci_lo.min(), True)} to {_fmt(rows.ci_hi.max(), True)}",
                       magnitudes=sizes,
                       forest=[{"label": "nose share of critical pixels", "unit": "share",
                                "estimate": float(rows.share.mean()), "lo": float(rows.ci_lo.min()),
                                "hi": float(rows.ci_hi.max()), "published_lo": lo, "published_hi": hi}])


def measure_spread(df: pd.DataFrame) -> Measurement:
    """Per model, regions per individual holding >= 10% of its critical pixels, vs MIN_REGIONS."""
    if df.empty:
        raise NotTestable("no model in the table")
    t = df.set_index("model")
    cases = [(m, HOLDS if r.n_regions_ci_lo >= MIN_REGIONS else FAILS if r.n_regions_ci_hi < MIN_REGIONS else UNCLEAR)
             for m, r in t.iterrows()]
    return Measurement({"min": t.n_regions.min(), "max": t.n_regions.max(), "models": len(t),
                        "spread_models": sum(o == HOLDS for _, o in cases)},
                       f"{_span(t.n_regions)} regions per individual >= 10% of the critical pixels; top region "
                       f"holds {_span(t.top_share, pct=True)}",
                       list(t.index), n=f"{int(t.n_individuals.min())} individuals per model",
                       interval=f"95% CIs {t.n_regions_ci_lo.min():.2f} to {t.n_regions_ci_hi.max():.2f}",
                       cases=cases)


# ---------------------------------------------------------------- LEAM: layers and architectures

def measure_layers(df: pd.DataFrame, baseline: pd.DataFrame) -> Measurement:
    """BC(first, last layer) of one person's maps vs the BC of two different people's maps at one layer
    (notebook 05, mean of the first and last layer): layers differ when they differ more than people do."""
    cases, rows = [], []
    for model, first_last in df.set_index("model")[layer_similarity.FIRST_VS_LAST].astype(float).items():
        diff = baseline[(baseline.model == model) & (baseline.layer != OVERALL) & (baseline.group == DIFFERENT)]
        if diff.empty:
            raise NotTestable(f"no per-layer different-people BC for {model} in the baseline table")
        ends = diff.iloc[[0, -1]][["mean", "ci_lo", "ci_hi"]].mean()
        rows.append((model, first_last, ends["mean"], ends.ci_lo, ends.ci_hi, int(diff.n.min())))
        cases.append((model, HOLDS if first_last < ends.ci_lo else FAILS if first_last > ends.ci_hi else UNCLEAR))
    t = pd.DataFrame(rows, columns=["model", "first_last", "base", "base_lo", "base_hi", "n"]).set_index("model")
    return Measurement({"min": t.first_last.min(), "max": t.first_last.max(), "baseline_min": t.base.min(),
                        "baseline_max": t.base.max(), "models": len(t)},
                       f"BC(first, last layer) {_span(t.first_last)} vs different people at one layer "
                       f"{_span(t.base)}", list(t.index), n=f"baseline: {t.n.min()} different-people pairs per model",
                       interval=f"baseline 95% CIs {t.base_lo.min():.3f} to {t.base_hi.max():.3f} "
                                "(notebook 03 gives no interval for the layer BC)", cases=cases)


def measure_models_agree(df: pd.DataFrame) -> Measurement:
    """Per pair of models: BC of their maps of the same person minus the higher of the two models'
    different-people BC (how alike any two faces' maps of one model are), with its interval."""
    same = df[(df.model_a != df.model_b) & (df.group == SAME_PERSON)]
    within = df[(df.model_a == df.model_b) & (df.group == DIFFERENT_PEOPLE)].set_index("model_a")
    if same.empty or within.empty:
        raise NotTestable("needs >= 2 models: same-person rows of two models and each model's different-people row")
    cases, rows = [], []
    for (a, b), r in same.assign(key=[tuple(sorted(p)) for p in zip(same.model_a, same.model_b)]).groupby("key"):
        r = r.iloc[0]
        base = within.loc[[a, b]].sort_values("mean").iloc[-1]
        d, lo, hi = difference(r["mean"], r.ci_lo, r.ci_hi, base["mean"], base.ci_lo, base.ci_hi)
        cases.append((f"{a} vs {b}", sign_of(lo, hi)))
        rows.append((r["mean"], base["mean"], d, lo, hi))
    t = np.array(rows)
    return Measurement({"min": t[:, 0].min(), "max": t[:, 0].max(), "pairs": len(t),
                        "baseline_min": t[:, 1].min(), "baseline_max": t[:, 1].max()},
                       f"same person, two models: BC {_span(t[:, 0])} vs one model, two people {_span(t[:, 1])}",
                       sorted(set(same.model_a) | set(same.model_b)),
                       n=f"{int(same.n.min())} individuals per pair; baseline {int(within.n.min())} pairs of people",
                       interval=f"difference {_span(t[:, 2])}, 95% CIs {t[:, 3].min():.4f} to {t[:, 4].max():.4f}",
                       cases=cases)


# ---------------------------------------------------------------- LEAM: occlusion, transfer, subgroups

def declared_occlusion() -> dict[str, object]:
    """The study's declared q and main fill (the ``[method]`` table): the rows every occlusion claim reads."""
    method = profiles.method()
    return {"fill": method.fill, "q": method.q}


LEAM = techniques.get("leam").name
KINDS = {occlusion_runner.CRITICAL: "map", occlusion_runner.RANDOM: "random"}  # selection -> kind of pixels
FEMALE, MALE = "female", "male"  # the subgroups compared (the annotation's group names)


def occlusion_selected(df: pd.DataFrame, occlusion: dict[str, object], explainer: str = LEAM) -> pd.DataFrame:
    """Held-out occlusion rows of one explainer at the ``occlusion`` fill and q, kind 'map' (its pixels) or
    'random'."""
    rows = where(df, explainer=explainer, **occlusion)
    rows = rows[~rows.in_sample.astype(bool)]
    kind = rows.selection.map(KINDS)
    if set(kind.dropna()) != set(KINDS.values()):
        raise NotTestable(f"needs a {occlusion_runner.CRITICAL!r} and a {occlusion_runner.RANDOM!r} selection; "
                          f"selections: {sorted(rows.selection.unique())}")
    return rows.assign(kind=kind)[kind.notna()]


def _map_vs_random(rows: pd.DataFrame, by: list[str], pub: Published, what: str) -> Measurement:
    """Per case (``by``): map drop - random drop with its interval (direction) and the map drop vs the work's."""
    cases, sizes, kept = [], [], []
    for key, g in rows.groupby(by, sort=False):
        m, r = g[g.kind == "map"], g[g.kind == "random"]
        if m.empty or r.empty:
            continue
        m, r = m.iloc[0], r.iloc[0]
        label = key if isinstance(key, str) else " / ".join(map(str, key))
        if m.n_images < MIN_IMAGES:
            cases.append((label, UNCLEAR))
            sizes.append((label, UNCLEAR))
        else:
            d, lo, hi = difference(m.mean_drop, m.ci_lo, m.ci_hi, r.mean_drop, r.ci_lo, r.ci_hi)
            cases.append((label, sign_of(lo, hi)))
            sizes.append((label, magnitude(m.ci_lo, m.ci_hi, m.mean_drop, pub.values["map"], pub.values["map"])))
        kept.append((label, m.mean_drop, m.ci_lo, m.ci_hi, r.mean_drop, r.ci_lo, r.ci_hi, m.n_images))
    if not kept:
        raise NotTestable(f"no {what} case has both a map and a random drop")
    t = pd.DataFrame(kept, columns=["case", "map", "lo", "hi", "random", "rlo", "rhi", "n"])
    ratio = t["map"].mean() / t["random"].mean() if t["random"].mean() > 0 else float("inf")
    return Measurement(
        {"map_mean": t["map"].mean(), "random_mean": t["random"].mean(), "cases": len(t),
         "map_gt_random": sum(o == HOLDS for _, o in cases)},
        f"{_fmt(t['map'].mean())} vs {_fmt(t['random'].mean())} random, black fill (ratio {ratio:.1f}; per {what} "
        f"{_span(t['map'])} vs {_span(t['random'])})", sorted({str(c) for c in t.case}),
        n=f"{_count_span(t.n)} held-out images per {what}",
        interval=f"map drop 95% CIs {t.lo.min():.3f} to {t.hi.max():.3f}", cases=cases, magnitudes=sizes,
        forest=[{"label": f"cosine drop, 1% map pixels ({what})", "unit": "cosine drop",
                 "estimate": float(t["map"].mean()), "lo": float(t.lo.min()), "hi": float(t.hi.max()),
                 "published_lo": pub.values["map"], "published_hi": pub.values["map"]},
                {"label": f"cosine drop, 1% random pixels ({what})", "unit": "cosine drop",
                 "estimate": float(t["random"].mean()), "lo": float(t.rlo.min()), "hi": float(t.rhi.max()),
                 "published_lo": pub.values["random"], "published_hi": pub.values["random"]}])


def measure_drop(df: pd.DataFrame, *, occlusion: dict[str, object]) -> Measurement:
    """White-box: each model's LEAM pixels vs random pixels, on held-out images."""
    rows = occlusion_selected(df, occlusion)
    return _map_vs_random(rows, ["model"], PUBLISHED["occlusion_drop"], "model")


def measure_transfer(df: pd.DataFrame, *, occlusion: dict[str, object]) -> Measurement:
    """Black-box: another model's LEAM pixels vs random pixels, per (generation, evaluation) pair."""
    rows = where(df, **occlusion)
    is_random = rows.generation == occlusion_summary.RANDOM_ROW
    leam = rows[~is_random & (rows.explainer == LEAM) & (rows.generation != rows.evaluation)]
    floor = rows[is_random]
    pairs = [pd.concat([g.assign(kind="map", case=f"{g.generation.iloc[0]}->{e}"),
                        floor[floor.evaluation == e].assign(kind="random", case=f"{g.generation.iloc[0]}->{e}")])
             for (gen, e), g in leam.groupby(["generation", "evaluation"], sort=False)]
    if not pairs:
        raise NotTestable("needs >= 2 models with LEAM rows and a random row per evaluation model")
    return _map_vs_random(pd.concat(pairs), ["case"], PUBLISHED["transfer"], "model pair")


def measure_female(df: pd.DataFrame, *, occlusion: dict[str, object]) -> Measurement:
    """Per model: the drop of female images minus that of male images (LEAM pixels), with its interval."""
    rows = occlusion_selected(df, occlusion)
    crit = rows[rows.kind == "map"]
    cases, kept = [], []
    for model, g in crit.groupby("model", sort=False):
        f, m = g[g[occlusion_summary.GROUP] == FEMALE], g[g[occlusion_summary.GROUP] == MALE]
        if f.empty or m.empty:
            continue
        f, m = f.iloc[0], m.iloc[0]
        if min(f.n_images, m.n_images) < MIN_IMAGES / 2:
            cases.append((model, UNCLEAR))
        else:
            d, lo, hi = difference(f.mean_drop, f.ci_lo, f.ci_hi, m.mean_drop, m.ci_lo, m.ci_hi)
            cases.append((model, sign_of(lo, hi)))
        kept.append((model, f.mean_drop, m.mean_drop, f.n_images, m.n_images))
    if not kept:
        raise NotTestable(f"needs female and male rows per model; groups: {sorted(rows.group.unique())}")
    t = pd.DataFrame(kept, columns=["model", "f", "m", "nf", "nm"])
    return Measurement({"female_mean": t.f.mean(), "male_mean": t.m.mean(), "models": len(t),
                        "female_gt_male": sum(o == HOLDS for _, o in cases)},
                       f"drop female {_fmt(t.f.mean())} vs male {_fmt(t.m.mean())}", list(t.model),
                       n=f">= {int(t.nf.min())} female, {int(t.nm.min())} male held-out images per model",
                       interval=_cases_text(cases), cases=cases)


# ---------------------------------------------------------------- the poster: Table 1 (techniques x datasets)

def _ok(rows: pd.DataFrame) -> pd.Series:
    """Rows whose data set ran (status ok) and that have a rate."""
    return (rows.status == xai.OK) & rows.recognition_rate.notna()


def _rates(df: pd.DataFrame, occlusion: dict[str, object], subset: str | None = None,
           every_fill: bool = False) -> pd.DataFrame:
    """Mean-over-models rows of a notebook-08 table (of the ``occlusion`` fill, or of every fill), of one subset."""
    rows = df[df.model == xai.MEAN]
    if not every_fill:
        rows = rows[rows.fill == occlusion["fill"]]
    return rows if subset is None else rows[rows.subset == subset]


def _rate_row(rows: pd.DataFrame, technique: str, dataset: str) -> pd.Series:
    """One technique's row on one dataset; NotTestable (with the table's reason) when the dataset did not run."""
    hit = rows[(rows.technique == technique) & (rows.dataset == dataset)]
    if hit.empty:
        raise NotTestable(f"no {technique} row on {dataset}; datasets: {sorted(rows.dataset.unique())}")
    r = hit.iloc[0]
    if r.status != xai.OK or pd.isna(r.recognition_rate):
        why = r.note if isinstance(r.note, str) else ""
        raise NotTestable(f"{dataset} did not run here ({why or r.status})")
    return r


#: Table 1's technique labels (:mod:`facexai.published`) -> the registry's names the tables use.
TECHNIQUE_OF = {t.label: t.name for t in techniques.TECHNIQUES.values()}


def measure_table1_cell(df: pd.DataFrame, technique: str, dataset: str, *, occlusion: dict[str, object]
                        ) -> Measurement:
    """Our recognition rate of ``technique`` (a Table 1 label) on ``dataset`` (mean over models, Wilson 95% on the
    held-out images) vs the Table 1 cell; compared as the share of genuine pairs lost (1 - rate)."""
    r = _rate_row(_rates(df, occlusion), TECHNIQUE_OF[technique], dataset)
    pub = TABLE1.cell(technique, dataset)
    lo, hi = wilson(float(r.recognition_rate), float(r.n_images))
    m = Measurement({"rate": r.recognition_rate, "n_images": r.n_images}, f"{_fmt(r.recognition_rate)}",
                    [dataset], n=f"{int(r.n_images)} held-out images (all models)",
                    interval=f"{r.recognition_rate:.3f} [{lo:.3f}, {hi:.3f}]",
                    forest=[{"label": f"Table 1: {technique} on {dataset}", "unit": "recognition rate",
                             "estimate": float(r.recognition_rate), "lo": lo, "hi": hi,
                             "published_lo": pub, "published_hi": pub}])
    if r.n_images < MIN_IMAGES:
        raise NotJudgeable(f"{int(r.n_images)} held-out images < {MIN_IMAGES:g}: {m.interval}", m)
    m.magnitudes = [(dataset, magnitude(1 - hi, 1 - lo, 1 - r.recognition_rate, 1 - pub, 1 - pub))]
    return m


def measure_ranking(df: pd.DataFrame, *, occlusion: dict[str, object]) -> Measurement:
    """Kendall's tau between our order of the five techniques (recognition rate, mean over models) and Table 1's,
    per dataset that ran, on techniques with >= MIN_IMAGES images; exact one-sided p for tau > 0."""
    rows = _rates(df, occlusion)
    cases, texts, taus = [], [], []
    for dataset in TABLE1.columns:
        have = rows[(rows.dataset == dataset) & _ok(rows)]
        ours = {t: have[have.technique == TECHNIQUE_OF[t]] for t in TABLE1.rows}
        usable = [t for t, h in ours.items() if len(h) and h.n_images.iloc[0] >= MIN_IMAGES]
        if not any(len(h) for h in ours.values()):
            continue
        if len(usable) < 4:
            few = [t for t in TABLE1.rows if t not in usable]
            texts.append(f"{dataset}: only {len(usable)} techniques with >= {MIN_IMAGES:g} images ({', '.join(few)} "
                         "below)")
            cases.append((dataset, UNCLEAR))
            continue
        a = [float(ours[t].recognition_rate.iloc[0]) for t in usable]
        b = [TABLE1.cell(t, dataset) for t in usable]
        tau, p = stats.kendalltau(a, b, alternative="greater", method="exact" if len(set(a)) == len(a) else "auto")
        taus.append(tau)
        cases.append((dataset, HOLDS if tau > 0 and p < 0.05 else FAILS if tau <= 0 else UNCLEAR))
        texts.append(f"{dataset}: tau {tau:.2f} (p {p:.3f}, {len(usable)} techniques)")
    if not cases:
        raise NotTestable("no dataset with Table 1 techniques in the table")
    return Measurement({"tau_mean": float(np.mean(taus)) if taus else float("nan"), "datasets": len(cases)},
                       "; ".join(texts), [c for c, _ in cases], n="techniques per dataset as listed",
                       interval="; ".join(texts), cases=cases)


def _vs_floor(rows: pd.DataFrame, technique: str, dataset: str, floor_rows: pd.DataFrame | None = None
              ) -> tuple[str, float, float, float, str]:
    """(direction of 'technique below the random floor', rate, floor, clean, note) on one dataset."""
    t = _rate_row(rows, technique, dataset)
    f = _rate_row(rows if floor_rows is None else floor_rows, xai.RANDOM, dataset)
    clean = float(f.clean_recognition_rate)
    if np.isclose(f.recognition_rate, clean):
        return UNCLEAR, t.recognition_rate, f.recognition_rate, clean, "ceiling: random floor = clean rate"
    if min(t.n_images, f.n_images) < MIN_IMAGES:
        return UNCLEAR, t.recognition_rate, f.recognition_rate, clean, f"{int(t.n_images)} images < {MIN_IMAGES:g}"
    tl, th = wilson(t.recognition_rate, t.n_images)
    fl, fh = wilson(f.recognition_rate, f.n_images)
    _, lo, hi = difference(f.recognition_rate, fl, fh, t.recognition_rate, tl, th)
    return sign_of(lo, hi), t.recognition_rate, f.recognition_rate, clean, f"floor - rate 95% [{lo:.3f}, {hi:.3f}]"


def measure_generalize(df: pd.DataFrame, *, occlusion: dict[str, object]) -> Measurement:
    """Per dataset: Grad-CAM++ lowers the rate below the random floor (Wilson intervals) and no other poster
    technique does."""
    rows = _rates(df, occlusion)
    cases, texts, names = [], [], []
    for dataset in sorted(rows[_ok(rows)].dataset.unique()):
        gpp, rate, floor, _, note = _vs_floor(rows, "gradcam++", dataset)
        others = []
        for tech in ("gradcam", "layercam", "srise", "corrrise"):
            try:
                if _vs_floor(rows, tech, dataset)[0] == HOLDS:
                    others.append(tech)
            except NotTestable:
                continue
        outcome = FAILS if gpp == FAILS or (others and gpp != HOLDS) else HOLDS if gpp == HOLDS and not others \
            else MIXED if gpp == HOLDS else UNCLEAR
        cases.append((dataset, outcome))
        names.append(dataset)
        texts.append(f"{dataset}: Grad-CAM++ {rate:.3f} vs random {floor:.3f} ({note}); also below the floor: "
                     f"{', '.join(others) or 'none'}")
    if not cases:
        raise NotTestable("no dataset ran")
    return Measurement({"datasets": len(cases)}, "; ".join(texts), names, n="held-out images as in notebook 08",
                       interval="; ".join(texts), cases=cases)


def measure_negligible(df: pd.DataFrame, subset_table: pd.DataFrame, *, occlusion: dict[str, object]) -> Measurement:
    """LayerCAM (all people) and S-RISE, CorrRISE (the RISE subset, with its own floor and clean rate): occluding
    their pixels lowers the rate by less than NEGLIGIBLE from clean (Wilson interval); a ceiling (random floor =
    clean: nothing moves the rate) or n < MIN_IMAGES cannot be judged."""
    main, sub = _rates(df, occlusion, subset=xai.ALL), _rates(subset_table, occlusion)
    cases, texts = [], []
    for tech in ("layercam", "srise", "corrrise"):
        rows = main if ((main.technique == tech) & _ok(main)).any() else sub
        for dataset in sorted(rows[(rows.technique == tech) & _ok(rows)].dataset.unique()):
            t = _rate_row(rows, tech, dataset)
            f = _rate_row(rows, xai.RANDOM, dataset)
            clean = float(f.clean_recognition_rate)
            lo, hi = wilson(t.recognition_rate, t.n_images)
            label = f"{tech}/{dataset}"
            if np.isclose(f.recognition_rate, clean):
                cases.append((label, UNCLEAR))
                texts.append(f"{label}: ceiling (random floor {f.recognition_rate:.3f} = clean)")
            elif t.n_images < MIN_IMAGES:
                cases.append((label, UNCLEAR))
                texts.append(f"{label}: {int(t.n_images)} images < {MIN_IMAGES:g}")
            else:
                cases.append((label, HOLDS if clean - lo < NEGLIGIBLE else FAILS if clean - hi > NEGLIGIBLE
                              else UNCLEAR))
                texts.append(f"{label}: {t.recognition_rate:.3f} [{lo:.3f}, {hi:.3f}] vs clean {clean:.3f}")
    if not cases:
        raise NotTestable("no LayerCAM, S-RISE or CorrRISE rows")
    return Measurement({"cases": len(cases), "negligible": sum(o == HOLDS for _, o in cases)}, "; ".join(texts),
                       sorted({c.split("/")[1] for c, _ in cases}), n="held-out images per technique as listed",
                       interval="; ".join(texts), cases=cases)


def measure_fill(df: pd.DataFrame, *, occlusion: dict[str, object]) -> Measurement:
    """Range of the rate across fills (per technique) vs across techniques (per fill), mean-over-models rows of all
    people; not judgeable when the techniques' own range is inside twice the rates' typical 95% half-width."""
    rows = _rates(df, occlusion, subset=xai.ALL, every_fill=True)
    rows = rows[_ok(rows) & (rows.technique != xai.RANDOM)]
    if rows.fill.nunique() < 2 or rows.technique.nunique() < 2:
        raise NotTestable(f"needs >= 2 fills and >= 2 techniques; fills {sorted(rows.fill.unique())}")
    span = lambda s: s.max() - s.min()  # noqa: E731
    by_fill = rows.groupby(["dataset", "technique"]).recognition_rate.agg(span).mean()
    by_tech = rows.groupby(["dataset", "fill"]).recognition_rate.agg(span).mean()
    half = float(np.median([(h - lo) / 2 for lo, h in (wilson(r, n) for r, n in zip(rows.recognition_rate,
                                                                                    rows.n_images))]))
    if by_tech <= 2 * half and by_fill <= 2 * half:
        outcome = UNCLEAR
    else:
        outcome = HOLDS if by_fill < by_tech else FAILS
    return Measurement({"fill_range": by_fill, "technique_range": by_tech, "half_width": half,
                        "fills": rows.fill.nunique()},
                       f"range across fills {_fmt(by_fill)} vs across techniques {_fmt(by_tech)} "
                       f"({rows.fill.nunique()} fills; a rate's 95% half-width {half:.3f})",
                       sorted(rows.technique.unique()), n=f"{_count_span(rows.n_images)} held-out images per rate",
                       interval=f"typical 95% half-width {half:.3f}", cases=[("fills vs techniques", outcome)])


# ---------------------------------------------------------------- the poster: hyperparameter sweeps

def layer_position(row: pd.Series) -> float:
    """Layers from the end (0 = last, 1 = second-to-last): the sweep row's ``position``."""
    if pd.isna(row.position):
        raise NotTestable(f"layer {row.value!r} has no position (layers from the end) in the sweep table")
    return float(row.position)


def loss_margin(value: object) -> float:
    """0.0 for the cosine loss, else the ArcFace margin of the loss sweep's value (``"arcface m=0.2"``)."""
    if value == xai.COSINE_LOSS:
        return 0.0
    margin = str(value).removeprefix(xai.ARCFACE_LOSS)
    try:
        if margin != str(value):
            return float(margin)
    except ValueError:
        pass
    raise NotTestable(f"loss value {value!r}: expected {xai.COSINE_LOSS!r} or '{xai.ARCFACE_LOSS}<margin>'")


def _sweep_cases(df: pd.DataFrame, hyperparameter: str, techniques: tuple[str, ...],
                 claimed: Callable[[pd.Series], bool]) -> Measurement:
    """Per (technique, model) sweep: the claim holds when a claimed setting's rate is not significantly above the lowest
    (Wilson intervals), fails when it is; a case where no setting differs from the lowest beyond the intervals
    says nothing and is left out; fewer than MIN_CASES informative cases cannot be judged."""
    rows = df[(df.hyperparameter == hyperparameter) & df.technique.isin(techniques)].dropna(subset=["recognition_rate"])
    if rows.empty:
        raise NotTestable(f"no {hyperparameter!r} sweep for {techniques}; hyperparameters: "
                          f"{sorted(df.hyperparameter.unique())}")
    cases, texts = [], []
    for (tech, model), g in rows.groupby(["technique", "model"], sort=False):
        ci = np.array([wilson(r, n) for r, n in zip(g.recognition_rate, g.n_images)])
        best = int(np.argmin(g.recognition_rate.to_numpy()))
        b, (blo, bhi) = float(g.recognition_rate.iloc[best]), ci[best]
        above = [difference(r, lo, hi, b, blo, bhi)[1] > 0 for r, (lo, hi) in zip(g.recognition_rate, ci)]
        hit = g.apply(claimed, axis=1).to_numpy()
        label = f"{tech}/{model}"
        if not any(above):
            texts.append(f"{label}: every setting within the lowest's interval")
            continue
        if not hit.any():
            raise NotTestable(f"{label}: the claimed setting was not swept ({', '.join(map(str, g.value))})")
        ok = any(not a for a, h in zip(above, hit) if h)  # some claimed setting ties with the lowest
        cases.append((label, HOLDS if ok else FAILS))
        texts.append(f"{label}: lowest {g.value.iloc[best]} {g.recognition_rate.iloc[best]:.3f}; claimed "
                     f"{', '.join(map(str, g.value[hit]))} {'not ' if ok else ''}significantly above it")
    m = Measurement({"cases": len(cases), "holds": sum(o == HOLDS for _, o in cases)}, "; ".join(texts),
                    sorted(rows.model.unique()), n=f"{int(rows.n_images.min())} held-out images per setting",
                    interval="Wilson 95% per setting", cases=cases)
    if len(cases) < MIN_CASES:
        raise NotJudgeable(f"{len(cases)} informative technique x model case(s) < {MIN_CASES:g}: {m.text}", m)
    return m


def measure_layer(df: pd.DataFrame) -> Measurement:
    return _sweep_cases(df, xai.LAYER_SWEEP, ("gradcam", "gradcam++"), lambda r: layer_position(r) == 1)


def measure_loss_layercam(df: pd.DataFrame) -> Measurement:
    return _sweep_cases(df, xai.LOSS_SWEEP, ("layercam",), lambda r: loss_margin(r.value) == 0)


def measure_loss_gradcam(df: pd.DataFrame) -> Measurement:
    lo, hi = PUBLISHED["loss_margin_gradcam"].values["lo"], PUBLISHED["loss_margin_gradcam"].values["hi"]
    return _sweep_cases(df, xai.LOSS_SWEEP, ("gradcam", "gradcam++"),
                        lambda r: lo - 1e-9 <= loss_margin(r.value) <= hi + 1e-9 and loss_margin(r.value) > 0)


def measure_layer_layercam(df: pd.DataFrame) -> Measurement:
    """LayerCAM's layer choice is negligible: every layer's rate within NEGLIGIBLE of the lowest (Wilson)."""
    rows = df[(df.hyperparameter == xai.LAYER_SWEEP) & (df.technique == "layercam")]
    if rows.empty:
        raise NotTestable("no LayerCAM layer sweep")
    cases, texts = [], []
    for model, g in rows.groupby("model"):
        ci = [wilson(r, n) for r, n in zip(g.recognition_rate, g.n_images)]
        best = int(np.argmin(g.recognition_rate.to_numpy()))
        gaps = [difference(r, lo, hi, float(g.recognition_rate.iloc[best]), *ci[best])
                for r, (lo, hi) in zip(g.recognition_rate, ci)]
        cases.append((f"layercam/{model}", FAILS if max(lo for _, lo, _ in gaps) > NEGLIGIBLE else
                      HOLDS if max(hi for _, _, hi in gaps) < NEGLIGIBLE else UNCLEAR))
        texts.append(f"{model}: layers {_span(g.recognition_rate)}")
    return Measurement({"cases": len(cases)}, "; ".join(texts), sorted(rows.model.unique()),
                       n=f"{int(rows.n_images.min())} held-out images per layer", interval="Wilson 95% per layer",
                       cases=cases)


# ---------------------------------------------------------------- the poster: Table 2 (transfer)

def transfer_matrix(df: pd.DataFrame, occlusion: dict[str, object], explainer: str
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """(rates generation x evaluation, n_images alike, random floor per evaluation model) of one explainer at the
    ``occlusion`` fill and q."""
    rows = where(df, **occlusion)
    is_random = rows.generation == occlusion_summary.RANDOM_ROW
    mine = rows[~is_random & (rows.explainer == explainer)]
    if mine.empty:
        raise NotTestable(f"no {explainer} transfer rows (notebook 07 with explainer={explainer}); explainers in the "
                          f"table: {sorted(rows.explainer.unique())}")
    rate = mine.pivot_table(index="generation", columns="evaluation", values="recognition_rate", sort=False)
    n = mine.pivot_table(index="generation", columns="evaluation", values="n_images", sort=False)
    floor = rows[is_random].groupby("evaluation").recognition_rate.mean()
    common = [m for m in rate.index if m in rate.columns]
    if len(common) < 2:
        raise NotTestable(f"needs >= 2 models as generation and evaluation; has {list(rate.index)}")
    return rate.loc[common, common], n.loc[common, common], floor


TRANSFER_DATASET = "LFW"  # notebook 07 occludes the study's own (LFW-layout) images


def measure_fnc_diagonal(df: pd.DataFrame, explainer: str = "gradcam++", *, occlusion: dict[str, object]
                         ) -> Measurement:
    """FN_C's own Grad-CAM++ pixels on FN_C: rate below the random floor (direction) and the Table 2 cell (0.337,
    CPLFW); on LFW compared with the cell carried to LFW by Table 1's Grad-CAM++ LFW/CPLFW ratio of lost pairs."""
    rate, n, floor = transfer_matrix(df, occlusion, explainer)
    if "FN_C" not in rate.index:
        raise NotTestable(f"FN_C is not among the models of notebook 07 ({list(rate.index)})")
    r, k = float(rate.loc["FN_C", "FN_C"]), float(n.loc["FN_C", "FN_C"])
    lo, hi = wilson(r, k)
    dataset = TRANSFER_DATASET
    pub = TABLE2.cell("FN_C", "FN_C")
    if dataset != TABLE2_DATASET:  # inference: carried to our dataset with Table 1's ratio of lost pairs
        scale = (1 - TABLE1.cell("Grad-CAM++", dataset)) / (1 - TABLE1.cell("Grad-CAM++", TABLE2_DATASET)) \
            if dataset in TABLE1.columns else float("nan")
        pub = 1 - (1 - pub) * scale
    fl, fh = wilson(float(floor.get("FN_C", np.nan)), k)
    _, dlo, dhi = difference(float(floor.get("FN_C", np.nan)), fl, fh, r, lo, hi)
    m = Measurement({"rate": r, "floor": float(floor.get("FN_C", np.nan)), "published_here": pub},
                    f"FN_C->FN_C {r:.3f} vs random {floor.get('FN_C', float('nan')):.3f} on {dataset} (the cell "
                    f"0.337 on CPLFW{'' if dataset == TABLE2_DATASET else f' = {pub:.3f} carried to {dataset}'})",
                    ["FN_C"], n=f"{int(k)} held-out images", interval=f"{r:.3f} [{lo:.3f}, {hi:.3f}]",
                    cases=[("FN_C", sign_of(dlo, dhi))],
                    magnitudes=[("FN_C", magnitude(1 - hi, 1 - lo, 1 - r, 1 - pub, 1 - pub))],
                    forest=[{"label": f"Table 2: FN_C->FN_C ({explainer}, {dataset})", "unit": "recognition rate",
                             "estimate": r, "lo": lo, "hi": hi, "published_lo": pub, "published_hi": pub}])
    if k < MIN_IMAGES:
        raise NotJudgeable(f"{int(k)} held-out images < {MIN_IMAGES:g}", m)
    return m


def variance_shares(matrix: np.ndarray) -> tuple[float, float]:
    """Shares of the total sum of squares explained by rows and by columns (two-way, no replication)."""
    grand = matrix.mean()
    total = ((matrix - grand) ** 2).sum()
    if total <= 0:
        return float("nan"), float("nan")
    rows = matrix.shape[1] * ((matrix.mean(axis=1) - grand) ** 2).sum()
    cols = matrix.shape[0] * ((matrix.mean(axis=0) - grand) ** 2).sum()
    return float(rows / total), float(cols / total)


def measure_rows_decide(df: pd.DataFrame, explainer: str = "gradcam++", seed: int = 0, draws: int = 2000, *,
                        occlusion: dict[str, object]) -> Measurement:
    """Share of the table's variance explained by the generation model (rows) minus by the evaluation model
    (columns), with a 95% interval from binomial resampling of every cell; the work's Table 2 gives the reference."""
    rate, n, _ = transfer_matrix(df, occlusion, explainer)
    p, k = rate.to_numpy(float), n.to_numpy(float)
    row_share, col_share = variance_shares(p)
    rng = np.random.default_rng(seed)
    sims = rng.binomial(k.astype(int)[None].repeat(draws, 0), p[None].repeat(draws, 0)) / k
    shares = np.array([variance_shares(s) for s in sims])
    if not np.isfinite(shares).any():  # every resampled table flat: nothing to apportion
        raise NotJudgeable("every cell has the same rate in every resample",
                           Measurement({}, "a flat table", list(rate.index), n=f"{len(rate)}x{len(rate)} cells"))
    lo, hi = np.nanpercentile(shares[:, 0] - shares[:, 1], [2.5, 97.5])
    rlo, rhi = np.nanpercentile(shares[:, 0], [2.5, 97.5])
    pub_rows, pub_cols = variance_shares(np.array(TABLE2.values))
    label = f"Table 2 structure: row share ({explainer})"
    return Measurement({"row_share": row_share, "column_share": col_share, "published_row_share": pub_rows},
                       f"variance explained by the generation model {row_share:.2f} vs the evaluation model "
                       f"{col_share:.2f} (Table 2: {pub_rows:.2f} vs {pub_cols:.2f})", list(rate.index),
                       n=f"{len(rate)}x{len(rate)} cells, {int(k.min())} held-out images each",
                       interval=f"row - column share 95% [{lo:.2f}, {hi:.2f}]", cases=[("rows vs columns",
                                                                                      sign_of(lo, hi))],
                       magnitudes=[("row share", magnitude(rlo, rhi, row_share, pub_rows, pub_rows))],
                       forest=[{"label": label, "unit": "share", "estimate": row_share, "lo": float(rlo),
                                "hi": float(rhi), "published_lo": pub_rows, "published_hi": pub_rows}])


def measure_blackbox(df: pd.DataFrame, explainer: str = "gradcam++", *, occlusion: dict[str, object]) -> Measurement:
    """Per evaluation model (column: the attacked model, so its own difficulty cancels): the most harmful other
    model's pixels (black-box) below its own pixels (white-box, the diagonal) beyond the Wilson intervals; 'can
    beat' holds when some column shows it, fails when in every column the white-box is significantly lowest."""
    rate, n, _ = transfer_matrix(df, occlusion, explainer)
    cols = []
    for e in rate.columns:
        diag, k = float(rate.loc[e, e]), float(n.loc[e, e])
        off = rate[e].drop(e)
        g = off.idxmin()
        _, lo, hi = difference(diag, *wilson(diag, k), float(off[g]), *wilson(float(off[g]), float(n.loc[g, e])))
        cols.append((e, g, diag, float(off[g]), sign_of(lo, hi)))
    outcomes = [o for *_, o in cols]
    overall = HOLDS if HOLDS in outcomes else FAILS if all(o == FAILS for o in outcomes) else UNCLEAR
    t2 = TABLE2.frame().to_numpy()
    pub = int((np.diag(t2) > t2.min(axis=0)).sum())
    return Measurement({"columns": len(cols), "columns_blackbox_better": outcomes.count(HOLDS)},
                       "; ".join(f"on {e}: white-box {dg:.3f} vs {g}'s pixels {v:.3f} ({o})" for e, g, dg, v, o in cols)
                       + f" (Table 2: black-box lower in {pub} of {len(TABLE2.columns)} columns)", list(rate.index),
                       n=f"{int(n.to_numpy().min())} held-out images per cell", interval="Wilson 95% per cell",
                       cases=[("any evaluation model", overall)])


# ---------------------------------------------------------------- the ledger's claims

GRADCAMPP_NOTE = ("Grad-CAM++ transfer table (notebook 07 with explainer=gradcam++) not produced in this run")
SIDE = "direction: per case, the difference's 95% interval above 0 (normal approximation from the two intervals)"
RANGE = ("our 95% interval overlaps the published value/range widened by MAG_TOL (relative); more than FAR_FACTOR "
         "times off: far off")
RATE = ("on lost pairs (1 - rate): our Wilson 95% interval overlaps the work's widened by MAG_TOL (relative); "
        "more than FAR_FACTOR times off: far off")
POSTER_TECHNIQUES = tuple(TECHNIQUE_OF[label] for label in TABLE1.rows)  # Table 1's techniques, in its order


def _table1_claims() -> tuple[Claim, ...]:
    out = []
    for tech, key in zip(TABLE1.rows, POSTER_TECHNIQUES):
        for dataset in TABLE1.columns:
            out.append(Claim(f"table1_{key}_{dataset.lower()}", f"{XAI}/main_table.csv",
                             partial(measure_table1_cell, technique=tech, dataset=dataset), NO_DIRECTION, RATE,
                             explainers=(key,), published="xai_table1", figure=f"{XAI}/main_table.png",
                             label=f"Table 1: {tech} on {dataset} = {TABLE1.cell(tech, dataset):.3f}"))
    return tuple(out)


#: The ledger, in reading order.
CLAIMS: tuple[Claim, ...] = (
    Claim("bc_same_vs_different", "05_bhattacharyya/bc_same_different.csv", measure_bc,
          "same-person BC - different-people BC of the overall maps > 0 in every model (" + SIDE + ")",
          f"the gap vs the works' implied 0.19-0.53 ({RANGE})", figure="05_bhattacharyya/bc_same_different.png"),
    Claim("bc_same_vs_different_top1", "05_bhattacharyya/bc_critical_same_different.csv",
          partial(measure_bc, of="top-1% regions"), "as above, BC of the top-1% regions",
          f"the gap vs 0.19-0.53 ({RANGE})", published="bc_same_vs_different", label="top-1% regions"),
    Claim("nose_share", "04_region_statistics/region_shares.csv", measure_nose, NO_DIRECTION,
          f"each model's nose share vs 18.9-29.7% ({RANGE})", figure="04_region_statistics/overall_shares.png"),
    Claim("attention_spread", "04_region_statistics/spread.csv", measure_spread,
          "regions per individual holding >= 10% of its critical pixels: 95% interval >= MIN_REGIONS in every model"),
    Claim("layers_differ", "03_leam_layers/layer_bhattacharyya.csv", measure_layers,
          "BC(first, last layer) of a person's maps below the 95% interval of the BC of two different people's maps "
          "at one layer (notebook 05): the layer changes the focus more than the identity does",
          extra=("05_bhattacharyya/bc_same_different.csv",), figure="03_leam_layers/layer_bhattacharyya.png"),
    Claim("models_agree", "05_bhattacharyya/bc_cross_model.csv", measure_models_agree,
          "two models' maps of the same person more alike than one model's maps of two different people (the higher "
          "of the two models): difference > 0 for every pair (" + SIDE + ")",
          figure="05_bhattacharyya/bc_cross_model.png"),
    Claim("occlusion_drop", "06_occlusion_validation/occlusion_summary.csv", measure_drop,
          "cosine drop of the 1% LEAM pixels - of 1% random pixels > 0 in every model, held-out images (" + SIDE + ")",
          f"each model's map drop vs 0.1148 ({RANGE})", figure="06_occlusion_validation/q_curves.png"),
    Claim("transfer", TRANSFER, measure_transfer,
          "another model's LEAM pixels - random pixels (cosine drop on the evaluation model) > 0 for every pair",
          f"each pair's drop vs 0.1148 (the abstract attaches it to this clause; {RANGE})",
          figure="07_transferability/transfer_heatmaps.png"),
    Claim("female_more_affected", "06_occlusion_validation/occlusion_subgroups.csv", measure_female,
          "female drop - male drop > 0 in every model; at least half of MIN_IMAGES images per group",
          figure="06_occlusion_validation/subgroups.png"),
    *_table1_claims(),
    Claim("table1_ranking", f"{XAI}/main_table.csv", measure_ranking,
          "Kendall's tau between our order of the techniques and Table 1's > 0 (exact one-sided p < 0.05), per "
          "dataset, on techniques with >= MIN_IMAGES images", explainers=POSTER_TECHNIQUES, published="xai_table1",
          label="Table 1: the techniques' order"),
    Claim("gradcampp_only_generalizes", f"{XAI}/main_table.csv", measure_generalize,
          "Grad-CAM++ below the random floor (Wilson intervals) and no other poster technique below it, per dataset; "
          "a ceiling (floor = clean) or n < MIN_IMAGES cannot be judged", explainers=POSTER_TECHNIQUES),
    Claim("negligible_impact", f"{XAI}/main_table.csv", measure_negligible,
          "each technique's rate within NEGLIGIBLE of the clean rate (Wilson interval); ceiling (random floor = "
          "clean) or n < MIN_IMAGES: not judgeable", extra=(f"{XAI}/rise_subset_table.csv",),
          explainers=("layercam", "srise", "corrrise")),
    Claim("fill_minor", f"{XAI}/fill_table.csv", measure_fill,
          "range across fills < range across techniques; not judgeable when both are within twice a rate's typical "
          "95% half-width", explainers=("leam", "gradcam", "gradcam++", "layercam")),
    Claim("layer_second_to_last", f"{XAI}/sweeps.csv", measure_layer,
          "second-to-last layer not significantly worse than the lowest rate (Wilson), >= MIN_CASES informative cases",
          explainers=("gradcam", "gradcam++")),
    Claim("layer_negligible_layercam", f"{XAI}/sweeps.csv", measure_layer_layercam,
          "every LayerCAM layer within NEGLIGIBLE of the lowest rate (Wilson)", explainers=("layercam",)),
    Claim("loss_cosine_layercam", f"{XAI}/sweeps.csv", measure_loss_layercam,
          "cosine loss not significantly worse than the lowest rate (Wilson), >= MIN_CASES informative cases",
          explainers=("layercam",)),
    Claim("loss_margin_gradcam", f"{XAI}/sweeps.csv", measure_loss_gradcam,
          "an ArcFace margin 0.2-0.3 not significantly worse than the lowest rate (Wilson), >= MIN_CASES informative "
          "cases", explainers=("gradcam", "gradcam++")),
    Claim("table2_fnc_diagonal", TRANSFER, measure_fnc_diagonal,
          "FN_C's Grad-CAM++ pixels on FN_C below the random floor (Wilson intervals)",
          "lost pairs vs the cell's (0.337 on CPLFW; on LFW carried over by Table 1's Grad-CAM++ LFW/CPLFW ratio, an "
          f"inference; {RATE})", alternatives=TRANSFER_GPP, explainers=("gradcam++",)),
    Claim("table2_rows_decide", TRANSFER, measure_rows_decide,
          "variance share of the generation model (rows) - of the evaluation model (columns) > 0 (95% binomial "
          "resampling interval)", f"the row share vs Table 2's ({RANGE})", alternatives=TRANSFER_GPP,
          explainers=("gradcam++",)),
    Claim("table2_blackbox_beats_whitebox", TRANSFER, measure_blackbox,
          "for some evaluation model, another model's pixels (black-box) lower its rate more than its own (white-box, "
          "the diagonal) beyond the Wilson intervals; fails when the white-box is significantly lowest for every one",
          alternatives=TRANSFER_GPP, explainers=("gradcam++",)),
    Claim("table2_rows_decide_leam", TRANSFER, partial(measure_rows_decide, explainer="leam"),
          "as table2_rows_decide, on LEAM maps (this study's extension)", f"the row share vs Table 2's ({RANGE})",
          published="table2_rows_decide", label="LEAM maps", figure="07_transferability/transfer_heatmaps.png"),
    Claim("table2_blackbox_leam", TRANSFER, partial(measure_blackbox, explainer="leam"),
          "as table2_blackbox_beats_whitebox, on LEAM maps (this study's extension)",
          published="table2_blackbox_beats_whitebox", label="LEAM maps",
          figure="07_transferability/transfer_heatmaps.png"),
    Claim("synthetic_less_effective", "", None, "", explainers=POSTER_TECHNIQUES,
          untestable="no model trained on synthetic data is obtainable here (IR50_I, IR50_S)"),
)
SPEC = {c.key: c for c in CLAIMS}


# ---------------------------------------------------------------- evaluation

def describe_data(summary: dict | None) -> str:
    """One line on the data a run used, from its summary.json (notebook 00)."""
    if not summary:
        return "unknown (no summary.json)"
    return (f"{Path(str(summary.get('data_root', '?'))).name}: {summary.get('selected_identities', '?')} individuals, "
            f"{summary.get('selected_images', '?')} images, {summary.get('pairs_kept', '?')} pairs "
            f"({summary.get('pairs_source', '?')}); profile {summary.get('profile', '?')}")


def _existing(figures_dir: Path, *candidates: str) -> str:
    """The first candidate (relative to figures_dir) that exists, else ''."""
    return next((rel for rel in candidates if rel and (figures_dir / rel).is_file()), "")


def _side_table(figures_dir: Path, rel: str, stamp: dict | None, columns: Sequence[str]) -> pd.DataFrame | None:
    """A table of notebook 09 or 10 that annotates the ledger's rows (stamp and columns checked); None when absent."""
    path = figures_dir / rel
    if not path.is_file():
        return None
    if stamp is not None:
        runstamp.check(path, stamp, name=rel)
    return _columns_checked(pd.read_csv(path), rel, columns, "the columns the ledger reads")


def _each(table: pd.DataFrame, column: str, names: Sequence[str], absent: str,
          describe: Callable[[pd.DataFrame], str]) -> str:
    """'name: ...' for each name, joined by '; ': ``describe`` of its rows of ``table``, or ``absent`` when none."""
    parts = []
    for name in names:
        rows = table[table[column] == name]
        parts.append(f"{name}: {absent if rows.empty else describe(rows)}")
    return "; ".join(parts)


SANITY = "09_sanity_checks/sanity_verdicts.csv"


def sanity_of(explainers: Sequence[str], figures_dir: Path, stamp: dict | None = None) -> str:
    """The sanity-check verdicts (notebook 09) of the explainers a claim rests on, or 'not run'."""
    table = _side_table(figures_dir, SANITY, stamp, sanity.VERDICT_COLUMNS)
    if table is None:
        return "not run"

    def verdicts(rows: pd.DataFrame) -> str:
        failed = rows[rows.verdict != sanity.PASSES]
        which = sorted(set(failed.check.astype(str) + " (" + failed.model.astype(str) + ")"))
        return f"passes {len(rows)} checks" if failed.empty else f"fails {', '.join(which)}"
    return _each(table, "explainer", explainers, "not run", verdicts)


SWEEP = "10_protocol_sensitivity/sweep_closest.csv"
#: ledger claim -> the protocol sweep's claims (notebook 10) that measure the same number under other definitions
SWEEP_LINKS = {"bc_same_vs_different": ("bc_same", "bc_different", "bc_gap"),
               "occlusion_drop": ("drop_map", "drop_random", "drop_ratio"),
               "table1_gradcam++_lfw": ("table1_gradcampp_lfw",),
               "table2_fnc_diagonal": ("table2_fnc_fnc",)}


def sweep_of(key: str, figures_dir: Path, stamp: dict | None = None) -> str:
    """Under which of the declared definitions (notebook 10) our value reaches the published one, for one claim."""
    links = SWEEP_LINKS.get(key, ())
    if not links:
        return ""
    table = _side_table(figures_dir, SWEEP, stamp, protocol.CLOSEST_COLUMNS)
    if table is None:
        return "not run"

    def reach(rows: pd.DataFrame) -> str:
        r = rows.iloc[0]
        under = f"{int(r.n_in_range)} of" if r.n_in_range else "none of"
        return (f"in range under {under} {int(r.n_definitions)} definitions; ours (primary) {r.primary_value:.3f}, "
                f"closest {r.closest_value:.3f} ({r.closest_definition})")
    return _each(table, "claim", links, "not swept in this run", reach)


def _source(claim: Claim, figures_dir: Path) -> str:
    """The table the claim reads: the first of its alternatives that exists, else its table."""
    return _existing(figures_dir, *claim.alternatives) or claim.table


def evaluate(claim: Claim, figures_dir: str | Path, summary: dict | None = None,
             stamp: dict | None = None, occlusion: dict[str, object] | None = None) -> dict:
    """One ledger row: published vs ours, direction, magnitude, verdict and reason, link and the sources' provenance.

    With ``stamp`` (the run's, :func:`facexai.runstamp.from_summary`), every table read must carry it:
    :class:`facexai.runstamp.RunStampError` otherwise, naming the table. ``occlusion``: the declared q and
    fill (default: read now, :func:`declared_occlusion`). A table lacking a declared column: :class:`SchemaError`.
    """
    figures_dir = Path(figures_dir)
    pub = claim.said
    table = _source(claim, figures_dir) if claim.table else ""
    sources = [table, *claim.extra] if table else []
    row = {"claim": claim.key, "work": pub.work, "published": pub.text + (f" ({claim.label})" if claim.label else ""),
           "ours": "", "n": "", "interval": "", "direction": "", "magnitude": "", "verdict": NOT_TESTABLE,
           "reason": "", "sanity": sanity_of(claim.explainers, figures_dir, stamp),
           "sweep": sweep_of(claim.key, figures_dir, stamp), "measured_on": "",
           "data": describe_data(summary), "link": "", "figure": "", "source": "; ".join(sources),
           "source_sha256": "", "source_mtime": "", "values": "{}", "forest": "[]",
           "published_values": json.dumps(pub.values)}
    if claim.untestable:
        row["reason"] = claim.untestable
        return row
    missing = [s for s in sources if not (figures_dir / s).is_file()]
    if missing:
        row["reason"] = f"table {missing[0]} not produced in this run"
        return row
    for s in sources:
        if stamp is not None:
            runstamp.check(figures_dir / s, stamp, name=s)
    row |= {"source_sha256": "; ".join(cache.file_sha256(figures_dir / s) for s in sources),
            "source_mtime": "; ".join(datetime.fromtimestamp((figures_dir / s).stat().st_mtime, timezone.utc)
                                      .isoformat(timespec="seconds") for s in sources),
            "figure": _existing(figures_dir, claim.figure),
            "link": _existing(figures_dir, str(Path(table).with_suffix(".md")), table)}
    m = None
    try:
        tables = [read_table(figures_dir, s) for s in sources]
        takes = inspect.signature(claim.measure).parameters
        m = claim.measure(*tables, **({"occlusion": occlusion or declared_occlusion()} if "occlusion" in takes else {}))
        direction = overall_direction(m.cases) if claim.direction_rule != NO_DIRECTION else NO_DIRECTION
        size = NO_NUMBER if claim.magnitude_rule == NO_NUMBER else overall_magnitude(m.magnitudes) \
            if m.magnitudes else UNCLEAR
        verdict = verdict_of(direction, size)
        reason = (f"direction {direction}" + (f" ({_count(m.cases, HOLDS)} cases hold: {_cases_text(m.cases)})"
                                              if m.cases else "")
                  + ("" if size == NO_NUMBER else f"; magnitude {size} ({_cases_text(m.magnitudes)})"))
    except NotTestable as why:
        row["reason"] = f"{table}: {why}"
        if claim.alternatives and "gradcam++" in claim.explainers and "no gradcam++" in str(why).lower():
            row["reason"] = f"{GRADCAMPP_NOTE} ({why})"
        return row
    except NotJudgeable as why:
        m = why.args[1] if len(why.args) > 1 else None
        direction, size, verdict, reason = UNCLEAR, UNCLEAR, NOT_JUDGEABLE, f"not judgeable: {why.args[0]}"
    row |= {"verdict": verdict, "reason": reason, "direction": direction, "magnitude": size}
    if m is not None:
        row |= {"ours": m.text, "n": m.n, "interval": m.interval, "measured_on": ", ".join(map(str, m.measured_on)),
                "values": json.dumps({k: float(v) for k, v in m.values.items() if not math.isnan(float(v))}),
                "forest": json.dumps(m.forest)}
    return row


def build_ledger(figures_dir: str | Path, summary: dict | None = None, claims: tuple[Claim, ...] = CLAIMS,
                 check_stamps: bool = True) -> pd.DataFrame:
    """The ledger of every claim for the run whose figures are in ``figures_dir`` (figures/<run>/).

    When ``summary`` (the run's summary.json) is given and ``check_stamps``, every table read must
    carry that run's stamp (:class:`facexai.runstamp.RunStampError` otherwise, naming the table).
    """
    stamp = runstamp.from_summary(summary) if summary and check_stamps else None
    occlusion = declared_occlusion()  # once for the whole ledger
    return pd.DataFrame([evaluate(c, Path(figures_dir), summary, stamp, occlusion) for c in claims])


def verdict_for(key: str, figures_dir: str | Path, summary: dict | None = None) -> dict:
    """The ledger's row for one claim (what a notebook shows instead of judging the claim itself)."""
    return evaluate(SPEC[key], figures_dir, summary, runstamp.from_summary(summary) if summary else None)


def verdict_line(key: str, figures_dir: str | Path, summary: dict | None = None) -> str:
    """One Markdown line: the ledger's verdict on a claim and its reason (a notebook shows it instead of judging the
    claim itself); a table another run made is named, not judged."""
    try:
        r = verdict_for(key, figures_dir, summary)
    except runstamp.RunStampError as refused:
        return f"**Ledger: no verdict on \"{SPEC[key].said.text}\"**: {refused}"
    return (f"**Ledger verdict on \"{r['published']}\": {r['verdict']}** — {r['reason']}"
            + (f" (ours: {r['ours']}; n: {r['n']})" if r["ours"] else ""))


def rules(claims: tuple[Claim, ...] = CLAIMS) -> pd.DataFrame:
    """Each claim's tables and rules (direction and magnitude), with the tolerances' values filled in."""
    def filled(text: str) -> str:
        return re.sub(r"\b[A-Z][A-Z_]{2,}\b", lambda m: f"{TOLERANCES[m[0]][0]:g}" if m[0] in TOLERANCES else m[0],
                      text)
    return pd.DataFrame([{"claim": c.key, "work": c.said.work, "table": "; ".join(filter(None, [c.table, *c.extra])),
                          "direction rule": filled(c.direction_rule), "magnitude rule": filled(c.magnitude_rule),
                          "not testable because": c.untestable} for c in claims])


def reading(ledger: pd.DataFrame, figures_dir: str | Path, run: str, summary: dict | None, profile: str) -> str:
    """The ledger in a few Markdown lines: how many claims were tested, which got each verdict, which tables the
    untested ones lacked, and on a small profile what the verdicts can say."""
    tested = ledger[ledger.verdict != NOT_TESTABLE]
    lines = [f"- {len(tested)} of {len(ledger)} claims could be tested in run `{run}` ({describe_data(summary)})."]
    for verdict in VERDICTS[:4]:
        keys = tested.claim[tested.verdict == verdict].tolist()
        if keys:
            lines.append(f"- **{verdict}**: {', '.join(keys)}.")
    untested = ledger.source[ledger.verdict == NOT_TESTABLE]
    missing = sorted({s for sources in untested for s in sources.split("; ")
                      if s and not (Path(figures_dir) / s).is_file()})
    if missing:
        lines.append(f"- not testable because these tables were not produced: {', '.join(missing)}.")
    if profile != "paper":
        lines.append(f"- Profile `{profile}` runs on a small sample; verdicts here say whether the pipeline agrees "
                     "with the works at this scale, not more.")
    return "\n".join(lines)


def tolerances() -> pd.DataFrame:
    """The rules' constants with the reason for each value."""
    return pd.DataFrame([{"constant": k, "value": v, "why this value": why} for k, (v, why) in TOLERANCES.items()])


def forest_rows(ledger: pd.DataFrame) -> pd.DataFrame:
    """One row per numeric comparison of the ledger: label, unit, our estimate and interval, the published range."""
    rows = [dict(r, claim=c, verdict=v) for c, v, f in zip(ledger.claim, ledger.verdict, ledger.forest)
            for r in json.loads(f or "[]") if np.isfinite([r["estimate"], r["lo"], r["hi"]]).all()]
    return pd.DataFrame(rows, columns=["claim", "label", "unit", "estimate", "lo", "hi", "published_lo",
                                       "published_hi", "verdict"])


READER_COLUMNS = {"said": "the work says", "ours": "this study", "interval": "95% interval", "n": "n",
                  "direction": "direction", "magnitude": "magnitude", "verdict": "verdict", "reason": "why",
                  "sanity": "explainer sanity", "sweep": "protocol sweep (notebook 10)", "evidence": "evidence"}


def _evidence(ledger: pd.DataFrame, link: Callable[[str, str], str]) -> list[str]:
    """Per row: links to the source table and, when there is one, the figure."""
    return [" · ".join(link(name, path) for name, path in (("table", t), ("figure", f)) if path)
            for t, f in zip(ledger.link, ledger.figure)]


CAVEATS = (
    "Verdicts say whether this run agrees with the works at this run's scale; the primary protocol is notebook 06's "
    "(top 1% pixels of person maps from generation images, occluded on held-out images, black fill, clean "
    "threshold from 10-fold pairs).",
    "Intervals: bootstrap 95% intervals from the notebooks for means; Wilson 95% on held-out images for recognition "
    "rates; differences use a normal approximation from the two intervals.",
    "The LEAM work's exact map formula is not public; the poster's models (except FN_C) and CALFW/CPLFW are not "
    "available here.",
)


def run_settings(cfg: profiles.Config) -> dict[str, object]:
    """The run's settings that head the ledger. The RISE ones are those notebook 08 ran with (its parameters
    in the run's manifest), and every other setting a notebook was given beyond its profile is listed: a
    paper run may run a declared subset (``-p rise_images N``)."""
    ran = provenance.notebook_parameters(cfg.figures_dir, XAI)
    declared = provenance.declared_parameters(cfg.figures_dir)
    return {"profile": cfg.profile, "individuals": cfg.n_identities, "min images": cfg.min_images,
            "models": ", ".join(cfg.models), "held-out images per person": cfg.occlusion_n_eval,
            "random-pixel draws": cfg.occlusion_seeds, "RISE masks": ran.get("rise_masks", cfg.rise_masks),
            "RISE images": ran.get("rise_images", cfg.rise_images) or "all", "seed": cfg.seed,
            "declared settings": "; ".join(f"{stem[:2]}: " + ", ".join(f"{k}={v}" for k, v in values.items())
                                           for stem, values in declared.items()) or "none (the profile's)"}


def header(summary: dict | None, settings: dict | None = None, stamped: bool = True) -> list[str]:
    """The run's settings and the caveats that head the ledger."""
    lines = [f"- data: {describe_data(summary)}"]
    if settings:
        lines.append("- settings: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    if not stamped:
        lines.append("- tables NOT checked against a run stamp (no summary given)")
    return lines + [f"- {c}" for c in CAVEATS]


def to_markdown(ledger: pd.DataFrame, title: str = "Claims ledger", head: Sequence[str] = (),
                forest_figure: str = "") -> str:
    """The ledger for a reader: run settings and caveats, the claims table with links, rules, works, provenance."""
    shown = ledger.assign(said=ledger.work + ": " + ledger.published,
                          evidence=_evidence(ledger, lambda name, path: f"[{name}]({path})"))
    counts = ledger.verdict.value_counts()
    lines = [f"# {title}", "", "## Run and caveats", "", *head, "",
             "Each row: a claim of one of the two works, this study's number on the same measure (read from the "
             "table an earlier notebook wrote, never typed in), its n and 95% interval, the direction and magnitude "
             "judgements and the verdict that follows from both.", "",
             "Verdicts: " + ", ".join(f"{v} {int(counts.get(v, 0))}" for v in VERDICTS) + ".", ""]
    if forest_figure:
        lines += [f"![ours vs published]({forest_figure})", ""]
    lines += [shown[list(READER_COLUMNS)].rename(columns=READER_COLUMNS).to_markdown(index=False), "",
              "## Rules", "", rules().to_markdown(index=False), "", tolerances().to_markdown(index=False), "",
              "## Works", "", *[f"- **{k}**: {v}" for k, v in WORKS.items()], "",
              "## Provenance", "",
              "The run's arguments, parameters, git commit, package versions, machine and per-notebook time and "
              "memory: [manifest.md](manifest.md) ([json](manifest.json)); each notebook executed: "
              "[notebooks/](notebooks/).", "",
              ledger[["claim", "source", "source_sha256", "source_mtime"]].to_markdown(index=False), ""]
    return "\n".join(lines)


def to_html(ledger: pd.DataFrame, title: str = "Claims ledger", head: Sequence[str] = (),
            forest_figure: str = "") -> str:
    """A standalone HTML page of the reader's table (links clickable), no extra dependency."""
    shown = ledger.assign(said=ledger.work + ": " + ledger.published, evidence="")
    shown = shown[list(READER_COLUMNS)].rename(columns=READER_COLUMNS).map(lambda v: html.escape(str(v)))
    shown["evidence"] = _evidence(ledger, lambda name, path: f'<a href="{html.escape(path)}">{name}</a>')
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}th{background:#eee}")
    works = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in WORKS.items())
    items = "".join(f"<li>{html.escape(h.removeprefix('- '))}</li>" for h in head)
    figure = f"<img src='{html.escape(forest_figure)}' style='max-width:100%'>" if forest_figure else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><h2>Run and caveats</h2>"
            f"<ul>{items}</ul>{figure}{shown.to_html(index=False, escape=False)}<h2>Rules</h2>"
            f"{rules().to_html(index=False)}{tolerances().to_html(index=False)}<h2>Works</h2><ul>{works}</ul>"
            "</body></html>")


def write_ledger(ledger: pd.DataFrame, figures_dir: str | Path, title: str = "Claims ledger",
                 head: Sequence[str] = (), forest_figure: str = "") -> list[Path]:
    """Write the reader's pages figures_dir/claims.md and claims.html, atomically."""
    figures_dir = Path(figures_dir)
    md, page = figures_dir / "claims.md", figures_dir / "claims.html"
    cache.atomic_write(md, lambda tmp: tmp.write_text(to_markdown(ledger, title, head, forest_figure)))
    cache.atomic_write(page, lambda tmp: tmp.write_text(to_html(ledger, title, head, forest_figure)))
    return [md, page]


LEDGER = "11_claims/claims.csv"


def read_ledger(figures_dir: str | Path) -> pd.DataFrame:
    """The ledger another run's notebook 11 wrote (figures_dir/11_claims/claims.csv)."""
    path = Path(figures_dir) / LEDGER
    if not path.is_file():
        raise FileNotFoundError(f"no claims ledger at {path}: run notebook 11 for that run first")
    return pd.read_csv(path, keep_default_na=False, dtype=str)  # text cells, as the ledger wrote them


def side_by_side(ledgers: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per claim (in the first ledger's order, then claims only later ones have), each run's verdict, value
    and n, named ``<run>_verdict`` etc., and whether the verdicts differ: e.g. the paper run beside quick."""
    frames = [ledger.set_index("claim")[["verdict", "ours", "n"]].rename(columns=lambda c: f"{run}_{c}")
              for run, ledger in ledgers.items()]
    table = pd.concat(frames, axis=1, join="outer", sort=False).fillna("")
    verdicts = table[[f"{run}_verdict" for run in ledgers]]
    table["verdict_changed"] = verdicts.nunique(axis=1) > 1
    return table.rename_axis("claim").reset_index()
