"""facexai.plots: figures that show the claim (issue 13, item 5): size cap, colour scales, intervals."""
import io
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from facexai import plots  # noqa: E402
from fresh_process import run_json  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    plots.use_style()
    yield
    plt.close("all")


def noisy_grid(rows: int, cols: int, size: int = 112) -> plt.Figure:
    """A layer grid of noise maps over noise crops: the worst case for PNG compression."""
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(cols)]
    maps = rng.random((rows, cols, size, size))
    return plots.map_grid(crops, maps, [f"layer {r}" for r in range(rows)], [f"person {c}" for c in range(cols)])


def test_a_large_grid_saves_under_one_megabyte(tmp_path, caplog):
    fig = noisy_grid(11, 6)  # notebook 03's layer grid: 10 layers and the overall map of 6 people (was 2-4.5 MB)
    with caplog.at_level(logging.INFO, logger="facexai.plots"):
        png, pdf = plots.save_figure(fig, tmp_path / "grid")
    assert png.stat().st_size <= plots.MAX_PNG_BYTES, f"{png.stat().st_size / 1e6:.2f} MB"
    assert 0 < pdf.stat().st_size <= 2 * plots.MAX_PNG_BYTES, f"{pdf.stat().st_size / 1e6:.2f} MB"  # maps at the PNG's dpi
    assert "to stay under" in caplog.text  # the lowered resolution is logged


