"""The claims ledger: each claim of the two reproduced works beside this study's number on the same measure.

A claim is a small declarative spec: its text, the source table (relative to ``figures/<run>/``),
a function computing our numbers from that table, and a verdict rule with explicit tolerances.
Our numbers are only ever read from tables that earlier notebooks wrote; the works' numbers live
in :mod:`facexai.published` and nowhere else. Every ledger row records the file it read (path, SHA-256,
modification time) so a test can trace each number back to it.
"""
from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from facexai import cache
from facexai.published import PUBLISHED, WORKS, Published

REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTABLE = "reproduced", "partly", "not reproduced", "not testable here"
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTABLE)


class NotTestable(Exception):
    """The table exists but cannot answer the claim (missing columns or rows); the message says why."""


@dataclass
class Measurement:
    """Our numbers for one claim: named values (what the tests trace), a readable text, what it was measured on."""

    values: dict[str, float]
    text: str
    measured_on: list[str]


Verdict = tuple[str, str]  # (one of VERDICTS, reason)


@dataclass(frozen=True)
class Claim:
    """One ledger row's recipe: measure ``table`` with ``measure``, judge with ``judge`` against what the work said."""

    key: str
    table: str  # relative to figures/<run>/
    measure: Callable[[pd.DataFrame], Measurement]
    judge: Callable[[Measurement, Published], Verdict]
    figure: str = ""  # preferred link (relative to figures/<run>/), used when it exists
    published: str = ""  # key of PUBLISHED when another measure of the same claim (default: key)

    @property
    def said(self) -> Published:
        return PUBLISHED[self.published or self.key]


# ---------------------------------------------------------------- table helpers (pure)

