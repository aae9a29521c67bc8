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
# # 03 · LEAM: which facial areas matter, layer by layer
#
# Every selected image's LEAM map at every named layer of every model, from one forward and one
# backward pass per batch, cached for the notebooks that follow. Per individual: the map of each
# layer and the overall map (their mean), its critical region (the top q% pixels), and how much
# the layers' maps differ (Bhattacharyya coefficient between layers).

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
layers = ""  # comma-separated layer names; empty: every named stage of each model
target = None  # cosine | arcface; None: the [method] table of profiles.toml
weighting = None  # elementwise (LEAM) | gradcam | gradcam++; None: the method table
margin = None  # ArcFace margin (target = "arcface"); None: the method table
q = None  # critical region: top q% pixels; None: the method table
n_examples = 5  # individuals shown in the figures

# %% [markdown]
# ## Method
#
# **Definition used in this study** (the LEAM paper's exact formula is not public; every choice
# below is a setting of the `[method]` table in `profiles.toml`, read by `facexai.profiles.method`,
# and a field of `facexai.techniques.CamSettings`):
#
# - For a person *p* with aligned images *x₁..xₙ* and model *f*, the reference embedding
#   *r_p* is the L2-normalised mean of *f(xⱼ)* over the person's **other** images (leave-one-out).
# - The target is *s(x) = cos(f(x), r_p)* (`cosine`), or minus the ArcFace loss of *x* against a
#   gallery of every selected person's reference (scale 64, margin *m*; `arcface`).
# - For **every hooked layer at once**, from one forward and one backward pass per batch, take the
#   activations *A* (C×h×w) and gradients *G = ∂s/∂A*; the map is
#   *M = ReLU(Σ_c ReLU(G_c) ⊙ A_c)* (element-wise weighting; Grad-CAM and Grad-CAM++ weightings are options).
# - **Lattice treatment** (`antialias = true` in the method table): each layer's map is first
#   low-passed at its own grid with the binomial [1, 2, 1]/4 filter (zero gain at the grid's Nyquist
#   frequency, `facexai.explain.base.antialias_map`). Without it the maps of strided early layers
#   carry a regular dotted lattice that is a property of the architecture, not of the face: notebook
#   09 measures it (FN_C: 99.5% of the overall map's lattice energy comes from `conv2d_2b`; the
#   treatment removes it) and shows its effect on nose share, BC and occlusion drop.
# - Each map is upsampled bilinearly to the input size and normalised to sum 1. A person's map per
#   layer is the mean over the person's images; the **overall** map is the mean over layers. The
#   **critical region** is the top *q*% pixels (q = 1 in the method table).

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from facexai import claims, feasibility, layer_similarity, plots, profiles, saliency, study, techniques
from facexai.explain import critical_mask
from facexai.models import load_model

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, scheduler=scheduler, seed=seed, run_name=run_name,
                       n_identities=n_identities, min_images=min_images, figures_dir=figures_dir)
method = profiles.method(target=target, weighting=weighting, margin=margin, q=q)
settings = techniques.default_settings("cam", method)
st = study.load(cfg)
feasibility.check("03_leam_layers", st.images, cfg)
layer_names = [s.strip() for s in layers.split(",") if s.strip()] or None
print(f"{len(st.identities)} individuals, {len(st.images)} images; models {cfg.models}; {settings}")

# %% [markdown]
# ## Maps of every image at every layer
# One forward and one backward pass per batch gives all layers' maps; they are cached for the
# notebooks that follow (region statistics, Bhattacharyya, occlusion, transfer).

# %%
zoo, person = {}, {}
for name in cfg.models:
    model = zoo[name] = load_model(name, cfg.device, cfg.cache_root)
    ms = saliency.image_maps(cfg, model, st.images, layers=layer_names, settings=settings)
    person[name] = ms.persons()
    print(f"{name}: maps {ms.maps.shape} ({ms.maps.nbytes / 2**20:.0f} MiB), layers {ms.layers}")

