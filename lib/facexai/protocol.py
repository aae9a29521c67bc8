"""The declared protocol sweep (notebook 10): which definitional choices move the headline numbers.

The grid lives in ``profiles.toml`` (``[protocol_sweep]``, with per-profile scale in
``[protocol_sweep.<profile>]``) and was written before any of its results were seen; nothing in it is
tuned to a published number. Every cell is measured as a :class:`Cell` of per-unit values (one
per pair, image or probe); :func:`summarize` turns them into the tidy sweep summary
(:data:`SUMMARY_COLUMNS`) beside the works' numbers, and :func:`closest` says, per claim, under
which definitions our value falls in the published range, which comes closest and how far the
spread reaches.

A cell's statistic is ``sum_s weight_s * mean(values of stratum s)`` per model (genuine acceptance:
one stratum; balanced accuracy: genuine accepted and impostor rejected, weight 1/2 each; BC gap:
same +1, different -1), and the model mean ("all") averages the models that have the cell. Its 95%
interval is a percentile bootstrap resampling units within each model and stratum.
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from facexai import metrics
from facexai.channel_patterns import STATISTICS as CHANNEL_STATISTICS
from facexai.profiles import PROFILES_FILE, parse_list
from facexai.published import PUBLISHED, TABLE1, TABLE2

#: The tidy summary the ledger links claims to (one row per claim x definition x model, model "all" = mean).
SUMMARY_COLUMNS = ["claim", "definition", "value", "ci_low", "ci_high", "published_lo", "published_hi",
                   "in_range", "distance", "model", "n_models", "n", "primary"]
ALL = "all"  # the model column of model-mean rows


@dataclass(frozen=True)
class Claim:
    """A headline number of the works and where the sweep compares it."""

    name: str
    published_lo: float
    published_hi: float
    source: str  # where the numbers come from (key of facexai.published, and how they are read)


def claims() -> dict[str, Claim]:
    """The headline numbers the sweep locates, read from :mod:`facexai.published` (never typed here)."""
    bc, drop = PUBLISHED["bc_same_vs_different"].values, PUBLISHED["occlusion_drop"].values
    t1, t2 = TABLE1.cell("Grad-CAM++", "LFW"), TABLE2.cell("FN_C", "FN_C")
    return {c.name: c for c in (
        Claim("bc_same", bc["same_lo"], bc["same_hi"], "bc_same_vs_different: BC same person (LEAM abstract)"),
        Claim("bc_different", bc["diff_lo"], bc["diff_hi"], "bc_same_vs_different: BC different people"),
        Claim("bc_gap", bc["same_lo"] - bc["diff_hi"], bc["same_hi"] - bc["diff_lo"],
              "bc_same_vs_different: same minus different, the gap the two published ranges imply (derived)"),
        Claim("drop_map", drop["map"], drop["map"], "occlusion_drop: cosine drop, 1% LEAM pixels (LEAM abstract)"),
        Claim("drop_random", drop["random"], drop["random"], "occlusion_drop: cosine drop, 1% random pixels"),
        Claim("drop_ratio", drop["map"] / drop["random"], drop["map"] / drop["random"],
              "occlusion_drop: map drop / random drop (derived; scale-free)"),
        Claim("table1_gradcampp_lfw", t1, t1, "Table 1: Grad-CAM++, LFW, 1% black pixels (poster)"),
        Claim("table2_fnc_fnc", t2, t2, "Table 2: FN_C -> FN_C, Grad-CAM++, black, CPLFW (poster; ours is LFW)"),
    )}


# ---------------------------------------------------------------- the declared grid

@dataclass(frozen=True)
class Grid:
    """The ``[protocol_sweep]`` table with the profile's overrides (see profiles.toml for each key's meaning)."""

    bc_levels: tuple[str, ...]
    bc_aggregations: tuple[str, ...]
    bc_sharpening: tuple[str, ...]
    bc_variants: tuple[tuple[str, bool], ...]  # (target, antialias) of the maps
    bc_representations: tuple[str, ...]  # spatial (the maps) | channel_<statistic> (facexai.channel_patterns)
    channel_aggregations: tuple[str, ...]  # over layers, of channel patterns: sum1_mean | layers
    accuracy_explainer: str
    accuracy_layers: tuple[int, ...]
    accuracy_qs: tuple[float, ...]
    samples: tuple[str, ...]  # held_out: probes not in their person map | in_sample: probes among its images
    operating_points: tuple[str, ...]
    occluded_sides: tuple[str, ...]
    both_sides_qs: tuple[float, ...]
    measures: tuple[str, ...]
    drop_explainer: str
    drop_settings: tuple[str, ...]
    drop_scales: tuple[str, ...]
    controls: tuple[str, ...]
    control_qs: tuple[float, ...]
    fill: str
    n_boot: int
    variant_models: tuple[str, ...]  # models whose maps are recomputed for the non-default variants (empty: all)
    variant_max_images: int  # images (whole individuals, seeded) of those models' BC cells (0: all)
    both_sides_partners: int  # genuine partners per probe occluded in the both-sides arm (0: all)
    in_sample_probes: int  # generation images per person occluded in the in-sample arm (seeded per person; 0: all)


def primary(method) -> dict[str, str]:
    """The primary protocol: the study's own choices (``profiles.method()``, the ``[method]`` table, and
    the defaults of notebooks 05-08), the definition each claim is primarily judged on."""
    return {"level": "image", "aggregation": "sum1_mean", "sharpening": "none", "target": method.target,
            "antialias": "yes" if method.antialias else "no", "layer": str(method.cam_layer), "q": f"{method.q:g}",
            "operating_point": "kfold_balanced", "side": "probe", "measure": "genuine_acceptance",
            "sample": "held_out", "setting": "white_box", "scale": "raw", "representation": "spatial"}


SCALE = ("variant_models", "variant_max_images")  # scale settings a run may narrow (a declared subset)


def grid(profile: str, path: Path = PROFILES_FILE, **scale: object) -> Grid:
    """The declared grid of ``profile``: ValueError for unknown or missing keys. ``scale`` overrides the
    :data:`SCALE` settings that are not None (a run's declared subset, e.g. the paper run on a CPU)."""
    unknown = set(scale) - set(SCALE)
    if unknown:
        raise ValueError(f"unknown scale settings {sorted(unknown)}; valid: {list(SCALE)}")
    with open(path, "rb") as fh:
        table = dict(tomllib.load(fh)["protocol_sweep"])
    per_profile = {k: table.pop(k) for k in list(table) if isinstance(table[k], dict)}
    values = {**table, **per_profile.get(profile, {})}
    names = {f for f in Grid.__dataclass_fields__}
    if set(values) != names:
        raise ValueError(f"[protocol_sweep] for {profile!r}: unknown {sorted(set(values) - names)}, "
                         f"missing {sorted(names - set(values))}")
    out = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    out["bc_variants"] = tuple((str(t), bool(a)) for t, a in values["bc_variants"])
    out["accuracy_qs"] = tuple(float(q) for q in values["accuracy_qs"])
    checks = {"samples": {"held_out", "in_sample"}, "channel_aggregations": {"sum1_mean", "layers"}}
    for key, valid in checks.items():
        if not set(out[key]) <= valid:
            raise ValueError(f"[protocol_sweep] {key}: unknown {sorted(set(out[key]) - valid)}; valid: {sorted(valid)}")
    for r in out["bc_representations"]:
        if r != "spatial" and r.removeprefix("channel_") not in CHANNEL_STATISTICS:
            raise ValueError(f"[protocol_sweep] bc_representations: unknown {r!r}; valid: spatial, "
                             + ", ".join(f"channel_{s}" for s in CHANNEL_STATISTICS))
    for key in ("both_sides_qs", "control_qs"):
        out[key] = tuple(float(q) for q in values[key])
        if not set(out[key]) <= set(out["accuracy_qs"]):
            raise ValueError(f"[protocol_sweep] {key} {out[key]} must be among accuracy_qs {out['accuracy_qs']}")
    given = {k: v for k, v in scale.items() if v is not None}
    if "variant_models" in given:
        given["variant_models"] = tuple(parse_list(given["variant_models"]))  # "FN_C,DLIB" or a list
    if "variant_max_images" in given:
        given["variant_max_images"] = int(given["variant_max_images"])
        if given["variant_max_images"] < 0:
            raise ValueError(f"variant_max_images must be >= 0 (0: all), got {given['variant_max_images']}")
    return replace(Grid(**out), **given)


# ---------------------------------------------------------------- definitions

def definition(**factors: object) -> str:
    """A cell's definition as ``"key=value; key=value"`` in the given order (floats without trailing zeros)."""
    return "; ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in factors.items())


def parse_definition(text: str) -> dict[str, str]:
    """The factors of a :func:`definition` string."""
    return dict(part.split("=", 1) for part in text.split("; ") if part)


def is_primary(text: str, primary: dict[str, str]) -> bool:
    """True when every factor of the definition that the primary protocol fixes takes its primary value."""
    return all(primary.get(k, v) == v for k, v in parse_definition(text).items())


# ---------------------------------------------------------------- statistics

@dataclass(frozen=True)
class Cell:
    """One measured cell: per-unit values (pairs, images, probes) in weighted strata."""

    claim: str
    definition: str
    model: str
    strata: tuple[tuple[float, np.ndarray], ...]  # (weight, values)


def cell(claim: str, definition: str, model: str, *strata: tuple[float, np.ndarray]) -> Cell:
    """A :class:`Cell`; ValueError for an empty or non-finite stratum."""
    checked = []
    for weight, values in strata:
        values = np.asarray(values, dtype=np.float64).ravel()
        if not len(values) or not np.isfinite(values).all():
            raise ValueError(f"{claim} / {definition} / {model}: a stratum is empty or not finite")
        checked.append((float(weight), values))
    return Cell(claim, definition, model, tuple(checked))


def cell_statistics(cells: list[Cell], n_boot: int = 1000, seed: int = 0) -> dict[tuple, tuple]:
    """{(claim, definition, model): (value, bootstrap values (n_boot,), n units)} of every cell.

    Within a claim, strata of the same position and size share one resampling (the same pairs or
    images across definitions are resampled together, so the definitions' comparison is paired).
    """
    rng = np.random.default_rng(seed)
    draws: dict[int, np.ndarray] = {}
    out = {}
    for c in cells:
        key = (c.claim, c.definition, c.model)
        if key in out:
            raise ValueError(f"cell {key} measured twice")
        value, boots, n = 0.0, np.zeros(n_boot), 0
        for position, (weight, values) in enumerate(c.strata):
            tag = (c.claim, position, len(values))
            if tag not in draws:
                draws[tag] = rng.integers(0, len(values), (n_boot, len(values)))
            value += weight * values.mean()
            boots += weight * values[draws[tag]].mean(axis=1)
            n += len(values)
        out[key] = (float(value), boots, n)
    return out


def combine(stats: dict[tuple, tuple], a: str, b: str, claim: str, op: str) -> dict[tuple, tuple]:
    """Cells of ``claim`` = cell of ``a`` (op) cell of ``b``, same definition and model; ``op``:
    ``"difference"`` or ``"ratio"`` (applied to the bootstrap values alike)."""
    if op not in ("difference", "ratio"):
        raise ValueError(f"op must be 'difference' or 'ratio', got {op!r}")
    out = {}
    for (c, d, m), (value, boots, n) in stats.items():
        if c == a and (b, d, m) in stats:
            bv, bb, bn = stats[(b, d, m)]
            with np.errstate(divide="ignore", invalid="ignore"):
                v = value - bv if op == "difference" else (value / bv if bv else np.nan)
                out[(claim, d, m)] = (v, boots - bb if op == "difference" else boots / bb, n + bn)
    return out


def level_difference(stats: dict[tuple, tuple], claim: str, factor: str, base: str, level: str,
                     new_claim: str) -> dict[tuple, tuple]:
    """Cells of ``new_claim`` = the cell with ``factor=level`` minus the same definition with ``factor=base``
    (per model; bootstrap values subtracted alike), the factor dropped from the definition. E.g. in-sample
    minus held-out accuracy: how much seeing the evaluated image in its own map moves the number."""
    out = {}
    for (c, d, m), (value, boots, n, *_) in stats.items():
        factors = parse_definition(d)
        if c != claim or factors.get(factor) != level:
            continue
        other = definition(**{**factors, factor: base})
        if (claim, other, m) in stats:
            bv, bb, bn = stats[(claim, other, m)][:3]
            rest = definition(**{k: v for k, v in factors.items() if k != factor})
            out[(new_claim, rest, m)] = (value - bv, boots - bb, n + bn)
    return out


def with_model_means(stats: dict[tuple, tuple]) -> dict[tuple, tuple]:
    """The cells plus, per claim and definition, the mean over the models that have it (model :data:`ALL`)."""
    groups: dict[tuple, list] = {}
    for (c, d, m), cell in stats.items():
        groups.setdefault((c, d), []).append(cell)
    out = dict(stats)
    for (c, d), cells in groups.items():
        out[(c, d, ALL)] = (float(np.mean([x[0] for x in cells])), np.mean([x[1] for x in cells], axis=0),
                            sum(x[2] for x in cells), len(cells))
    return out


def summarize(stats: dict[tuple, tuple], primary: dict[str, str], alpha: float = 0.05) -> pd.DataFrame:
    """The tidy sweep summary (:data:`SUMMARY_COLUMNS`) of cells from :func:`cell_statistics`.

    ``in_range``: the 95% interval overlaps the published range (for a single published number: contains
    it); ``distance``: how far the estimate lies outside the published range (0 inside it). Claims
    without a published number are kept with NaN bounds, ``in_range`` False.
    """
    known = claims()
    rows = []
    for (c, d, m), cell in stats.items():
        value, boots, n = cell[:3]
        lo, hi = metrics.percentile_interval(boots, alpha)
        pub = known.get(c)
        p_lo, p_hi = (pub.published_lo, pub.published_hi) if pub else (np.nan, np.nan)
        in_range = bool(pub is not None and hi >= p_lo and lo <= p_hi)
        distance = max(p_lo - value, value - p_hi, 0.0) if pub else np.nan
        rows.append((c, d, value, float(lo), float(hi), p_lo, p_hi, in_range, distance, m,
                     cell[3] if len(cell) > 3 else 1, n, is_primary(d, primary)))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


#: columns of ``sweep_closest.csv`` (notebook 10; the claims ledger reads it)
CLOSEST_COLUMNS = ["claim", "published_lo", "published_hi", "n_definitions", "primary_definition", "primary_value",
                   "n_in_range", "in_range_definitions", "closest_definition", "closest_value", "closest_distance",
                   "min_value", "min_definition", "max_value", "max_definition"]


def closest(summary: pd.DataFrame, model: str = ALL) -> pd.DataFrame:
    """Per claim (rows of ``model``): the primary value, the definitions in range, the closest one, the spread."""
    rows = []
    for claim, g in summary[summary.model == model].groupby("claim", sort=False):
        if g.published_lo.isna().all():
            continue
        best = g.loc[g.distance.idxmin()]
        prim = g[g.primary]
        inside = g[g.in_range]
        rows.append({
            "claim": claim, "published_lo": best.published_lo, "published_hi": best.published_hi,
            "n_definitions": len(g), "primary_definition": prim.definition.iloc[0] if len(prim) else "",
            "primary_value": prim.value.iloc[0] if len(prim) else np.nan,
            "n_in_range": len(inside), "in_range_definitions": " | ".join(inside.definition[:5])
            + (f" | ... ({len(inside) - 5} more)" if len(inside) > 5 else ""),
            "closest_definition": best.definition, "closest_value": best.value, "closest_distance": best.distance,
            "min_value": g.value.min(), "min_definition": g.loc[g.value.idxmin()].definition,
            "max_value": g.value.max(), "max_definition": g.loc[g.value.idxmax()].definition})
    return pd.DataFrame(rows, columns=CLOSEST_COLUMNS)


def select(summary: pd.DataFrame, claims: Sequence[str], fixed: Mapping[str, str], model: str | None = ALL
           ) -> pd.DataFrame:
    """Rows of ``claims`` (of ``model``; None: every model) whose definitions take every ``fixed`` factor
    value, each definition's factors added as columns."""
    g = summary[summary.claim.isin(list(claims)) & ((summary.model == model) if model is not None else True)]
    g = g.reset_index(drop=True)
    factors = pd.DataFrame(list(g.definition.map(parse_definition)), index=g.index)
    keep = np.ones(len(g), bool)
    for k, v in fixed.items():
        keep &= (factors[k] == v).to_numpy() if k in factors else np.zeros(len(g), bool)
    extra = [c for c in factors.columns if c not in g.columns]
    return pd.concat([g[keep], factors.loc[keep, extra]], axis=1).reset_index(drop=True)


def joint(summary: pd.DataFrame, names: tuple[str, ...] = ("bc_same", "bc_different"), model: str = ALL
          ) -> pd.DataFrame:
    """Definitions judged on several claims at once (BC same AND different): per definition, each claim's
    value, whether all are in range, and the largest distance; sorted closest first."""
    g = summary[summary.claim.isin(names) & (summary.model == model)]
    wide = g.pivot_table(index="definition", columns="claim", values=["value", "distance", "in_range"],
                         aggfunc="first")
    wide = wide.dropna()
    out = pd.DataFrame({f"{c}_value": wide["value"][c] for c in names})
    out["all_in_range"] = wide["in_range"][list(names)].astype(bool).all(axis=1)
    out["max_distance"] = wide["distance"][list(names)].max(axis=1)
    return out.sort_values(["max_distance", "definition"]).reset_index()


def factor_effects(summary: pd.DataFrame, claim: str, model: str = ALL) -> pd.DataFrame:
    """How far each factor alone moves a claim: per swept factor (more than one level) and level, min /
    median / max of the claim's value over every cell with that level (rows of ``model``), and the lowest
    and highest bound of those cells' 95% intervals (``ci_low_min``, ``ci_high_max``)."""
    g = summary[(summary.claim == claim) & (summary.model == model)]
    factors = g.definition.map(parse_definition).apply(pd.Series)
    rows = []
    for factor in [f for f in factors.columns if factors[f].nunique() > 1]:  # a fixed factor moves nothing
        for level, idx in factors.groupby(factor).groups.items():
            v = g.loc[idx, "value"]
            rows.append({"claim": claim, "factor": factor, "level": level, "n_cells": len(v), "min": v.min(),
                         "median": v.median(), "max": v.max(), "n_in_range": int(g.loc[idx, "in_range"].sum()),
                         "ci_low_min": g.loc[idx, "ci_low"].min(), "ci_high_max": g.loc[idx, "ci_high"].max()})
    return pd.DataFrame(rows)


def control_table(critical: dict[tuple, tuple], controls: dict[tuple, tuple],
                  lower_is_damage: dict[str, bool]) -> pd.DataFrame:
    """Critical pixels vs each control, cell by cell (control cells are named ``<claim>|<control>``).

    ``beaten``: the critical pixels' 95% interval lies entirely on the damaging side of the control's
    (below it where ``lower_is_damage[claim]``, e.g. an accuracy; above it for a drop).
    """
    rows = []
    for (name, d, m), (value, boots, n, *_) in controls.items():
        claim, control = name.split("|", 1)
        if (claim, d, m) not in critical:
            continue
        cv, cb, cn = critical[(claim, d, m)][:3]
        c_lo, c_hi = metrics.percentile_interval(cb)
        k_lo, k_hi = metrics.percentile_interval(boots)
        lower = lower_is_damage[claim]
        rows.append({"claim": claim, "definition": d, "model": m, "control": control, "critical": cv,
                     "critical_ci_low": c_lo, "critical_ci_high": c_hi, "control_value": value,
                     "control_ci_low": k_lo, "control_ci_high": k_hi,
                     "beaten": bool(c_hi < k_lo if lower else c_lo > k_hi), "n": cn})
    return pd.DataFrame(rows)


def reading(located: pd.DataFrame, beaten: pd.DataFrame, together: pd.DataFrame | None = None) -> str:
    """Markdown lines stating, per claim, where the published number is reached, whether one definition
    reaches the BC claims together (``together``, from :func:`joint`), and against which controls."""
    lines = []
    for r in located.itertuples():
        pub = f"{r.published_lo:.3f}" + ("" if r.published_lo == r.published_hi else f"-{r.published_hi:.3f}")
        first = r.in_range_definitions.split(" | ")[0] if r.n_in_range else ""
        where = (f"in range under **{r.n_in_range} of {r.n_definitions}** definitions (e.g. `{first}`)"
                 if r.n_in_range else f"in range under **none** of the {r.n_definitions} definitions")
        lines.append(f"- **{r.claim}** (published {pub}): primary protocol {r.primary_value:.3f}; {where}; closest "
                     f"`{r.closest_definition}` = {r.closest_value:.3f} (distance {r.closest_distance:.3f}); the spread "
                     f"reaches {r.min_value:.3f}-{r.max_value:.3f}.")
    if together is not None and len(together):
        best = together.iloc[0]
        lines.append(f"- **BC same and different together**: {int(together.all_in_range.sum())} of {len(together)} "
                     f"definitions put both in their published ranges; the closest, `{best.definition}`, is at most "
                     f"{best.max_distance:.3f} away.")
    if len(beaten):
        means = beaten[beaten.model == ALL]
        for claim, g in means.groupby("claim"):
            counts = ", ".join(f"{c} {int(x.beaten.sum())} of {len(x)}" for c, x in g.groupby("control"))
            lines.append(f"- **{claim}**: the critical pixels beat the control (interval on the damaging side) in "
                         f"{counts} definitions (model mean).")
    return "\n".join(lines)


def arms_reading(samples: pd.DataFrame, representations: pd.DataFrame, summary: pd.DataFrame | None = None) -> str:
    """Markdown lines on the two paired arms: in-sample minus held-out accuracy (``samples``: rows of the
    difference claim, from :func:`select`), BC per representation at one definition (``representations``:
    bc_same, bc_different, bc_gap rows per model, level and representation, :func:`select` with model None)
    and, with ``summary``, how many definitions of each representation put the BC gap in its published range."""
    lines = []
    for layer, g in (samples.groupby("layer", sort=True) if len(samples) else []):
        g = g.assign(qv=g.q.astype(float)).sort_values("qv")
        cells = ", ".join(f"q={r.q} {r.value:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]" for r in g.itertuples())
        lines.append(f"- **in-sample minus held-out** accuracy (model mean, layer {layer}, "
                     f"{g.measure.iloc[0]} at {g.operating_point.iloc[0]}): {cells}.")
    for (model, level), g in representations.groupby(["model", "level"], sort=True):
        parts = []
        for rep, x in g.groupby("representation", sort=False):
            v = x.set_index("claim")
            same, different = v.value.get("bc_same", np.nan), v.value.get("bc_different", np.nan)
            text = f"{rep}: same {same:.3f}, different {different:.3f}"
            if "bc_gap" in v.index:
                gap = v.loc["bc_gap"]
                reach = "reaches" if gap.in_range else "does not reach"
                text += (f", gap {gap.value:+.3f} [{gap.ci_low:+.3f}, {gap.ci_high:+.3f}] ({reach} the published "
                         f"{gap.published_lo:.2f}-{gap.published_hi:.2f})")
            parts.append(text)
        lines.append(f"- **BC, {model}, {level} level** ({x.definition.iloc[0].split('; representation')[0]}): "
                     + "; ".join(parts) + ".")
    if summary is not None:
        gaps = select(summary, ["bc_gap"], {})
        if len(gaps):
            counts = ", ".join(f"{rep} {int(x.in_range.sum())} of {len(x)}"
                               for rep, x in gaps.groupby("representation", sort=True))
            lines.append(f"- **BC gap in its published range** (model mean), definitions per representation: {counts}.")
    return "\n".join(lines)