def norm(name: object) -> str:
    """Lower-case name without spaces, dashes, underscores: 'Grad-CAM++' -> 'gradcam++', 'S-RISE' -> 'srise'."""
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def need(df: pd.DataFrame, *columns: str) -> None:
    """NotTestable unless ``df`` has every column."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise NotTestable(f"table lacks column(s) {missing}; it has {list(df.columns)}")


def where(df: pd.DataFrame, **equal: object) -> pd.DataFrame:
    """Rows whose columns equal the values (names compared with :func:`norm`, numbers numerically)."""
    need(df, *equal)
    keep = pd.Series(True, index=df.index)
    for col, value in equal.items():
        if isinstance(value, (int, float)):
            keep &= np.isclose(pd.to_numeric(df[col], errors="coerce"), value)
        else:
            keep &= df[col].map(norm) == norm(value)
    out = df[keep]
    if out.empty:
        have = {col: sorted(map(str, df[col].unique()))[:8] for col in equal}
        raise NotTestable(f"no rows with {equal}; the table has {have}")
    return out


def _fmt(x: float, pct: bool = False) -> str:
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def _span(values, pct: bool = False) -> str:
    lo, hi = float(np.min(values)), float(np.max(values))
    return _fmt(lo, pct) if math.isclose(lo, hi) else f"{_fmt(lo, pct)}-{_fmt(hi, pct)}"


# ---------------------------------------------------------------- verdict rules (pure)

def count_verdict(hits: int, total: int, what: str) -> Verdict:
    """All cases hold: reproduced; some: partly; none: not reproduced."""
    if total == 0:
        return NOT_TESTABLE, f"no case to test {what}"
    verdict = REPRODUCED if hits == total else PARTLY if hits else NOT_REPRODUCED
    return verdict, f"{what} in {hits} of {total} cases"


def within(values, lo: float, hi: float, tol: float) -> list[bool]:
    """Which values lie in [lo - tol, hi + tol]."""
    return [lo - tol <= float(v) <= hi + tol for v in values]


# ---------------------------------------------------------------- the claims

BC_TOL = 0.05  # absolute BC slack around the published ranges


def measure_bc(df: pd.DataFrame, of: str = "whole maps") -> Measurement:
    """Per model, mean BC of overall maps (``of``: what the table compared) for same- and different-people pairs."""
    rows = where(df, layer="overall")
    need(rows, "model", "group", "mean")
    kind = rows.group.map(lambda g: "same" if norm(g).startswith("same") else "diff" if norm(g).startswith("diff")
                          else "")
    table = rows.assign(kind=kind)[kind != ""].pivot_table(index="model", columns="kind", values="mean")
    if not {"same", "diff"} <= set(table.columns) or table[["same", "diff"]].isna().any().any():
        raise NotTestable(f"needs 'same' and 'different' groups per model; groups: {sorted(rows.group.unique())}")
    return Measurement(
        {"same_min": table.same.min(), "same_max": table.same.max(), "diff_min": table["diff"].min(),
         "diff_max": table["diff"].max(), "models": len(table), "same_gt_diff": int((table.same > table["diff"]).sum())},
        f"{of}: same {_span(table.same)} vs different {_span(table['diff'])}", list(table.index))


def judge_bc(m: Measurement, pub: Published, tol: float = BC_TOL) -> Verdict:
    """Same > different in every model (else partly / not) and both ranges within the published ones ± BC_TOL."""
    v, p = m.values, pub.values
    verdict, reason = count_verdict(int(v["same_gt_diff"]), int(v["models"]), "same-person BC > different-people BC")
    inside = all(within([v["same_min"], v["same_max"]], p["same_lo"], p["same_hi"], tol)
                 + within([v["diff_min"], v["diff_max"]], p["diff_lo"], p["diff_hi"], tol))
    if verdict == REPRODUCED and not inside:
        return PARTLY, f"{reason}, but the values leave the published ranges ± {tol}"
    return verdict, reason + (f"; values within the published ranges ± {tol}" if inside else "")


NOSE_TOL = 0.03  # absolute share slack (3 percentage points)


def overall_shares(df: pd.DataFrame) -> pd.DataFrame:
    """Region shares of the overall map, model x region, as fractions (a table in percent is rescaled)."""
    rows = where(df, layer="overall")
    need(rows, "model", "region", "share")
    table = rows.pivot_table(index="model", columns="region", values="share", aggfunc="mean")
    if table.sum(axis=1).median() > 2:  # shares given in percent
        table = table / 100
    return table


def measure_nose(df: pd.DataFrame) -> Measurement:
    """Share of the critical pixels in the nose, per model (overall map)."""
    table = overall_shares(df)
    nose = [c for c in table.columns if norm(c) == "nose"]
    if not nose:
        raise NotTestable(f"no 'nose' region; regions: {list(table.columns)}")
    shares = table[nose[0]]
    return Measurement({"min": shares.min(), "max": shares.max(), "models": len(shares)},
                       f"nose {_span(shares, pct=True)}", list(shares.index))


def judge_range(m: Measurement, pub: Published, tol: float = NOSE_TOL) -> Verdict:
    """Every model inside the published range ± NOSE_TOL: reproduced; our range overlapping it: partly; else not."""
    lo, hi = pub.values["lo"], pub.values["hi"]
    ours = (m.values["min"], m.values["max"])
    if all(within(ours, lo, hi, tol)):
        return REPRODUCED, f"every model within {lo:g}-{hi:g} ± {tol:g}"
    if ours[0] <= hi + tol and ours[1] >= lo - tol:
        return PARTLY, f"our range overlaps {lo:g}-{hi:g} ± {tol:g} but leaves it"
    return NOT_REPRODUCED, f"our range lies outside {lo:g}-{hi:g} ± {tol:g}"


MIN_REGIONS = 2.0  # 'multiple fragments': at least two regions per individual, on average


def measure_spread(df: pd.DataFrame) -> Measurement:
    """Per model, the mean number of regions per individual holding >= threshold of its critical pixels."""
    need(df, "model", "n_regions")
    regions = df.set_index("model")["n_regions"].astype(float)
    threshold = f" >= {float(df.threshold.iloc[0]):.0%} of the critical pixels" if "threshold" in df else ""
    top = f"; top region holds {_span(df.top_share, pct=True)}" if "top_share" in df else ""
    return Measurement({"min": regions.min(), "max": regions.max(), "models": len(regions),
                        "spread_models": int((regions >= MIN_REGIONS).sum())},
                       f"{_span(regions)} regions per individual{threshold}{top}", list(regions.index))


def judge_spread(m: Measurement, pub: Published) -> Verdict:
    """Spread = at least MIN_REGIONS regions per individual on average, in every model."""
    return count_verdict(int(m.values["spread_models"]), int(m.values["models"]),
                         f">= {MIN_REGIONS:g} regions per individual")


BC_HALF = 0.5  # two maps sharing more than half their mass are 'similar', at most half: they 'differ'


def measure_layers(df: pd.DataFrame) -> Measurement:
    """BC between the first and last hooked layer's person maps, per model (notebook 03)."""
    need(df, "model", "first vs last")
    bc = df.set_index("model")["first vs last"].astype(float)
    return Measurement({"min": bc.min(), "max": bc.max(), "models": len(bc), "differ": int((bc <= BC_HALF).sum())},
                       f"BC(first, last layer) {_span(bc)}", list(bc.index))