# %% [markdown]
# ## Per-layer person maps
# Rows: layers from input to output, then the overall map; columns: example individuals, each map
# drawn over one of the person's crops.

# %%
rng = np.random.default_rng(cfg.seed)
examples = sorted(rng.choice(len(st.identities), size=min(n_examples, len(st.identities)), replace=False))
example_crops = {}
for name, pm in person.items():
    example_crops[name], _ = study.crops(cfg, [st.images_of(pm.identities[i])[0] for i in examples],
                                         zoo[name].spec.geometry)
    grid = np.concatenate([pm.maps[examples], pm.overall()[examples][:, None]], axis=1).transpose(1, 0, 2, 3)
    fig = plots.map_grid(list(example_crops[name]), grid, [*pm.layers, "overall"],
                         [pm.identities[i].replace("_", " ") for i in examples],
                         title=f"{name}: LEAM person maps per layer")
    plots.save_figure(fig, cfg.out("03_leam_layers", f"layer_grid_{name}"))

# %% [markdown]
# ## Overall map per individual, and its critical region (top q%)

# %%
for name, pm in person.items():
    overall = pm.overall()[examples]
    fig = plots.critical_regions(example_crops[name], overall, critical_mask(overall, method.q),
                                 [pm.identities[i].replace("_", " ") for i in examples],
                                 f"{name}: overall map and its top {method.q}% pixels (red)")
    plots.save_figure(fig, cfg.out("03_leam_layers", f"overall_{name}"))

# %% [markdown]
# ## How much do the layers differ?
# Mean Bhattacharyya coefficient (BC = Σ √(P·Q), 1 = identical distributions, 0 = disjoint)
# between the person maps of every two layers, averaged over individuals
# (`facexai.layer_similarity`; `layer_bhattacharyya.csv`: model, layers, adjacent layers (mean BC),
# first vs last, all pairs (mean BC), least similar pair).

# %%
layer_table, bc = layer_similarity.layer_bc_table(person)
fig, axes = plots.plt.subplots(1, len(bc), figsize=(4.2 * len(bc) + 1.0, 3.8), squeeze=False)
limits = plots.fitted_limits(*bc.values())  # one scale for every model, spanning the values
for ax, (name, matrix) in zip(axes[0], bc.items()):
    names = person[name].layers
    plots.heatmap(ax, pd.DataFrame(matrix, names, names), "mean BC", fmt=".2f", annot=len(matrix) <= 8,
                  limits=limits, annot_kws={"size": 6}, square=True, cbar=ax is axes[0, -1])
    ax.set_title(name)
fig.suptitle("mean Bhattacharyya coefficient between layer maps (colour scale: the values' range)")
fig.tight_layout()
plots.save_figure(fig, cfg.out("03_leam_layers", "layer_bhattacharyya"))
plots.save_table(layer_table, cfg.out("03_leam_layers", "layer_bhattacharyya"))
layer_table

# %% [markdown]
# ### Reading
# Written from the numbers above (regenerated with them). Whether the layers "vary significantly"
# is the ledger's call, not this notebook's: its rule compares the first-vs-last BC with the BC of
# two *different people's* maps at one layer, a baseline notebook 05 measures, so the verdict is shown
# there and in the ledger (`11_claims`). The rule:

# %%
lines = [f"- **{r['model']}**: neighbouring layers' maps share mean BC {r['adjacent layers (mean BC)']:.2f}; "
         f"the first and last hooked layers {r['first vs last']:.2f}; least similar: {r['least similar pair']}."
         for r in layer_table.to_dict("records")]
rule = claims.rules().set_index("claim").loc["layers_differ", "direction rule"]
display(Markdown("\n".join(lines) + f"\n\n**Ledger rule for \"{claims.SPEC['layers_differ'].said.text}\"**: {rule}"))
