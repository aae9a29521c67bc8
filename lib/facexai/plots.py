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
        ax.errorbar(part.estimate, y, xerr=[part.estimate - part.lo, part.hi - part.estimate], fmt="o", color="C0",
                    capsize=3, zorder=4)
        ax.set_yticks(y, part.label, fontsize=8)
        ax.set_ylim(-0.7, len(part) - 0.3)
        ax.set_xlabel(unit)
    handles = [plt.Line2D([], [], marker="o", color="C0", ls="", label="this study (95% interval)"),
               plt.Line2D([], [], marker="D", color="C3", ls="", label="published value"),
               plt.Rectangle((0, 0), 1, 1, color="C3", alpha=0.3, label="published range")]
    axes[0, 0].legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=3, frameon=False, fontsize=8)
    fig.suptitle(title, y=1.0)
    fig.tight_layout()
    return fig
