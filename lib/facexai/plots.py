"""One figure and table style for every notebook: PNG + PDF figures, CSV + Markdown tables."""
from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Patch
from PIL import Image

from facexai import cache, runstamp

log = logging.getLogger(__name__)


#: seaborn's ``set_theme(context="paper", style="whitegrid", font_scale=1.1)`` written out as matplotlib settings
#: (seaborn 0.13.2; ``tests/test_plots.py`` compares them), so that a notebook only imports seaborn, 0.6 s with
#: scipy.stats, when it draws a seaborn plot. Its default colormap stays matplotlib's: seaborn's 'rocket' only
#: exists once seaborn is imported, and every map here names its colormap.
PAPER_STYLE = {
    "axes.axisbelow": True, "axes.edgecolor": ".8", "axes.grid": True, "axes.labelcolor": ".15",
    "axes.labelsize": 10.56, "axes.linewidth": 1.0, "axes.titlesize": 10.56,
    "axes.prop_cycle": mpl.cycler(color=["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
                                     "#8c8c8c", "#ccb974", "#64b5cd"]),  # seaborn's "deep" palette
    "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"],
    "font.size": 10.56, "grid.color": ".8", "legend.fontsize": 9.68, "legend.title_fontsize": 10.56,
    "lines.linewidth": 1.2, "lines.markersize": 4.8, "lines.solid_capstyle": "round",
    "patch.edgecolor": "w", "patch.force_edgecolor": True, "patch.linewidth": 0.8, "text.color": ".15",
    **{f"{axis}.{key}": value for axis in ("xtick", "ytick") for key, value in
       {"color": ".15", "labelsize": 9.68, "major.size": 4.8, "major.width": 1.0, "minor.size": 3.2,
        "minor.width": 0.8}.items()},
    "xtick.bottom": False, "ytick.left": False,
}


def use_style() -> None:
    """Paper-ready defaults: white grid, readable fonts (:data:`PAPER_STYLE`), tight layout."""
    plt.rcParams.update({**PAPER_STYLE, "figure.dpi": 110, "savefig.dpi": 200, "savefig.bbox": "tight",
                         "figure.autolayout": False})


MAX_PNG_PIXELS = 3e6  # large grids start at a lower PNG resolution (the cap leaves about 1 MP of a map grid)
MAX_PNG_BYTES = 1_000_000  # a committed PNG stays under ~1 MB: save_figure lowers the resolution until it does
MIN_PNG_DPI = 40  # below this a figure is unreadable: saved as it is, with a warning
# zlib level of the saved PNGs: over the quick run's figures level 4 encodes in 58% of the default 6's time for
# 1.7% more bytes; the notebook's inline copy (re-encoded by the HTML export anyway) takes level 1
PNG_LEVEL, INLINE_PNG_LEVEL = 4, 1


def save_figure(fig: plt.Figure, path: str | Path, max_bytes: int = MAX_PNG_BYTES) -> list[Path]:
    """Write ``fig`` as ``<path>.png`` and ``<path>.pdf`` (any suffix of ``path`` is replaced).

    The layout and the bounding box are solved once and then frozen. The PNG is drawn once, at ``savefig.dpi``
    (at most :data:`MAX_PNG_PIXELS`); if it would exceed ``max_bytes`` the raster is resampled to fewer pixels
    (logged) rather than drawn again; a notebook shows that raster too (:func:`_show_inline`). The PDF keeps
    text and lines as vectors and its images (maps, crops) at the PNG's resolution, so a grid of maps does
    not weigh megabytes there either. The PNG is encoded in a second thread while the PDF is drawn (zlib
    releases the GIL); the PDF is drawn again only when the PNG had to shrink more than predicted.
    """
    base = Path(path).with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = base.with_suffix(".png"), base.with_suffix(".pdf")
    width, height = fig.get_size_inches()
    first = min(plt.rcParams["savefig.dpi"], (MAX_PNG_PIXELS / (width * height)) ** 0.5)
    bbox = _freeze_layout(fig)
    drawn = _raster(fig, first, bbox)
    if drawn.getextrema()[3][0] == 255:
        drawn = drawn.convert("RGB")  # opaque: the alpha channel only adds bytes
    predicted = first * _first_scale(drawn, first, max_bytes)
    with ThreadPoolExecutor(max_workers=1) as pool:
        encoding = pool.submit(_png_under, drawn, first, max_bytes, predicted / first)
        fig.savefig(pdf, dpi=predicted, bbox_inches=bbox)
        encoded, dpi = encoding.result()
    if dpi != predicted:
        fig.savefig(pdf, dpi=dpi, bbox_inches=bbox)
    if len(encoded) > max_bytes:
        log.warning("%s: %.2f MB even at %.0f dpi (cap %.2f MB)", png.name, len(encoded) / 1e6, dpi, max_bytes / 1e6)
    elif dpi < first:
        log.info("%s: saved at %.0f dpi (not %.0f) to stay under %.2f MB (%.2f MB)", png.name, dpi, first,
                 max_bytes / 1e6, len(encoded) / 1e6)
    cache.atomic_write(png, lambda tmp: tmp.write_bytes(encoded))
    _show_inline(fig, drawn, first)
    return [png, pdf]


