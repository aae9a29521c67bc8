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
# # 05 · Bhattacharyya coefficient: are the maps personal?
#
# Do two photos of one person get more alike LEAM maps than photos of two people, in every model and
# layer, and do different architectures look at the same places? We measure the overlap of maps with
# the Bhattacharyya coefficient, test same > different per model and layer, compare with the LEAM
# work's published ranges, and show the claims ledger's verdicts.

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
max_same_per_person = 0  # cap on same-person image pairs per individual (0: every pair)
common_geometry = "arcface112"  # geometry all models' person maps are carried into for the cross-model comparison
q = 1.0  # critical region (top q% pixels) for the sensitivity section
n_boot = 2000  # bootstrap resamples for the 95% CIs

# %% [markdown]
# ## What is compared
#
# The Bhattacharyya coefficient of two maps normalised to sum 1 is **BC(P, Q) = Σ √(P·Q)**: 1 for
# identical distributions, 0 for disjoint supports (`facexai.metrics`). With notebook 03's cached
# per-image LEAM maps (its default settings):
#
# - **same person**: BC between the maps of two different images of one individual (every such pair,
#   or at most `max_same_per_person` drawn from the seed);
# - **different people**: BC between the maps of images of two individuals: as many image pairs as
#   there are same-person pairs, drawn uniformly (without repeats) among all pairs whose identities
#   differ, from the seed (`facexai.bhattacharyya.sample_pairs`);
# - per model, for every hooked layer and the overall map (mean over layers). Both images of a pair
#   are crops in the model's own geometry, so pixels correspond to the same place on the aligned face.
#
# The table tests same > different with a one-sided Mann-Whitney U test and gives the rank-biserial
# correlation (= Cliff's delta) and Cohen's d. Pairs share images and people, so they are not
# independent: the bootstrap CIs (over pairs) and p-values are optimistic; the effect sizes are the
# numbers to read.

# %%
import numpy as np
from IPython.display import Markdown, display

from facexai import align, bhattacharyya, claims, feasibility, plots, profiles, saliency, study
from facexai.models import load_model

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, scheduler=scheduler, seed=seed, run_name=run_name,
                       n_identities=n_identities, min_images=min_images, figures_dir=figures_dir)
st = study.load(cfg)
feasibility.check("05_bhattacharyya", st.images, cfg)
if common_geometry not in align.GEOMETRIES:
    raise ValueError(f"unknown common_geometry {common_geometry!r}; valid: {sorted(align.GEOMETRIES)}")
print(f"{len(st.identities)} individuals, {len(st.images)} images; models {cfg.models}")

# %% [markdown]
# ## Same person vs different people, per model and layer

# %%
results, person_maps = {}, {}
for name in cfg.models:
    model = load_model(name, cfg.device, cfg.cache_root)
    ms = saliency.image_maps(cfg, model, st.images)
    results[name] = bhattacharyya.same_vs_different(ms, q, cfg.seed, max_same_per_person or None, n_boot)
    person_maps[name] = bhattacharyya.common_person_maps(cfg, ms, model.spec.geometry, common_geometry)
    print(f"{name}: {results[name].n_same} same-person and {results[name].n_different} different-people pairs, "
          f"{len(ms.layers)} layers")
    del ms
tables = bhattacharyya.combine(list(results.values()))
means, tests = tables["means"], tables["tests"]
plots.save_table(means, cfg.out("05_bhattacharyya", "bc_same_different"))
plots.save_table(tests, cfg.out("05_bhattacharyya", "bc_tests"))
bhattacharyya.overall_summary(means, tests)

# %% [markdown]
# `bc_same_different.csv` (tidy, read by the claims ledger): model, layer (`overall` or a layer name), group
# (`same` / `different`), mean, ci_lo, ci_hi (bootstrap 95% over pairs), n.
# `bc_tests.csv`: model, layer, U, p_value (one-sided, same > different), rank_biserial, cohens_d.

# %%
fig, ax = plots.plt.subplots(figsize=(2.2 * len(cfg.models) + 2, 4))
plots.split_violin(ax, tables["values"], x="model", y="bc", hue="group", hue_order=["same", "different"])
ax.set(ylabel="Bhattacharyya coefficient (overall map)", xlabel="",
       title="overall LEAM maps: two images of one person vs of two people")
plots.save_figure(fig, cfg.out("05_bhattacharyya", "bc_same_different"))

