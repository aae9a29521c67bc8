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
explainer = "leam"  # leam (default) | gradcam++ (the second work's table) | gradcam | layercam | srise | corrrise
layers = ""  # comma-separated layers; empty: every named layer for LEAM, one layer (cam_layer) for the CAMs
cam_layer = -2  # index of the single named layer the Grad-CAM family explains (-2: second-to-last)
map_images = "generation"  # generation: maps of the generation images only | all: reuse 03's maps of every image
fill = "black"  # black | white | random | mean | blur
q = 1.0  # top q% pixels
n_eval = None  # held-out images per person; None: the profile's occlusion_n_eval
n_random_seeds = None  # random-pixel baseline draws; None: the profile's occlusion_seeds
n_impostors = 5
n_boot = 1000

# %% [markdown]
# # 07 · Transferability: do one model's critical pixels hurt another model?
#
# Every **generation** model makes person maps (from the generation images, as in 06); their top
# q% pixels are occluded on the held-out images as every **evaluation** model sees them: in the
# evaluation model's own crop, the map carried there through each image's alignment matrices
# (a FaceNet 160 box crop, a 112 ArcFace crop and a 150 dlib chip show the face at different
# places and scales). The diagonal (generation = evaluation) is the **white-box** case, the rest
# **black-box** transfer; a row of **random** pixels (same count) is the floor. Measures as in 06:
# recognition rate and balanced accuracy at the evaluation model's clean threshold, and the
# cosine drop. In the form of the second work's Table 2: rows generation, columns evaluation;
# lower accuracy = stronger transfer.

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from matplotlib.patches import Rectangle

from facexai import plots, profiles, study, validation
from facexai.models import load_model

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, seed=seed, run_name=run_name, occlusion_n_eval=n_eval,
                       occlusion_seeds=n_random_seeds)
st = study.load(cfg)
NB = "07_transferability"
seeds = list(range(cfg.occlusion_seeds))
layer_names = [s.strip() for s in layers.split(",") if s.strip()]
protocol = validation.make_protocol(st, cfg.occlusion_n_eval, cfg.seed, n_impostors=n_impostors,
                                    official=cfg.pairs is not None)
n_occ = sum(len(v) for v in protocol.occluded.values())
print(f"{n_occ} held-out images of {len(protocol.occluded)} people; pairs: {protocol.pair_source}")
print(f"{len(cfg.models)} x {len(cfg.models)} cells + random floor: at most "
      f"{(len(cfg.models) ** 2 + len(cfg.models) * len(seeds)) * n_occ} forward passes")

# %% [markdown]
# ## Person maps of every generation model

# %%
zoo = {name: load_model(name, cfg.device, cfg.cache_root) for name in cfg.models}
maps, used_layers = {}, {}
for name, model in zoo.items():
    used_layers[name] = validation.explainer_layers(model, explainer, layer_names, cam_layer)
    maps[name] = validation.generation_maps(cfg, model, protocol, explainer=explainer, layers=used_layers[name],
                                            map_images=map_images)
    print(f"{name} ({model.spec.geometry}): {len(maps[name])} person maps, layers: "
          f"{used_layers[name] or 'all named layers'}")

# %% [markdown]
# ## Occlude every generation model's pixels on every evaluation model
# Cells already computed by 06 (the diagonal and the random floor with the same fill and q) come
# from the cache.

# %%
runs = []
for ev, model in zoo.items():
    for gen in zoo:
        run = validation.occlusion_experiment(cfg, model, maps[gen], zoo[gen].spec.geometry, protocol,
                                              explainer=explainer, generation_model=gen, fills=[fill], qs=[q],
                                              random_seeds=seeds if gen == ev else ())
        runs.append(run)
        print(f"{gen} -> {ev}: {run.forward_passes} forward passes, {run.seconds:.0f} s")
run = validation.combine(runs)
print(f"total: {run.forward_passes} forward passes, {run.seconds:.0f} s")

# %% [markdown]
# ## The table
# `transfer_table.csv`: one row per generation x evaluation (generation `random` = the floor):
# generation, evaluation, explainer, fill, q, recognition_rate, balanced_accuracy, mean_drop,
# n_images, in_sample, ci_lo / ci_hi (of the drop), clean_recognition_rate.

# %%
summary = validation.summarize(run, n_boot=n_boot, seed=cfg.seed)
table = validation.transfer_table(summary)
plots.save_table(table, cfg.out(NB, "transfer_table"))
order = [*cfg.models, "random"]
wide = {m: table.pivot(index="generation", columns="evaluation", values=m)
        .reindex(index=order, columns=list(cfg.models)) for m in ["recognition_rate", "balanced_accuracy", "mean_drop"]}