def _raster(fig: plt.Figure, dpi: float, bbox) -> Image.Image:
    """``fig`` drawn by Agg at ``dpi`` within ``bbox`` (inches, or None: the whole figure), as an RGBA image:
    the renderer's own buffer, with no PNG encoding to undo (0.1 s on a large grid)."""
    raw = io.BytesIO()
    fig.savefig(raw, format="rgba", dpi=dpi, bbox_inches=bbox)
    pixels = raw.getbuffer()  # a view: getvalue() would copy the whole raster
    drawn_by = getattr(fig.canvas, "renderer", None)  # the Agg renderer that savefig just drew with (and sized)
    size = (int(drawn_by.width), int(drawn_by.height)) if drawn_by is not None else (0, 0)
    if pixels.nbytes != 4 * size[0] * size[1]:
        raise RuntimeError(f"{type(fig.canvas).__name__} drew {pixels.nbytes} RGBA bytes, not the {size} "
                           "of its Agg renderer: save_figure needs an Agg-based backend")
    return Image.frombuffer("RGBA", size, pixels, "raw", "RGBA", 0, 1)


def _show_inline(fig: plt.Figure, drawn: Image.Image, dpi: float) -> None:
    """In a notebook (matplotlib's inline backend), show the raster already drawn at ``dpi``, resampled to the
    screen's ``figure.dpi``, and close the figure: the backend would otherwise draw it once more at the cell's end."""
    if "inline" not in mpl.get_backend():
        return
    from IPython.display import Image as Shown, display

    screen = plt.rcParams["figure.dpi"]
    display(Shown(data=_png_bytes(_resized(drawn, screen / dpi), screen, INLINE_PNG_LEVEL), format="png"))
    plt.close(fig)


def _freeze_layout(fig: plt.Figure):
    """Solve ``fig``'s layout engine once and switch it off, and return the bounding box to save (the padded
    tight box when ``savefig.bbox`` is 'tight'): every later draw then skips both solves."""
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        # no engine at all: the placeholder that set_layout_engine("none") leaves makes every savefig draw once more
        with mpl.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            fig.set_layout_engine(None)
    if plt.rcParams["savefig.bbox"] != "tight":
        return plt.rcParams["savefig.bbox"]
    pad = plt.rcParams["savefig.pad_inches"]
    return fig.get_tightbbox(fig.canvas.get_renderer()).padded(pad)


def _first_scale(image: Image.Image, dpi: float, max_bytes: int) -> float:
    """The scale at which ``image`` (drawn at ``dpi``) should fit ``max_bytes`` as PNG, predicted from a quarter-size
    encoding (bytes grow about as pixels), so a large raster is not encoded in full only to be discarded."""
    quarter = len(_png_bytes(_resized(image, 0.5), dpi / 2))
    return _clamped(0.92 * (max_bytes / (4 * quarter)) ** 0.5, dpi)


def _clamped(scale: float, dpi: float) -> float:
    """``scale`` kept to at most 1 (never upsampled) and at least :data:`MIN_PNG_DPI` / ``dpi``."""
    return min(1.0, max(scale, MIN_PNG_DPI / dpi))


