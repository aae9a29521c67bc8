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
# # 09 · Do the explanations pass the field's sanity checks?
#
# Reviewers of a saliency study ask three questions first. **Is the map an artefact of the
# architecture?** The FN_C and DLIB LEAM maps show a regular dotted lattice; we measure which layer
# makes it and how much, and what a principled treatment (anti-aliasing each layer's map at its
# own stride before upsampling) changes in the study's numbers. **Does the map depend on the
# model's learned weights and on the identity it explains?** The randomisation tests of Adebayo et
# al. (2018): the weights re-initialised from the embedding layer down, and the target replaced by
# an impostor's reference or a random unit vector; the maps should change. **Is it faithful by the
# field's standard curves?** Deletion and insertion (Petsiuk et al. 2018) against a random order
# and a dispersion-matched control. Every explainer (LEAM, Grad-CAM, Grad-CAM++, LayerCAM, S-RISE,
# CorrRISE) gets a verdict per check and model in `sanity_verdicts.csv`, which the claims ledger
# (11) shows beside every claim resting on that explainer.

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
sanity_models = ""  # comma-separated models of the randomisation and faithfulness checks; empty: the profile's
n_images = None  # images per check (one per person); None: the profile's sanity_images
n_stages = None  # cascade stages evaluated; None: the profile's sanity_stages (0: every block)
rise_masks = None  # RISE masks per image in the checks; None: the profile's sanity_rise_masks
n_steps = None  # deletion / insertion steps from 0 to 100%; None: the profile's sanity_steps
lattice_people = None  # people of the lattice-treatment comparison; None: the profile's sanity_lattice_people
threshold = 0.5  # verdict rule: the maps "change" when mean |Spearman| and mean SSIM are both below it
baseline = "blur"  # deletion / insertion baseline image: blur | mean
q = None  # critical region: top q% pixels; None: the [method] table of profiles.toml

# %%
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from facexai import (
    faithfulness,
    feasibility,
    lattice,
    lattice_effect,
    occlusion_protocol,
    plots,
    profiles,
    saliency,
    sanity,
    study,
)
from facexai.explain import CosineTarget, critical_mask
from facexai.models import load_model

plots.use_style()
started = time.perf_counter()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, scheduler=scheduler, seed=seed, run_name=run_name,
                       n_identities=n_identities, min_images=min_images, figures_dir=figures_dir, sanity_models=sanity_models,
                       sanity_images=n_images, sanity_stages=n_stages, sanity_rise_masks=rise_masks,
                       sanity_steps=n_steps, sanity_lattice_people=lattice_people)
method = profiles.method(q=q)
st = study.load(cfg)
feasibility.check("09_sanity_checks", st.images, cfg)
NB = "09_sanity_checks"
check_models = [m.strip() for m in (cfg.sanity_models if not isinstance(cfg.sanity_models, str)
                                    else cfg.sanity_models.split(",")) if m.strip()] or list(cfg.models)
zoo = {name: load_model(name, cfg.device, cfg.cache_root) for name in dict.fromkeys([*cfg.models, *check_models])}
timings = {}
print(f"profile {cfg.profile}: lattice on {list(cfg.models)}; checks on {check_models}, {cfg.sanity_images} images, "
      f"{cfg.sanity_stages or 'every'} cascade stages, {cfg.sanity_rise_masks} RISE masks, {cfg.sanity_steps} steps; "
      f"method antialias = {method.antialias}, q = {method.q}")

# %% [markdown]
# ## 1 · The lattice artefact
# **Measure** (`facexai.lattice`): a layer with an h x w output in an H x W input has a lattice
# period P = 2H/h pixels (its grid's one-cell checkerboard, upsampled); its energy lies at the
# harmonics k·h/2 cycles per image (k = 2 is the stride frequency). The **lattice share** of a map
# is the share of its spectral energy (DFT of the map minus its mean) in those frequency bins; a
# smooth map scores ~0, white noise the bins' share of the spectrum (`chance`), a pure lattice 1.
# Layers with P > 16 px are face-scale, not a lattice, and are not measured. Which layer makes the
# lattice of the overall map: its `contribution` to the overall map's lattice energy (sums to 1);
# in the top-q% pixels: `critical_drop`, how much the critical mask's lattice share falls when the
# layer is left out. Measured on the LEAM maps of whole people (seeded), plain and anti-aliased.

