# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: facexai (venv)
#     language: python
#     name: facexai
# ---

# %% [markdown]
# # 02 · Face parsing: a region label for every pixel of every aligned crop
#
# The region statistics (notebook 04) need to know which facial region each pixel of a crop shows.
# We parse every aligned crop into CelebAMask-HQ classes (MediaPipe FaceMesh polygons by default),
# report the faces not found, show the polygons and parsed faces, and measure how much the parser
# choice matters.

# %% tags=["parameters"]
profile = "quick"
data_root = ""
pairs = ""
models = ""
device = "cpu"
cache_root = ""
scheduler = ""  # where cached shards run: "" in-process, local:N (Dask workers here), tcp://host:8786
seed = 0
run_name = ""
n_identities = None  # people selected; None: the profile's (./run_all.sh --n-identities)
min_images = None  # only people with >= this many images; None: the profile's (--min-images)
figures_dir = ""  # the run's figures folder; empty: figures/<run_name> (--figures-dir)
parser = "mediapipe"  # mediapipe | dlib | bisenet (needs 79999_iter.pth in the user weights folder)
compare_with = "dlib"  # second parser for the sensitivity table (mediapipe | dlib); "" skips it
n_examples = 6  # faces per geometry in the montage

# %% [markdown]
# ## Parsers and conventions
#
# The LEAM work parsed faces with a BiSeNet trained on CelebAMask-HQ; its weights (`79999_iter.pth`)
# are not obtainable on this project's machine, so the default parser turns **MediaPipe FaceMesh
# landmarks** (478 points) into region polygons; dlib's 68-point landmarks are the alternative, and
# BiSeNet runs when a user supplies its weights.
#
# - Every selected image is parsed in **every crop geometry the run's models use** (labels must lie
#   on the crop the model saw); results are cached per crop (`facexai.parsing.cached_parse`).
# - Faces the parser cannot find are **reported and excluded** from the region statistics.
# - Landmark polygons cover skin, brows, eyes, nose, lips and the inner mouth; background, hair,
#   ears and neck all stay `other`. The polygon definitions move the per-region percentages, so they
#   are shown below, and the two landmark parsers are compared (sensitivity table).
# - **Left and right are the subject's own sides**: `left_eye` is the person's own left eye, which an
#   unmirrored photo shows on the image's right (the reading of CelebAMask-HQ's `l_eye` documented
#   in `facexai.parsing`; tests/test_parsing.py checks it on real crops against MTCNN's eye points).

# %%
from pathlib import Path

import numpy as np
from IPython.display import Markdown, display
from matplotlib.patches import Patch, Polygon

from facexai import feasibility, parsing, plots, profiles, regions, study
from facexai.models.registry import weights_dir
from facexai.parsing_bisenet import BISENET_WEIGHTS

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, scheduler=scheduler, seed=seed, run_name=run_name,
                       n_identities=n_identities, min_images=min_images, figures_dir=figures_dir)
st = study.load(cfg)
feasibility.check("02_parsing", st.images, cfg)
geometries = study.geometries_for(cfg.models)
if parser not in regions.PARSERS:
    raise ValueError(f"unknown parser {parser!r}; valid: {list(regions.PARSERS)}")
bisenet_file = weights_dir() / BISENET_WEIGHTS.filename
print(f"{len(st.identities)} individuals, {len(st.images)} images; geometries {geometries}; parser {parser}")
print(f"BiSeNet weights {bisenet_file}: " + ("present, parser 'bisenet' can be used" if bisenet_file.is_file()
      else f"ABSENT: the LEAM work's CelebAMask-HQ parser cannot run here (obtain it from {BISENET_WEIGHTS.obtain})"))

# %% [markdown]
# ## Parse every crop, in every geometry
# A failed face keeps an all-`other` label map and `ok = False`; the table lists each one with the reason.

# %%
paths = st.images.path.tolist()
parsed = {g: regions.parse_images(cfg, paths, g, parser) for g in geometries}
counts, failures = regions.parse_report(parsed, st.images)
plots.save_table(counts, cfg.out("02_parsing", "parse_counts"))
plots.save_table(failures, cfg.out("02_parsing", "parse_failures"))
display(counts)
failures

# %% [markdown]
# ## The region polygons
# Landmark indices of each region (`facexai.parsing.REGIONS`), painted in this order so every pixel
# gets exactly one class (later regions on top). dlib's brows and forehead use derived points
# 68-97 (brow points moved up and down; see `facexai.parsing`).

