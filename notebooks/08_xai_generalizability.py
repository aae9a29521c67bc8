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
techniques = "leam,gradcam,gradcam++,layercam,srise,corrrise"  # the random-pixel floor is always added
fills = "black,white,random,mean,blur"  # the first one is the main table's fill
q = 1.0  # top q% pixels occluded
cam_layer = -2  # the Grad-CAM family's layer in the main table (index into the named layers; -2: second-to-last)
xai_models = ""  # comma-separated models to explain; empty: the profile's xai_models
calfw_root = ""  # CALFW folder (pairs_CALFW.txt + images); empty: $FACEXAI_CALFW, else "not available"
cplfw_root = ""  # CPLFW folder (pairs_CPLFW.txt + images); empty: $FACEXAI_CPLFW, else "not available"
n_eval = None  # held-out images per person; None: the profile's occlusion_n_eval
n_random_seeds = None  # random-pixel floor draws; None: the profile's occlusion_seeds
n_impostors = 5  # impostor partners per occluded image (pairs built from the selected people)
n_boot = 200  # bootstrap resamples inside validation.summarize (its CIs are not used in these tables)

# %% [markdown]
# # 08 · Do the explanations generalize? Six techniques, one occlusion test
#
# The second work asks of every XAI technique the question of notebook 06: if a technique's map of
# a person finds what the model relies on, hiding the **1%** most relevant pixels of that person on
# **new** images of them should make the model fail. Protocol (`facexai.validation`, as in 06):
# per person, seeded, *generation* images make the person map (mean of the per-image maps), the
# held-out images are occluded at the map's top 1% pixels (black fill for the main table); the
# **recognition rate** is the share of genuine pairs (occluded image with each other image of the
# person) still accepted at the threshold fixed on the run's clean pairs, the **balanced accuracy**
# adds impostor pairs. Lower = the technique's regions generalize to unseen images of the person.
# The **floor** is as many uniformly random pixels.
#
# Techniques (`facexai.comparison.TECHNIQUES`): **LEAM** (every named layer, overall map, as in
# 03/06), **Grad-CAM**, **Grad-CAM++**, **LayerCAM** (one named layer, the second-to-last by
# default), **S-RISE** and **CorrRISE** (the input, from one shared set of masked forward passes;
# on a subset of people when the profile says so, see below). Data sets: **LFW** (this run's
# images and pairs), **CALFW** and **CPLFW** when their folders are given (their rows say "not
# available" otherwise). Then the same table per fill type, the hyperparameters the second work
# tuned (layer, loss, RISE masks and grid), and the wall time per image of each technique.
#
# Tables (tidy CSVs in `figures/<run>/08_xai_generalizability/`, read by 09):
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
from IPython.display import Markdown, display

from facexai import comparison, data, plots, profiles, study, validation
from facexai.comparison import ALL, GRAD_CAMS, LABELS, MEAN, RANDOM, RISE, RISE_SUBSET
from facexai.models import load_model

plots.use_style()
started = time.perf_counter()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, seed=seed, run_name=run_name, xai_models=xai_models,
                       occlusion_n_eval=n_eval, occlusion_seeds=n_random_seeds)
st = study.load(cfg)
NB = "08_xai_generalizability"
techs = comparison.parse_list(techniques)
unknown = [t for t in techs if t not in comparison.TECHNIQUES]
if unknown:
    raise ValueError(f"unknown techniques {unknown}; valid: {list(comparison.TECHNIQUES)}")
fill_kinds = comparison.parse_list(fills)
main_fill = fill_kinds[0]
seeds = list(range(cfg.occlusion_seeds))
names = comparison.xai_models(cfg)
sweep_names = comparison.sweep_models(cfg, names)
zoo = {name: load_model(name, cfg.device, cfg.cache_root) for name in names}
main_layer = {name: list(m.layers)[cam_layer] for name, m in zoo.items()}
swept_layers = {name: comparison.sweep_layers(list(zoo[name].layers), cfg.xai_sweep_layers) for name in sweep_names}
floor_technique = next((t for t in techs if t not in RISE), techs[0])  # its runs also occlude the random floor
print(f"profile {cfg.profile}: models {names} (sweeps on {sweep_names}); techniques {techs}; fills {fill_kinds}")
print(f"Grad-CAM family layer: {main_layer}; RISE: {cfg.rise_masks} masks of {comparison.RISE_CELL}-px cells on "
      f"{cfg.rise_images or 'all'} generation images")


