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
# # 06 · Occlusion validation: do the critical pixels matter?
#
# If a person map finds the pixels a model relies on, hiding **1%** of the pixels there should hurt
# recognition far more than hiding 1% at random. Per model: the cosine drop, the recognition rate and
# the balanced accuracy after occluding each person's critical pixels on held-out images, against as
# many random pixels; five fill types; how the damage grows with q; per subgroup when an attribute
# file is given.

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
explainer = "leam"  # any facexai.techniques name: leam | gradcam | gradcam++ | layercam | srise | corrrise
layers = ""  # comma-separated layers; empty: the technique's policy (LEAM every named layer, CAMs the method's cam_layer)
map_images = "generation"  # generation: maps of the generation images only | all: reuse 03's maps of every image
q = None  # critical region of the fill comparison: top q% pixels; None: the [method] table of profiles.toml
fills = None  # comma-separated fill types compared; None: the method table's fills
fill = None  # the main fill (the curves, the reading); None: the method table's
curve_qs = "0.25,0.5,1,2,5"  # q values (%) of the curves
n_eval = None  # held-out images per person (int) or fraction (float); None: the profile's occlusion_n_eval
n_random_seeds = None  # random-pixel baseline draws; None: the profile's occlusion_seeds
in_sample = False  # True: occlude the generation images themselves (labelled "in-sample" everywhere)
n_impostors = 5  # impostor partners per occluded image (pairs built from the selected people)
attributes_file = ""  # optional groups, e.g. "../shared/data/lfw/female_names.txt,../shared/data/lfw/male_names.txt"
n_boot = 1000  # bootstrap resamples of the confidence intervals

# %% [markdown]
# ## Protocol
#
# Library: `facexai.occlusion_protocol` (the split and the pairs), `facexai.person_maps` (the maps),
# `facexai.occlusion_runner` (the occlusions) and `facexai.occlusion_summary` (the tables).
#
# 1. **Split** (seeded, per person): *generation* images build the person map, held-out
#    *evaluation* images are occluded. No image is occluded with a map built from it, unless
#    `in_sample = True` (then every table and figure says "in-sample"). With the default
#    `map_images = "generation"` the per-image maps are computed on the generation images alone
#    (their LEAM targets use leave-one-out references among the generation images), so the held-out
#    images do not enter the maps at all.
# 2. **Person map** = mean over the person's generation images of the overall map (mean over
#    layers); the **critical mask** = its top q% pixels in the evaluation model's crop (warped
#    through each image's alignment when geometries differ; here every map comes from the model
#    that is evaluated, see 07 for the cross-model case).
# 3. **Fills**: black, white, random noise, the dataset's mean colour, Gaussian blur (σ = 5 px).
#    **Baseline**: the same number of uniformly random pixels, several seeds.
# 4. **Measures**: (a) the *drop* of the cosine similarity between the image's embedding and the
#    person's reference (L2-normalised mean embedding of the generation images), clean minus
#    occluded; (b) the **recognition rate**: the share of genuine pairs (occluded image with each
#    other image of the person, clean) still accepted at the threshold fixed on the run's clean
#    verification pairs (mean of the 10-fold thresholds, as in 01); (c) the **balanced accuracy**
#    over those genuine pairs and impostor pairs (the occluded image with images of other people).
#    Confidence intervals: 95% percentile bootstrap over images (drop) or pairs (rates).
# 5. **q-curves**: the drop and the recognition rate as q grows (the main fill).

# %%
import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from facexai import (feasibility, occlusion_protocol, occlusion_runner, occlusion_summary, person_maps, plots, profiles,
                     study, techniques)
from facexai.published import PUBLISHED
from facexai.models import load_model

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, scheduler=scheduler, seed=seed, run_name=run_name,
                       n_identities=n_identities, min_images=min_images, figures_dir=figures_dir, occlusion_n_eval=n_eval,
                       occlusion_seeds=n_random_seeds)
method = profiles.method(q=q, fills=fills, fill=fill)
st = study.load(cfg)
feasibility.check("06_occlusion_validation", st.images, cfg)
fill_kinds, main_fill, q = list(method.fills), method.fill, method.q
qs = [float(v) for v in curve_qs.split(",") if v.strip()]
seeds = list(range(cfg.occlusion_seeds))
layer_names = [s.strip() for s in layers.split(",") if s.strip()] or None
technique = techniques.get(explainer)
label = f"{technique.label}{' (in-sample)' if in_sample else ''}"
NB = "06_occlusion_validation"
protocol = occlusion_protocol.make_protocol(st, cfg.occlusion_n_eval, cfg.seed, in_sample=in_sample,
                                            n_impostors=n_impostors, official=cfg.pairs is not None)
