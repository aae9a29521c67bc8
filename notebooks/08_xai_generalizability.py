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
# # 08 · Do the explanations generalize? Six techniques, one occlusion test
#
# The second work's Table 1 for this run: for every XAI technique, the recognition rate after
# hiding each person's 1% most relevant pixels on held-out images, per model and data set, against
# as many random pixels; the same per fill type; the hyperparameters the work tuned (layer, loss,
# RISE masks and grid); and each technique's wall time per image beside its quality.

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
techniques = "leam,gradcam,gradcam++,layercam,srise,corrrise"  # the random-pixel floor is always added
datasets = "LFW,CALFW,CPLFW"  # data sets of the table; CALFW / CPLFW read "not available" without their folder
fills = None  # comma-separated fills of the fill table; None: the [method] table of profiles.toml
fill = None  # the main table's fill; None: the method table's
q = None  # top q% pixels occluded; None: the method table
cam_layer = None  # the Grad-CAM family's layer in the main table (index into the named layers); None: method table
xai_models = ""  # comma-separated models to explain; empty: the profile's xai_models
calfw_root = ""  # CALFW folder (pairs_CALFW.txt + images); empty: $FACEXAI_CALFW, else "not available"
cplfw_root = ""  # CPLFW folder (pairs_CPLFW.txt + images); empty: $FACEXAI_CPLFW, else "not available"
n_eval = None  # held-out images per person; None: the profile's occlusion_n_eval
n_random_seeds = None  # random-pixel floor draws; None: the profile's occlusion_seeds
rise_images = None  # images the RISE family explains (whole people, seeded; 0: all); None: the profile's
rise_masks = None  # RISE masks per image; None: the profile's
sweep_models = ""  # comma-separated models of the hyperparameter sweeps; empty: the profile's xai_sweep_models
sweep_layers = None  # named layers in the layer sweep (0: all); None: the profile's xai_sweep_layers
n_impostors = 5  # impostor partners per occluded image (pairs built from the selected people)
n_boot = 200  # bootstrap resamples inside occlusion_summary.summarize (its CIs are not used in these tables)

# %% [markdown]
# ## Protocol
#
# The second work asks of every XAI technique the question of notebook 06: if a technique's map of
# a person finds what the model relies on, hiding the **1%** most relevant pixels of that person on
# **new** images of them should make the model fail. Protocol (as in 06: `facexai.occlusion_protocol`,
# `facexai.person_maps`, `facexai.occlusion_runner`; the loops and tables: `facexai.generalizability`):
# per person, seeded, *generation* images make the person map (mean of the per-image maps), the
# held-out images are occluded at the map's top 1% pixels (the main fill, black, for the main table); the
# **recognition rate** is the share of genuine pairs (occluded image with each other image of the
# person) still accepted at the threshold fixed on the run's clean pairs, the **balanced accuracy**
# adds impostor pairs. Lower = the technique's regions generalize to unseen images of the person.
# The **floor** is as many uniformly random pixels.
#
# Techniques (`facexai.techniques.TECHNIQUES`): **LEAM** (every named layer, overall map, as in
# 03/06), **Grad-CAM**, **Grad-CAM++**, **LayerCAM** (one named layer, the second-to-last by
# default: the method table's `cam_layer`), **S-RISE** and **CorrRISE** (the input, from one shared set of masked forward passes;
# on a subset of people when the profile says so, see below). Data sets: **LFW** (this run's
# images and pairs), **CALFW** and **CPLFW** when their folders are given (their rows say "not
# available" otherwise; parameter `datasets` chooses among them). Then the same table per fill type, the hyperparameters the second work
# tuned (layer, loss, RISE masks and grid), and the wall time per image of each technique.
#
# Tables (tidy CSVs in `figures/<run>/08_xai_generalizability/`, read by the claims ledger):
# - `main_table.csv` / `fill_table.csv`: technique, dataset, fill, model (`mean` = over the
#   models), recognition_rate, balanced_accuracy, mean_drop (cosine to the person's reference,
#   clean minus occluded), n_images (occluded images; mean rows: summed over models), status
#   (`ok` | `not available`), subset (`all` held-out images | `rise subset`), clean_recognition_rate,
#   published_recognition_rate (the work's value, mean rows only), note.
# - `sweeps.csv`: technique, model, hyperparameter (`layer` | `loss` | `n_masks` | `cell_size`),
#   value, recognition_rate, balanced_accuracy, mean_drop, position (layers from the end: 0 = last,
#   1 = second-to-last), n_images. `best_settings.csv`: technique, model, hyperparameter,
#   best_value, recognition_rate, balanced_accuracy, mean_drop, position, tied_values, n_values.
# - `cost.csv`: technique, model, seconds_per_image, n_images, forward_passes_per_image,
#   backward_passes_per_image, measured. `rise_subset_table.csv`: every technique on the RISE subset.