# %%
t0 = time.perf_counter()
sub_people = sorted(st.identities)
if cfg.sanity_lattice_people and cfg.sanity_lattice_people < len(sub_people):
    sub_people = sorted(np.random.default_rng(cfg.seed).choice(sub_people, cfg.sanity_lattice_people, replace=False))
sub = replace(st, images=st.images[st.images.identity.isin(sub_people)].reset_index(drop=True))
leam_maps, layer_tables, overall_rows = {}, [], []
for name in cfg.models:
    model = zoo[name]
    grids = lattice.layer_grids(model, model.layers, model.spec.input_size)
    for aa in (False, True):
        ms = saliency.image_maps(cfg, model, sub.images, explainer="leam", antialias=aa)
        leam_maps[name, aa] = ms
        maps = ms.maps.astype(np.float32)
        layer_tables.append(lattice.lattice_table(maps, ms.layers, grids, method.q).assign(model=name, antialias=aa))
        overall_rows.append({"model": name, "antialias": aa,
                             **lattice.overall_lattice(maps, [grids[n] for n in ms.layers], method.q)})
lattice_layers = pd.concat(layer_tables, ignore_index=True)
lattice_layers = lattice_layers[["model", "antialias", *[c for c in lattice_layers if c not in ("model", "antialias")]]]
lattice_overall = pd.DataFrame(overall_rows)
plots.save_table(lattice_layers, cfg.out(NB, "lattice_layers"))
plots.save_table(lattice_overall, cfg.out(NB, "lattice_overall"))
timings["lattice maps"] = time.perf_counter() - t0
display(Markdown(f"Lattice share of the overall LEAM map and of its top {method.q:g}% pixels "
                 f"({len(sub.images)} images of {len(sub_people)} people):"))
lattice_overall

# %% [markdown]
# Per layer (plain maps): which layer carries the lattice, and how much of the overall map's
# lattice energy it contributes.

# %%
lattice_layers[~lattice_layers.antialias].drop(columns="antialias")

# %%
measured = lattice_layers.dropna(subset=["share"])
fig, axes = plots.plt.subplots(1, len(cfg.models), figsize=(3.6 * len(cfg.models), 3.2), squeeze=False)
for ax, name in zip(axes[0], cfg.models):
    d = measured[measured.model == name]
    layers_m = list(dict.fromkeys(d.layer))
    x = np.arange(len(layers_m))
    for k, aa in enumerate((False, True)):
        vals = d[d.antialias == aa].set_index("layer").share.reindex(layers_m)
        ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, label="anti-aliased" if aa else "plain")
    chance = d[~d.antialias].set_index("layer").chance.reindex(layers_m)
    ax.scatter(x, chance, marker="_", s=200, color="k", label="chance (white noise)", zorder=3)
    ax.set_yscale("log")
    ax.set_xticks(x, layers_m, rotation=60, ha="right", fontsize=7)
    ax.set_title(name)
axes[0, 0].set_ylabel("lattice share of the layer's map")
axes[0, -1].legend(fontsize=7)
fig.suptitle("lattice share per layer (layers with period <= 16 px), plain vs anti-aliased at the layer's grid")
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "lattice_layers"))

# %% [markdown]
# What it looks like: one person's overall map and its top q% pixels, plain and anti-aliased.

# %%
fig, axes = plots.plt.subplots(len(cfg.models), 4, figsize=(7.2, 1.9 * len(cfg.models)), squeeze=False)
for r, name in enumerate(cfg.models):
    plain, treated = leam_maps[name, False], leam_maps[name, True]
    crop, _ = study.crops(cfg, plain.images.path.tolist()[:1], zoo[name].spec.geometry)
    for c, (label, ms) in enumerate((("plain", plain), ("anti-aliased", treated))):
        overall = ms.overall(ms.maps[:1].astype(np.float32))[0]
        shown = plots.overlay(axes[r, 2 * c], crop[0], overall, title=f"{label}: map" if r == 0 else "")
        plots.mark_pixels(axes[r, 2 * c + 1], crop[0], critical_mask(overall, method.q),
                          title=f"{label}: top {method.q:g}%" if r == 0 else "")
    axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center")
fig.tight_layout()
plots.relevance_colourbar(fig, shown, axes)
plots.save_figure(fig, cfg.out(NB, "lattice_examples"))

