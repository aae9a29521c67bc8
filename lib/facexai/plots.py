"""One figure and table style for every notebook: PNG + PDF figures, CSV + Markdown tables."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from facexai import runstamp


def use_style() -> None:
    """Paper-ready defaults: white grid, readable fonts, tight layout."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 200, "savefig.bbox": "tight", "figure.autolayout": False})


MAX_PNG_PIXELS = 6e6  # large grids get a lower PNG resolution, so committed figures stay a few MB


def save_figure(fig: plt.Figure, path: str | Path) -> list[Path]:
    """Write ``fig`` as ``<path>.png`` and ``<path>.pdf`` (any suffix of ``path`` is replaced)."""
    base = Path(path).with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    width, height = fig.get_size_inches()
    dpi = min(plt.rcParams["savefig.dpi"], (MAX_PNG_PIXELS / (width * height)) ** 0.5)
    fig.savefig(base.with_suffix(".png"), dpi=dpi)
    fig.savefig(base.with_suffix(".pdf"))
    return [base.with_suffix(".png"), base.with_suffix(".pdf")]


def save_table(df: pd.DataFrame, path: str | Path, floatfmt: str = ".4f", index: bool = False,
               stamp: Mapping[str, str] | None = None) -> list[Path]:
    """Write ``df`` as ``<path>.csv``, a readable ``<path>.md`` copy and ``<path>.meta.json``, the run stamp the
    claims ledger checks (``stamp``, else the run folder's own: :func:`facexai.runstamp.current`)."""
    base = Path(path).with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    csv, md = base.with_suffix(".csv"), base.with_suffix(".md")
    df.to_csv(csv, index=index)
    md.write_text(df.to_markdown(index=index, floatfmt=floatfmt) + "\n")
    meta = runstamp.write(csv, stamp if stamp is not None else runstamp.current(csv))
    return [csv, md, meta]


