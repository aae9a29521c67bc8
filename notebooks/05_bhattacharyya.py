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
profile = "quick"
data_root = ""
pairs = ""
models = ""
device = "cpu"
cache_root = ""
seed = 0
run_name = ""
max_same_per_person = 0  # cap on same-person image pairs per individual (0: every pair)
common_geometry = "arcface112"  # geometry all models' person maps are carried into for the cross-model comparison
q = 1.0  # critical region (top q% pixels) for the sensitivity section
n_boot = 2000  # bootstrap resamples for the 95% CIs

# %% [markdown]
# # 05 · Bhattacharyya coefficient: are the maps personal?
#
# The Bhattacharyya coefficient of two maps normalised to sum 1 is **BC(P, Q) = Σ √(P·Q)**: 1 for
# identical distributions, 0 for disjoint supports (`facexai.metrics`). With notebook 03's cached
# per-image LEAM maps (its default settings):
#
# - **same person**: BC between the maps of two different images of one individual (every such pair,
#   or at most `max_same_per_person` drawn from the seed);
# - **different people**: BC between the maps of images of two individuals: as many image pairs as
#   there are same-person pairs, drawn uniformly (without repeats) among all pairs whose identities
#   differ, from the seed (`facexai.regions.sample_pairs`);
# - per model, for every hooked layer and the overall map (mean over layers). Both images of a pair
#   are crops in the model's own geometry, so pixels correspond to the same place on the aligned face.
#
# The table tests same > different with a one-sided Mann-Whitney U test and gives the rank-biserial
# correlation (= Cliff's delta) and Cohen's d. Pairs share images and people, so they are not
# independent: the bootstrap CIs (over pairs) and p-values are optimistic; the effect sizes are the
# numbers to read.

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from facexai import align, metrics, plots, profiles, regions, saliency, study
from facexai.explain import critical_mask
from facexai.models import load_model

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, seed=seed, run_name=run_name)
st = study.load(cfg)
if common_geometry not in align.GEOMETRIES:
    raise ValueError(f"unknown common_geometry {common_geometry!r}; valid: {sorted(align.GEOMETRIES)}")
print(f"{len(st.identities)} individuals, {len(st.images)} images; models {cfg.models}")

# %% [markdown]
# ## Same person vs different people, per model and layer

# %%
means, tests, values, layers, person_maps, critical = [], [], [], {}, {}, []
for name in cfg.models:
    model = load_model(name, cfg.device, cfg.cache_root)
    ms = saliency.image_maps(cfg, model, st.images)
    same, different = regions.sample_pairs(ms.images.identity, cfg.seed, max_same_per_person or None)
    pairs_all = np.vstack([same, different])
    bc = np.hstack([metrics.pair_bhattacharyya(ms.maps, pairs_all),
                    metrics.pair_bhattacharyya(ms.overall(ms.maps)[:, None], pairs_all)])  # layers, then overall
    layers[name] = [*ms.layers, "overall"]
    m, t = regions.summarize_bc(name, layers[name], bc[:len(same)], bc[len(same):], cfg.seed, n_boot)
    means.append(m)
    tests.append(t)
    values.append(pd.DataFrame({"model": name, "group": ["same"] * len(same) + ["different"] * len(different),
                                "bc": bc[:, -1]}))
    person_maps[name] = regions.common_person_maps(cfg, ms, model.spec.geometry, common_geometry)
    top = critical_mask(ms.overall(ms.maps), q).astype(np.float32)[:, None]  # sensitivity section below
    bc_top = metrics.pair_bhattacharyya(top, pairs_all)
    critical.append(regions.summarize_bc(name, ["overall"], bc_top[:len(same)], bc_top[len(same):], cfg.seed, n_boot))
    print(f"{name}: {len(same)} same-person and {len(different)} different-people pairs, {len(ms.layers)} layers")
    del ms
means, tests, values = (pd.concat(x, ignore_index=True) for x in (means, tests, values))
plots.save_table(means, cfg.out("05_bhattacharyya", "bc_same_different"))
plots.save_table(tests, cfg.out("05_bhattacharyya", "bc_tests"))
overall = means[means.layer == "overall"].merge(tests[tests.layer == "overall"], on=["model", "layer"])
overall

