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
# # 04 · Region statistics: where do the most relevant pixels lie?
#
# Which face regions hold the critical (top q%) pixels of each individual's LEAM map, per model and
# layer; how much more than their area alone explains; whether attention is spread over several
# facial fragments or concentrated; and how the nose share compares with the LEAM work's.

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
parser = "mediapipe"  # label maps of notebook 02: mediapipe | dlib | bisenet
q = 1.0  # critical region: top q% pixels of a map
label_source = "person"  # person | person_mode | image (see below)
spread_threshold = 0.10  # a face region "holds" attention when it has >= this share of the on-face critical pixels
n_boot = 2000  # bootstrap resamples for the 95% CIs

# %% [markdown]
# ## Method
#
# For each model, each hooked layer and the overall map (mean over layers), we take every
# individual's LEAM **person map** (notebook 03's cached maps, its default settings), mark its
# **critical region** — the top *q*% pixels (q = 1, `facexai.explain.critical_mask`) — and count
# which face region (notebook 02's label maps, in the model's own crop geometry) each critical pixel
# falls in. Shares are averaged over individuals, with percentile-bootstrap 95% CIs over individuals.
#
# **Which label map meets a person map** (`label_source`, default `person`): a person map is the mean
# of the maps of several photos, so it has no label map of its own. We intersect its critical pixels
# with **each of the person's parsed images' label maps and average** the shares over those images,
# which is the same as intersecting with the per-pixel label frequencies. This keeps the person map's
# critical region as the object described (what the LEAM work reports) and, unlike a per-pixel
# majority vote, does not erase thin regions (eyes, brows, lips) that move a few pixels between photos.
# Options: `person_mode` (per-pixel majority label of the person's images) and `image` (each image
# map's own top q% against that image's labels, then averaged: a statement about image maps).
#
# - **Area share**: a region's share of the image area under the same label source; a map that
#   ignored the face would put that share of its critical pixels there.
# - **Enrichment** = critical share / area share (ratio of the means over individuals): > 1 means the
#   model looks at the region more than its size alone explains.
# - Faces the parser could not find (notebook 02) are left out of both the maps and the labels.

# %%
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from facexai import claims, feasibility, parsing, plots, profiles, regions, saliency, study
from facexai.models import load_model

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, scheduler=scheduler, seed=seed, run_name=run_name,
                       n_identities=n_identities, min_images=min_images, figures_dir=figures_dir)
st = study.load(cfg)
feasibility.check("04_region_statistics", st.images, cfg)
print(f"{len(st.identities)} individuals, {len(st.images)} images; models {cfg.models}; parser {parser}; "
      f"label source {label_source}: {regions.LABEL_SOURCES[label_source]}")

# %% [markdown]
# ## Region shares of every model, layer and the overall map

# %%
results, summaries, examples = {}, [], {}
example = st.identities[int(np.random.default_rng(cfg.seed).integers(len(st.identities)))]  # for the figure below
for name in cfg.models:
    model = load_model(name, cfg.device, cfg.cache_root)
    ms = saliency.image_maps(cfg, model, st.images)
    labels, ok = regions.label_maps(cfg, ms.images.path.tolist(), model.spec.geometry, parser)
    rs = results[name] = regions.person_region_shares(ms, labels, ok, q, label_source)
    summaries.append(regions.summarize_shares(rs, cfg.seed, n_boot))
    examples[name] = regions.critical_example(cfg, ms, labels, ok, example, model.spec.geometry, q)
    print(f"{name}: {len(rs.identities)} individuals ({int((~ok).sum())} images not parsed), maps {rs.maps}")
    del ms
summary = pd.concat(summaries, ignore_index=True)
plots.save_table(summary, cfg.out("04_region_statistics", "region_shares"))
summary[summary.layer == "overall"].pivot(index="region", columns="model", values="share").loc[regions.REGIONS]

# %% [markdown]
# `region_shares.csv` (tidy, read by the claims ledger): model, layer (`overall` or a layer name), region, share
# (mean over individuals of the share of the critical pixels in the region), ci_lo, ci_hi
# (bootstrap 95%), area_share, enrichment, n_individuals.
#
# ### What a critical region looks like
# One individual: the overall person map's top q% pixels (white) over the label map of one of their
# parsed images, in each model's geometry.

# %%
examples = {name: ex for name, ex in examples.items() if ex is not None}  # models where the example was parsed
fig, axes = plots.plt.subplots(1, len(examples), figsize=(3 * len(examples), 3.3), squeeze=False)
for ax, (name, (crop, lab, crit)) in zip(axes[0], examples.items()):
    shown = (0.5 * crop + 0.5 * parsing.colorize(lab)).astype(np.uint8)
    shown[crit] = 255
    ax.imshow(shown)
    ax.set_axis_off()
    ax.set_title(name)
fig.suptitle(f"{example.replace('_', ' ')}: top {q}% pixels of the overall person map (white) over the face regions")
fig.tight_layout()
plots.save_figure(fig, cfg.out("04_region_statistics", "critical_example"))

# %% [markdown]
# ## Overall map: share of the critical pixels per region
# Bars: mean share over individuals with 95% CIs; black ticks: the region's share of the image area.

# %%
overall = summary[summary.layer == "overall"]
names = list(results)
width = 0.8 / len(names)
x = np.arange(len(regions.REGIONS))
fig, ax = plots.plt.subplots(figsize=(10, 4))
for k, name in enumerate(names):
    g = overall[overall.model == name].set_index("region").loc[regions.REGIONS]
    pos = x + (k - (len(names) - 1) / 2) * width
    ax.bar(pos, g.share, width, yerr=[g.share - g.ci_lo, g.ci_hi - g.share], capsize=2, label=name)
    ax.scatter(pos, g.area_share, marker="_", s=60, color="black", zorder=3,
               label="area share" if k == 0 else None)