# %%
import time

import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from facexai import generalizability as gen
from facexai import feasibility, floor_differences, occlusion_runner, occlusion_summary, plots, profiles, study
from facexai import techniques as registry
from facexai.generalizability import LABELS, MEAN, RANDOM, RISE, RISE_SUBSET
from facexai.models import load_model

plots.use_style()
started = time.perf_counter()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, scheduler=scheduler, seed=seed, run_name=run_name,
                       n_identities=n_identities, min_images=min_images, figures_dir=figures_dir, xai_models=xai_models,
                       occlusion_n_eval=n_eval, occlusion_seeds=n_random_seeds, rise_images=rise_images,
                       rise_masks=rise_masks, xai_sweep_models=sweep_models, xai_sweep_layers=sweep_layers)
method = profiles.method(fills=fills, fill=fill, q=q, cam_layer=cam_layer)
st = study.load(cfg)
feasibility.check("08_xai_generalizability", st.images, cfg)
NB = "08_xai_generalizability"
techs = profiles.parse_list(techniques)
for tech in techs:
    registry.get(tech)  # ValueError naming the valid ones
fill_kinds = [method.fill, *(f for f in method.fills if f != method.fill)]  # the main fill first
main_fill, q = method.fill, method.q
seeds = list(range(cfg.occlusion_seeds))
names = gen.xai_models(cfg)
sweep_names = gen.sweep_models(cfg, names)
zoo = {name: load_model(name, cfg.device, cfg.cache_root) for name in names}
main_layer, swept_layers = gen.layer_plan(zoo, sweep_names, method.cam_layer, cfg.xai_sweep_layers)
print(f"profile {cfg.profile}: models {names} (sweeps on {sweep_names}); techniques {techs}; fills {fill_kinds}")
print(f"Grad-CAM family layer: {main_layer}; RISE: {cfg.rise_masks} masks of {gen.RISE_CELL}-px cells on "
      f"{f'up to {cfg.rise_images}' if cfg.rise_images else 'all'} generation images (whole people)")

# %% [markdown]
# ## Data sets
# LFW is this run's data (notebook 00). CALFW and CPLFW load through `data.load_pair_list_dataset`
# when their folders are given (parameters `calfw_root` / `cplfw_root` or `$FACEXAI_CALFW` /
# `$FACEXAI_CPLFW`): the profile's number of people (seeded) and of pairs per fold, aligned as LFW.

# %%
studies, unavailable = gen.load_datasets(cfg, profiles.parse_list(datasets), names, st,
                                         {"CALFW": calfw_root, "CPLFW": cplfw_root})
protocols = gen.dataset_protocols(cfg, studies, n_impostors)
n_held = {d: sum(map(len, p.occluded.values())) for d, p in protocols.items()}
n_gen = {d: len(p.generation_paths) for d, p in protocols.items()}
first = next(iter(protocols))
n_rise_images = min(cfg.rise_images or n_gen[first], n_gen[first])
print(f"at most, per model and data set: {sum(t not in RISE for t in techs)} x ~{n_gen[first]} forward+backward "
      f"passes (CAM maps), ~{n_rise_images} x {cfg.rise_masks} forwards (RISE maps, S-RISE and CorrRISE share them), "
      f"{len(techs)} x {len(fill_kinds)} x {n_held[first]} + {len(seeds)} x {len(fill_kinds)} x {n_held[first]} "
      f"forwards (occlusion; cache hits need none)")
gen.overview(protocols, unavailable)