def cam_layers(name: str, dataset: str) -> list[str]:
    """Layers a Grad-CAM-family pass explains: the main layer, plus the swept ones on LFW's sweep models (one pass)."""
    swept = [layer for layer, _ in swept_layers.get(name, [])] if dataset == "LFW" else []
    return list(dict.fromkeys([main_layer[name], *swept]))


# %% [markdown]
# ## Data sets
# LFW is this run's data (notebook 00). CALFW and CPLFW load through `data.load_pair_list_dataset`
# when their folders are given (parameters `calfw_root` / `cplfw_root` or `$FACEXAI_CALFW` /
# `$FACEXAI_CPLFW`): the profile's number of people (seeded) and of pairs per fold, aligned as LFW.

# %%
studies, unavailable = {"LFW": st}, {}
for dname, given in [("CALFW", calfw_root), ("CPLFW", cplfw_root)]:
    try:
        studies[dname] = comparison.pair_list_study(cfg, comparison.dataset_root(dname, given), dname.lower(), names)
    except data.DatasetMissing as err:
        unavailable[dname] = str(err)
protocols = {d: validation.make_protocol(s, cfg.occlusion_n_eval, cfg.seed, n_impostors=n_impostors,
                                         official=(cfg.pairs is not None) if d == "LFW" else True)
             for d, s in studies.items()}
overview = pd.DataFrame(
    [{"dataset": d, "status": "ok", "people": len(p.generation), "generation images": len(p.generation_paths),
      "held-out images": sum(map(len, p.occluded.values())), "genuine pairs": int(p.pairs.same.sum()),
      "impostor pairs": int((~p.pairs.same).sum()), "pairs": p.pair_source} for d, p in protocols.items()]
    + [{"dataset": d, "status": comparison.NOT_AVAILABLE, "pairs": why} for d, why in unavailable.items()])
n_held = {d: sum(map(len, p.occluded.values())) for d, p in protocols.items()}
n_gen = {d: len(p.generation_paths) for d, p in protocols.items()}
n_cam = sum(t not in RISE for t in techs)
n_rise_images = min(cfg.rise_images or n_gen["LFW"], n_gen["LFW"])
print(f"at most, per model and data set: {n_cam} x ~{n_gen['LFW']} forward+backward passes (CAM maps), "
      f"~{n_rise_images} x {cfg.rise_masks} forwards (RISE maps, S-RISE and CorrRISE share them), "
      f"{len(techs)} x {len(fill_kinds)} x {n_held['LFW']} + {len(seeds)} x {len(fill_kinds)} x {n_held['LFW']} "
      f"forwards (occlusion; cache hits need none)")
overview

# %% [markdown]
# ## Run: every technique, model and data set, every fill
# Maps come from the generation images only (cached by `saliency.image_maps`; on LFW's sweep
# models the Grad-CAM family explains all swept layers in the same pass); occluded images are
# embedded in batches and cached, so a rerun needs no forward pass. The counts below are the work
# actually done.

# %%
runs, rise_paths, log_rows = [], {d: set() for d in protocols}, []
for dname, prot in protocols.items():
    n_mappable = sum(len(v) >= 2 for v in prot.generation.values())
    for name, model in zoo.items():
        for tech in techs:
            lm = comparison.technique_maps(cfg, model, prot, tech, layers=cam_layers(name, dname) if tech in GRAD_CAMS
                                           else None)
            maps = lm.layer(main_layer[name]) if tech in GRAD_CAMS else lm.overall()
            subset = RISE_SUBSET if tech in RISE and len(maps) < n_mappable else ALL
            run = validation.occlusion_experiment(cfg, model, maps, model.spec.geometry, prot, explainer=tech,
                                                  fills=fill_kinds, qs=[q],
                                                  random_seeds=seeds if tech == floor_technique else ())
            runs.append(comparison.label(run, dataset=dname, subset=subset))
            if subset == RISE_SUBSET:
                rise_paths[dname] |= set(run.images.path)
            log_rows.append({"dataset": dname, "model": name, "technique": tech, "person maps": len(maps),
                             "images explained": lm.n_images, "map forwards": lm.forward_passes,
                             "map s": round(lm.seconds, 1), "occlusion forwards": run.forward_passes,
                             "occlusion s": round(run.seconds, 1)})
            print(f"{dname} {name} {tech}: {len(maps)} person maps from {lm.n_images} images "
                  f"({lm.forward_passes} forwards, {lm.seconds:.0f} s); occlusion {run.forward_passes} forwards, "
                  f"{run.seconds:.0f} s")
