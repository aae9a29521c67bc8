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
layers = ""  # comma-separated layer names; empty: every named stage of each model
target = "cosine"  # cosine | arcface
weighting = "elementwise"  # elementwise (LEAM) | gradcam | gradcam++
margin = 0.2  # ArcFace margin (target = "arcface")
q = 1.0  # critical region: top q% pixels
n_examples = 5  # individuals shown in the figures

# %% [markdown]
# # 03 · LEAM: which facial areas matter, layer by layer
#
# **Definition used in this study** (the LEAM paper's exact formula is not public; every choice
# below is a parameter of `facexai.saliency.image_maps` / `facexai.explain.LEAM`):
#
# - For a person *p* with aligned images *x₁..xₙ* and model *f*, the reference embedding
#   *r_p* is the L2-normalised mean of *f(xⱼ)* over the person's **other** images (leave-one-out).
# - The target is *s(x) = cos(f(x), r_p)* (`cosine`), or minus the ArcFace loss of *x* against a
#   gallery of every selected person's reference (scale 64, margin *m*; `arcface`).
# - For **every hooked layer at once**, from one forward and one backward pass per batch, take the
#   activations *A* (C×h×w) and gradients *G = ∂s/∂A*; the map is
#   *M = ReLU(Σ_c ReLU(G_c) ⊙ A_c)* (element-wise weighting; Grad-CAM and Grad-CAM++ weightings are options).
# - Each map is upsampled bilinearly to the input size and normalised to sum 1. A person's map per
#   layer is the mean over the person's images; the **overall** map is the mean over layers. The
#   **critical region** is the top *q*% pixels (q = 1).

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from facexai import metrics, plots, profiles, saliency, study
from facexai.explain import critical_mask
from facexai.models import load_model

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, seed=seed, run_name=run_name)
st = study.load(cfg)
layer_names = [s.strip() for s in layers.split(",") if s.strip()] or None
print(f"{len(st.identities)} individuals, {len(st.images)} images; models {cfg.models}")

# %% [markdown]
# ## Maps of every image at every layer
# One forward and one backward pass per batch gives all layers' maps; they are cached for the
# notebooks that follow (region statistics, Bhattacharyya, occlusion, transfer).

# %%
results = {}
for name in cfg.models:
    model = load_model(name, cfg.device, cfg.cache_root)
    ms = saliency.image_maps(cfg, model, st.images, layers=layer_names, target=target,
                             weighting=weighting, margin=margin)
    ids, person = ms.person_maps()
    results[name] = (model, ms, ids, person)
    print(f"{name}: maps {ms.maps.shape} ({ms.maps.nbytes / 2**20:.0f} MiB), layers {ms.layers}")

# %% [markdown]
# ## Per-layer person maps
# Rows: layers from input to output, then the overall map; columns: example individuals, each map
# drawn over one of the person's crops.

# %%
rng = np.random.default_rng(cfg.seed)
examples = sorted(rng.choice(len(st.identities), size=min(n_examples, len(st.identities)), replace=False))
for name, (model, ms, ids, person) in results.items():
    first = [st.images_of(ids[i])[0] for i in examples]
    crops, _ = study.crops(cfg, first, model.spec.geometry)
    grid = np.concatenate([person[examples], ms.overall(person[examples])[:, None]], axis=1).transpose(1, 0, 2, 3)
    fig = plots.map_grid(list(crops), grid, [*ms.layers, "overall"], [ids[i].replace("_", " ") for i in examples])
    fig.suptitle(f"{name}: LEAM person maps per layer", y=1.0)
    plots.save_figure(fig, cfg.out("03_leam_layers", f"layer_grid_{name}"))

# %% [markdown]
# ## Overall map per individual, and its critical region (top q%)

# %%
for name, (model, ms, ids, person) in results.items():
    overall = ms.overall(person[examples])
    crops, _ = study.crops(cfg, [st.images_of(ids[i])[0] for i in examples], model.spec.geometry)
    critical = critical_mask(overall, q)
    fig, axes = plots.plt.subplots(2, len(examples), figsize=(1.6 * len(examples), 3.4), squeeze=False)
    for c, i in enumerate(examples):
        plots.overlay(axes[0, c], crops[c], overall[c], title=ids[i].replace("_", " "))
        shown = crops[c].copy()
        shown[critical[c]] = (255, 0, 0)
        axes[1, c].imshow(shown)
        axes[1, c].axis("off")
    axes[0, 0].set_ylabel("overall map")
    fig.suptitle(f"{name}: overall map and its top {q}% pixels (red)")
    fig.tight_layout()
    plots.save_figure(fig, cfg.out("03_leam_layers", f"overall_{name}"))

# %% [markdown]
# ## How much do the layers differ?
# Mean Bhattacharyya coefficient (BC = Σ √(P·Q), 1 = identical distributions, 0 = disjoint)
# between the person maps of every two layers, averaged over individuals.

# %%
rows = []
fig, axes = plots.plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False)
for ax, (name, (model, ms, ids, person)) in zip(axes[0], results.items()):
    bc = metrics.layer_bhattacharyya(person)
    plots.sns.heatmap(pd.DataFrame(bc, ms.layers, ms.layers), vmin=0, vmax=1, cmap="viridis", annot=len(bc) <= 8,
                      fmt=".2f", annot_kws={"size": 6}, square=True, cbar=ax is axes[0, -1], ax=ax)
    ax.set_title(name)
    n = len(bc)
    rows.append({"model": name, "layers": n,
                 "adjacent layers (mean BC)": float(np.mean([bc[i, i + 1] for i in range(n - 1)])),
                 "first vs last": float(bc[0, -1]),
                 "all pairs (mean BC)": float(bc[np.triu_indices(n, 1)].mean()),
                 "least similar pair": f"{ms.layers[np.unravel_index(np.argmin(bc), bc.shape)[0]]} vs "
                                       f"{ms.layers[np.unravel_index(np.argmin(bc), bc.shape)[1]]}"})
fig.suptitle("mean Bhattacharyya coefficient between layer maps")
fig.tight_layout()
plots.save_figure(fig, cfg.out("03_leam_layers", "layer_bhattacharyya"))
layer_table = pd.DataFrame(rows)
plots.save_table(layer_table, cfg.out("03_leam_layers", "layer_bhattacharyya"))
layer_table

# %% [markdown]
# ### Reading
# Written from the numbers above (regenerated with them):

# %%
lines = []
for r in rows:
    trend = "close to" if r["adjacent layers (mean BC)"] > 0.9 else "clearly different from"
    lines.append(f"- **{r['model']}**: neighbouring layers' maps are {trend} each other (mean BC "
                 f"{r['adjacent layers (mean BC)']:.2f}); the first and last hooked layers share BC "
                 f"{r['first vs last']:.2f}, so the relevant area {'moves' if r['first vs last'] < 0.8 else 'stays similar'} "
                 f"from early to late layers; least similar: {r['least similar pair']}.")
display(Markdown("\n".join(lines)))