# %% [markdown]
# ### The treatment's effect on the study's numbers
# With and without anti-aliasing, per model, on the same people: the **nose share** of the person
# maps' top q% pixels (mediapipe label maps of notebook 02, as in 04), **BC** of the overall maps
# of same-person and different-people image pairs (as in 05), and the **cosine drop** after
# occluding each person's top q% pixels (generation-image maps, black fill) on held-out images,
# beside as many random pixels (as in 06). The differences (anti-aliased minus plain) carry 95%
# bootstrap intervals over people / pairs / images.

# %%
t0 = time.perf_counter()
prot = occlusion_protocol.make_protocol(sub, cfg.occlusion_n_eval, cfg.seed)
effect, effect_diff = lattice_effect.treatment_effect(cfg, {name: zoo[name] for name in cfg.models}, leam_maps,
                                                      prot, method)
plots.save_table(effect, cfg.out(NB, "lattice_effect"))
plots.save_table(effect_diff, cfg.out(NB, "lattice_effect_differences"))
timings["lattice effect"] = time.perf_counter() - t0
effect

# %%
fig = plots.difference_panels(effect_diff, "anti-aliased − plain", "effect of the lattice treatment (95% bootstrap CI)")
plots.save_figure(fig, cfg.out(NB, "lattice_effect"))
effect_diff

# %% [markdown]
# ## 2 · Randomisation checks and 3 · faithfulness curves
# Per model of the checks, the same images (one per person, seeded) are explained by all six
# explainers as the study defines them (`facexai.sanity.StudyExplainers`: LEAM's overall map of
# every named layer; Grad-CAM, Grad-CAM++, LayerCAM at the method's `cam_layer`; the CAM family
# from one forward and one backward pass; S-RISE and CorrRISE from one shared set of masked
# passes), each against the image's leave-one-out reference (cosine target).
#
# - **Cascading model-parameter randomisation** (`sanity.cascading_randomisation`, on a deep copy:
#   the loaded model is never changed): parameter tensors re-initialised as N(their own mean,
#   their own std), block by block from the embedding layer down; the target stays the original
#   reference. Similarity to the original maps: Spearman rank correlation and SSIM.
# - **Target randomisation**: the same model, against the next other person's reference
#   (impostor) and a random unit vector.
# - **Deletion / insertion** (`facexai.faithfulness`): pixels removed in map order onto the
#   baseline image (blurred, sigma 5 px), or restored onto it, at the declared fractions; cosine to
#   the reference and genuine acceptance at the clean threshold; AUC by the trapezoid rule over the
#   fraction. Controls: a random order and the map's own order cyclically shifted (same shape and
#   dispersion at every fraction, another place). All steps x orders x images in batches of 32.

# %%
cascades, targets, curve_tables, auc_tables, faith_verdicts, examples = [], [], [], [], [], {}
for name in check_models:
    model = zoo[name]
    t0 = time.perf_counter()
    inputs = sanity.check_inputs(cfg, model, st, cfg.sanity_images)
    layers = {n: model.layer_path(n) for n in model.layers}
    explain = sanity.StudyExplainers(layers, list(model.layers)[method.cam_layer], model.spec.input_size,
                                     rise_masks=cfg.sanity_rise_masks, seed=cfg.seed, antialias=method.antialias)
    target = CosineTarget(inputs.references)
    cascade, cascade_maps = sanity.cascading_randomisation(model, layers, inputs.images, target, explain,
                                                           n_stages=cfg.sanity_stages, seed=cfg.seed,
                                                           model_name=name)
    original = {e: stages[0] for e, stages in cascade_maps.items()}
    tr, target_maps = sanity.target_randomisation(model, inputs.images, inputs.references, inputs.identities,
                                                  explain, seed=cfg.seed, model_name=name, original=original)
    timings[f"randomisation {name}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    curves = faithfulness.curves(model, inputs.images, faithfulness.orders(original, cfg.seed), inputs.references,
                                 steps=faithfulness.fractions(cfg.sanity_steps), baseline=baseline,
                                 partners=inputs.partners, threshold=inputs.threshold)
    aucs = pd.concat([faithfulness.auc(curves, value).assign(value=value) for value in ("cosine", "acceptance")])
    faith_verdicts.append(faithfulness.faithfulness_verdicts(aucs[aucs.value == "cosine"], list(original), name))
    timings[f"faithfulness {name}"] = time.perf_counter() - t0
    cascades.append(cascade)
    targets.append(tr)
    curve_tables.append(curves.assign(model=name))
    auc_tables.append(aucs.assign(model=name))
    examples[name] = (inputs, cascade_maps, target_maps)
    print(f"{name}: {len(inputs.paths)} images of {len(set(inputs.identities))} people; threshold "
          f"{inputs.threshold:.3f}; {timings[f'randomisation {name}']:.0f} s randomisation, "
          f"{timings[f'faithfulness {name}']:.0f} s faithfulness")