# %% [markdown]
# ## Run: every technique, model and data set, every fill
# Maps come from the generation images only (cached by `saliency.image_maps`; on LFW's sweep
# models the Grad-CAM family explains all swept layers in the same pass); occluded images are
# embedded in batches and cached, so a rerun needs no forward pass. The table below is the work
# actually done.

# %%
result = gen.run_techniques(cfg, zoo, protocols, techs, fill_kinds, q, seeds, main_layer, swept_layers)
work = result.work
print(f"total: {work['map forwards'].sum()} map forwards in {work['map s'].sum():.0f} s, "
      f"{work['occlusion forwards'].sum()} occlusion forwards in {work['occlusion s'].sum():.0f} s")
for dname, paths in result.subset_paths.items():
    if paths:
        print(f"{dname}: RISE on a subset: {len(paths)} held-out images (of {n_held[dname]}), maps from "
              f"up to {n_rise_images} generation images")
work

# %% [markdown]
# ## Table 1: recognition rate after occluding each technique's 1%
# Mean over this run's models (`model = "mean"` rows of `main_table.csv`); lower = the regions
# matter more. `published` is the second work's Table 1 value where it is recorded in
# `facexai.published` (the one place the works' numbers are typed); where the work gives none
# (LEAM is not in its table) the column reads "not given here". Rows marked
# `rise subset` (S-RISE, CorrRISE in the smaller profiles) cover only the people RISE explained;
# see the subset comparison below.

# %%
full = occlusion_runner.combine(result.runs)
summary = occlusion_summary.summarize(full, by=["dataset", "subset"], n_boot=n_boot, seed=cfg.seed)
table = gen.result_table(gen.technique_rows(summary), unavailable, techs, fill_kinds, names)
main_table = table[table.fill == main_fill].reset_index(drop=True)
plots.save_table(main_table, cfg.out(NB, "main_table"))
plots.save_table(table, cfg.out(NB, "fill_table"))
table1 = gen.table1(main_table)
display(Markdown(f"**Table 1** ({main_fill} fill, top {q:g}%, mean over {', '.join(names)}):"))
table1

# %% [markdown]
# ### Per model
# The same measure per model (second table), for each data set that is available.

# %%
for dname in protocols:
    display(Markdown(f"**{dname}**: recognition rate per model ({main_fill} fill, top {q:g}%)"))
    display(gen.per_model(main_table, dname))

# %% [markdown]
# ### Against the random floor, with 95% intervals
# The rates above sit near the clean rate for every technique, so the figure shows what the claim
# is about: each technique's recognition rate **minus** the random floor's on the same held-out
# images, per model, with a paired bootstrap 95% interval over people
# (`facexai.floor_differences`; a technique run on a subset, as RISE here, is compared with the floor
# on that subset). Left of 0: the technique's pixels hurt recognition more than random ones.

# %%
diffs = floor_differences.floor_differences(full, seed=cfg.seed)
diffs = diffs[diffs.fill == main_fill].reset_index(drop=True)
fig = plots.floor_difference_plot(diffs, LABELS, f"Recognition rate after occluding each technique's top {q:g}% pixels\n"
                                  f"({main_fill} fill, held-out images) minus the random floor, 95% intervals", techs)
plots.save_figure(fig, cfg.out(NB, "main_table"))
diffs[diffs.measure == "recognition_rate"].round(4)

# %% [markdown]
# ### RISE on its subset, beside every other technique on the same people
# When RISE explains only some people (the profile's `rise_images`), its rows above cover fewer
# held-out images than the others. `rise_subset_table.csv` restricts every technique's and the
# floor's rows to exactly the people RISE explained (same columns as the main table, subset
# `rise subset`), so the comparison is like for like.

# %%
subset_runs = gen.subset_runs(result)
if subset_runs:
    sub_summary = occlusion_summary.summarize(occlusion_runner.combine(subset_runs), by=["dataset", "subset"],
                                              n_boot=n_boot, seed=cfg.seed)
    rise_table = gen.result_table(gen.technique_rows(sub_summary), {}, techs, fill_kinds, names)
    rise_table = rise_table[rise_table.fill == main_fill].reset_index(drop=True)
    plots.save_table(rise_table, cfg.out(NB, "rise_subset_table"))
    for dname in sorted(set(rise_table.dataset), key=list(protocols).index):
        display(Markdown(f"**{dname}**, RISE subset: recognition rate per model"))
        display(gen.wide(rise_table, "recognition_rate", "model", dataset=dname))