# %% [markdown]
# `bc_same_different.csv` (tidy, read by 09): model, layer (`overall` or a layer name), group
# (`same` / `different`), mean, ci_lo, ci_hi (bootstrap 95% over pairs), n.
# `bc_tests.csv`: model, layer, U, p_value (one-sided, same > different), rank_biserial, cohens_d.

# %%
fig, ax = plots.plt.subplots(figsize=(2.2 * len(cfg.models) + 2, 4))
plots.sns.violinplot(values, x="model", y="bc", hue="group", hue_order=["same", "different"], split=True,
                     inner="quart", cut=0, density_norm="width", ax=ax)
ax.set(ylabel="Bhattacharyya coefficient (overall map)", xlabel="",
       title="overall LEAM maps: two images of one person vs of two people")
plots.save_figure(fig, cfg.out("05_bhattacharyya", "bc_same_different"))

# %%
fig, axes = plots.plt.subplots(1, len(cfg.models), figsize=(4 * len(cfg.models), 3.6), squeeze=False, sharey=True)
for ax, name in zip(axes[0], cfg.models):
    for group, colour in (("same", "C0"), ("different", "C1")):
        g = means[(means.model == name) & (means.group == group)].set_index("layer").loc[layers[name]]
        x = np.arange(len(g))
        ax.plot(x, g["mean"], marker="o", ms=3, color=colour, label=group)
        ax.fill_between(x, g.ci_lo, g.ci_hi, color=colour, alpha=0.25)
    ax.set_xticks(np.arange(len(layers[name])), layers[name], rotation=70, fontsize=7)
    ax.set(title=name, ylabel="mean BC" if ax is axes[0, 0] else "")
axes[0, 0].legend()
fig.suptitle("mean BC per layer (input to output, then overall), 95% CI")
fig.tight_layout()
plots.save_figure(fig, cfg.out("05_bhattacharyya", "bc_per_layer"))

# %% [markdown]
# ## Beside the LEAM work
# The work reports BC 0.32-0.57 for the same person and 0.04-0.13 for different people (ranges over
# its models; typed once in `facexai.published`). `bc_published_comparison.csv`: model, group, ours,
# ci_lo, ci_hi, published_lo, published_hi, within_published_range.

# %%
published = regions.published_bc_comparison(means)
plots.save_table(published, cfg.out("05_bhattacharyya", "bc_published_comparison"))
published

# %% [markdown]
# ### Reading
# Written from the numbers above (regenerated with them).

# %%
gap = regions.PUBLISHED["bc_same"][0] - regions.PUBLISHED["bc_different"][1]  # the work's smallest possible gap
lines = []
for r in overall.pivot(index="model", columns="group", values="mean").join(
        tests[tests.layer == "overall"].set_index("model")).itertuples():
    lines.append(f"- **{r.Index}**: same person {r.same:.3f} vs different people {r.different:.3f} "
                 f"(difference {r.same - r.different:+.3f}; rank-biserial {r.rank_biserial:.2f}, Cohen's d "
                 f"{r.cohens_d:.2f}, one-sided Mann-Whitney p = {r.p_value:.2g}). The LEAM work's ranges imply a gap "
                 f"of at least {gap:.2f}; ours is {'as large' if r.same - r.different >= gap else 'smaller'}, and our "
                 f"different-people BC is "
                 f"{'above' if r.different > regions.PUBLISHED['bc_different'][1] else 'within or below'} the work's range.")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ### Sensitivity: BC of the critical regions instead of the whole maps
# The same pairs, but each overall map replaced by its top q% pixels as a uniform distribution; the
# BC of two such masks of equal size is the fraction of critical pixels they share. This shows how
# much of the BC above comes from the broad, smooth body of the maps that every face shares.
# `bc_critical_same_different.csv` / `bc_critical_tests.csv`: the columns of the tables above (layer = overall).

# %%
crit_means = pd.concat([c[0] for c in critical], ignore_index=True)
crit_tests = pd.concat([c[1] for c in critical], ignore_index=True)
plots.save_table(crit_means, cfg.out("05_bhattacharyya", "bc_critical_same_different"))
plots.save_table(crit_tests, cfg.out("05_bhattacharyya", "bc_critical_tests"))
crit_table = crit_means.pivot(index="model", columns="group", values="mean").join(crit_tests.set_index("model"))
display(crit_table)
display(Markdown("\n".join(
    f"- **{r.Index}**: top {q}% regions shared {r.same:.3f} (same person) vs {r.different:.3f} (different people); "
    f"LEAM work: {regions.PUBLISHED['bc_same'][0]}-{regions.PUBLISHED['bc_same'][1]} vs "
    f"{regions.PUBLISHED['bc_different'][0]}-{regions.PUBLISHED['bc_different'][1]}."
    for r in crit_table.itertuples())))