work = pd.DataFrame(log_rows)
print(f"total: {work['map forwards'].sum()} map forwards in {work['map s'].sum():.0f} s, "
      f"{work['occlusion forwards'].sum()} occlusion forwards in {work['occlusion s'].sum():.0f} s")
for dname, paths in rise_paths.items():
    if paths:
        print(f"{dname}: RISE on a subset: {len(paths)} held-out images of {len(paths)} people "
              f"(of {n_held[dname]}), maps from {n_rise_images} generation images")

# %% [markdown]
# ## Table 1: recognition rate after occluding each technique's 1%
# Mean over this run's models (`model = "mean"` rows of `main_table.csv`); lower = the regions
# matter more. `published` is the second work's Table 1 value where it is recorded in
# `facexai.published.PUBLISHED` (the one place the works' numbers are typed). **None is recorded**:
# this repository does not have the paper's Table 1 values, so the column reads "not given here"
# rather than a number typed from memory. Someone with the paper adds one entry there,
#
# ```python
# "xai_table1": Published("XAI-gen", "Table 1", "recognition rate after occluding 1% (black fill), "
#                         "mean over the work's models", {"gradcam++|LFW": ..., "layercam|CALFW": ..., ...}),
# ```
#
# (keys `technique|DATASET`, or `technique|DATASET|fill` for other fills), and the tables pick it
# up. Rows marked `rise subset` (S-RISE, CorrRISE in the smaller profiles) cover only the people
# RISE explained; see the subset comparison below.

# %%
full = validation.combine(runs)
summary = validation.summarize(full, by=["dataset", "subset"], n_boot=n_boot, seed=cfg.seed)
table = comparison.result_table(comparison.technique_rows(summary), unavailable, techs, fill_kinds, names)
main_table = table[table.fill == main_fill].reset_index(drop=True)
plots.save_table(main_table, cfg.out(NB, "main_table"))
plots.save_table(table, cfg.out(NB, "fill_table"))
table1 = pd.concat({label: comparison.wide(main_table, col, "dataset", mask=col != "published_recognition_rate",
                                           model=MEAN)
                    for col, label in [("recognition_rate", "recognition rate"),
                                       ("balanced_accuracy", "balanced accuracy"),
                                       ("published_recognition_rate", "published")]}, axis=1)
table1 = table1.swaplevel(axis=1)[[(d, m) for d in comparison.DATASETS
                                   for m in ["recognition rate", "balanced accuracy", "published"]]]
display(Markdown(f"**Table 1** ({main_fill} fill, top {q:g}%, mean over {', '.join(names)}):"))
table1

# %% [markdown]
# ### Per model
# The same measure per model (second table), for each data set that is available.

# %%
for dname in protocols:
    per_model = comparison.wide(main_table, "recognition_rate", "model", dataset=dname)
    means = main_table[(main_table.dataset == dname) & (main_table.model == MEAN)]
    per_model["subset"] = means.set_index(means.technique.map(LABELS)).subset
    display(Markdown(f"**{dname}**: recognition rate per model ({main_fill} fill, top {q:g}%)"))
    display(per_model)