def _png_under(image: Image.Image, dpi: float, max_bytes: int, scale: float = 1.0) -> tuple[bytes, float]:
    """PNG bytes of ``image`` drawn at ``dpi``, resampled from ``scale`` on to fewer pixels until under
    ``max_bytes`` (or :data:`MIN_PNG_DPI`), and the dpi they amount to."""
    while True:
        scale = _clamped(scale, dpi)
        encoded = _png_bytes(_resized(image, scale), dpi * scale)
        if len(encoded) <= max_bytes or dpi * scale <= MIN_PNG_DPI:
            return encoded, dpi * scale
        scale *= 0.92 * (max_bytes / len(encoded)) ** 0.5


def _resized(image: Image.Image, scale: float) -> Image.Image:
    """``image`` resampled by ``scale`` (Lanczos; itself at scale 1)."""
    if scale >= 1:
        return image
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.LANCZOS)


def _png_bytes(image: Image.Image, dpi: float, level: int = PNG_LEVEL) -> bytes:
    """``image`` encoded as PNG at zlib ``level``, its dpi recorded."""
    out = io.BytesIO()
    image.save(out, format="png", dpi=(dpi, dpi), compress_level=level)
    return out.getvalue()


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


SALIENCY_CMAP = "inferno"  # perceptually uniform: equal steps of relevance look like equal steps of colour
PANEL_SCALING = "each panel min-max scaled to [0, 1]"  # how overlay() scales a map: stated in every figure


def min_max(saliency: np.ndarray) -> np.ndarray:
    """A map scaled to [0, 1] on its own (:data:`PANEL_SCALING`); a constant map is all 0."""
    low, high = float(np.min(saliency)), float(np.max(saliency))
    return (saliency - low) / (high - low) if high > low else np.zeros_like(saliency, dtype=float)


def overlay(ax: plt.Axes, image: np.ndarray, saliency: np.ndarray, alpha: float = 0.6,
            title: str = "") -> mpl.image.AxesImage:
    """Draw a saliency map over a face crop, without axes: the map min-max scaled to [0, 1] on its own
    (:data:`PANEL_SCALING`), in :data:`SALIENCY_CMAP`; returns its image for :func:`relevance_colourbar`."""
    ax.imshow(image.mean(axis=-1) if image.ndim == 3 else image, cmap="gray", vmin=0, vmax=255)
    shown = ax.imshow(min_max(saliency), cmap=SALIENCY_CMAP, alpha=alpha, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize=8)
    return shown


def relevance_colourbar(fig: plt.Figure, mappable: mpl.cm.ScalarMappable, axes=None, cax: plt.Axes | None = None,
                        label: str = f"relevance ({PANEL_SCALING})") -> mpl.colorbar.Colorbar:
    """One colourbar for a figure of :func:`overlay` panels, labelled with their scaling: beside ``axes``
    (space taken from them), or in ``cax``."""
    bar = (fig.colorbar(mappable, cax=cax) if cax is not None
           else fig.colorbar(mappable, ax=axes, fraction=0.025, pad=0.02, shrink=0.8))
    bar.solids.set(alpha=1)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return bar