cascade = pd.concat(cascades, ignore_index=True)
target_table = pd.concat(targets, ignore_index=True)
curves = pd.concat(curve_tables, ignore_index=True)
aucs = pd.concat(auc_tables, ignore_index=True)
plots.save_table(cascade, cfg.out(NB, "cascade_similarity"))
plots.save_table(target_table, cfg.out(NB, "target_similarity"))
plots.save_table(curves, cfg.out(NB, "deletion_insertion_curves"))
plots.save_table(aucs, cfg.out(NB, "deletion_insertion_auc"))

# %% [markdown]
# ### Cascading randomisation: similarity to the original map
# x: how much of the model is re-initialised (stage 0 = the trained model; then from the
# embedding layer down); y: mean over images (band: min-max over images). The dashed line is the
# verdict threshold.

# %%
labels = {"leam": "LEAM", "gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "layercam": "LayerCAM",
          "srise": "S-RISE", "corrrise": "CorrRISE"}
fig, axes = plots.plt.subplots(2, len(check_models), figsize=(3.8 * len(check_models), 6), squeeze=False,
                               sharey="row")
for c, name in enumerate(check_models):
    d = cascade[cascade.model == name]
    for r, measure in enumerate(("spearman", "ssim")):
        ax = axes[r, c]
        for e in sanity.EXPLAINERS:
            g = d[d.explainer == e].groupby("stage")
            stats = g[measure].agg(["mean", "min", "max"])
            ax.plot(stats.index, stats["mean"], marker="o", ms=3, label=labels[e])
            ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.12)
        ax.axhline(threshold, ls="--", color="k", lw=0.8)
        ticks = d.drop_duplicates("stage").sort_values("stage")
        ax.set_xticks(ticks.stage, ["trained" if s == 0 else lab for s, lab in zip(ticks.stage, ticks.randomised)],
                      rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("Spearman ρ" if measure == "spearman" else "SSIM")
        ax.set_title(name if r == 0 else "")
axes[0, -1].legend(fontsize=7)
fig.suptitle("cascading randomisation (embedding layer first): map similarity to the trained model's map")
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "cascade_curves"))

# %%
for name, (inputs, cascade_maps, _) in examples.items():
    stages_shown = sorted(next(iter(cascade_maps.values())))
    grid = np.stack([[cascade_maps[e][s][0] for s in stages_shown] for e in sanity.EXPLAINERS])
    names_of = cascade[cascade.model == name].drop_duplicates("stage").set_index("stage").randomised
    fig = plots.map_grid([inputs.crops[0]] * len(stages_shown), grid, [labels[e] for e in sanity.EXPLAINERS],
                         ["trained" if s == 0 else f"to {names_of[s]}" for s in stages_shown],
                         title=f"{name}: one image's maps as the model is randomised from the embedding layer down")
    plots.save_figure(fig, cfg.out(NB, f"cascade_examples_{name}"))

# %% [markdown]
# ### Target randomisation
# Similarity of the map against an impostor's reference, or a random unit vector, to the map
# against the person's own reference (mean over images).

# %%
target_summary = (target_table.assign(abs_spearman=target_table.spearman.abs())
                  .groupby(["model", "explainer", "target"]).agg(spearman=("abs_spearman", "mean"),
                                                                 ssim=("ssim", "mean"), n_images=("image", "size"))
                  .reset_index())
fig, axes = plots.plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
for ax, measure in zip(axes, ("spearman", "ssim")):
    wide = target_summary.pivot_table(index=["explainer"], columns=["model", "target"], values=measure)
    wide.reindex(list(sanity.EXPLAINERS)).rename(index=labels).plot.bar(ax=ax, width=0.8, legend=ax is axes[1])
    ax.axhline(threshold, ls="--", color="k", lw=0.8)
    ax.set_ylabel("mean |Spearman ρ|" if measure == "spearman" else "mean SSIM")
    ax.set_xlabel("")
axes[1].legend(fontsize=6, ncol=2)
fig.suptitle("target randomisation: similarity to the map against the person's own reference")
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "target_randomisation"))
target_summary

# %% [markdown]
# ### Deletion and insertion
# Cosine to the person's reference as the map's top pixels are removed (deletion, lower = more
# faithful) or restored onto the blurred image (insertion, higher = more faithful), with the
# random order and the dispersion-matched (shifted) order; mean over images.