n_occ = sum(len(v) for v in protocol.occluded.values())
print(f"{len(protocol.generation)} people; {len(protocol.generation_paths)} generation images; "
      f"{n_occ} {'generation (in-sample)' if in_sample else 'held-out evaluation'} images occluded")
n_genuine = int(protocol.pairs.same.sum())
print(f"pairs: {protocol.pair_source}: {n_genuine} genuine, {len(protocol.pairs) - n_genuine} impostor")
per_model = len(fill_kinds) * (1 + len(seeds)) + (len(qs) - (q in qs)) * (1 + len(seeds))
print(f"{per_model} occlusion conditions x {n_occ} images = {per_model * n_occ} forward passes per model at most")

# %% [markdown]
# ## Run: every model occluded with its own person maps
# The fill comparison at q, and the q-curve with the main fill. Occluded images are embedded in
# batches and cached (a rerun needs no forward pass); the count below is the work actually done.

# %%
zoo, maps, fill_runs, curve_runs = {}, {}, [], []
for name in cfg.models:
    model = zoo[name] = load_model(name, cfg.device, cfg.cache_root)
    maps[name] = person_maps.generation_maps(cfg, model, protocol, explainer, map_images=map_images, layers=
                                             technique.layers_for(list(model.layers), layer_names, method.cam_layer))
    fill_runs.append(occlusion_runner.occlusion_experiment(cfg, model, maps[name], protocol, fills=fill_kinds,
                                                           qs=[q], random_seeds=seeds))
    curve_runs.append(occlusion_runner.occlusion_experiment(cfg, model, maps[name], protocol, fills=[main_fill],
                                                            qs=qs, random_seeds=seeds))
    print(f"{name}: {len(maps[name])} person maps (layers {maps[name].layers}); forward passes "
          f"{fill_runs[-1].forward_passes} (fills) + {curve_runs[-1].forward_passes} (curves) in "
          f"{fill_runs[-1].seconds + curve_runs[-1].seconds:.0f} s")
fill_run, curve_run = occlusion_runner.combine(fill_runs), occlusion_runner.combine(curve_runs)
if fill_run.skipped_people:
    print(f"people without a person map (not occluded): {len(fill_run.skipped_people)}")

# %% [markdown]
# ## Critical vs random pixels, every model and fill type
# `occlusion_summary.csv` (`occlusion_summary.SUMMARY_COLUMNS`): one row per model x fill x
# selection (critical | random, seeds pooled): `mean_drop` with its 95% CI (`ci_lo`, `ci_hi`),
# `recognition_rate` (CI `rr_ci_lo`, `rr_ci_hi`), `balanced_accuracy`, their clean values
# (`clean_recognition_rate`, `clean_balanced_accuracy`), the threshold, `n_images`, `n_seeds`,
# `n_genuine`, `n_impostor`.

# %%
cols = occlusion_summary.SUMMARY_COLUMNS
summary = occlusion_summary.summarize(fill_run, n_boot=n_boot, seed=cfg.seed)[cols]
plots.save_table(summary, cfg.out(NB, "occlusion_summary"))
summary[["model", "fill", "selection", "mean_drop", "ci_lo", "ci_hi", "recognition_rate", "balanced_accuracy",
         "clean_recognition_rate", "n_images"]]

# %%
fig, axes = plots.plt.subplots(2, len(cfg.models), figsize=(3.6 * len(cfg.models), 6.2), squeeze=False)
for c, name in enumerate(cfg.models):
    d = summary[summary.model == name]
    plots.critical_vs_random(axes[0, c], d, "mean_drop", "ci_lo", "ci_hi", fill_kinds, name)
    plots.critical_vs_random(axes[1, c], d, "recognition_rate", "rr_ci_lo", "rr_ci_hi", fill_kinds, "")
    axes[1, c].axhline(d.clean_recognition_rate.iloc[0], ls="--", color="k", lw=1, label="clean")
    axes[1, c].set_ylim(0, 1.05)
    for ax in axes[:, c]:
        ax.set_ylabel("")
        if c:
            ax.get_legend().remove()
axes[0, 0].set_ylabel("cosine drop (clean - occluded)")
axes[1, 0].set_ylabel("recognition rate")
fig.suptitle(f"{label}: occluding the top {q:g}% pixels vs {q:g}% random pixels ({n_occ} images per model)")
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "fills"))