else:
    rise_table = None
    display(Markdown("RISE explained every person: no subset table."))

# %% [markdown]
# ## Occlusion type: the same table per fill
# `fill_table.csv` (the main table's columns, every fill). Heatmap: recognition rate, mean over
# models; beside each technique, the range of its rate across fills (max - min).

# %%
avail = list(protocols)
fig, axes = plots.plt.subplots(1, len(avail), figsize=((1.1 * len(fill_kinds) + 4) * len(avail), 0.5 * len(techs) + 2.2),
                               squeeze=False)
for ax, dname in zip(axes[0], avail):
    grid = gen.wide(table, "recognition_rate", "fill", model=MEAN, dataset=dname).astype(float)
    spread = grid.max(axis=1) - grid.min(axis=1)
    grid.index = [f"{t} (range {s:.3f})" for t, s in zip(grid.index, spread)]
    plots.heatmap(ax, grid, "recognition rate", cmap="magma", annot_kws={"size": 8})
    ax.set(title=f"{dname}: recognition rate by fill", xlabel="fill", ylabel="")
fig.suptitle(f"Occlusion type (top {q:g}%, mean over {', '.join(names)})")
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "fills"))
fill_ranges = gen.fill_ranges(table)
fill_ranges

# %% [markdown]
# ## Hyperparameters, as the second work tuned them (LFW, sweep models)
# - **Layer** (Grad-CAM, Grad-CAM++, LayerCAM): the last and second-to-last named layers and
#   `xai_sweep_layers - 2` earlier named stages evenly spaced from the first (all in the paper
#   profile), cosine target. `position` = layers from the end.
# - **Loss** (same techniques, main layer): the cosine target vs minus the ArcFace loss with
#   margin m (scale 64, gallery = every person's mean embedding; `saliency.image_maps(target="arcface", margin=m)`).
# - **RISE**: the mask count and the grid's cell size (px), other settings as in the main table.
#
# Each setting is occluded like the main table (the main fill, held-out images); best = lowest
# recognition rate (ties: larger cosine drop, then the first value; `tied_values` lists them).

# %%
sweep_start = time.perf_counter()
lfw = protocols.get("LFW")
if lfw is not None:
    sweeps, sweep_forwards = gen.run_sweeps(cfg, zoo, lfw, techs, main_layer, swept_layers, main_fill, q, n_boot)
else:
    sweeps, sweep_forwards = pd.DataFrame(columns=gen.SWEEP_COLUMNS), 0
best = gen.best_settings(sweeps)
plots.save_table(sweeps, cfg.out(NB, "sweeps"))
plots.save_table(best, cfg.out(NB, "best_settings"))
print(f"sweeps: {len(sweeps)} rows, {sweep_forwards} forward passes, {time.perf_counter() - sweep_start:.0f} s")
best

# %%
for stem, rows, panel, title in gen.sweep_panels(sweeps, main_fill, q):
    fig = plots.sweep_lines(rows, panel, LABELS, title)
    if fig is not None:
        plots.save_figure(fig, cfg.out(NB, stem))

# %% [markdown]
# ## Cost: wall time per image, beside the quality
# Each technique's maps computed **afresh, bypassing the cache**, for a fixed batch: the first
# `xai_cost_images` generation images (sorted paths) for the CAM family (one forward and one
# backward pass per image; LEAM at every named layer, the others at the main layer; the fastest of
# 3 runs), and the first of them for RISE (`rise_masks` masked forwards per image, 16 per batch, one
# run; S-RISE and CorrRISE are timed apart although the maps above share their passes). Timed on
# this machine, now (other jobs on it slow it down); quality = the main table's LFW recognition
# rate of the same model.

# %%
cost = gen.cost_table(cfg, zoo, protocols[first], techs, main_layer)
plots.save_table(cost, cfg.out(NB, "cost"))
quality = main_table[(main_table.dataset == first) & (main_table.model != MEAN)][["technique", "model",
                                                                                  "recognition_rate", "subset"]]
