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
# # 07 · Transferability: do one model's critical pixels hurt another model?
#
# Every generation model's person maps are occluded (top q% pixels) on held-out images as every
# evaluation model sees them. The result is the second work's Table 2 layout (rows generation,
# columns evaluation, recognition rate after the occlusion, plus the clean row) for **LEAM** and for
# **Grad-CAM++** (the poster's explainer), with the white-box diagonal and a random-pixel floor;
# and where one model's critical pixels land on another model's crop.

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
dataset = "LFW"  # LFW (this run's images) | CALFW | CPLFW (their folder: dataset_root, else $FACEXAI_CALFW / $FACEXAI_CPLFW)
dataset_root = ""  # CALFW / CPLFW folder (pair list + images); empty: the environment variable
explainers = "leam,gradcam++"  # one transfer table each: leam (the LEAM work) | gradcam++ (the poster's Table 2) | ...
layers = ""  # comma-separated layers; empty: the technique's policy (LEAM every named layer, CAMs cam_layer)
cam_layer = None  # index of the Grad-CAM family's named layer (-2: second-to-last); None: the [method] table
map_images = "generation"  # generation: maps of the generation images only | all: reuse 03's maps of every image
fill = None  # black | white | random | mean | blur; None: the method table's main fill
q = None  # top q% pixels; None: the method table
n_eval = None  # held-out images per person; None: the profile's occlusion_n_eval
n_random_seeds = None  # random-pixel baseline draws; None: the profile's occlusion_seeds
n_impostors = 5
n_boot = 1000

# %% [markdown]
# ## Protocol
#
# Every **generation** model makes person maps (from the generation images, as in 06); their top
# q% pixels are occluded on the held-out images as every **evaluation** model sees them: in the
# evaluation model's own crop, the map carried there through each image's alignment matrices
# (a FaceNet 160 box crop, a 112 ArcFace crop and a 150 dlib chip show the face at different
# places and scales). The diagonal (generation = evaluation) is the **white-box** case, the rest
# **black-box** transfer; a row of **random** pixels (same count) is the floor. Measures as in 06:
# recognition rate and balanced accuracy at the evaluation model's clean threshold, and the
# cosine drop. In the form of the second work's Table 2: rows generation, columns evaluation;
# lower accuracy = stronger transfer. Library: `facexai.occlusion_runner.transfer_experiment`,
# `facexai.occlusion_summary.transfer_table` / `table2`.

# %%
import pandas as pd
from IPython.display import Markdown, display

from facexai import (feasibility, generalizability, occlusion_runner, occlusion_summary, person_maps, plots, profiles,
                     study, techniques)
from facexai.models import load_model

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, scheduler=scheduler, seed=seed, run_name=run_name,
                       n_identities=n_identities, min_images=min_images, figures_dir=figures_dir, occlusion_n_eval=n_eval,
                       occlusion_seeds=n_random_seeds)
method = profiles.method(cam_layer=cam_layer, fill=fill, q=q)
fill, q = method.fill, method.q
NB = "07_transferability"
seeds = list(range(cfg.occlusion_seeds))
layer_names = [s.strip() for s in layers.split(",") if s.strip()] or None
names = profiles.parse_list(explainers)
for name in names:
    techniques.get(name)  # ValueError naming the valid ones
feasibility.check(NB, study.load(cfg).images, cfg)
studies, unavailable = generalizability.load_datasets(cfg, [dataset], cfg.models, study.load(cfg),
                                                      {dataset: dataset_root})
if unavailable:
    protocol = None
    missing = pd.DataFrame([{"dataset": dataset, "status": generalizability.NOT_AVAILABLE, "note": unavailable[dataset]}])
    plots.save_table(missing, cfg.out(NB, occlusion_summary.transfer_file("leam", dataset=dataset)))
    display(Markdown(f"**{dataset} is not available**: {unavailable[dataset]}. Nothing to measure."))
else:
    protocol = generalizability.dataset_protocols(cfg, studies, n_impostors)[dataset]
    n_occ = sum(len(v) for v in protocol.occluded.values())
    print(f"{dataset}: {n_occ} held-out images of {len(protocol.occluded)} people; pairs: {protocol.pair_source}")
    print(f"{len(names)} explainer(s) x {len(cfg.models)} x {len(cfg.models)} cells + random floor: at most "
          f"{len(names) * (len(cfg.models) ** 2 + len(cfg.models) * len(seeds)) * n_occ} forward passes")

# %% [markdown]
# ## Person maps of every generation model, for every explainer

# %%
zoo = {name: load_model(name, cfg.device, cfg.cache_root) for name in cfg.models}
maps = {}
for tech in names if protocol is not None else []:
    t = techniques.get(tech)
    maps[tech] = {name: person_maps.generation_maps(
        cfg, model, protocol, tech, map_images=map_images,
        layers=t.layers_for(list(model.layers), layer_names, method.cam_layer)) for name, model in zoo.items()}
    for name, pm in maps[tech].items():
        print(f"{t.label} {name} ({pm.geometry}): {len(pm)} person maps, layers {pm.layers}")

# %% [markdown]
# ## Occlude every generation model's pixels on every evaluation model
# Cells already computed by 06 (LEAM's diagonal and the random floor with the same fill and q)
# come from the cache. `transfer_table.csv` (LEAM) and `transfer_table_gradcampp.csv`
# (Grad-CAM++; `occlusion_summary.TRANSFER_COLUMNS`): one row per generation x evaluation
# (generation `random` = the floor): generation, evaluation, explainer, fill, q, recognition_rate,
# balanced_accuracy, mean_drop, n_images, in_sample, ci_lo / ci_hi (of the drop),
# clean_recognition_rate. `transfer_table2_recognition[_<explainer>].csv`: the Table-2 layout.