# %% [markdown]
# ## Next to the published numbers
# `published_comparison.csv`: the LEAM work's occlusion drops (`facexai.published`, with the source)
# next to this run's, per model and selection (the main fill at the works' 1%; the LEAM abstract
# does not name its fill type). The LEAM work averages 9 models on 1000 LFW individuals; this run
# has the models and people above.

# %%
comparison = occlusion_summary.published_comparison(summary, main_fill)
plots.save_table(comparison, cfg.out(NB, "published_comparison"))
comparison[["selection", "published", "model", "fill", "ours", "ci_lo", "ci_hi", "n_images"]]

# %% [markdown]
# ## q-curves: how the damage grows with the occluded share
# `occlusion_curves.csv`: the same columns as the summary, one row per model x q x selection
# (the main fill).

# %%
curves = occlusion_summary.summarize(curve_run, n_boot=n_boot, seed=cfg.seed)[cols]
plots.save_table(curves, cfg.out(NB, "occlusion_curves"))
fig, axes = plots.plt.subplots(2, len(cfg.models), figsize=(3.4 * len(cfg.models), 5.8), squeeze=False, sharex=True)
for c, name in enumerate(cfg.models):
    for sel, colour in [("critical", plots.CRITICAL_COLOUR), ("random", plots.RANDOM_COLOUR)]:
        d = curves[(curves.model == name) & (curves.selection == sel)].sort_values("q")
        for r, (value, lo, hi) in enumerate([("mean_drop", "ci_lo", "ci_hi"),
                                              ("recognition_rate", "rr_ci_lo", "rr_ci_hi")]):
            axes[r, c].plot(d.q, d[value], "o-", color=colour, label=sel)
            axes[r, c].fill_between(d.q, d[lo], d[hi], color=colour, alpha=0.2)
    axes[0, c].set_title(name)
    axes[1, c].set(xscale="log", xlabel="occluded pixels q (%)", ylim=(0, 1.05))
    axes[1, c].set_xticks(qs, [f"{v:g}" for v in qs])
    axes[1, c].minorticks_off()
axes[0, 0].set_ylabel("cosine drop")
axes[1, 0].set_ylabel("recognition rate")
axes[0, 0].legend()
fig.suptitle(f"{label}: damage vs occluded share ({main_fill} fill)")
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "q_curves"))

# %% [markdown]
# ## What 1% looks like
# One held-out image per model (in that model's crop): the image, its person's map, the critical
# and random masks (red), and the image as each fill leaves it: critical mask on the first row,
# random mask below.

# %%
who, path = occlusion_runner.example_image(protocol, list(maps.values()), cfg.seed)
shown = {name: (zoo[name].spec.geometry, occlusion_runner.occlusion_examples(
    cfg, maps[name], protocol, path, zoo[name].spec.geometry, fill_kinds, q)) for name in cfg.models}
fig = plots.occlusion_examples(shown, fill_kinds, q,
                               f"{who.replace('_', ' ')}: held-out image occluded at {q:g}% ({label})")
plots.save_figure(fig, cfg.out(NB, "examples"))

# %% [markdown]
# ## Subgroups (optional external annotation)
# With an attribute file (`attributes_file`: a CSV `path_or_name,group`, or name lists such as the
# widely used third-party LFW perceived-gender lists `female_names.txt` / `male_names.txt`), the
# same measures per group. It is an external annotation, not ground truth: conflicts (an image in
# two lists) and gaps (in none) are reported and left out. `occlusion_subgroups.csv` has the
# summary's columns plus `group`. The default run uses none (the lists are a third-party annotation
# whose terms are not stated, so they do not ship with the project): pass them with
# `./run_all.sh -p attributes_file "PATH/female_names.txt,PATH/male_names.txt"`.

# %%
files = occlusion_summary.resolve_files(attributes_file)
missing = [str(f) for f in files if not f.is_file()]
if not files or missing:
    display(Markdown(f"**No subgroup analysis**: attribute file(s) {missing or 'not given'} "
                     f"({'not found' if missing else 'parameter attributes_file is empty'}); skipped."))
    subgroups = None
    for stale in cfg.out(NB, "occlusion_subgroups").parent.glob("*subgroups.*"):  # from an earlier run
        stale.unlink()
