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
# # 00 · Data: individuals, pairs and aligned faces
#
# Every later notebook works on the inputs prepared here once: N people with at least k aligned
# face images, drawn from a seed out of a folder-per-person image set (LFW layout), 10-fold
# verification pairs (the official LFW list or pairs built from the seed), and each image aligned
# with MTCNN into every crop geometry the models need. Nothing is dropped silently: unusable files,
# images without a plausible face and people left with too few aligned images are listed with the reason.

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper (lib/facexai/profiles.toml)
data_root = ""  # folder-per-identity images (LFW layout); empty: the profile's
pairs = ""  # LFW View 2 pairs.txt; empty: the profile's (or pairs built from the seed)
on_missing = ""  # pairs naming missing or unreadable images: "raise" or "skip"; empty: raise
models = ""  # comma-separated model names; empty: the profile's
device = "cpu"
cache_root = ""
scheduler = ""  # where cached shards run: "" in-process, local:N (Dask workers here), tcp://host:8786
seed = 0
run_name = ""
n_identities = None  # people selected; None: the profile's (./run_all.sh --n-identities)
min_images = None  # only people with >= this many images; None: the profile's (--min-images)
figures_dir = ""  # the run's figures folder; empty: figures/<run_name> (--figures-dir)

# %% [markdown]
# ## The steps
#
# 1. the image set, loaded folder by folder (one folder per person); files that do not decode or
#    are too large, names that are not UTF-8, empty folders and nested folders are skipped and listed;
# 2. **N individuals with at least k aligned images**, drawn from the seed (the works use 1000 from
#    LFW); people left with fewer than k aligned images are dropped, listed, and replaced by further draws;
# 3. **verification pairs**: the official LFW View 2 list (10 folds of 300 genuine + 300 impostor
#    pairs) when given, otherwise balanced pairs in folds of disjoint people, built from the seed;
# 4. **alignment** with facenet-pytorch's MTCNN (five landmarks) into each geometry the models need:
#    `arcface112` (similarity warp onto the ArcFace template), `facenet160` (MTCNN box crop, margin
#    32 source pixels, as FaceNet was trained) and `dlib150` (dlib-style face chip). Images where no
#    face is found, whose face is not upright (its box, scored by MTCNN turned 0/90/180/270 degrees,
#    looks most like a face turned) or whose landmarks are implausible (eye line rolled beyond 60
#    degrees, mouth above the eyes) are listed and excluded from everything that follows: such
#    photos are rejected, not rotated. Images larger than 1600 x 1600 pixels are detected on a
#    downscaled copy. When an image holds several faces, the one kept (largest and most central)
#    is recorded.

# %%
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from facexai import data, feasibility, plots, profiles, study

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, on_missing=on_missing, models=models,
                       device=device, cache_root=cache_root, scheduler=scheduler, seed=seed, run_name=run_name,
                       n_identities=n_identities, min_images=min_images, figures_dir=figures_dir)
print(cfg)

# %% [markdown]
# ## Load, select, pair, align

# %%
st, dataset, aligned = study.prepare(cfg)
tables = study.report_tables(st, dataset)
plots.save_table(tables["summary"], cfg.out("00_data", "summary"))
tables["summary"]

# %% [markdown]
# ## What was left out, and why
# Nothing is dropped silently: entries of the data folder that were not read, images without a
# (plausible) face, and people left with fewer than k aligned images, each with its reason.
# Paths are relative to the data folder.

# %%
for name in ("skipped", "alignment_failures", "dropped_identities"):
    print(f"{name}: {len(tables[name])}")
    display(tables[name].head(30))
    plots.save_table(tables[name], cfg.out("00_data", name))
too_few = feasibility.not_eligible(dataset, cfg.min_images)
print(f"people with fewer than min_images = {cfg.min_images} images in the folder (never drawn): {len(too_few)}")
display(too_few.head(30))
print(f"selected {st.images.identity.nunique()} of the {cfg.n_identities} people asked for "
      f"(each with >= {cfg.min_images} aligned images)")
feasibility.check("00_data", st.images, cfg)

# %% [markdown]
# ## Images with several faces
# The face kept is the largest box nearest the image centre; `face_kept` is its index among
# MTCNN's detections (largest box first), `face_box` its box in source pixels.

# %%
plots.save_table(tables["several_faces"], cfg.out("00_data", "several_faces"))
tables["several_faces"].head(20)

# %% [markdown]
# ## The selected individuals

# %%
counts = st.images.groupby("identity").size().rename("images").reset_index()
fig, ax = plots.plt.subplots(figsize=(5, 3))
sns.histplot(counts["images"], discrete=True, ax=ax)
ax.set(xlabel="aligned images per individual", ylabel="individuals",
       title=f"{len(counts)} individuals, {counts['images'].sum()} images")
plots.save_figure(fig, cfg.out("00_data", "images_per_individual"))

# %% [markdown]
# ## Pairs per fold

# %%
pair_counts = st.pairs.groupby(["fold", "same"]).size().unstack(fill_value=0)
pair_counts.columns = ["impostor" if not c else "genuine" for c in pair_counts.columns]
plots.save_table(pair_counts.reset_index(), cfg.out("00_data", "pairs_per_fold"))
pair_counts

# %% [markdown]
# ## What the aligned crops look like
# One original image and its crop in every geometry, for a few individuals.

# %%
examples = st.images.groupby("identity").head(1).head(6).path.tolist()
index = {str(p): i for i, p in enumerate(aligned.paths)}
tiles, titles = [], []
for path in examples:
    tiles.append(data.load_image(path))
    titles.append(path.split("/")[-1][:-9])
    for geometry in aligned.crops:
        tiles.append(aligned.crops[geometry][index[path]])
        titles.append(geometry)
fig = plots.image_grid(tiles, titles, ncols=1 + len(aligned.crops), size=1.7)
plots.save_figure(fig, cfg.out("00_data", "aligned_examples"))

# %% [markdown]
# ## Other data sets
# CALFW and CPLFW load from their public release layout when a folder is supplied
# (`FACEXAI_CALFW`, `FACEXAI_CPLFW`); later notebooks mark their columns "not available" otherwise.

# %%
import os

for kind in ("calfw", "cplfw"):
    root = os.environ.get(f"FACEXAI_{kind.upper()}", "")
    try:
        ds, pl = data.load_pair_list_dataset(root or cfg.cache_root / kind, kind)
        print(f"{kind.upper()}: {ds.n_images} images, {len(pl)} pairs")
    except data.DatasetMissing as err:
        print(f"{kind.upper()}: not available ({err})")

# %%
display(Markdown(f"Artifacts for later notebooks: `{study.shown_path(cfg.artifacts_dir)}`; figures and tables: "
                 f"`{study.shown_path(cfg.figures_dir / '00_data')}`"))