def judge_layers(m: Measurement, pub: Published) -> Verdict:
    """Layers differ = BC(first, last layer) <= BC_HALF, in every model."""
    return count_verdict(int(m.values["differ"]), int(m.values["models"]),
                         f"first and last layer maps with BC <= {BC_HALF:g}")


def measure_models_agree(df: pd.DataFrame) -> Measurement:
    """BC between two models' overall maps of the same person, per pair of different models."""
    need(df, "model_a", "model_b", "group", "mean")
    rows = df[(df.model_a != df.model_b) & df.group.map(norm).str.startswith("same")]
    if rows.empty:
        raise NotTestable("needs >= 2 models (same-person rows of two different models)")
    pairs = rows.assign(pair=[" vs ".join(sorted(p)) for p in zip(rows.model_a, rows.model_b)])
    bc = pairs.groupby("pair")["mean"].mean()
    return Measurement({"min": bc.min(), "max": bc.max(), "pairs": len(bc), "similar": int((bc > BC_HALF).sum())},
                       f"same person, two models: BC {_span(bc)}", sorted(set(rows.model_a) | set(rows.model_b)))


def judge_models_agree(m: Measurement, pub: Published) -> Verdict:
    """Models agree = same-person BC between two models' maps > BC_HALF, for every pair of models."""
    return count_verdict(int(m.values["similar"]), int(m.values["pairs"]), f"model pairs with BC > {BC_HALF:g}")


DROP_TOL = 0.05  # absolute cosine-drop slack around the published 0.1148


def occlusion_selected(df: pd.DataFrame, by: tuple[str, ...] = ("model",), explainer: str = "leam",
                       fill: str = "black", q: float = 1.0) -> pd.DataFrame:
    """Held-out occlusion rows of one explainer, fill and q, with kind = 'map' (its pixels) or 'random'."""
    rows = where(df, explainer=explainer, fill=fill, q=q)
    need(rows, *by, "selection", "mean_drop")
    if "in_sample" in rows:
        rows = rows[rows.in_sample.map(norm) != "true"]
    sel = rows.selection.map(norm)
    if sel[~sel.str.contains("random")].nunique() != 1 or not sel.str.contains("random").any():
        raise NotTestable(f"needs one map selection and a random one; selections: {sorted(rows.selection.unique())}")
    return rows.assign(kind=sel.map(lambda s: "random" if "random" in s else "map"))


def occlusion_rows(df: pd.DataFrame, by: tuple[str, ...] = ("model",)) -> pd.DataFrame:
    """Mean cosine drop of the LEAM pixels and of random pixels (columns map, random), black fill, q = 1%."""
    rows = occlusion_selected(df, by)
    return rows.pivot_table(index=list(by), columns="kind", values="mean_drop").dropna()


def measure_drop(df: pd.DataFrame) -> Measurement:
    table = occlusion_rows(df)
    if table.empty:
        raise NotTestable("no model has both a map and a random drop")
    ratio = table["map"].mean() / table["random"].mean() if table["random"].mean() > 0 else float("inf")
    return Measurement({"map_mean": table["map"].mean(), "random_mean": table["random"].mean(), "models": len(table),
                        "map_gt_random": int((table["map"] > table["random"]).sum())},
                       f"{_fmt(table['map'].mean())} vs {_fmt(table['random'].mean())} random, black fill "
                       f"(ratio {ratio:.1f}; per model {_span(table['map'])} vs {_span(table['random'])})",
                       list(table.index))


def judge_drop(m: Measurement, pub: Published, tol: float = DROP_TOL) -> Verdict:
    """Map drop > random drop in every model (else partly / not) and the mean map drop within DROP_TOL of the work's."""
    verdict, reason = count_verdict(int(m.values["map_gt_random"]), int(m.values["models"]), "map drop > random drop")
    close = abs(m.values["map_mean"] - pub.values["map"]) <= tol
    if verdict == REPRODUCED and not close:
        return PARTLY, f"{reason}, but the mean drop is not within {pub.values['map']:g} ± {tol:g}"
    return verdict, reason + (f"; mean drop within {pub.values['map']:g} ± {tol:g}" if close else "")