else:
    groups, report = occlusion_summary.read_attributes(files, protocol.images)
    display(pd.Series(report, name="attribute annotation").to_frame())
    subgroups = occlusion_summary.summarize(occlusion_summary.with_groups(fill_run, groups), by=["group"], n_boot=n_boot,
                                     seed=cfg.seed)[["group", *cols]]
    plots.save_table(subgroups, cfg.out(NB, "occlusion_subgroups"))
    d = subgroups[subgroups.fill == main_fill].assign(bar=lambda x: x.group + " / " + x.selection)
    hue_order = sorted(d.bar.unique())
    fig, axes = plots.plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, (value, lo, hi, ylabel) in zip(axes, [("mean_drop", "ci_lo", "ci_hi", "cosine drop"),
                                                  ("recognition_rate", "rr_ci_lo", "rr_ci_hi", "recognition rate")]):
        sns.barplot(d, x="model", y=value, hue="bar", hue_order=hue_order, order=list(cfg.models), ax=ax,
                    errorbar=None)
        for patch_group, bar in zip(ax.containers, hue_order):
            sub = d[d.bar == bar].set_index("model").reindex(cfg.models)
            xs = [p.get_x() + p.get_width() / 2 for p in patch_group]
            ax.errorbar(xs, sub[value], yerr=[sub[value] - sub[lo], sub[hi] - sub[value]], fmt="none", color="k",
                        capsize=2)
        ax.set(ylabel=ylabel, xlabel="")
    axes[1].get_legend().remove()
    fig.suptitle(f"{label}, {main_fill} fill, q = {q:g}%: per group ({', '.join(report['groups'])})")
    fig.tight_layout()
    plots.save_figure(fig, cfg.out(NB, "subgroups"))
    display(subgroups[subgroups.fill == main_fill][["group", "model", "selection", "mean_drop", "ci_lo", "ci_hi",
                                                       "recognition_rate", "n_images"]])

# %% [markdown]
# ### Reading
# Written from the numbers above (regenerated with them):

# %%
lines = []
for name in cfg.models:
    d = summary[(summary.model == name)].set_index(["fill", "selection"])
    crit, rand = d.loc[(main_fill, "critical")], d.loc[(main_fill, "random")]
    separated = crit.ci_lo > rand.ci_hi
    ratio = crit.mean_drop / rand.mean_drop if rand.mean_drop > 0 else np.inf
    strongest = d.xs("critical", level="selection").mean_drop.idxmax()
    lines.append(
        f"- **{name}** ({main_fill} fill, {q:g}%): critical pixels lower the cosine to the reference by "
        f"{crit.mean_drop:.4f} [{crit.ci_lo:.4f}, {crit.ci_hi:.4f}] vs {rand.mean_drop:.4f} "
        f"[{rand.ci_lo:.4f}, {rand.ci_hi:.4f}] for random ones ({ratio:.1f}x; the intervals "
        f"{'do not overlap' if separated else 'overlap'}); recognition rate {crit.recognition_rate:.3f} vs "
        f"{rand.recognition_rate:.3f} (clean {crit.clean_recognition_rate:.3f}); the most damaging fill of "
        f"the critical pixels is **{strongest}**.")
pub = PUBLISHED["occlusion_drop"].values
own = summary[(summary.fill == main_fill)].groupby("selection").mean_drop.mean()
lines.append(f"- Averaged over this run's models: {own.get('critical', np.nan):.4f} (critical) vs "
             f"{own.get('random', np.nan):.4f} (random); the LEAM work reports {pub['map']} vs {pub['random']} "
             f"(9 models, 1000 people).")
low = summary[summary.selection == "critical"].sort_values("recognition_rate").iloc[0]
lines.append(f"- Lowest recognition rate after occluding {q:g}% critical pixels: {low.recognition_rate:.3f} "
             f"({low.model}, {low.fill} fill; clean {low.clean_recognition_rate:.3f}).")
if subgroups is not None:
    g = subgroups[(subgroups.fill == main_fill) & (subgroups.selection == "critical")]
    by_group = g.groupby("group")[["mean_drop", "recognition_rate"]].mean()
    lines.append(f"- Per group ({main_fill}, critical, mean over models): "
                 + ", ".join(f"{k}: drop {v.mean_drop:.4f}, recognition rate {v.recognition_rate:.3f} "
                             f"(n={int(g[g.group == k].n_images.iloc[0])} images per model)"
                             for k, v in by_group.iterrows())
                 + f"; larger drop for **{by_group.mean_drop.idxmax()}**, lower recognition rate for "
                   f"**{by_group.recognition_rate.idxmin()}** in this run (see the CIs above; the LEAM work "
                   f"reports occlusions to be more effective on female images).")
display(Markdown("\n".join(lines)))