# %% [markdown]
# ## Across architectures: do the models look at the same places?
# The models see different crops (`arcface112`, `facenet160`, `dlib150`). Each image's overall map is
# carried into the common geometry through that image's own alignment matrices
# (`facexai.occlusion.warp_mask_to`: model geometry -> source photo -> common geometry), normalised,
# and averaged over the person's images, so no person map is ever warped with another photo's
# geometry. Then BC between two models' maps of the **same person**, and, as the baseline, between
# maps of **different people** (for one model: how similar its maps of two different faces are).
# `bc_cross_model.csv`: model_a, model_b, group, mean, ci_lo, ci_hi (bootstrap 95%), n.

# %%
ids = {name: pm[0] for name, pm in person_maps.items()}
if len({tuple(v) for v in ids.values()}) != 1:
    raise ValueError("the models' person maps cover different individuals")
cross = regions.cross_model_bc({name: pm[1] for name, pm in person_maps.items()}, cfg.seed, n_boot)
plots.save_table(cross, cfg.out("05_bhattacharyya", "bc_cross_model"))
fig, axes = plots.plt.subplots(1, 2, figsize=(10, 0.7 * len(cfg.models) + 2.6))
for ax, group in zip(axes, ("same person", "different people")):
    grid = cross[cross.group == group].pivot(index="model_a", columns="model_b", values="mean")
    plots.sns.heatmap(grid.loc[list(cfg.models), list(cfg.models)], annot=True, fmt=".3f", cmap="viridis",
                      vmin=cross["mean"].min(), vmax=1, square=True, ax=ax)  # shared colour scale, zoomed to the data
    ax.set(title=f"{group}", xlabel="", ylabel="")
fig.suptitle(f"BC of overall person maps in {common_geometry} (left diagonal = 1 by construction)")
fig.tight_layout()
plots.save_figure(fig, cfg.out("05_bhattacharyya", "bc_cross_model"))

# %%
example = int(np.random.default_rng(cfg.seed).integers(len(ids[cfg.models[0]])))
crop, _ = study.crops(cfg, [st.images_of(ids[cfg.models[0]][example])[0]], common_geometry)
fig, axes = plots.plt.subplots(1, len(cfg.models), figsize=(2.4 * len(cfg.models), 2.8), squeeze=False)
for ax, name in zip(axes[0], cfg.models):
    plots.overlay(ax, crop[0], person_maps[name][1][example], title=name)
fig.suptitle(f"{ids[cfg.models[0]][example].replace('_', ' ')}: overall person maps in {common_geometry}")
fig.tight_layout()
plots.save_figure(fig, cfg.out("05_bhattacharyya", "cross_model_example"))

# %% [markdown]
# ### Reading: "models prioritise similar facial regions across architectures"
# Written from the numbers above. The claim holds here if two different models' maps of the same person
# are at least as similar as one model's maps of two different people (the baseline: how alike any two
# face maps of one model are), i.e. if architecture matters no more than identity.

# %%
between = cross[(cross.group == "same person") & (cross.model_a != cross.model_b)]
within = cross[(cross.group == "different people") & (cross.model_a == cross.model_b)]
if len(between):
    lo, hi = between.loc[between["mean"].idxmin()], between.loc[between["mean"].idxmax()]
    verdict = ("supported: architecture changes the maps no more than identity does"
               if between["mean"].mean() >= within["mean"].mean() else
               "not supported: two models' maps of one person differ more than one model's maps of two people")
    display(Markdown(
        f"Across model pairs, the same person's overall maps have mean BC {between['mean'].mean():.3f} (lowest "
        f"{lo.model_a} vs {lo.model_b} {lo['mean']:.3f}, highest {hi.model_a} vs {hi.model_b} {hi['mean']:.3f}); "
        f"within "
        f"one model, different people's maps have mean BC {within['mean'].mean():.3f} (range "
        f"{within['mean'].min():.3f}-{within['mean'].max():.3f}). The claim is **{verdict}**."))
else:
    display(Markdown("Only one model in this run: no cross-architecture comparison."))
