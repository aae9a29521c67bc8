"""Figures of the protocol sweep (notebook 10): every definition beside the published numbers, with 95% intervals.

Each function takes the sweep's tidy tables (:func:`facexai.protocol.summarize`, :func:`~facexai.protocol.closest`,
:func:`~facexai.protocol.factor_effects`) and returns a figure; the intervals are the sweep's own
bootstrap intervals (``ci_low``, ``ci_high``), the published value or range is a blue band.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from facexai.protocol import ALL, parse_definition, select

PUBLISHED = dict(color="#2e86c1", alpha=0.25, lw=2, ec="#2e86c1")  # the published range's band
COLOURS = ("#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085")


def _panels(n: int, width: float, height: float) -> tuple[plt.Figure, np.ndarray]:
    """Up to two rows of ``n`` panels (the unused ones hidden)."""
    ncols = max(1, (n + 1) // 2)
    fig, axes = plt.subplots(2 if n > 1 else 1, ncols, figsize=(width * ncols, height * (2 if n > 1 else 1)),
                             squeeze=False)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, axes


def _xerr(rows: pd.DataFrame) -> np.ndarray:
    return np.vstack([(rows.value - rows.ci_low).clip(lower=0), (rows.ci_high - rows.value).clip(lower=0)])


def spread(summary: pd.DataFrame, located: pd.DataFrame) -> plt.Figure:
    """Per claim, every declared definition's value (grey, model mean), the primary protocol's and the closest
    definition's with their 95% intervals, and the published value or range (blue)."""
    shown = summary[summary.model == ALL]
    fig, axes = _panels(len(located), 3.3, 3.2)
    for ax, r in zip(axes.flat, located.itertuples()):
        g = shown[shown.claim == r.claim]
        y = np.random.default_rng(0).uniform(-0.35, 0.35, len(g))
        ax.axvspan(r.published_lo, r.published_hi, label="published", **PUBLISHED)
        ax.scatter(g.value, y, s=6, color="#7f8c8d", alpha=0.5, label="one definition")
        for sel, colour, label in ((g.primary, "#c0392b", "primary"), (g.definition == r.closest_definition, "k",
                                                                       "closest")):
            row = g[sel].iloc[:1]
            if len(row):
                ax.errorbar(row.value, [0], xerr=_xerr(row), fmt="o", color=colour, capsize=3, label=label)
        ax.set(title=r.claim, yticks=[], xlabel="value (model mean)")
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle("every declared definition (grey), the primary protocol and the closest one (95% CI), "
                 "published (blue)")
    fig.tight_layout()
    return fig


def factor_effects(effects: pd.DataFrame, located: pd.DataFrame) -> plt.Figure:
    """Per claim and factor level: the range of the values over the cells with that level (dark line, median
    dot) inside the range their 95% intervals reach (light line), beside the published value or range."""
    height = 0.16 * effects.groupby("claim").size().max() + 1.2
    fig, axes = _panels(len(located), 3.6, height)
    for ax, r in zip(axes.flat, located.itertuples()):
        e = effects[effects.claim == r.claim].reset_index(drop=True)
        ax.axvspan(r.published_lo, r.published_hi, **PUBLISHED)
        ax.hlines(e.index, e.ci_low_min, e.ci_high_max, color="#bdc3c7", lw=4, label="95% intervals reach")
        ax.hlines(e.index, e["min"], e["max"], color="#34495e", label="values (min-max)")
        ax.plot(e["median"], e.index, "o", ms=3, color="k", label="median")
        ax.set_yticks(e.index, e.factor + "=" + e.level.astype(str), fontsize=6)
        ax.invert_yaxis()
        ax.set(title=r.claim, xlabel="value over the cells with this level")
    axes.flat[0].legend(fontsize=6, loc="best")
    fig.tight_layout()
    return fig


def sample_effect(summary: pd.DataFrame, difference: str, fixed: Mapping[str, str]) -> plt.Figure:
    """In-sample minus held-out accuracy (claim ``difference``, model mean) per q, one line per CAM layer and
    measure, with 95% intervals: how much seeing the evaluated image in its own person map moves the number."""
    rows = select(summary, [difference], fixed)
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    ax.axhline(0, color="k", lw=0.8)
    groups = list(rows.groupby(["layer", "measure"], sort=True))
    for j, ((layer, measure), g) in enumerate(groups):
        g = g.assign(qv=g.q.astype(float)).sort_values("qv")
        dx = (j - (len(groups) - 1) / 2) * 0.04
        ax.errorbar(g.qv * (1 + dx), g.value, yerr=_xerr(g), fmt="o-", ms=3, capsize=2,
                    color=COLOURS[j % len(COLOURS)], label=f"layer {layer}, {measure}")
    ax.set_xscale("log")
    qs = sorted(rows.q.astype(float).unique())
    ax.set_xticks(qs, [f"{q:g}" for q in qs])
    ax.set(xlabel="q (% of the crop occluded)", ylabel="in-sample minus held-out",
           title="recognition after occlusion: in-sample vs held-out probes (95% CI)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def representation_effect(summary: pd.DataFrame, published: Mapping[str, tuple[float, float]],
                          fixed: Mapping[str, str]) -> plt.Figure | None:
    """BC same person, different people and their gap per representation (spatial maps, channel patterns),
    per model with channel cells and map level, with 95% intervals and the published ranges (bands).
    None when no model has channel cells."""
    bc = summary[summary.claim.isin(list(published)) & (summary.model != ALL)]
    reps = bc.definition.map(lambda d: parse_definition(d).get("representation", "spatial"))
    models = sorted(bc.model[reps != "spatial"].unique())
    if not models:
        return None
    levels = sorted({parse_definition(d)["level"] for d in bc.definition})
    fig, axes = plt.subplots(len(models), len(levels), figsize=(4.6 * len(levels), 2.9 * len(models)),
                             squeeze=False)
    for i, model in enumerate(models):
        for j, level in enumerate(levels):
            ax = axes[i, j]
            for k, (claim, (lo, hi)) in enumerate(published.items()):
                rows = select(summary, [claim], {**fixed, "level": level}, model)
                rows = rows.iloc[sorted(range(len(rows)), key=lambda i: (rows.representation[i] != "spatial",
                                                                          rows.representation[i]))]
                colour = COLOURS[k % len(COLOURS)]
                ax.axhspan(lo, hi, color=colour, alpha=0.12)
                x = np.arange(len(rows)) + (k - (len(published) - 1) / 2) * 0.2
                ax.errorbar(x, rows.value, yerr=_xerr(rows), fmt="o", capsize=3, color=colour, label=claim)
                ax.set_xticks(np.arange(len(rows)), rows.representation.str.replace("_", " "), fontsize=7)
            ax.grid(axis="x", visible=False)
            ax.set(title=f"{model}, {level} level", ylabel="BC")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("spatial maps vs channel-level patterns (95% CI; bands: published ranges)")
    fig.tight_layout()
    return fig