# %%
fig, axes = plots.plt.subplots(1, len(cfg.models), figsize=(4 * len(cfg.models), 3.6), squeeze=False, sharey=True)
for ax, name in zip(axes[0], cfg.models):
    maps = results[name].maps
    for (group, g), colour in zip(bhattacharyya.layer_profile(means, name, maps).items(), ("C0", "C1")):
        x = np.arange(len(g))
        ax.plot(x, g["mean"], marker="o", ms=3, color=colour, label=group)
        ax.fill_between(x, g.ci_lo, g.ci_hi, color=colour, alpha=0.25)
    ax.set_xticks(np.arange(len(maps)), maps, rotation=70, fontsize=7)
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
published = bhattacharyya.published_bc_comparison(means)
plots.save_table(published, cfg.out("05_bhattacharyya", "bc_published_comparison"))
published

# %% [markdown]
# ### The ledger's verdict
# Notebook 05 judges nothing itself: the claims ledger (`facexai.claims`, the ledger notebook) reads the
# tables just written and applies its rule, with its tolerances, the same here as in the ledger.

# %%
display(Markdown(claims.verdict_line("bc_same_vs_different", cfg.figures_dir, st.summary)))
# the different-people BC at one layer is also the baseline of notebook 03's "layers differ" claim
display(Markdown(claims.verdict_line("layers_differ", cfg.figures_dir, st.summary)))

# %% [markdown]
# ### Sensitivity: BC of the critical regions instead of the whole maps
# The same pairs, but each overall map replaced by its top q% pixels as a uniform distribution; the
# BC of two such masks of equal size is the fraction of critical pixels they share. This shows how
# much of the BC above comes from the broad, smooth body of the maps that every face shares.
# `bc_critical_same_different.csv` / `bc_critical_tests.csv`: the columns of the tables above (layer = overall).

# %%
plots.save_table(tables["critical_means"], cfg.out("05_bhattacharyya", "bc_critical_same_different"))
plots.save_table(tables["critical_tests"], cfg.out("05_bhattacharyya", "bc_critical_tests"))
display(bhattacharyya.overall_summary(tables["critical_means"], tables["critical_tests"]))
display(Markdown(claims.verdict_line("bc_same_vs_different_top1", cfg.figures_dir, st.summary)))

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
cross = bhattacharyya.cross_model_bc(list(person_maps.values()), cfg.seed, n_boot)
plots.save_table(cross, cfg.out("05_bhattacharyya", "bc_cross_model"))
fig, axes = plots.plt.subplots(1, 2, figsize=(10, 0.7 * len(cfg.models) + 2.6))
for ax, group in zip(axes, (bhattacharyya.SAME_PERSON, bhattacharyya.DIFFERENT_PEOPLE)):
    grid = bhattacharyya.cross_model_grid(cross, group, cfg.models)
    plots.heatmap(ax, grid, "mean BC", limits=(cross["mean"].min(), 1), square=True)  # one scale, zoomed to the data
    ax.set(title=f"{group}", xlabel="", ylabel="")
fig.suptitle(f"BC of overall person maps in {common_geometry} (left diagonal = 1 by construction)")
fig.tight_layout()
plots.save_figure(fig, cfg.out("05_bhattacharyya", "bc_cross_model"))

# %%
ids = person_maps[cfg.models[0]].identities
example = int(np.random.default_rng(cfg.seed).integers(len(ids)))
crop, _ = study.crops(cfg, [st.images_of(ids[example])[0]], common_geometry)
fig, axes = plots.plt.subplots(1, len(cfg.models), figsize=(2.4 * len(cfg.models), 2.8), squeeze=False)
for ax, name in zip(axes[0], cfg.models):
    shown = plots.overlay(ax, crop[0], person_maps[name].overall()[example], title=name)
fig.suptitle(f"{ids[example].replace('_', ' ')}: overall person maps in {common_geometry}")
fig.tight_layout()
plots.relevance_colourbar(fig, shown, axes)
plots.save_figure(fig, cfg.out("05_bhattacharyya", "cross_model_example"))

# %% [markdown]
# ### The ledger's verdict: "models prioritise similar facial regions across architectures"
# As for the claims above, the rule is the ledger's (`facexai.claims`), applied to `bc_cross_model.csv`.

# %%
display(Markdown(claims.verdict_line("models_agree", cfg.figures_dir, st.summary)))