def image_grid(images: list[np.ndarray], titles: list[str] | None = None, ncols: int = 8,
               size: float = 1.6) -> plt.Figure:
    """A montage of uint8 RGB images (or 2-D maps) with optional titles."""
    nrows = max(1, int(np.ceil(len(images) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, img in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(img, cmap=None if img.ndim == 3 else "inferno")
        if titles:
            ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def overlay(ax: plt.Axes, image: np.ndarray, saliency: np.ndarray, alpha: float = 0.55, title: str = "") -> None:
    """Draw a saliency map (any scale) over a face crop, without axes."""
    ax.imshow(image.mean(axis=-1) if image.ndim == 3 else image, cmap="gray", vmin=0, vmax=255)
    ax.imshow(saliency / (saliency.max() or 1.0), cmap="jet", alpha=alpha, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def map_grid(crops: list[np.ndarray], maps: np.ndarray, row_labels: list[str], col_labels: list[str],
             size: float = 1.4) -> plt.Figure:
    """Grid of maps [row, col, H, W] over one crop per column (rows: layers, columns: individuals)."""
    rows, cols = maps.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols + 1.2, size * rows), squeeze=False)
    for r in range(rows):
        for c in range(cols):
            overlay(axes[r, c], crops[c], maps[r, c], title=col_labels[c] if r == 0 else "")
        axes[r, 0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig


def forest_plot(rows: pd.DataFrame, title: str = "this study vs the published value") -> plt.Figure:
    """Ours vs published, one row per comparison: our estimate and 95% interval (dot and bar) beside the published
    value or range (band), one panel per unit; rows: label, unit, estimate, lo, hi, published_lo, published_hi."""
    units = list(dict.fromkeys(rows.unit))
    sizes = [int((rows.unit == u).sum()) for u in units]
    fig, axes = plt.subplots(len(units), 1, figsize=(8, 0.9 + 0.42 * sum(sizes) + 0.5 * len(units)), squeeze=False,
                             gridspec_kw={"height_ratios": sizes})
    for ax, unit in zip(axes[:, 0], units):
        part = rows[rows.unit == unit].reset_index(drop=True)
        y = np.arange(len(part))[::-1]
        for yi, r in zip(y, part.itertuples()):
            if np.isclose(r.published_lo, r.published_hi):
                ax.plot([r.published_lo], [yi], marker="D", color="C3", ms=6, zorder=3)
            else:
                ax.fill_betweenx([yi - 0.3, yi + 0.3], r.published_lo, r.published_hi, color="C3", alpha=0.3, lw=0)
        err = np.clip([part.estimate - part.lo, part.hi - part.estimate], 0, None)  # float rounding at the ends
        ax.errorbar(part.estimate, y, xerr=err, fmt="o", color="C0",
                    capsize=3, zorder=4)
        labels = part.label + (" [" + part.verdict + "]" if "verdict" in part else "")
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_ylim(-0.7, len(part) - 0.3)
        ax.set_xlabel(unit)
    handles = [plt.Line2D([], [], marker="o", color="C0", ls="", label="this study (95% interval)"),
               plt.Line2D([], [], marker="D", color="C3", ls="", label="published value"),
               plt.Rectangle((0, 0), 1, 1, color="C3", alpha=0.3, label="published range")]
    axes[0, 0].legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=3, frameon=False, fontsize=8)
    fig.suptitle(title, y=1.0)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- occlusion figures (notebooks 03, 06, 07, 08)

CRITICAL_COLOUR = "#c0392b"  # critical pixels / a technique's bars
RANDOM_COLOUR = "#7f8c8d"  # random pixels / the floor


def mark_pixels(ax: plt.Axes, crop: np.ndarray, mask: np.ndarray, title: str = "") -> None:
    """A face crop with the ``mask`` pixels painted red, without axes (the pixels an occlusion hides)."""
    shown = crop.copy()
    shown[mask] = (255, 0, 0)
    ax.imshow(shown)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=7)


def critical_regions(crops: np.ndarray, maps: np.ndarray, masks: np.ndarray, titles: list[str],
                     title: str) -> plt.Figure:
    """Two rows per individual (columns): the overall map over the crop, and its critical pixels in red."""
    fig, axes = plt.subplots(2, len(crops), figsize=(1.6 * len(crops), 3.4), squeeze=False)
    for c in range(len(crops)):
        overlay(axes[0, c], crops[c], maps[c], title=titles[c])
        mark_pixels(axes[1, c], crops[c], masks[c])
        axes[1, c].axis("off")
    axes[0, 0].set_ylabel("overall map")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def critical_vs_random(ax: plt.Axes, df: pd.DataFrame, value: str, lo: str, hi: str, order: list[str],
                       title: str) -> None:
    """Critical vs random bars per fill (``order``) with their 95% CI whiskers (columns ``lo``, ``hi``)."""
    order = [f for f in order if f in set(df.fill)]
    sns.barplot(df, x="fill", y=value, hue="selection", order=order, hue_order=["critical", "random"],
                palette=[CRITICAL_COLOUR, RANDOM_COLOUR], ax=ax)
    for i, sel in enumerate(["critical", "random"]):
        d = df[df.selection == sel].set_index("fill").reindex(order)
        x = np.arange(len(order)) + (i - 0.5) * 0.4
        ax.errorbar(x, d[value], yerr=[d[value] - d[lo], d[hi] - d[value]], fmt="none", color="k", capsize=2)
    ax.set(title=title, xlabel="")


def occlusion_examples(examples: Mapping[str, tuple[str, dict]], fills: list[str], q: float, title: str) -> plt.Figure:
    """Per model {name: (geometry, :func:`facexai.occlusion_runner.occlusion_examples` output)}: the image,
    its person map, the critical and random masks (red) and the image as each fill leaves it."""
    ncols = 3 + len(fills)
    fig, axes = plt.subplots(2 * len(examples), ncols, figsize=(1.55 * ncols, 3.3 * len(examples)), squeeze=False)
    for r, (name, (geo, ex)) in enumerate(examples.items()):
        for s, sel in enumerate(["critical", "random"]):
            row = axes[2 * r + s]
            if s == 0:
                row[0].imshow(ex["original"])
                overlay(row[1], ex["original"], ex["map"])
            mark_pixels(row[2], ex["original"], ex[sel], f"{sel} {q:g}%")
            for c, kind in enumerate(fills):
                row[3 + c].imshow(ex[f"{sel}:{kind}"])
                row[3 + c].set_title(kind, fontsize=7)
            for ax in row:
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if not ax.images:
                    ax.axis("off")
        axes[2 * r, 0].set_ylabel(f"{name}\n({geo})", fontsize=8)
        axes[2 * r, 0].set_title("image", fontsize=7)
        axes[2 * r, 1].set_title("person map", fontsize=7)
    fig.suptitle(title, y=1.0)
    fig.tight_layout()
    return fig


def transfer_masks(masks: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]], models: list[str],
                   title: str) -> plt.Figure:
    """Grid rows generation, columns evaluation model: {(generation, evaluation): (crop, mask)} drawn red;
    the white-box diagonal framed in cyan."""
    n = len(models)
    fig, axes = plt.subplots(n, n, figsize=(1.8 * n + 0.6, 1.8 * n + 0.4), squeeze=False)
    for r, gen in enumerate(models):
        for c, ev in enumerate(models):
            ax = axes[r, c]
            mark_pixels(ax, *masks[(gen, ev)])
            if r == 0:
                ax.set_title(f"on {ev}", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{gen}'s pixels", fontsize=8)
            if r == c:
                for side in ax.spines.values():
                    side.set(edgecolor="cyan", linewidth=2.5)
    fig.suptitle(title, y=1.0)
    fig.tight_layout()
    return fig


def transfer_heatmaps(grids: Mapping[str, pd.DataFrame], models: list[str], title: str) -> plt.Figure:
    """One heatmap per measure {title: generation x evaluation grid} (the last rows: random floor, ...);
    the diagonal (white-box) framed in cyan. Rates share a scale up to 1; a drop has its own."""
    from matplotlib.patches import Rectangle

    n_rows = max(len(g) for g in grids.values())
    fig, axes = plt.subplots(1, len(grids), figsize=(4.2 * len(grids), 0.55 * n_rows + 2.2), squeeze=False)
    for ax, (name, grid) in zip(axes[0], grids.items()):
        rate = "drop" not in name
        sns.heatmap(grid.astype(float), annot=True, fmt=".3f", cmap="rocket" if rate else "rocket_r", cbar=True,
                    ax=ax, annot_kws={"size": 8}, vmin=max(0.0, float(grid.min().min()) - 0.05) if rate else None,
                    vmax=1 if rate else None)
        for i in range(len(models)):
            ax.add_patch(Rectangle((i, i), 1, 1, fill=False, edgecolor="cyan", lw=2.5))
        ax.axhline(len(models), color="white", lw=3)
        ax.set(title=name, xlabel="evaluation model", ylabel="generation model" if ax is axes[0, 0] else "")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def technique_bars(table: pd.DataFrame, datasets: list[str], models: list[str], labels: Mapping[str, str],
                   title: str, mean: str = "mean", floor: str = "random", subset: str = "rise subset") -> plt.Figure:
    """Per data set (columns) the recognition rate and balanced accuracy (rows) of every technique: bars the
    ``mean`` rows (the ``floor`` grey, ``subset`` rows hatched), dots each model, the clean rate dashed."""
    n_tech = table.technique.nunique()
    fig, axes = plt.subplots(2, len(datasets), figsize=(1.0 * n_tech * len(datasets) + 1.5, 6.4), squeeze=False)
    palette = dict(zip(models, sns.color_palette("colorblind", len(models))))
    for c, dname in enumerate(datasets):
        d = table[table.dataset == dname]
        order = list(dict.fromkeys(d.technique))
        means = d[d.model == mean].set_index("technique")
        for r, (col, ylabel) in enumerate([("recognition_rate", "recognition rate"),
                                           ("balanced_accuracy", "balanced accuracy")]):
            ax = axes[r, c]
            for x, t in enumerate(order):
                ax.bar(x, means[col].get(t, np.nan), color=RANDOM_COLOUR if t == floor else CRITICAL_COLOUR,
                       alpha=0.75, hatch="//" if means.subset.get(t) == subset else "", edgecolor="k", lw=0.5)
            for name in models:
                per = d[d.model == name].set_index("technique")[col].reindex(order)
                ax.plot(range(len(order)), per, "o", color=palette[name], label=name, ms=5)
            if col == "recognition_rate":
                ax.axhline(means.clean_recognition_rate.mean(), ls="--", color="k", lw=1, label="clean")
            ax.set_xticks(range(len(order)), [labels[t] for t in order], rotation=35, ha="right")
            ax.set(ylim=(0, 1.05), ylabel=ylabel if c == 0 else "", title=dname if r == 0 else "")
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def sweep_lines(d: pd.DataFrame, panel: str, labels: Mapping[str, str], title: str) -> plt.Figure | None:
    """Recognition rate (top) and cosine drop (bottom) along a sweep's ``x`` labels: one panel per ``panel``
    value, a line per technique (and model); None when ``d`` is empty."""
    if d.empty:
        return None
    panels = list(dict.fromkeys(d[panel]))
    fig, axes = plt.subplots(2, len(panels), figsize=(max(5.0, 0.6 * d.x.nunique() + 2.5) * len(panels), 5.8),
                             squeeze=False, sharey="row")
    for c, value in enumerate(panels):
        for (tech, name), g in d[d[panel] == value].groupby(["technique", "model"], sort=False):
            for r, col in enumerate(["recognition_rate", "mean_drop"]):
                axes[r, c].plot(g.x, g[col], "o-", label=labels[tech] + ("" if panel == "model" else f" / {name}"))
        axes[0, c].set(title=str(value), ylim=(0, 1.05))
        axes[1, c].tick_params(axis="x", rotation=35)
        axes[0, c].tick_params(axis="x", labelbottom=False)
    axes[0, 0].set_ylabel("recognition rate")
    axes[1, 0].set_ylabel("cosine drop")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