# %%
polygons = regions.polygon_table()
plots.save_table(polygons, cfg.out("02_parsing", "polygon_definitions"))
polygons

# %%
landmark_parsers = list(parsing.METHODS)
g0 = geometries[0]
crops0, keys0 = study.crops(cfg, paths[:1], g0)
fig, axes = plots.plt.subplots(1, len(landmark_parsers), figsize=(4.2 * len(landmark_parsers), 4.4), squeeze=False)
for ax, method in zip(axes[0], landmark_parsers):
    res = regions.parse_crops(crops0, keys0, method, cfg.cache_root, progress=False)
    ax.imshow(crops0[0])
    ax.set_axis_off()
    ax.set(xlim=(-0.5, crops0.shape[2] - 0.5), ylim=(crops0.shape[1] - 0.5, -0.5))  # polygons may leave the crop
    if not res.ok[0]:
        ax.set_title(f"{method}: face not found")
        continue
    for name, poly in parsing.region_polygons(res.landmarks[0], method).items():
        colour = np.array(parsing.CLASSES[parsing.CLASS_IDS[name]].color) / 255
        ax.add_patch(Polygon(poly, closed=True, fill=True, facecolor=(*colour, 0.25), edgecolor=colour, lw=1.2))
    ax.scatter(*res.landmarks[0].T, s=1.5, c="white", alpha=0.7)
    ax.set_title(f"{method} ({parsing.N_LANDMARKS[method]} landmarks)")
handles = [Patch(facecolor=np.array(c.color) / 255, label=c.name) for c in parsing.CLASSES[1:]]
fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8, frameon=False)
fig.suptitle(f"region polygons on {Path(paths[0]).name} ({g0} crop)")
fig.tight_layout(rect=(0, 0.1, 1, 1))
plots.save_figure(fig, cfg.out("02_parsing", "polygons"))

# %% [markdown]
# ## Parsed faces
# Per geometry: crops (top) and their label maps (bottom) for individuals drawn from the seed.

# %%
rng = np.random.default_rng(cfg.seed)
shown = sorted(rng.choice(len(paths), size=min(n_examples, len(paths)), replace=False))
for g, res in parsed.items():
    crops, _ = study.crops(cfg, [paths[i] for i in shown], g)
    titles = [st.images.identity[i].replace("_", " ") for i in shown] + [
        "not found" if not res.ok[i] else "" for i in shown]
    fig = plots.image_grid([*crops, *parsing.colorize(res.labels[shown])], titles, ncols=len(shown))
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=7, frameon=False, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle(f"{parser} parsing, {g} crops", y=1.02)
    plots.save_figure(fig, cfg.out("02_parsing", f"montage_{g}"))

# %% [markdown]
# ## Each region's share of the image area
# Mean over the parsed images, per geometry (the tight `arcface112` crop shows more face and less
# background than the others). Tidy table `area_shares.csv`: geometry, region, area_share, n_images.

# %%
area = regions.area_table(parsed)
plots.save_table(area, cfg.out("02_parsing", "area_shares"))
area.pivot(index="region", columns="geometry", values="area_share").loc[parsing.CLASS_NAMES]

# %% [markdown]
# ## Sensitivity to the parser: MediaPipe vs dlib polygons
# Per class, the pooled intersection over union of the two parsers' label maps over the images both
# parsed, the mean per-image IoU, and each parser's mean area share. Tidy table `parser_agreement.csv`.

# %%
if compare_with:
    agreement = regions.parser_agreement(cfg, paths, parsed, parser, compare_with)
    plots.save_table(agreement, cfg.out("02_parsing", "parser_agreement"))
    pivot = agreement.pivot(index="class", columns="geometry", values="iou").loc[parsing.CLASS_NAMES]
    display(pivot.round(3))
    face = agreement[agreement["class"] != "other"].groupby("class").iou.mean().sort_values()
    display(Markdown(f"Written from the table: the parsers agree least on **{face.index[0]}** (mean IoU over "
                     f"geometries {face.iloc[0]:.2f}) and **{face.index[1]}** ({face.iloc[1]:.2f}), most on "
                     f"**{face.index[-1]}** ({face.iloc[-1]:.2f}); region shares in notebook 04 inherit this "
                     "uncertainty, most for the thin regions."))
