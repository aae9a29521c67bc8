"""One figure and table style for every notebook: PNG + PDF figures, CSV + Markdown tables."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def use_style() -> None:
    """Paper-ready defaults: white grid, readable fonts, tight layout."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 200, "savefig.bbox": "tight", "figure.autolayout": False})


def save_figure(fig: plt.Figure, path: str | Path) -> list[Path]:
    """Write ``fig`` as ``<path>.png`` and ``<path>.pdf`` (any suffix of ``path`` is replaced)."""
    base = Path(path).with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    outs = [base.with_suffix(".png"), base.with_suffix(".pdf")]
    for out in outs:
        fig.savefig(out)
    return outs


def save_table(df: pd.DataFrame, path: str | Path, floatfmt: str = ".4f", index: bool = False) -> list[Path]:
    """Write ``df`` as ``<path>.csv`` and a readable ``<path>.md`` copy."""
    base = Path(path).with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    csv, md = base.with_suffix(".csv"), base.with_suffix(".md")
    df.to_csv(csv, index=index)
    md.write_text(df.to_markdown(index=index, floatfmt=floatfmt) + "\n")
    return [csv, md]


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