def measure_transfer(df: pd.DataFrame) -> Measurement:
    """Off-diagonal (generation != evaluation) cosine drops vs the random row of the same evaluation model."""
    rows = where(df, fill="black", q=1.0)
    need(rows, "generation", "evaluation", "explainer", "mean_drop")
    is_random = rows.generation.map(norm).str.contains("random") | (rows.explainer.map(norm) == "random")
    floor = rows[is_random].groupby("evaluation").mean_drop.mean()
    leam = rows[~is_random & (rows.explainer.map(norm) == "leam")]
    off = leam[leam.generation != leam.evaluation]
    off = off[off.evaluation.isin(floor.index)]
    if off.empty:
        raise NotTestable("needs >= 2 models with LEAM rows and a random row per evaluation model")
    beats = off.mean_drop.to_numpy() > floor[off.evaluation].to_numpy()
    diag = leam[leam.generation == leam.evaluation].mean_drop
    return Measurement({"pairs": len(off), "beat_random": int(beats.sum()), "offdiag_mean": off.mean_drop.mean(),
                        "random_mean": floor.mean(), "diag_mean": diag.mean() if len(diag) else float("nan")},
                       f"cross-model drop {_fmt(off.mean_drop.mean())} vs random {_fmt(floor.mean())}"
                       + (f", own model {_fmt(diag.mean())}" if len(diag) else ""),
                       sorted(set(off.generation) | set(off.evaluation)))


def judge_transfer(m: Measurement, pub: Published) -> Verdict:
    """Transfer = another model's LEAM pixels lower cosine more than random pixels, for every model pair."""
    return count_verdict(int(m.values["beat_random"]), int(m.values["pairs"]),
                         "another model's LEAM pixels beat random pixels")


MIN_GROUP_IMAGES = 5  # fewer evaluation images in a subgroup: not testable


def measure_female(df: pd.DataFrame) -> Measurement:
    """Per model, the cosine drop of the LEAM pixels on female vs male images (notebook 06 subgroups)."""
    rows = occlusion_selected(df, by=("model", "group", "n_images"))
    rows = rows[rows.kind == "map"].assign(group=rows.group.map(norm))
    rows = rows[rows.group.isin({"female", "male"})]
    smallest = rows.groupby("group").n_images.min()
    if len(smallest) < 2 or smallest.min() < MIN_GROUP_IMAGES:
        raise NotTestable(f"needs >= {MIN_GROUP_IMAGES} female and male evaluation images per model; "
                          f"smallest counts {smallest.to_dict()}")
    drops = rows.pivot_table(index="model", columns="group", values="mean_drop").dropna()
    return Measurement({"models": len(drops), "female_gt_male": int((drops.female > drops.male).sum()),
                        "female_mean": drops.female.mean(), "male_mean": drops.male.mean()},
                       f"drop female {_fmt(drops.female.mean())} vs male {_fmt(drops.male.mean())} "
                       f"(>= {int(smallest.female)} female, {int(smallest.male)} male images per model)",
                       list(drops.index))


def judge_female(m: Measurement, pub: Published) -> Verdict:
    """Female images hit harder = larger drop than on male images, in every model (>= MIN_GROUP_IMAGES each)."""
    return count_verdict(int(m.values["female_gt_male"]), int(m.values["models"]), "female drop > male drop")


GENERALIZE_MARGIN = 0.05  # recognition rate this far below the random floor = the regions matter
GEN_TECHNIQUES = ("gradcam", "gradcam++", "layercam", "srise", "corrrise")  # the second work's set