clean = table.drop_duplicates("evaluation").set_index("evaluation").clean_recognition_rate.reindex(cfg.models)
table2 = wide["recognition_rate"].copy()
table2.loc["clean (no occlusion)"] = clean
table2.index.name = "generation \\ evaluation"
plots.save_table(table2.reset_index(), cfg.out(NB, "transfer_table2_recognition"))
display(Markdown(f"**Recognition rate** ({explainer}, {fill} fill, top {q:g}%; diagonal = white-box):"))
table2.style.format("{:.3f}")

# %%
titles = {"recognition_rate": "recognition rate", "balanced_accuracy": "balanced accuracy",
          "mean_drop": "cosine drop"}
fig, axes = plots.plt.subplots(1, 3, figsize=(4.2 * 3, 0.55 * len(order) + 2.2))
for ax, (m, w) in zip(axes, wide.items()):
    cmap = "rocket_r" if m == "mean_drop" else "rocket"
    rate = m != "mean_drop"  # rates share a scale up to 1; the drop's scale is its own
    plots.sns.heatmap(w, annot=True, fmt=".3f", cmap=cmap, cbar=True, ax=ax, annot_kws={"size": 8},
                      vmin=max(0.0, float(w.min().min()) - 0.05) if rate else None, vmax=1 if rate else None)
    for i, name in enumerate(cfg.models):
        ax.add_patch(Rectangle((i, i), 1, 1, fill=False, edgecolor="cyan", lw=2.5))
    ax.axhline(len(cfg.models), color="white", lw=3)
    ax.set(title=titles[m], xlabel="evaluation model", ylabel="generation model" if ax is axes[0] else "")
fig.suptitle(f"Transfer of critical pixels ({explainer}, {fill} fill, top {q:g}%); cyan = white-box, "
             f"last row = random pixels")
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "transfer_heatmaps"))

# %% [markdown]
# ## Where one model's critical pixels land on another model's crop
# One held-out image: each generation model's top q% pixels (rows) drawn in red on each evaluation
# model's crop (columns), i.e. exactly the pixels occluded in the table's cells.

# %%
rng = np.random.default_rng(cfg.seed)
who = sorted(protocol.occluded)[rng.integers(len(protocol.occluded))]
path = protocol.occluded[who][0]
fig, axes = plots.plt.subplots(len(zoo), len(zoo), figsize=(1.8 * len(zoo) + 0.6, 1.8 * len(zoo) + 0.4),
                               squeeze=False)
for r, gen in enumerate(zoo):
    for c, ev in enumerate(zoo):
        ex = validation.occlusion_examples(cfg, maps[gen], zoo[gen].spec.geometry, protocol, path,
                                           zoo[ev].spec.geometry, [], q)
        shown = ex["original"].copy()
        shown[ex["critical"]] = (255, 0, 0)
        ax = axes[r, c]
        ax.imshow(shown)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if r == 0:
            ax.set_title(f"on {ev}", fontsize=8)
        if c == 0:
            ax.set_ylabel(f"{gen}'s pixels", fontsize=8)
        if r == c:
            for side in ax.spines.values():
                side.set(edgecolor="cyan", linewidth=2.5)
fig.suptitle(f"{who.replace('_', ' ')}: top {q:g}% pixels of each generation model, per evaluation crop", y=1.0)
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "warped_masks"))

# %% [markdown]
# ### Reading
# Written from the numbers above (regenerated with them). Black-box is "stronger" than white-box
# for an evaluation model when another model's pixels leave a lower recognition rate (or a larger
# cosine drop) on it than its own pixels do.

# %%
rr, drop = wide["recognition_rate"], wide["mean_drop"]
ci = table.set_index(["generation", "evaluation"])[["ci_lo", "ci_hi"]]
lines, by_rate, by_drop = [], [], []
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
    lines.append(f"- **{ev}**: white-box recognition {own_rr:.3f} (drop {own_drop:.4f}), random floor "
                 f"{rr.loc['random', ev]:.3f} (drop {drop.loc['random', ev]:.4f}), clean {clean[ev]:.3f}"
                 + (f"; the strongest transfer comes from **{best}** ({rr.loc[best, ev]:.3f}, drop "
                    f"{drop.loc[best, ev]:.4f})." if best else "."))
beats_random = sum(drop.loc[g, ev] > drop.loc["random", ev] for ev in cfg.models for g in cfg.models if g != ev)
n_off = len(cfg.models) * (len(cfg.models) - 1)
lines.append(f"- Black-box pixels lower the cosine more than random ones in {beats_random} of {n_off} "
             f"off-diagonal cells.")
lines.append("- Black-box stronger than white-box, by recognition rate: " + ("; ".join(by_rate) or "never") + ".")
lines.append("- Black-box stronger than white-box, by cosine drop: " + ("; ".join(by_drop) or "never") + ".")
display(Markdown("\n".join(lines)))