# %%
fig, axes = plots.plt.subplots(2, len(check_models), figsize=(3.8 * len(check_models), 6), squeeze=False)
colours = dict(zip(sanity.EXPLAINERS, sns.color_palette(n_colors=len(sanity.EXPLAINERS))))
for c, name in enumerate(check_models):
    for r, mode in enumerate(faithfulness.MODES):
        ax = axes[r, c]
        d = curves[(curves.model == name) & (curves["mode"] == mode)]
        mean = d.groupby(["order", "fraction"]).cosine.mean()
        for e in sanity.EXPLAINERS:
            ax.plot(mean[e].index, mean[e].values, color=colours[e], label=labels[e])
            ax.plot(mean[f"{e} shifted"].index, mean[f"{e} shifted"].values, color=colours[e], ls=":", lw=0.9)
        ax.plot(mean["random"].index, mean["random"].values, color="k", lw=1.5, label="random order")
        ax.set_title(f"{name}: {mode}", fontsize=9)
        ax.set_xlabel("fraction of pixels " + ("removed" if mode == "deletion" else "restored"))
    axes[0, c].set_ylabel("cosine to the reference")
    axes[1, c].set_ylabel("cosine to the reference")
axes[0, -1].legend(fontsize=7)
fig.suptitle("deletion and insertion curves (dotted: the same map's order shifted; black: random order)")
fig.tight_layout()
plots.save_figure(fig, cfg.out(NB, "deletion_insertion"))

auc_summary = aucs.groupby(["model", "value", "mode", "order"]).auc.agg(["mean", "std", "size"]).reset_index()
plots.save_table(auc_summary, cfg.out(NB, "deletion_insertion_auc_summary"))
auc_summary[auc_summary.value == "cosine"].pivot_table(index=["model", "order"], columns="mode", values="mean")

# %% [markdown]
# ## Verdicts
# **Randomisation rule** (`sanity.verdict`): an explainer *passes* a check on a model when its maps
# change: the mean over images of |Spearman ρ| and the mean SSIM to the original map, at the fully
# randomised model (or against the randomised target), are both below the threshold (0.5 by
# default); otherwise it *fails*. **Faithfulness rule** (`faithfulness.faithfulness_verdicts`, on
# the cosine AUC): deletion *passes* when the map's mean AUC is below both controls' (random and
# shifted order), insertion when above both. `sanity_verdicts.csv`: explainer, model, check,
# verdict, then the numbers behind it.

# %%
verdicts = pd.concat([sanity.randomisation_verdicts(cascade, target_table, threshold), *faith_verdicts],
                     ignore_index=True)
verdicts = verdicts[[*sanity.VERDICT_COLUMNS, *[c for c in verdicts.columns if c not in sanity.VERDICT_COLUMNS]]]
plots.save_table(verdicts, cfg.out(NB, "sanity_verdicts"))
overview = verdicts.pivot_table(index=["explainer"], columns=["check", "model"], values="verdict", aggfunc="first")
overview.reindex(list(sanity.EXPLAINERS))

# %% [markdown]
# ### Reading and cost
# Written from the numbers above (regenerated with them):

# %%
lines = []
for row in lattice_overall[~lattice_overall.antialias].itertuples():
    aa = lattice_overall[(lattice_overall.model == row.model) & lattice_overall.antialias].iloc[0]
    top = lattice_layers[(lattice_layers.model == row.model) & ~lattice_layers.antialias].nlargest(1, "contribution").iloc[0]
    lines.append(f"- **{row.model}** lattice: overall-map share {row.overall_share:.4f} -> {aa.overall_share:.4f} "
                 f"anti-aliased; top-{method.q:g}% mask {row.critical_share:.3f} -> {aa.critical_share:.3f} "
                 f"(white noise {row.chance:.3f}); {top.contribution:.0%} of the overall map's lattice energy comes "
                 f"from `{top.layer}` ({top.grid}, period {top.period_px:.1f} px).")
for (check, name), g in verdicts.groupby(["check", "model"]):
    passed = sorted(g.explainer[g.verdict == "passes"].map(labels))
    lines.append(f"- {check}, {name}: passes {', '.join(passed) if passed else 'none'} "
                 f"({len(passed)} of {len(g)}).")
total = time.perf_counter() - started
lines.append(f"- Time: {total:.0f} s in all (" + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ").")
display(Markdown("\n".join(lines)))