# %%
tables, table2 = {}, {}
for tech, generated in maps.items():
    run = occlusion_runner.transfer_experiment(cfg, zoo, generated, protocol, fill=fill, q=q, random_seeds=seeds)
    print(f"{tech}: {run.forward_passes} forward passes, {run.seconds:.0f} s")
    summary = occlusion_summary.summarize(run, n_boot=n_boot, seed=cfg.seed)
    tables[tech] = occlusion_summary.transfer_table(summary)
    table2[tech] = occlusion_summary.table2(tables[tech], cfg.models)
    plots.save_table(tables[tech], cfg.out(NB, occlusion_summary.transfer_file(tech, dataset=dataset)))
    plots.save_table(table2[tech].reset_index(), cfg.out(NB, occlusion_summary.transfer_file(
        tech, "transfer_table2_recognition", dataset)))
for tech, grid in table2.items():
    display(Markdown(f"**Recognition rate** ({techniques.get(tech).label}, {dataset}, {fill} fill, top {q:g}%; "
                     "diagonal = white-box):"))
    display(grid.style.format("{:.3f}"))

# %%
titles = {"recognition_rate": "recognition rate", "balanced_accuracy": "balanced accuracy", "mean_drop": "cosine drop"}
for tech, table in tables.items():
    grids = {label: occlusion_summary.table2(table, cfg.models, m).drop(index=occlusion_summary.CLEAN_ROW,
                                                                        errors="ignore")
             for m, label in titles.items()}
    fig = plots.transfer_heatmaps(grids, list(cfg.models),
                                  f"Transfer of critical pixels ({techniques.get(tech).label}, {fill} fill, top "
                                  f"{q:g}%); cyan = white-box, last row = random pixels")
    plots.save_figure(fig, cfg.out(NB, occlusion_summary.transfer_file(tech, "transfer_heatmaps", dataset)))

# %% [markdown]
# ## Where one model's critical pixels land on another model's crop
# One held-out image: each generation model's top q% pixels (rows) drawn in red on each evaluation
# model's crop (columns), i.e. exactly the pixels occluded in the table's cells (the first explainer).

# %%
if maps:
    first = next(iter(maps))
    who, path = occlusion_runner.example_image(protocol, list(maps[first].values()), cfg.seed)
    shown = {}
    for gen in zoo:
        for ev, model in zoo.items():
            ex = occlusion_runner.occlusion_examples(cfg, maps[first][gen], protocol, path, model.spec.geometry, [], q)
            shown[(gen, ev)] = (ex["original"], ex["critical"])
    fig = plots.transfer_masks(shown, list(zoo), f"{who.replace('_', ' ')}: top {q:g}% pixels of each generation "
                                                 f"model ({techniques.get(first).label}), per evaluation crop")
    plots.save_figure(fig, cfg.out(NB, occlusion_summary.transfer_file(first, "warped_masks", dataset)))

# %% [markdown]
# ### Reading
# Written from the numbers above (regenerated with them). Black-box is "stronger" than white-box
# for an evaluation model when another model's pixels leave a lower recognition rate (or a larger
# cosine drop) on it than its own pixels do.

# %%
lines = [] if tables else [f"- {dataset}: not available ({unavailable.get(dataset, '')})."]
for tech, table in tables.items():
    label = techniques.get(tech).label
    rr = occlusion_summary.table2(table, cfg.models, "recognition_rate")
    drop = occlusion_summary.table2(table, cfg.models, "mean_drop")
    clean = rr.loc[occlusion_summary.CLEAN_ROW]
    ci = table.set_index(["generation", "evaluation"])[["ci_lo", "ci_hi"]]
    by_rate, by_drop = [], []
    for ev in cfg.models:
        own_rr, own_drop = rr.loc[ev, ev], drop.loc[ev, ev]
        others = [g for g in cfg.models if g != ev]
        for g in others:
            if rr.loc[g, ev] < own_rr:
                by_rate.append(f"{g} -> {ev} ({rr.loc[g, ev]:.3f} vs {own_rr:.3f})")
            if drop.loc[g, ev] > own_drop:
                clear = ci.loc[(g, ev), "ci_lo"] > ci.loc[(ev, ev), "ci_hi"]
                by_drop.append(f"{g} -> {ev} ({drop.loc[g, ev]:.4f} vs {own_drop:.4f}; the 95% CIs "
                               f"{'do not overlap' if clear else 'overlap'})")
        best = min(others, key=lambda g: (rr.loc[g, ev], -drop.loc[g, ev])) if others else None
        lines.append(f"- {label}, **{ev}**: white-box recognition {own_rr:.3f} (drop {own_drop:.4f}), random floor "
                     f"{rr.loc['random', ev]:.3f} (drop {drop.loc['random', ev]:.4f}), clean {clean[ev]:.3f}"
                     + (f"; the strongest transfer comes from **{best}** ({rr.loc[best, ev]:.3f}, drop "
                        f"{drop.loc[best, ev]:.4f})." if best else "."))
    beats_random = sum(drop.loc[g, ev] > drop.loc["random", ev] for ev in cfg.models for g in cfg.models if g != ev)
    n_off = len(cfg.models) * (len(cfg.models) - 1)
    lines.append(f"- {label}: black-box pixels lower the cosine more than random ones in {beats_random} of {n_off} "
                 f"off-diagonal cells.")
    lines.append(f"- {label}: black-box stronger than white-box, by recognition rate: " + ("; ".join(by_rate) or "never")
                 + ".")
    lines.append(f"- {label}: black-box stronger than white-box, by cosine drop: " + ("; ".join(by_drop) or "never")
                 + ".")
display(Markdown("\n".join(lines)))