ax.set_xticks(x, regions.REGIONS, rotation=30, ha="right")
ax.set(ylabel=f"share of the top {q}% pixels", title="where the overall LEAM map's critical pixels lie")
ax.legend(fontsize=8, ncol=len(names) + 1)
fig.tight_layout()
plots.save_figure(fig, cfg.out("04_region_statistics", "overall_shares"))

# %%
fig, axes = plots.plt.subplots(1, 2, figsize=(12, 0.6 * len(names) + 2.2))
share = overall.pivot(index="model", columns="region", values="share").loc[names, regions.REGIONS]
enrich = overall.pivot(index="model", columns="region", values="enrichment").loc[names, regions.REGIONS]
plots.heatmap(axes[0], share, "share", fmt=".2f")
axes[0].set_title("share of critical pixels")
log_enrich = np.log2(enrich.clip(lower=2 ** -4).astype(float))
sns.heatmap(log_enrich, annot=enrich, fmt=".1f", cmap="RdBu_r", center=0, ax=axes[1],
            cbar_kws={"label": "log2 enrichment"})
axes[1].set_title("enrichment = share / area share (colour: log2)")
for ax in axes:
    ax.set(xlabel="", ylabel="")
    ax.tick_params(axis="x", rotation=40)
fig.tight_layout()
plots.save_figure(fig, cfg.out("04_region_statistics", "model_region_heatmap"))

# %% [markdown]
# ## Layer by layer
# Share of the critical pixels per region for each hooked layer (input to output) and the overall map.

# %%
tallest = max(len(r.maps) for r in results.values())
fig, axes = plots.plt.subplots(1, len(names), figsize=(4.6 * len(names), 0.32 * tallest + 2.2), squeeze=False)
grids = {name: summary[summary.model == name].pivot(index="layer", columns="region", values="share")
         .loc[results[name].maps, regions.REGIONS] for name in names}
for ax, (name, grid) in zip(axes[0], grids.items()):
    plots.heatmap(ax, grid, "share", fmt=".2f", annot=len(grid) <= 8, limits=plots.fitted_limits(*grids.values()),
                  annot_kws={"size": 6}, cbar=ax is axes[0, -1])
    ax.set(title=name, xlabel="", ylabel="")
    ax.tick_params(axis="x", rotation=60)
fig.suptitle(f"share of the top {q}% pixels per region, per layer")
fig.tight_layout()
plots.save_figure(fig, cfg.out("04_region_statistics", "layer_region_shares"))

# %% [markdown]
# ## Beside the LEAM work: the nose
# The work reports the nose holding 18.9-29.7% of the critical regions across its 9 models (its
# numbers live in `facexai.published`, nowhere else). Its parser was a CelebAMask-HQ BiSeNet,
# ours are landmark polygons (the nose IoU of MediaPipe vs dlib polygons is in notebook 02), and its
# models are not ours: read this as a comparison of orders of magnitude, not a replication test.
# `published_comparison.csv`: model, quantity, ours, ci_lo, ci_hi, published_lo, published_hi,
# within_published_range.

# %%
published = regions.published_nose_comparison(summary)
plots.save_table(published, cfg.out("04_region_statistics", "published_comparison"))
published

# %% [markdown]
# ## Spread or concentration?
# The LEAM work reads its maps as "still distributing attention across multiple facial fragments".
# Per individual, on the overall map's critical pixels that fall on the face (`other` set aside):
# the number of face regions holding >= 10% of them, the normalised entropy of their distribution
# over the 9 face regions (0 = one region, 1 = even) and the largest region's share; means over
# individuals with 95% CIs. `skin` is one large region (forehead, cheeks, chin, and the nose bridge
# outside the nose polygon), so "two regions" often means skin plus one feature.
# `spread.csv`: one row per model (model, n_individuals, threshold, on_face, n_regions, entropy,
# top_share with their `_ci_lo` / `_ci_hi`, share_with_2plus_regions, most_common_top_region).

# %%
spread = regions.summarize_spread(list(results.values()), spread_threshold, cfg.seed, n_boot)
plots.save_table(spread, cfg.out("04_region_statistics", "spread"))
spread

# %% [markdown]
# ### Reading
# Written from the numbers above (regenerated with them); the verdicts below are the claims ledger's
# (`facexai.claims`, the ledger notebook), applied to the tables just written.

# %%
lines = []
for r in spread.itertuples():
    nose = published.set_index("model").loc[r.model]
    lines.append(f"- **{r.model}**: on average {r.n_regions:.1f} face regions "
                 f"(95% CI {r.n_regions_ci_lo:.1f}-{r.n_regions_ci_hi:.1f}) hold >= {spread_threshold:.0%} of the on-face critical pixels; the largest "
                 f"(most often **{r.most_common_top_region}**) holds {r.top_share:.0%}; normalised entropy "
                 f"{r.entropy:.2f}; {r.on_face:.0%} of the critical pixels lie on the face. Nose share "
                 f"{nose.ours:.1%} (CI {nose.ci_lo:.1%}-{nose.ci_hi:.1%}), "
                 f"{'inside' if nose.within_published_range else 'outside'} the LEAM work's "
                 f"{nose.published_lo:.1%}-{nose.published_hi:.1%}.")
display(Markdown("\n".join(lines)))

# %%
display(Markdown(claims.verdict_line("nose_share", cfg.figures_dir, st.summary)))
display(Markdown(claims.verdict_line("attention_spread", cfg.figures_dir, st.summary)))
