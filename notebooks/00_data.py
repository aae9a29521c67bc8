# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: facexai (venv)
#     language: python
#     name: facexai
# ---

# %% tags=["parameters"]
profile = "quick"  # smoke | quick | paper (lib/facexai/profiles.toml)
data_root = ""  # folder-per-identity images (LFW layout); empty: the profile's
pairs = ""  # LFW View 2 pairs.txt; empty: the profile's (or pairs built from the seed)
models = ""  # comma-separated model names; empty: the profile's
device = "cpu"
cache_root = ""
seed = 0
run_name = ""

# %% [markdown]
# # 00 · Data: individuals, pairs and aligned faces
#
# Every later notebook works on the same inputs, prepared here once:
#
# 1. the image set, loaded folder by folder (one folder per person, LFW layout); unreadable files
#    are skipped and counted;
# 2. **N individuals with at least k images**, drawn from the seed (the works use 1000 from LFW);
# 3. **verification pairs**: the official LFW View 2 list (10 folds of 300 genuine + 300 impostor
#    pairs) when given, otherwise balanced pairs in folds of disjoint people, built from the seed;
# 4. **alignment** with facenet-pytorch's MTCNN (five landmarks) into each geometry the models need:
#    `arcface112` (similarity warp onto the ArcFace template), `facenet160` (MTCNN box crop, margin
#    32 source pixels, as FaceNet was trained) and `dlib150` (dlib-style face chip). Images where no
#    face is found are listed and excluded from everything that follows.

# %%
import pandas as pd
from IPython.display import Markdown, display

from facexai import align, data, plots, profiles, study

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, seed=seed, run_name=run_name)
print(cfg)

# %% [markdown]
# ## Load, select, pair, align

# %%
st, dataset, aligned = study.prepare(cfg)
summary = pd.Series(st.summary, name="value").to_frame()
plots.save_table(summary.reset_index(names="item"), cfg.out("00_data", "summary"))
summary

# %% [markdown]
# ## Skipped files and images without a face
# Nothing is dropped silently: files that do not decode, and images where MTCNN found no face,
# are listed here (and in `alignment_failures.csv`).

# %%
print(f"skipped (not an image / corrupt): {len(dataset.skipped)}")
for path, why in dataset.skipped[:20]:
    print(f"  {path}: {why}")
print(f"no face found / unreadable at alignment: {len(st.failures)}")
display(st.failures.head(50))
plots.save_table(st.failures, cfg.out("00_data", "alignment_failures"))

# %% [markdown]
# ## The selected individuals

# %%
counts = st.images.groupby("identity").size().rename("images").reset_index()
fig, ax = plots.plt.subplots(figsize=(5, 3))
plots.sns.histplot(counts["images"], discrete=True, ax=ax)
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
display(Markdown(f"Artifacts for later notebooks: `{cfg.artifacts_dir}`; figures and tables: "
                 f"`{cfg.figures_dir / '00_data'}`"))