def map_grid(crops: list[np.ndarray], maps: np.ndarray, row_labels: list[str], col_labels: list[str],
             size: float = 1.4, title: str = "") -> plt.Figure:
    """Grid of maps [row, col, H, W] over one crop per column (rows: layers, columns: individuals), one colourbar;
    the title states the per-panel scaling. The panels are blended as :func:`overlay` draws them and shown as
    one mosaic image, so a 17 x 5 grid draws as fast as one panel."""
    rows, cols = maps.shape[:2]
    side = max(max(c.shape[:2]) for c in crops)
    gap = max(1, side // 16)
    mosaic = np.full((rows * (side + gap) - gap, cols * (side + gap) - gap, 3), 255, np.uint8)
    for c in range(cols):
        for r in range(rows):
            y, x = r * (side + gap), c * (side + gap)
            mosaic[y:y + side, x:x + side] = np.round(255 * blend(crops[c], maps[r, c], side))
    fig, ax = plt.subplots(figsize=(size * cols + 1.8, size * rows + 0.5), layout="constrained")
    ax.imshow(mosaic, interpolation="antialiased")
    centres = lambda n: np.arange(n) * (side + gap) + (side - 1) / 2  # noqa: E731
    ax.set_xticks(centres(cols), col_labels, fontsize=8)
    ax.set_yticks(centres(rows), row_labels, fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    scale = mpl.cm.ScalarMappable(mpl.colors.Normalize(0, 1), SALIENCY_CMAP)
    relevance_colourbar(fig, scale, ax)
    fig.suptitle(f"{title} ({PANEL_SCALING})" if title else f"Maps, {PANEL_SCALING}", fontsize=10)
    return fig


def blend(image: np.ndarray, saliency: np.ndarray, side: int, alpha: float = 0.6) -> np.ndarray:
    """The RGB panel :func:`overlay` draws (grey crop under the min-max scaled map in :data:`SALIENCY_CMAP` at
    ``alpha``), both resampled to ``side`` x ``side`` pixels, values in [0, 1]."""
    grey = image.mean(axis=-1) if image.ndim == 3 else image.astype(float)
    grey = np.asarray(Image.fromarray(grey.astype(np.float32)).resize((side, side), Image.Resampling.BILINEAR)) / 255
    scaled = np.asarray(Image.fromarray(min_max(saliency).astype(np.float32)).resize((side, side),
                                                                                     Image.Resampling.BILINEAR))
    colour = mpl.colormaps[SALIENCY_CMAP](np.clip(scaled, 0, 1))[..., :3]
    return (1 - alpha) * np.clip(grey, 0, 1)[..., None] + alpha * colour


def fitted_limits(*grids: pd.DataFrame | np.ndarray) -> tuple[float, float]:
    """The colour scale of :func:`heatmap`: the smallest and largest finite value of the grids (a value alone:
    a narrow scale around it; no finite value: 0 to 1)."""
    finite = np.concatenate([np.asarray(g, dtype=float).ravel() for g in grids])
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return (low - 0.5e-3, high + 0.5e-3) if high - low < 1e-12 else (low, high)


def heatmap(ax: plt.Axes, grid: pd.DataFrame, label: str, fmt: str = ".3f", cmap: str = "viridis",
            annot: bool = True, limits: tuple[float, float] | None = None, annot_kws: Mapping | None = None,
            square: bool = False, cbar: bool = True) -> mpl.collections.QuadMesh:
    """An annotated heatmap of ``grid`` (first row on top, a missing value left blank) whose colour scale spans
    the data (``limits``, default :func:`fitted_limits` of ``grid``; give the panels of one figure common
    limits), printed in the colourbar ``label``. Drawn as seaborn's ``heatmap`` draws it (dark text on light
    cells, white on dark), in matplotlib alone: no seaborn import and no extra draw to place the labels."""
    low, high = limits or fitted_limits(grid)
    values = grid.to_numpy(float)
    rows, cols = values.shape
    mesh = ax.pcolormesh(np.ma.masked_invalid(values), cmap=cmap, vmin=low, vmax=high)
    ax.set(xlim=(0, cols), ylim=(rows, 0))
    ax.set_xticks(np.arange(cols) + 0.5, [str(c) for c in grid.columns], rotation=_label_rotation(ax, grid.columns))
    ax.set_yticks(np.arange(rows) + 0.5, [str(r) for r in grid.index])
    ax.set(xlabel=grid.columns.name or "", ylabel=grid.index.name or "")
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if square:
        ax.set_aspect("equal")
    if annot:
        light = _relative_luminance(mesh.to_rgba(values)) > 0.408  # seaborn's threshold for dark text
        for (i, j), value in np.ndenumerate(values):
            if np.isfinite(value):
                ax.text(j + 0.5, i + 0.5, format(value, fmt), ha="center", va="center",
                        color=".15" if light[i, j] else "w", **(annot_kws or {}))
    if cbar:
        ax.figure.colorbar(mesh, ax=ax, label=f"{label} (scale {low:{fmt}} to {high:{fmt}})")
    return mesh


def _relative_luminance(rgba: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB colours (..., 3 or 4) in [0, 1]: 0 black, 1 white."""
    rgb = np.asarray(rgba, float)[..., :3]
    linear = np.where(rgb <= 0.03928, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def _label_rotation(ax: plt.Axes, labels: Sequence) -> int:
    """90 when ``labels`` side by side would be wider than the axes (about 0.6 em a character), else 0."""
    width = ax.get_position().width * ax.figure.get_figwidth() * 72  # points
    size = FontProperties(size=plt.rcParams["xtick.labelsize"]).get_size_in_points()  # a number or e.g. "medium"
    return 90 if sum(len(str(t)) + 2 for t in labels) * 0.6 * size > width else 0


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
        ax.errorbar(part.estimate, y, xerr=_error_bars(part.estimate, part.lo, part.hi), fmt="o", color="C0",
                    capsize=3, zorder=4)
        labels = part.label + (" [" + part.verdict + "]" if "verdict" in part else "")
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_ylim(-0.7, len(part) - 0.3)
        ax.set_xlabel(unit)
    single = np.isclose(rows.published_lo, rows.published_hi)
    ranged = rows.published_lo.notna() & rows.published_hi.notna() & ~single
    handles = [plt.Line2D([], [], marker="o", color="C0", ls="", label="this study (95% interval)")]
    handles += [plt.Line2D([], [], marker="D", color="C3", ls="", label="published value")] if single.any() else []
    handles += [plt.Rectangle((0, 0), 1, 1, color="C3", alpha=0.3, label="published range")] if ranged.any() else []
    axes[0, 0].legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=3, frameon=False, fontsize=8)
    fig.suptitle(title, y=1.0)
    fig.tight_layout()
    return fig


def split_violin(ax: plt.Axes, df: pd.DataFrame, x: str, y: str, hue: str, hue_order: list[str] | None = None,
                 width: float = 0.8) -> None:
    """Split violins: per ``x`` value the distribution of ``y`` for the first of two ``hue`` levels on the left and
    the second on the right, each half scaled to ``width``, over the data's range, with its quartiles (dashed) and
    median (solid). matplotlib's Gaussian KDE (Scott's bandwidth): as seaborn's ``violinplot(split=True,
    inner="quart", cut=0, density_norm="width")`` draws it, without importing seaborn. A half whose values are
    all equal is a line at that value (a KDE needs spread); a missing half is left out."""
    levels = hue_order or list(dict.fromkeys(df[hue]))
    if len(levels) != 2:
        raise ValueError(f"split_violin needs two '{hue}' levels, got {levels}")
    order = list(dict.fromkeys(df[x]))
    colours = ("C0", "C1")
    for level, side, colour in zip(levels, ("low", "high"), colours):
        values = {i: df.loc[(df[x] == k) & (df[hue] == level), y].to_numpy(float) for i, k in enumerate(order)}
        spread = {i: v for i, v in values.items() if len(v) and np.ptp(v) > 0}
        flat = {i: v[0] for i, v in values.items() if len(v) and i not in spread}
        if spread:
            parts = ax.violinplot(list(spread.values()), list(spread), widths=width, side=side, showextrema=False,
                                  quantiles=[[0.25, 0.5, 0.75]] * len(spread))
            for body in parts["bodies"]:
                body.set(facecolor=colour, edgecolor=".3", linewidth=0.8, alpha=0.85)
            parts["cquantiles"].set(color=".2", linewidth=1.0, linestyle=["--", "-", "--"] * len(spread))
        for i, value in flat.items():
            ax.hlines(value, i - width / 2 if side == "low" else i, i if side == "low" else i + width / 2,
                      color=colour, linewidth=2)
    ax.set_xticks(range(len(order)), order)
    ax.set(xlabel=x, ylabel=y, xlim=(-0.5, len(order) - 0.5))
    ax.grid(False, axis="x")
    ax.legend(handles=[Patch(facecolor=c, edgecolor=".3", label=level)
                       for level, c in zip(levels, colours)], title=hue, fontsize=8)


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
    fig, axes = plt.subplots(2, len(crops), figsize=(1.6 * len(crops) + 1.2, 3.6), squeeze=False, layout="constrained")
    for c in range(len(crops)):
        shown = overlay(axes[0, c], crops[c], maps[c], title=titles[c])
        mark_pixels(axes[1, c], crops[c], masks[c])
        axes[1, c].axis("off")
    axes[0, 0].set_ylabel("overall map")
    relevance_colourbar(fig, shown, axes[0, :])
    fig.suptitle(f"{title}\nmaps: {PANEL_SCALING}", fontsize=10)
    return fig


def critical_vs_random(ax: plt.Axes, df: pd.DataFrame, value: str, lo: str, hi: str, order: list[str],
                       title: str) -> None:
    """Critical vs random bars per fill (``order``) with their 95% CI whiskers (columns ``lo``, ``hi``)."""
    import seaborn as sns  # only here: its import (0.6 s, with scipy.stats) would cost every notebook

    order = [f for f in order if f in set(df.fill)]
    sns.barplot(df, x="fill", y=value, hue="selection", order=order, hue_order=["critical", "random"],
                palette=[CRITICAL_COLOUR, RANDOM_COLOUR], ax=ax)
    for i, sel in enumerate(["critical", "random"]):
        d = df[df.selection == sel].set_index("fill").reindex(order)
        x = np.arange(len(order)) + (i - 0.5) * 0.4
        ax.errorbar(x, d[value], yerr=_error_bars(d[value], d[lo], d[hi]), fmt="none", color="k", capsize=2)
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
                shown = overlay(row[1], ex["original"], ex["map"])
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
    fig.suptitle(f"{title}\nperson maps: {PANEL_SCALING}", y=1.0)
    fig.tight_layout()
    relevance_colourbar(fig, shown, cax=axes[1, 1].inset_axes([0.2, 0.05, 0.1, 0.9]),  # in the empty cell below
                        label="relevance (min-max)")
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
    the diagonal (white-box) framed in cyan; each colour scale fitted to its grid's values (:func:`heatmap`)."""
    from matplotlib.patches import Rectangle

    n_rows = max(len(g) for g in grids.values())
    fig, axes = plt.subplots(1, len(grids), figsize=(4.6 * len(grids), 0.55 * n_rows + 2.2), squeeze=False)
    for ax, (name, grid) in zip(axes[0], grids.items()):
        heatmap(ax, grid, name, cmap="magma_r" if "drop" in name else "magma", annot_kws={"size": 8})
        for i in range(len(models)):
            ax.add_patch(Rectangle((i, i), 1, 1, fill=False, edgecolor="cyan", lw=2.5))
        ax.axhline(len(models), color="white", lw=3)
        ax.set(title=name, xlabel="evaluation model", ylabel="generation model" if ax is axes[0, 0] else "")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def floor_difference_plot(diffs: pd.DataFrame, labels: Mapping[str, str], title: str,
                          order: list[str] | None = None, measure: str = "recognition_rate") -> plt.Figure:
    """Forest plot of each technique's ``measure`` minus the random floor (:func:`facexai.floor_differences.
    floor_differences` rows): one panel per data set, a row per technique (top to bottom in ``order``), a dot and
    95% interval per model; 0 = as good as random pixels (dotted), left of it (a lower rate) = the technique's
    pixels matter more."""
    d = diffs[diffs.measure == measure]
    datasets = list(dict.fromkeys(d.dataset))
    models = list(dict.fromkeys(d.model))
    techniques = [t for t in order if t in set(d.technique)] if order else list(dict.fromkeys(d.technique))
    import seaborn as sns  # only here (see critical_vs_random)

    palette = dict(zip(models, sns.color_palette("colorblind", len(models))))
    offsets = dict(zip(models, np.linspace(-0.25, 0.25, len(models)) if len(models) > 1 else [0.0]))
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(4.6 * max(1, len(datasets)) + 2.4,
                                                                0.55 * len(techniques) + 1.8),
                             squeeze=False, sharey=True)
    y_of = {t: i for i, t in enumerate(techniques[::-1])}
    for ax, dname in zip(axes[0], datasets):
        part = d[d.dataset == dname]
        for name in models:
            m = part[part.model == name]
            y = np.array([y_of[t] for t in m.technique]) + offsets[name]
            ax.errorbar(m.difference, y, xerr=_error_bars(m.difference, m.ci_lo, m.ci_hi), fmt="o", color=palette[name],
                        ms=5, capsize=2, label=name)
        ax.axvline(0, ls=":", color=RANDOM_COLOUR, lw=1.5, label="random floor")
        ax.set_yticks(list(y_of.values()), [labels.get(t, t) for t in y_of])
        ax.set(title=dname, xlabel=f"{measure.replace('_', ' ')} minus random floor")
    axes[0, -1].legend(fontsize=7, loc="best")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def difference_panels(rows: pd.DataFrame, xlabel: str, title: str, panel: str = "measure",
                      row: str = "model") -> plt.Figure:
    """Paired differences with their intervals (columns difference, ci_lo, ci_hi): one panel per ``panel`` value,
    its own x scale (few ticks, so small differences stay readable), a row per ``row`` value, 0 marked."""
    panels = list(dict.fromkeys(rows[panel]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 0.45 * rows[row].nunique() + 1.3),
                             squeeze=False, sharey=True)
    for ax, name in zip(axes[0], panels):
        d = rows[rows[panel] == name].reset_index(drop=True)
        y = np.arange(len(d))
        ax.errorbar(d.difference, y, xerr=_error_bars(d.difference, d.ci_lo, d.ci_hi), fmt="o", capsize=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.xaxis.set_major_locator(mpl.ticker.MaxNLocator(4))
        ax.set_yticks(y, d[row])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _error_bars(value: pd.Series, lo: pd.Series, hi: pd.Series) -> np.ndarray:
    """matplotlib's asymmetric error bars (2, n) for intervals [lo, hi] around ``value``: float rounding that puts a
    bound past its value gives 0, not a negative length matplotlib refuses; a missing bound stays NaN (no bar and
    no caps, where 0 would draw caps as if the interval were exact)."""
    return np.vstack([np.asarray(value - lo, float), np.asarray(hi - value, float)]).clip(min=0.0)


def sweep_lines(d: pd.DataFrame, panel: str, labels: Mapping[str, str], title: str) -> plt.Figure | None:
    """Recognition rate (top) and cosine drop (bottom) along a sweep's ``x`` labels: one panel per ``panel``
    value, a line per technique (and model); None when ``d`` is empty.

    Both carry the 95% bootstrap intervals of the sweep's summaries (``rr_ci_lo`` / ``rr_ci_hi``, ``ci_lo`` /
    ``ci_hi``: :data:`facexai.generalizability.SWEEP_INTERVALS`).
    """
    if d.empty:
        return None
    panels = list(dict.fromkeys(d[panel]))
    fig, axes = plt.subplots(2, len(panels), figsize=(max(5.0, 0.6 * d.x.nunique() + 2.5) * len(panels), 5.8),
                             squeeze=False, sharey="row")
    for c, value in enumerate(panels):
        part = d[d[panel] == value]
        order = list(dict.fromkeys(part.x))
        groups = list(part.groupby(["technique", "model"], sort=False))
        shifts = np.linspace(-0.12, 0.12, len(groups)) if len(groups) > 1 else [0.0]
        for shift, ((tech, name), g) in zip(shifts, groups):
            x = np.array([order.index(v) for v in g.x]) + shift
            label = labels[tech] + ("" if panel == "model" else f" / {name}")
            axes[0, c].errorbar(x, g.recognition_rate, yerr=_error_bars(g.recognition_rate, g.rr_ci_lo, g.rr_ci_hi),
                                fmt="o-", capsize=2, label=label)
            axes[1, c].errorbar(x, g.mean_drop, yerr=_error_bars(g.mean_drop, g.ci_lo, g.ci_hi), fmt="o-", capsize=2,
                                label=label)
        axes[1, c].set_xticks(range(len(order)), order)
        axes[0, c].set(title=str(value))
        axes[1, c].tick_params(axis="x", rotation=35)
        axes[0, c].tick_params(axis="x", labelbottom=False)
    axes[0, 0].set_ylabel("recognition rate\n(95% interval)")
    axes[1, 0].set_ylabel("cosine drop\n(95% interval)")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