# %%
avail = list(protocols)
fig, axes = plots.plt.subplots(2, len(avail), figsize=(1.0 * (len(techs) + 1) * len(avail) + 1.5, 6.4), squeeze=False)
palette = dict(zip(names, plots.sns.color_palette("colorblind", len(names))))
for c, dname in enumerate(avail):
    d = main_table[main_table.dataset == dname]
    order = list(dict.fromkeys(d.technique))
    for r, (col, ylabel) in enumerate([("recognition_rate", "recognition rate"),
                                       ("balanced_accuracy", "balanced accuracy")]):
        ax = axes[r, c]
        mean = d[d.model == MEAN].set_index("technique")[col].reindex(order)
        colours = ["#7f8c8d" if t == RANDOM else "#c0392b" for t in order]
        hatches = ["//" if s == RISE_SUBSET else "" for s in d[d.model == MEAN].set_index("technique").subset
                   .reindex(order)]
        for x, (v, colour, hatch) in enumerate(zip(mean, colours, hatches)):
            ax.bar(x, v, color=colour, alpha=0.75, hatch=hatch, edgecolor="k", lw=0.5)
        for name in names:
            per = d[d.model == name].set_index("technique")[col].reindex(order)
            ax.plot(range(len(order)), per, "o", color=palette[name], label=name, ms=5)
        if col == "recognition_rate":
            ax.axhline(d[d.model == MEAN].clean_recognition_rate.mean(), ls="--", color="k", lw=1, label="clean")
        ax.set_xticks(range(len(order)), [LABELS[t] for t in order], rotation=35, ha="right")
        ax.set(ylim=(0, 1.05), ylabel=ylabel if c == 0 else "", title=dname if r == 0 else "")
axes[0, -1].legend(fontsize=7, loc="lower right")
fig.suptitle(f"Occluding each technique's top {q:g}% pixels ({main_fill} fill) on held-out images: bars = mean over "
             f"models, dots = models; hatched = RISE subset")
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "main_table"))

# %% [markdown]
# ### RISE on its subset, beside every other technique on the same people
# When RISE explains only some people (the profile's `rise_images`), its rows above cover fewer
# held-out images than the others. `rise_subset_table.csv` restricts every technique's and the
# floor's rows to exactly the people RISE explained (same columns as the main table, subset
# `rise subset`), so the comparison is like for like.

# %%
subset_runs = [comparison.restrict(r, rise_paths[r.images.dataset.iloc[0]]) for r in runs
               if len(r.images) and r.images.subset.iloc[0] == ALL and rise_paths[r.images.dataset.iloc[0]]]
if subset_runs:
    sub = validation.combine([comparison.label(r, subset=RISE_SUBSET) for r in subset_runs] +
                             [r for r in runs if len(r.images) and r.images.subset.iloc[0] == RISE_SUBSET])
    sub_summary = validation.summarize(sub, by=["dataset", "subset"], n_boot=n_boot, seed=cfg.seed)
    rise_table = comparison.result_table(comparison.technique_rows(sub_summary), {}, techs, fill_kinds, names)
    rise_table = rise_table[rise_table.fill == main_fill].reset_index(drop=True)
    plots.save_table(rise_table, cfg.out(NB, "rise_subset_table"))
    for dname in sorted(set(rise_table.dataset), key=list(protocols).index):
        display(Markdown(f"**{dname}**, RISE subset: recognition rate per model"))
        display(comparison.wide(rise_table, "recognition_rate", "model", dataset=dname))
else:
    rise_table = None
    display(Markdown("RISE explained every person: no subset table."))

# %% [markdown]
# ## Occlusion type: the same table per fill
# `fill_table.csv` (the main table's columns, every fill). Heatmap: recognition rate, mean over
# models; beside each technique, the range of its rate across fills (max - min).

# %%
fig, axes = plots.plt.subplots(1, len(avail), figsize=((1.1 * len(fill_kinds) + 4) * len(avail), 0.5 * len(techs) + 2.2),
                               squeeze=False)
for ax, dname in zip(axes[0], avail):
    grid = comparison.wide(table, "recognition_rate", "fill", model=MEAN, dataset=dname).astype(float)
    spread = grid.max(axis=1) - grid.min(axis=1)
    grid.index = [f"{t} (range {s:.3f})" for t, s in zip(grid.index, spread)]
    plots.sns.heatmap(grid, annot=True, fmt=".3f", cmap="rocket", vmin=max(0.0, grid.min().min() - 0.05), vmax=1,
                      ax=ax, cbar_kws={"label": "recognition rate"}, annot_kws={"size": 8})
    ax.set(title=f"{dname}: recognition rate by fill", xlabel="fill", ylabel="")