cost_quality = cost.merge(quality, on=["technique", "model"], how="left")
fig, ax = plots.plt.subplots(figsize=(6.4, 4.2))
markers = dict(zip(names, "os^Dvp"))
colours = dict(zip(techs, sns.color_palette("tab10", len(techs))))
for r in cost_quality.itertuples():
    ax.scatter(r.seconds_per_image, r.recognition_rate, marker=markers[r.model], color=colours[r.technique], s=50)
for tech in techs:
    ax.scatter([], [], color=colours[tech], label=LABELS[tech])
for name in names:
    ax.scatter([], [], marker=markers[name], color="grey", label=name)
floor = main_table[(main_table.dataset == first) & (main_table.model == MEAN) & (main_table.technique == RANDOM)]
if len(floor):
    ax.axhline(floor.recognition_rate.iloc[0], ls=":", color="grey", label="random pixels (mean)")
ax.set(xscale="log", xlabel="seconds per image (this machine)", ylabel="recognition rate after occlusion",
       ylim=(0, 1.05), title=f"Cost vs quality ({first}; lower rate = regions matter more)")
ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "cost_quality"))
cost_quality

# %% [markdown]
# ### Reading
# Written from the numbers above (regenerated with them). "Below the floor" = a lower mean
# recognition rate than as many random pixels on the same images and models.

# %%
lines = []
for dname in avail:
    d = main_table[(main_table.dataset == dname) & (main_table.model == MEAN)].set_index("technique")
    floor_rate = d.recognition_rate.get(RANDOM, np.nan)
    ranked = d.drop(index=RANDOM, errors="ignore").sort_values("recognition_rate")
    parts = [f"{LABELS[t]} {r.recognition_rate:.3f} ({r.recognition_rate - floor_rate:+.3f}"
             f"{', RISE subset' if r.subset == RISE_SUBSET else ''})" for t, r in ranked.iterrows()]
    lines.append(f"- **{dname}** ({main_fill}, top {q:g}%, mean over {len(names)} models): random floor "
                 f"{floor_rate:.3f}, clean {d.clean_recognition_rate.mean():.3f}; techniques from lowest rate: "
                 + "; ".join(parts) + ".")
for dname, why in unavailable.items():
    lines.append(f"- **{dname}**: not available ({why}).")
if len(fill_ranges):
    widest = fill_ranges.loc[fill_ranges["range across fills"].idxmax()]
    lines.append(f"- Fill type: the recognition rate moves by {fill_ranges['range across fills'].mean():.3f} on "
                 f"average across the {len(fill_kinds)} fills (widest: {LABELS[widest.technique]} on "
                 f"{widest.dataset}, {widest['range across fills']:.3f}).")
for r in best.itertuples():
    lines.append(f"- Best {r.hyperparameter} for {LABELS[r.technique]} on {r.model}: **{r.best_value}** "
                 f"(rate {r.recognition_rate:.3f}, drop {r.mean_drop:.4f}"
                 + (f"; tied: {r.tied_values}" if "," in str(r.tied_values) else "") + ").")
fastest = cost.groupby("technique").seconds_per_image.mean().sort_values()
lines.append("- Cost (mean over models, s/image): " + ", ".join(f"{LABELS[t]} {v:.3g}" for t, v in fastest.items())
             + ".")
missing = main_table[(main_table.model == MEAN) & (main_table.technique != RANDOM)
                     & (main_table.published_recognition_rate == gen.NOT_GIVEN)]
if len(missing):
    lines.append("- No value of the second work's Table 1 in `facexai.published` for: "
                 + ", ".join(f"{LABELS[t]} on {d}" for t, d in zip(missing.technique, missing.dataset))
                 + " (column `published`: not given here).")
if RISE_SUBSET in set(main_table.subset):
    lines.append(f"- S-RISE / CorrRISE rows cover the RISE subset only ({cfg.rise_masks} masks, "
                 f"up to {n_rise_images} generation images); the paper profile explains everyone with 4000 masks.")
display(Markdown("\n".join(lines)))
print(f"notebook 08 done in {time.perf_counter() - started:.0f} s")