def model_means(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with a result, averaged over models: the ``model == "mean"`` rows where a table has per-model rows too."""
    if "status" in df:
        df = df[df.status.map(norm).isin({"ok", "done", "nan", ""})]
    if "model" in df and (df.model.map(norm) == "mean").any():
        df = df[df.model.map(norm) == "mean"]
    return df


def technique_rates(df: pd.DataFrame, fill: str = "black") -> pd.DataFrame:
    """Recognition rate after occlusion (mean over models), dataset x technique, rows with a result only."""
    rows = model_means(where(df, fill=fill))
    need(rows, "technique", "dataset", "recognition_rate")
    rows = rows.assign(technique=rows.technique.map(norm)).dropna(subset=["recognition_rate"])
    table = rows.pivot_table(index="dataset", columns="technique", values="recognition_rate")
    if "random" not in table.columns:
        raise NotTestable(f"no random-pixel floor; techniques: {list(table.columns)}")
    return table.dropna(subset=["random"])


def measure_generalize(df: pd.DataFrame) -> Measurement:
    table = technique_rates(df)
    if "gradcam++" not in table.columns:
        raise NotTestable(f"no Grad-CAM++ rows; techniques: {list(table.columns)}")
    below = table.sub(table["random"], axis=0) <= -GENERALIZE_MARGIN  # clearly under the random floor
    others = [t for t in GEN_TECHNIQUES if t != "gradcam++" and t in below.columns]
    gpp = below["gradcam++"]
    only = gpp & ~below[others].any(axis=1)
    winners = "; ".join(f"{d}: {', '.join(t for t in GEN_TECHNIQUES if t in below and below.loc[d, t]) or 'none'}"
                        for d in table.index)
    return Measurement({"datasets": len(table), "gradcampp_generalizes": int(gpp.sum()), "only_gradcampp": int(only.sum()),
                        "gradcampp_rate": table["gradcam++"].mean(), "random_rate": table["random"].mean()},
                       f"Grad-CAM++ {_span(table['gradcam++'])} vs random {_span(table['random'])}; "
                       f">= {GENERALIZE_MARGIN:g} below the floor: {winners}", list(table.index))


def judge_generalize(m: Measurement, pub: Published) -> Verdict:
    """Only Grad-CAM++ is GENERALIZE_MARGIN below the random floor, in every dataset; below it somewhere: partly."""
    n, gpp, only = (int(m.values[k]) for k in ("datasets", "gradcampp_generalizes", "only_gradcampp"))
    if gpp == 0:
        return NOT_REPRODUCED, f"Grad-CAM++ is not {GENERALIZE_MARGIN:g} below the random floor in any of {n} datasets"
    if only == n:
        return REPRODUCED, f"only Grad-CAM++ is >= {GENERALIZE_MARGIN:g} below the random floor, in all {n} datasets"
    return PARTLY, (f"Grad-CAM++ below the floor in {gpp} of {n} datasets, the only technique there in {only}")


NEGLIGIBLE = ("layercam", "srise", "corrrise")
MOSTLY = 2 / 3  # 'mostly' = at least this share of the (technique, dataset) cases


def measure_negligible(df: pd.DataFrame) -> Measurement:
    table = technique_rates(df)
    present = [t for t in NEGLIGIBLE if t in table.columns]
    if not present:
        raise NotTestable(f"no LayerCAM / S-RISE / CorrRISE rows; techniques: {list(table.columns)}")
    gap = table[present].sub(table["random"], axis=0)
    return Measurement({"cases": int(gap.notna().sum().sum()), "negligible": int((gap > -GENERALIZE_MARGIN).sum().sum())},
                       "; ".join(f"{t} {_span(table[t])}" for t in present) + f" vs random {_span(table['random'])}",
                       list(table.index))


def judge_negligible(m: Measurement, pub: Published) -> Verdict:
    """Negligible = not GENERALIZE_MARGIN below the random floor; 'mostly' = at least MOSTLY of the cases."""
    k, n = int(m.values["negligible"]), int(m.values["cases"])
    what = f"within {GENERALIZE_MARGIN:g} of the random floor in {k} of {n} technique x dataset cases"
    if n and k / n >= MOSTLY:
        return REPRODUCED, what
    return (PARTLY if k else NOT_REPRODUCED), what


FILL_TOL = 0.10  # recognition-rate range across fills that still counts as minor


def measure_fill(df: pd.DataFrame) -> Measurement:
    """Mean range of the recognition rate across fills (per technique, dataset) vs across techniques (per fill)."""
    need(df, "technique", "fill", "recognition_rate")
    df = model_means(df)
    rows = df.assign(technique=df.technique.map(norm)).dropna(subset=["recognition_rate"])
    rows = rows[rows.technique != "random"]
    keys = ["dataset"] if "dataset" in rows else []
    if rows.fill.nunique() < 2 or rows.technique.nunique() < 2:
        raise NotTestable(f"needs >= 2 fills and >= 2 techniques; fills {sorted(rows.fill.unique())}")
    span = lambda s: s.max() - s.min()  # noqa: E731
    by_fill = rows.groupby([*keys, "technique"]).recognition_rate.agg(span)
    by_tech = rows.groupby([*keys, "fill"]).recognition_rate.agg(span)
    return Measurement({"fill_range": by_fill.mean(), "technique_range": by_tech.mean(), "fills": rows.fill.nunique()},
                       f"range across fills {_fmt(by_fill.mean())} vs across techniques {_fmt(by_tech.mean())} "
                       f"({rows.fill.nunique()} fills)", sorted(rows.technique.unique()))


def judge_fill(m: Measurement, pub: Published, tol: float = FILL_TOL) -> Verdict:
    """Minor = the range across fills is <= FILL_TOL and below the range across techniques; one of the two: partly."""
    small, smaller = m.values["fill_range"] <= tol, m.values["fill_range"] < m.values["technique_range"]
    verdict = REPRODUCED if small and smaller else PARTLY if small or smaller else NOT_REPRODUCED
    return verdict, (f"fill range {'<=' if small else '>'} {tol:g}, {'smaller' if smaller else 'not smaller'} "
                     "than the range across techniques")


def best_values(df: pd.DataFrame, hyperparameters: set[str], techniques: tuple[str, ...]) -> pd.DataFrame:
    """Sweep rows of the given hyperparameter(s) and techniques that reach each (technique, model)'s lowest rate."""
    need(df, "technique", "model", "hyperparameter", "value", "recognition_rate")
    rows = df[df.hyperparameter.map(norm).isin(hyperparameters)]
    rows = rows.assign(technique=rows.technique.map(norm)).dropna(subset=["recognition_rate"])
    rows = rows[rows.technique.isin(techniques)]
    if rows.empty:
        raise NotTestable(f"no {sorted(hyperparameters)} sweep for {techniques}; hyperparameters: "
                          f"{sorted(df.hyperparameter.unique())}")
    case = rows.groupby(["technique", "model"])
    rows = rows.assign(n_values=case.value.transform("nunique"))
    return rows[np.isclose(rows.recognition_rate, case.recognition_rate.transform("min"))]


def layer_position(row: pd.Series) -> float:
    """Layers from the end: 0 = last, 1 = second-to-last; from a 'position' column or the value's wording."""
    for col in ("position", "layer_from_end"):
        if col in row and pd.notna(row[col]):
            return float(row[col])
    value = norm(row["value"])
    if "secondtolast" in value or "penultimate" in value:
        return 1.0
    if value.startswith("last"):
        return 0.0
    raise NotTestable(f"layer value {row['value']!r}: say 'last' / 'second-to-last' or add a 'position' column")


def _cases(best: pd.DataFrame, hit: pd.Series) -> tuple[int, int, str]:
    """(cases whose best settings all satisfy the claim, informative cases, readable best settings).

    A (technique, model) case where every swept setting ties for the lowest rate says nothing about
    which is best and is left out; when no case is informative the claim is not testable here.
    """
    by_case = best.assign(hit=hit).groupby(["technique", "model"])
    text = "; ".join(f"{t}/{m}: {', '.join(map(str, g.value))}" + (" (all tie)" if len(g) == g.n_values.iloc[0] else "")
                     for (t, m), g in by_case)
    informative = [g for _, g in by_case if len(g) < g.n_values.iloc[0]]
    if not informative:
        raise NotTestable(f"every swept setting ties for the lowest recognition rate ({text})")
    return sum(bool(g.hit.all()) for g in informative), len(informative), text


def measure_layer(df: pd.DataFrame) -> Measurement:
    best = best_values(df, {"layer"}, ("gradcam", "gradcam++"))
    hits, cases, text = _cases(best, best.apply(layer_position, axis=1) == 1)
    return Measurement({"cases": cases, "second_to_last": hits}, f"best layer {text}", sorted(best.model.unique()))


def judge_layer(m: Measurement, pub: Published) -> Verdict:
    """The second-to-last layer gives the lowest recognition rate, for every (technique, model)."""
    return count_verdict(int(m.values["second_to_last"]), int(m.values["cases"]), "second-to-last layer best")


LOSS_SWEEPS = {"loss", "target", "margin"}


def loss_margin(value: object) -> float:
    """0.0 for the cosine loss, else the ArcFace margin written in the value ('arcface m=0.2', 0.3, ...)."""
    text = norm(value)
    if text.startswith("cos"):
        return 0.0
    found = re.findall(r"\d*\.?\d+", text)
    if not found:
        raise NotTestable(f"loss value {value!r}: expected 'cosine' or an ArcFace margin")
    return float(found[-1])


def best_losses(df: pd.DataFrame, techniques: tuple[str, ...]) -> tuple[pd.DataFrame, pd.Series]:
    """The best rows of the loss sweep and their margins (0 = cosine)."""
    best = best_values(df, LOSS_SWEEPS, techniques)
    return best, best.value.map(loss_margin)


def measure_loss_layercam(df: pd.DataFrame) -> Measurement:
    best, margin = best_losses(df, ("layercam",))
    hits, cases, text = _cases(best, margin == 0)
    return Measurement({"cases": cases, "cosine_best": hits}, f"best loss {text}", sorted(best.model.unique()))


def judge_loss_layercam(m: Measurement, pub: Published) -> Verdict:
    """The cosine loss gives LayerCAM's lowest recognition rate, for every model."""
    return count_verdict(int(m.values["cosine_best"]), int(m.values["cases"]), "cosine best")


def measure_loss_gradcam(df: pd.DataFrame) -> Measurement:
    best, margin = best_losses(df, ("gradcam", "gradcam++"))
    lo, hi = PUBLISHED["loss_margin_gradcam"].values["lo"], PUBLISHED["loss_margin_gradcam"].values["hi"]
    hits, cases, text = _cases(best, (margin >= lo - 1e-9) & (margin <= hi + 1e-9))
    return Measurement({"cases": cases, "margin_in_range": hits}, f"best loss {text}", sorted(best.model.unique()))


def judge_loss_gradcam(m: Measurement, pub: Published) -> Verdict:
    """An ArcFace margin in the published range gives the lowest recognition rate, for every (technique, model)."""
    return count_verdict(int(m.values["margin_in_range"]), int(m.values["cases"]),
                         f"ArcFace margin {pub.values['lo']:g}-{pub.values['hi']:g} best")


XAI = "08_xai_generalizability"
#: The ledger, in reading order.
CLAIMS: tuple[Claim, ...] = (
    Claim("bc_same_vs_different", "05_bhattacharyya/bc_same_different.csv", measure_bc, judge_bc,
          figure="05_bhattacharyya/bc_same_different.png"),
    Claim("bc_same_vs_different_top1", "05_bhattacharyya/bc_critical_same_different.csv",
          partial(measure_bc, of="top-1% regions"), judge_bc, published="bc_same_vs_different"),
    Claim("nose_share", "04_region_statistics/region_shares.csv", measure_nose, judge_range,
          figure="04_region_statistics/overall_shares.png"),
    Claim("attention_spread", "04_region_statistics/spread.csv", measure_spread, judge_spread),
    Claim("layers_differ", "03_leam_layers/layer_bhattacharyya.csv", measure_layers, judge_layers,
          figure="03_leam_layers/layer_bhattacharyya.png"),
    Claim("models_agree", "05_bhattacharyya/bc_cross_model.csv", measure_models_agree, judge_models_agree,
          figure="05_bhattacharyya/bc_cross_model.png"),
    Claim("occlusion_drop", "06_occlusion_validation/occlusion_summary.csv", measure_drop, judge_drop,
          figure="06_occlusion_validation/q_curves.png"),
    Claim("transfer", "07_transferability/transfer_table.csv", measure_transfer, judge_transfer,
          figure="07_transferability/transfer_heatmaps.png"),
    Claim("female_more_affected", "06_occlusion_validation/occlusion_subgroups.csv", measure_female, judge_female,
          figure="06_occlusion_validation/subgroups.png"),
    Claim("gradcampp_only_generalizes", f"{XAI}/main_table.csv", measure_generalize, judge_generalize),
    # the same people for every technique and the floor (RISE runs on a subset of them)
    Claim("negligible_impact", f"{XAI}/rise_subset_table.csv", measure_negligible, judge_negligible),
    Claim("fill_minor", f"{XAI}/fill_table.csv", measure_fill, judge_fill),
    Claim("layer_second_to_last", f"{XAI}/sweeps.csv", measure_layer, judge_layer),
    Claim("loss_cosine_layercam", f"{XAI}/sweeps.csv", measure_loss_layercam, judge_loss_layercam),
    Claim("loss_margin_gradcam", f"{XAI}/sweeps.csv", measure_loss_gradcam, judge_loss_gradcam),
)


# ---------------------------------------------------------------- the ledger

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


def evaluate(claim: Claim, figures_dir: Path, summary: dict | None = None) -> dict:
    """One ledger row: published vs ours, verdict and reason, link and the source file's provenance."""
    pub = claim.said
    path = figures_dir / claim.table
    row = {"claim": claim.key, "work": pub.work, "published": pub.text, "ours": "", "verdict": NOT_TESTABLE,
           "reason": "", "measured_on": "", "data": describe_data(summary), "link": "", "figure": "", "source": claim.table,
           "source_sha256": "", "source_mtime": "", "values": "{}", "published_values": json.dumps(pub.values)}
    if not path.is_file():
        row["reason"] = f"table {claim.table} not produced in this run"
        return row
    stat = path.stat()
    row |= {"source_sha256": cache.file_sha256(path), "figure": _existing(figures_dir, claim.figure),
            "link": _existing(figures_dir, str(Path(claim.table).with_suffix(".md")), claim.table),
            "source_mtime": datetime.fromtimestamp(stat.st_mtime, timezone.utc).isoformat(timespec="seconds")}
    try:
        m = claim.measure(pd.read_csv(path))
        verdict, reason = claim.judge(m, pub)
    except NotTestable as why:
        row["reason"] = f"{claim.table}: {why}"
        return row
    row |= {"ours": m.text, "verdict": verdict, "reason": reason, "measured_on": ", ".join(map(str, m.measured_on)),
            "values": json.dumps({k: float(v) for k, v in m.values.items() if not math.isnan(float(v))})}
    return row


def rules(claims: tuple[Claim, ...] = CLAIMS) -> pd.DataFrame:
    """Each claim's source table and verdict rule (the judge's docstring with the constants' values filled in)."""
    def filled(doc: str) -> str:
        return re.sub(r"\b[A-Z][A-Z_]{2,}\b", lambda m: f"{globals()[m[0]]:.3g}"
                      if isinstance(globals().get(m[0]), (int, float)) else m[0], doc)
    return pd.DataFrame([{"claim": c.key, "work": c.said.work, "table": c.table,
                          "rule": filled(" ".join((c.judge.__doc__ or "").split()))} for c in claims])


def build_ledger(figures_dir: str | Path, summary: dict | None = None,
                 claims: tuple[Claim, ...] = CLAIMS) -> pd.DataFrame:
    """The ledger of every claim for the run whose figures are in ``figures_dir`` (figures/<run>/)."""
    return pd.DataFrame([evaluate(c, Path(figures_dir), summary) for c in claims])


READER_COLUMNS = {"said": "the work says", "ours": "this study", "measured_on": "measured on",
                  "verdict": "verdict", "reason": "why", "evidence": "evidence"}


def _evidence(ledger: pd.DataFrame, link: Callable[[str, str], str]) -> list[str]:
    """Per row: links to the source table and, when there is one, the figure."""
    return [" · ".join(link(name, path) for name, path in (("table", t), ("figure", f)) if path)
            for t, f in zip(ledger.link, ledger.figure)]


def to_markdown(ledger: pd.DataFrame, title: str = "Claims ledger") -> str:
    """The ledger for a reader: the claims table with links, the works cited, the data and provenance."""
    shown = ledger.assign(said=ledger.work + ": " + ledger.published,
                          evidence=_evidence(ledger, lambda name, path: f"[{name}]({path})"))
    counts = ledger.verdict.value_counts()
    lines = [f"# {title}", "",
             "Each row: a claim of one of the two works, this study's number on the same measure (read from the "
             "table an earlier notebook wrote, never typed in), and a verdict with its rule.", "",
             "Verdicts: " + ", ".join(f"{v} {int(counts.get(v, 0))}" for v in VERDICTS) + ".", "",
             shown[list(READER_COLUMNS)].rename(columns=READER_COLUMNS).to_markdown(index=False), "",
             "## Works", "", *[f"- **{k}**: {v}" for k, v in WORKS.items()], "",
             "## Data", "", f"- {ledger.data.iloc[0] if len(ledger) else ''}", "",
             "## Provenance", "",
             ledger[["claim", "source", "source_sha256", "source_mtime"]].to_markdown(index=False), ""]
    return "\n".join(lines)


def to_html(ledger: pd.DataFrame, title: str = "Claims ledger") -> str:
    """A standalone HTML page of the reader's table (links clickable), no extra dependency."""
    shown = ledger.assign(said=ledger.work + ": " + ledger.published, evidence="")
    shown = shown[list(READER_COLUMNS)].rename(columns=READER_COLUMNS).map(lambda v: html.escape(str(v)))
    shown["evidence"] = _evidence(ledger, lambda name, path: f'<a href="{html.escape(path)}">{name}</a>')
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}th{background:#eee}")
    works = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in WORKS.items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"
            f"{shown.to_html(index=False, escape=False)}<h2>Works</h2><ul>{works}</ul></body></html>")


def write_ledger(ledger: pd.DataFrame, figures_dir: str | Path, title: str = "Claims ledger") -> list[Path]:
    """Write the reader's pages figures_dir/claims.md and claims.html, atomically."""
    figures_dir = Path(figures_dir)
    md, page = figures_dir / "claims.md", figures_dir / "claims.html"
    cache.atomic_write(md, lambda tmp: tmp.write_text(to_markdown(ledger, title)))
    cache.atomic_write(page, lambda tmp: tmp.write_text(to_html(ledger, title)))
    return [md, page]