fig.suptitle(f"Occlusion type (top {q:g}%, mean over {', '.join(names)})")
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "fills"))
fill_ranges = (table[(table.model == MEAN) & (table.status == comparison.OK)]
               .groupby(["dataset", "technique"], sort=False).recognition_rate.agg(lambda s: s.max() - s.min())
               .rename("range across fills").reset_index())
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
# Each setting is occluded like the main table (black fill, held-out images); best = lowest
# recognition rate (ties: larger cosine drop, then the first value; `tied_values` lists them).

# %%
sweep_parts, sweep_forwards, sweep_start = [], [], time.perf_counter()
lfw = protocols["LFW"]


def sweep_point(model, maps, tech, hyperparameter, value, position=np.nan):
    """Occlude one setting's maps (main fill, no random floor) and return its sweep rows."""
    run = validation.occlusion_experiment(cfg, model, maps, model.spec.geometry, lfw, explainer=tech,
                                          fills=[main_fill], qs=[q], random_seeds=())
    sweep_forwards.append(run.forward_passes)
    return comparison.sweep_rows(validation.summarize(run, n_boot=n_boot, seed=cfg.seed), hyperparameter, value,
                                 position)


for name in sweep_names:
    model = zoo[name]
    main_pos = len(model.layers) - 1 - list(model.layers).index(main_layer[name])
    for tech in [t for t in techs if t in GRAD_CAMS]:
        lm = comparison.technique_maps(cfg, model, lfw, tech, layers=cam_layers(name, "LFW"))
        sweep_forwards.append(lm.forward_passes)
        for layer, pos in swept_layers[name]:
            sweep_parts.append(sweep_point(model, lm.layer(layer), tech, "layer", layer, pos))
        for value, kwargs in comparison.loss_settings(comparison.parse_list(cfg.xai_margins, float)):
            if kwargs["target"] == "cosine":
                maps = lm.layer(main_layer[name])
            else:
                other = comparison.technique_maps(cfg, model, lfw, tech, layers=[main_layer[name]], **kwargs)
                sweep_forwards.append(other.forward_passes)
                maps = other.layer(main_layer[name])
            sweep_parts.append(sweep_point(model, maps, tech, "loss", value, main_pos))
    for tech in [t for t in techs if t in RISE]:
        for hyper, values in comparison.rise_sweep(cfg).items():
            for value in values:
                lm = comparison.technique_maps(cfg, model, lfw, tech, **{hyper: value})
                sweep_forwards.append(lm.forward_passes)
                sweep_parts.append(sweep_point(model, lm.overall(), tech, hyper, value))
    print(f"{name}: sweeps done ({time.perf_counter() - sweep_start:.0f} s so far)")
sweeps = pd.concat(sweep_parts, ignore_index=True) if sweep_parts else pd.DataFrame(columns=comparison.SWEEP_COLUMNS)
best = comparison.best_settings(sweeps)
plots.save_table(sweeps, cfg.out(NB, "sweeps"))
plots.save_table(best, cfg.out(NB, "best_settings"))
print(f"sweeps: {len(sweeps)} rows, {sum(sweep_forwards)} forward passes, {time.perf_counter() - sweep_start:.0f} s")
best


# %%
def sweep_figure(d, panel, stem, title):
    """Recognition rate (top) and cosine drop (bottom) along a sweep's ``x`` labels: one panel per ``panel`` value,
    a line per technique (and model)."""
    if d.empty:
        return
    panels = list(dict.fromkeys(d[panel]))
    fig, axes = plots.plt.subplots(2, len(panels), figsize=(max(5.0, 0.6 * d.x.nunique() + 2.5) * len(panels), 5.8),
                                   squeeze=False, sharey="row")
    for c, value in enumerate(panels):
        for (tech, name), g in d[d[panel] == value].groupby(["technique", "model"], sort=False):
            for r, col in enumerate(["recognition_rate", "mean_drop"]):
                axes[r, c].plot(g.x, g[col], "o-", label=LABELS[tech] + ("" if panel == "model" else f" / {name}"))
        axes[0, c].set(title=str(value), ylim=(0, 1.05))
        axes[1, c].tick_params(axis="x", rotation=35)
        axes[0, c].tick_params(axis="x", labelbottom=False)
    axes[0, 0].set_ylabel("recognition rate")
    axes[1, 0].set_ylabel("cosine drop")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    plots.save_figure(fig, cfg.out(NB, stem))