def test_the_cap_is_what_lowers_the_resolution(tmp_path):
    fig = noisy_grid(3, 3, size=256)  # maps larger than their panels: fewer pixels, fewer bytes
    big, _ = plots.save_figure(fig, tmp_path / "big", max_bytes=10**9)
    small, _ = plots.save_figure(fig, tmp_path / "small", max_bytes=big.stat().st_size // 2)
    assert small.stat().st_size <= big.stat().st_size // 2
    assert plt.imread(small).shape[0] < plt.imread(big).shape[0]


def test_a_figure_too_large_for_the_minimum_dpi_is_not_upsampled(tmp_path):
    fig, ax = plt.subplots(figsize=(60, 60))  # the pixel cap alone puts it below MIN_PNG_DPI
    ax.plot([0, 1], [0, 1])
    first = (plots.MAX_PNG_PIXELS / 3600) ** 0.5
    assert first < plots.MIN_PNG_DPI
    png, _ = plots.save_figure(fig, tmp_path / "huge")
    with Image.open(png) as image:
        assert image.info["dpi"][0] == pytest.approx(first, rel=1e-3)  # the dpi its pixels amount to
        assert image.width <= 60 * first + 1


def test_each_file_draws_the_figure_once(tmp_path, monkeypatch):
    """The layout is solved once and the engine removed, so neither savefig draws the figure a second time
    (a placeholder engine made each of them draw once more, images resampled included)."""
    made = []
    original = matplotlib.image.AxesImage.make_image
    monkeypatch.setattr(matplotlib.image.AxesImage, "make_image",
                        lambda self, *a, **k: made.append(1) or original(self, *a, **k))
    fig = noisy_grid(3, 2)
    plots.save_figure(fig, tmp_path / "grid")
    assert len(made) == 2  # the PNG and the PDF
    assert fig.get_layout_engine() is None and plt.fignum_exists(fig.number)  # outside a notebook: left open


def test_a_notebook_shows_the_saved_raster_and_closes_the_figure(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://matplotlib_inline.backend_inline")
    monkeypatch.setattr("IPython.display.display", shown.append)
    fig = noisy_grid(3, 2)
    png, _ = plots.save_figure(fig, tmp_path / "grid")
    assert len(shown) == 1 and not plt.fignum_exists(fig.number)  # the backend has nothing left to draw again
    with Image.open(png) as saved, Image.open(io.BytesIO(shown[0].data)) as screen:
        scale = plt.rcParams["figure.dpi"] / saved.info["dpi"][0]
        assert abs(screen.width - saved.width * scale) <= 1 and abs(screen.height - saved.height * scale) <= 1


def test_overlay_is_min_max_scaled_in_a_perceptually_uniform_map():
    fig, ax = plt.subplots()
    saliency = np.linspace(5.0, 7.0, 64).reshape(8, 8)
    shown = plots.overlay(ax, np.zeros((8, 8, 3), np.uint8), saliency)
    data = shown.get_array()
    assert data.min() == 0 and data.max() == 1  # min-max, not divided by the maximum
    assert shown.get_cmap().name == plots.SALIENCY_CMAP in {"viridis", "inferno", "magma", "cividis", "plasma"}
    flat = plots.overlay(ax, np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 3.0))
    assert np.all(flat.get_array() == 0)  # a constant map: no division by zero


def test_map_grid_has_one_colourbar_and_states_the_scaling():
    fig = noisy_grid(2, 3, size=16)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and plots.PANEL_SCALING in bars[0].get_ylabel()
    assert plots.PANEL_SCALING in fig._suptitle.get_text()


def test_difference_panels_draw_each_interval_on_its_own_readable_scale():
    rows = pd.DataFrame({"model": ["A", "B"] * 2, "measure": ["small"] * 2 + ["large"] * 2,
                         "difference": [0.0031, 0.0104, -0.02, 0.05], "ci_lo": [0.0030, 0.0095, -0.04, 0.01],
                         "ci_hi": [0.0033, 0.0120, 0.001, 0.09]})
    fig = plots.difference_panels(rows, "treated - plain", "effect")
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["small", "large"]
    for ax, (_, part) in zip(axes, rows.groupby("measure", sort=False)):
        (points, _caps, (bars,)) = ax.containers[0]
        assert np.allclose(points.get_xdata(), part.difference)
        ends = np.array([seg[:, 0] for seg in bars.get_segments()])
        assert np.allclose(ends, part[["ci_lo", "ci_hi"]].to_numpy())  # the interval itself, not its half-width
        assert any(np.allclose(line.get_xdata(), 0) for line in ax.lines)  # no difference, marked
        lo, hi = ax.get_xlim()
        assert sum(lo <= t <= hi for t in ax.get_xticks()) <= 5  # few ticks: small differences stay legible
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["A", "B"]  # the rows, shared by the panels


def test_heatmap_scale_is_fitted_to_the_data_and_printed():
    grid = pd.DataFrame([[0.80, 0.85], [0.90, np.nan]], index=["a", "b"], columns=["x", "y"])
    fig, ax = plt.subplots()
    plots.heatmap(ax, grid, "BC")
    mesh = ax.collections[0]
    assert mesh.norm.vmin == pytest.approx(0.80) and mesh.norm.vmax == pytest.approx(0.90)
    bar = [a for a in fig.axes if a is not ax][0]
    assert "0.800 to 0.900" in bar.get_ylabel()


def test_heatmap_draws_what_seaborns_heatmap_draws():
    """Same cells, values, text, text colours (by the cell's luminance) and orientation as seaborn's own heatmap."""
    import seaborn as sns

    grid = pd.DataFrame([[0.80, 0.85, 0.21], [0.90, np.nan, 0.5]], index=["a", "b"], columns=["x", "y", "z"])
    fig, (ours, theirs) = plt.subplots(1, 2)
    plots.heatmap(ours, grid, "BC", cbar=False)
    sns.heatmap(grid, annot=True, fmt=".3f", cmap="viridis", vmin=0.21, vmax=0.90, cbar=False, ax=theirs)
    drawn = lambda ax: [(t.get_position(), t.get_text(), matplotlib.colors.to_hex(t.get_color())) for t in ax.texts]  # noqa: E731
    assert drawn(ours) == drawn(theirs) and len(drawn(ours)) == 5  # the missing cell stays blank
    assert {matplotlib.colors.to_hex(t.get_color()) for t in ours.texts} == {"#262626", "#ffffff"}  # both kinds
    np.testing.assert_array_equal(ours.collections[0].get_array(), theirs.collections[0].get_array())
    assert (ours.get_xlim(), ours.get_ylim()) == (theirs.get_xlim(), theirs.get_ylim())  # row "a" on top
    labels = lambda ticks: [t.get_text() for t in ticks]  # noqa: E731
    assert labels(ours.get_yticklabels()) == ["a", "b"] and labels(ours.get_xticklabels()) == ["x", "y", "z"]
    np.testing.assert_allclose(ours.get_xticks(), theirs.get_xticks())


def test_heatmap_turns_crowded_column_labels_upright():
    """Labels too wide to stand side by side are turned 90 degrees; short ones stay level (with any font size rc)."""
    with matplotlib.rc_context({"xtick.labelsize": "medium"}):
        fig, (narrow, wide) = plt.subplots(1, 2, figsize=(6, 3))
        long_names = pd.DataFrame(np.eye(6), columns=[f"a_long_layer_name_{i}" for i in range(6)])
        plots.heatmap(narrow, long_names, "x", cbar=False)
        plots.heatmap(wide, pd.DataFrame(np.eye(2), columns=["a", "b"]), "x", cbar=False)
    assert {t.get_rotation() for t in narrow.get_xticklabels()} == {90.0}
    assert {t.get_rotation() for t in wide.get_xticklabels()} == {0.0}


def test_transfer_heatmaps_fit_each_measure():
    rates = pd.DataFrame([[0.96, 0.99], [0.98, 0.97], [0.995, 0.999]], index=["A", "B", "random"], columns=["A", "B"])
    drops = rates * 0.1
    fig = plots.transfer_heatmaps({"recognition rate": rates, "cosine drop": drops}, ["A", "B"], "t")
    meshes = [ax.collections[0] for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [(m.norm.vmin, m.norm.vmax) for m in meshes] == [pytest.approx((0.96, 0.999)),
                                                            pytest.approx((0.096, 0.0999))]


def test_floor_difference_plot_draws_each_models_interval():
    rows = []
    for model, shift in [("SFACE", 0.0), ("DLIB", -0.1)]:
        for tech, diff in [("leam", -0.2), ("gradcam", 0.01)]:
            rows.append({"dataset": "LFW", "model": model, "technique": tech, "measure": "recognition_rate",
                         "difference": diff + shift, "ci_lo": diff + shift - 0.05, "ci_hi": diff + shift + 0.04})
    d = pd.DataFrame(rows)
    fig = plots.floor_difference_plot(d, {"leam": "LEAM", "gradcam": "Grad-CAM"}, "t")
    ax = fig.axes[0]
    xs = sorted(x for line in ax.lines if line.get_marker() == "o" for x in line.get_xdata())
    assert xs == pytest.approx(sorted(d.difference))
    assert ax.get_xlim()[0] < -0.35 and ax.get_xlim()[1] > 0.05  # the intervals and the floor at 0 are in view
    assert [t.get_text() for t in ax.get_yticklabels()] == ["Grad-CAM", "LEAM"]


def test_sweep_lines_carry_intervals():
    d = pd.DataFrame({"technique": ["gradcam"] * 3, "model": ["DLIB"] * 3, "x": ["a", "b", "c"],
                      "recognition_rate": [1.0, 0.9, 0.5], "rr_ci_lo": [0.9, 0.7, 0.3], "rr_ci_hi": [1.0, 0.95, 0.6],
                      "mean_drop": [0.01, 0.02, 0.05], "ci_lo": [0.0, 0.01, 0.04], "ci_hi": [0.02, 0.04, 0.07],
                      "n_images": [6, 6, 6]})
    fig = plots.sweep_lines(d, "model", {"gradcam": "Grad-CAM"}, "t")
    for ax, (lo, hi) in zip(fig.axes[:2], [("rr_ci_lo", "rr_ci_hi"), ("ci_lo", "ci_hi")]):
        bars = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
        segments = bars[0].get_segments()
        assert [s[:, 1].min() for s in segments] == pytest.approx(d[lo])
        assert [s[:, 1].max() for s in segments] == pytest.approx(d[hi])
    assert plots.sweep_lines(d.iloc[:0], "model", {}, "t") is None


def test_error_bars_clip_rounding_and_leave_missing_intervals_without_a_bar():
    value, lo, hi = pd.Series([0.5, 0.5, 0.5]), pd.Series([0.4, 0.5 + 1e-12, np.nan]), pd.Series([0.7, 0.6, np.nan])
    bars = plots._error_bars(value, lo, hi)
    assert bars.shape == (2, 3)
    np.testing.assert_allclose(bars[:, :2], [[0.1, 0.0], [0.2, 0.1]])
    assert np.isnan(bars[:, 2]).all()
    fig, ax = plt.subplots()
    caps = ax.errorbar([1, 2, 3], value, yerr=bars, fmt="o", capsize=3)[1]
    assert np.isnan(caps[0].get_ydata()[2])  # no cap drawn for the missing interval
    plt.close(fig)


def test_the_paper_style_is_seaborns_theme_written_out():
    """PAPER_STYLE against seaborn's own set_theme (in a fresh process: seaborn changes the rcParams it sets)."""
    theme = run_json("""
import json, matplotlib as mpl, matplotlib.colors as mc
before = dict(mpl.rcParams)
import seaborn as sns
sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
from facexai import plots
out = {}
for key in set(plots.PAPER_STYLE) | {k for k in mpl.rcParams if mpl.rcParams[k] != before[k]}:
    value = mpl.rcParams[key]
    out[key] = ([mc.to_hex(c) for c in value.by_key()["color"]] if key == "axes.prop_cycle"
                else str(value) if key == "lines.solid_capstyle" else value)
print(json.dumps(out))
""")
    theme.pop("image.cmap")  # seaborn's 'rocket': left out on purpose (PAPER_STYLE's comment)
    assert set(theme) == set(plots.PAPER_STYLE)  # nothing seaborn sets is missing, nothing extra
    for key, expected in theme.items():
        ours = plots.PAPER_STYLE[key]
        if key == "axes.prop_cycle":
            ours = ours.by_key()["color"]
        elif key == "lines.solid_capstyle":
            expected = expected.split(".")[-1].lower() if "." in expected else expected
        if isinstance(expected, float):
            assert ours == pytest.approx(expected), key
        else:
            assert ours == expected, key


def test_importing_plots_leaves_seaborn_unloaded():
    loaded = run_json("import json, sys\nfrom facexai import plots\nplots.use_style()\n"
                      "print(json.dumps({'seaborn': 'seaborn' in sys.modules, 'scipy.stats': 'scipy.stats' in sys.modules}))")
    assert loaded == {"seaborn": False, "scipy.stats": False}


def genuine_impostor(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame([(m, pair, v) for m in ["A", "B"] for pair, mu in [("genuine", 0.7), ("impostor", 0.1)]
                         for v in rng.normal(mu, 0.1, 40)], columns=["model", "pair", "cosine"])


def test_split_violin_puts_each_level_on_its_side_with_its_quartiles():
    df = genuine_impostor()
    fig, ax = plt.subplots()
    plots.split_violin(ax, df, x="model", y="cosine", hue="pair")
    bodies = [c for c in ax.collections if isinstance(c, matplotlib.collections.PolyCollection)]
    assert len(bodies) == 4  # two models x two levels
    for body, (level, model) in zip(bodies, [(p, m) for p in ("genuine", "impostor") for m in (0, 1)]):
        xs, ys = body.get_paths()[0].vertices.T
        values = df[(df.model == "AB"[model]) & (df.pair == level)].cosine
        assert (xs <= model + 1e-9).all() if level == "genuine" else (xs >= model - 1e-9).all()
        assert ys.min() == pytest.approx(values.min()) and ys.max() == pytest.approx(values.max())  # cut at the data
    quantile_lines = [c for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)]
    heights = sorted(seg[0, 1] for lines in quantile_lines for seg in lines.get_segments())
    expected = np.concatenate([np.quantile(g.cosine, [0.25, 0.5, 0.75]) for _, g in df.groupby(["pair", "model"])])
    assert heights == pytest.approx(sorted(expected))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["genuine", "impostor"]


def test_split_violin_draws_a_constant_half_as_a_line_and_needs_two_levels():
    df = genuine_impostor()
    df.loc[(df.model == "B") & (df.pair == "impostor"), "cosine"] = 0.2  # no spread: no density to estimate
    fig, ax = plt.subplots()
    plots.split_violin(ax, df, x="model", y="cosine", hue="pair")
    assert sum(len(c.get_paths()) for c in ax.collections if isinstance(c, matplotlib.collections.PolyCollection)) == 3
    flat = [seg for c in ax.collections if isinstance(c, matplotlib.collections.LineCollection)
            for seg in c.get_segments() if np.allclose(seg[:, 1], 0.2) and seg[:, 0].min() >= 1 - 1e-9]
    assert flat, "the constant half is drawn at its value, on its side"
    with pytest.raises(ValueError, match="two 'pair' levels"):
        plots.split_violin(ax, df, x="model", y="cosine", hue="pair", hue_order=["genuine"])


@pytest.mark.parametrize("bbox", ["tight", "standard"])
def test_the_png_is_the_drawn_figure_at_its_dpi(tmp_path, bbox):
    """The raster read from Agg's buffer has the size Agg drew and the figure's pixels (a red patch where drawn)."""
    with matplotlib.rc_context({"savefig.bbox": bbox, "savefig.dpi": 100}):
        fig, ax = plt.subplots(figsize=(3.1, 2.3))
        ax.add_patch(plt.Rectangle((0, 0), 1, 1, color="red", transform=ax.transAxes))
        ax.set_axis_off()
        png, _ = plots.save_figure(fig, tmp_path / "figure")
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"))
    if bbox == "standard":
        assert pixels.shape[:2] == (230, 310)
    else:
        assert pixels.shape[0] < 230 and pixels.shape[1] < 310  # the white margin is cut
    centre = pixels[pixels.shape[0] // 2, pixels.shape[1] // 2]
    assert tuple(centre) == (255, 0, 0)