layer_rows = sweeps[sweeps.hyperparameter == "layer"].sort_values("position", ascending=False, kind="stable")
sweep_figure(layer_rows.assign(x=[f"{v} ({int(k)})" for v, k in zip(layer_rows.value, layer_rows.position)]), "model",
             "sweep_layer", f"Layer (position from the end; 0 = last), cosine target, {main_fill} fill, top {q:g}%")
sweep_figure(sweeps[sweeps.hyperparameter == "loss"].assign(x=lambda d: d.value.astype(str)), "model", "sweep_loss",
             f"Loss: cosine vs ArcFace margin (main layer, {main_fill} fill, top {q:g}%)")
sweep_figure(sweeps[sweeps.hyperparameter.isin(["n_masks", "cell_size"])].assign(x=lambda d: d.value.astype(str)),
             "hyperparameter", "sweep_rise", f"RISE: mask count and grid cell size, px ({main_fill} fill, top {q:g}%)")

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
cost_paths = sorted(lfw.generation_paths)[:cfg.xai_cost_images]
cost_rows = []
for name, model in zoo.items():
    crops, _ = study.crops(cfg, cost_paths, model.spec.geometry)
    for tech in techs:
        n, repeats = (1, 1) if tech in RISE else (len(crops), 3)
        sec = comparison.time_explainer(model, crops[:n], tech, layers=[main_layer[name]] if tech in GRAD_CAMS else None,
                                        n_masks=cfg.rise_masks, seed=cfg.seed, repeats=repeats)
        cost_rows.append(comparison.cost_row(tech, name, sec, n, cfg.rise_masks if tech in RISE else 0, repeats))
cost = pd.DataFrame(cost_rows, columns=comparison.COST_COLUMNS)
plots.save_table(cost, cfg.out(NB, "cost"))
quality = main_table[(main_table.dataset == "LFW") & (main_table.model != MEAN)][["technique", "model",
                                                                                  "recognition_rate", "subset"]]
cost_quality = cost.merge(quality, on=["technique", "model"], how="left")
fig, ax = plots.plt.subplots(figsize=(6.4, 4.2))
markers = dict(zip(names, "os^Dvp"))
colours = dict(zip(techs, plots.sns.color_palette("tab10", len(techs))))
for r in cost_quality.itertuples():
    ax.scatter(r.seconds_per_image, r.recognition_rate, marker=markers[r.model], color=colours[r.technique], s=50)
for tech in techs:
    ax.scatter([], [], color=colours[tech], label=LABELS[tech])
for name in names:
    ax.scatter([], [], marker=markers[name], color="grey", label=name)
floor = main_table[(main_table.dataset == "LFW") & (main_table.model == MEAN) & (main_table.technique == RANDOM)]
if len(floor):
    ax.axhline(floor.recognition_rate.iloc[0], ls=":", color="grey", label="random pixels (mean)")
ax.set(xscale="log", xlabel="seconds per image (this machine)", ylabel="recognition rate after occlusion",
       ylim=(0, 1.05), title="Cost vs quality (LFW; lower rate = regions matter more)")
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
if (main_table.published_recognition_rate == comparison.NOT_GIVEN).any():
    lines.append("- The second work's Table 1 values are not recorded in `facexai.published` "
                 "(column `published`: not given here).")
if RISE_SUBSET in set(main_table.subset):
    lines.append(f"- S-RISE / CorrRISE rows cover the RISE subset only ({cfg.rise_masks} masks, "
                 f"{n_rise_images} generation images); the paper profile explains everyone with 4000 masks.")
display(Markdown("\n".join(lines)))
print(f"notebook 08 done in {time.perf_counter() - started:.0f} s")
