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
# # 11 · Claims ledger: what the two works say, what this run measured
#
# One row per claim of the LEAM work and of the XAI-generalizability poster: the work's number,
# this study's number on the same measure with its n and 95% interval, two judgements and the
# verdict that follows from both. **Direction**: does the effect point the way the work says,
# against the right baseline (the random floor, the different-people BC, the clean rate) and
# beyond the intervals? **Magnitude**: is our interval compatible with the published value or
# range, within a tolerance the rules table states and justifies? Verdicts: **reproduced**,
# **partly** (the size is off, but within a factor 3, or the cases are mixed), **not reproduced**
# (the direction fails, or the size is off by more than a factor 3), **not judgeable** (the
# measurement cannot discriminate: an interval spanning both answers, a ceiling where nothing moves
# the rate, n below the stated minimum) and **not testable here** (with the reason).
#
# Nothing here computes a result: every number of ours is **read from a table an earlier notebook
# wrote** (`figures/<run>/<notebook>/*.csv`) through the claim specs in `facexai.claims`; the works'
# numbers sit in one place, `facexai.published`. Every table read must carry this run's stamp
# (`<table>.meta.json`, written by `plots.save_table`): a table another run made is refused.
#
# Outputs: `figures/<run>/claims.md` and `claims.html` (the page to read, led by the forest plot),
# and in `figures/<run>/11_claims/`: `claims.csv` (one row per claim: `claim, work, published, ours,
# n, interval, direction, magnitude, verdict, reason, sanity, sweep, measured_on, data, link, figure, source,
# source_sha256, source_mtime, values, forest, published_values`; paths relative to
# `figures/<run>/`), `rules.csv`, `tolerances.csv`, `forest.csv`, `forest.png`, `verdicts.png`.

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
beside = ""  # another run (its folder beside this run's, e.g. quick) whose verdicts to set beside these; empty: none

# %%
from IPython.display import Markdown, display

from facexai import claims, feasibility, plots, profiles, study

NB = "11_claims"
plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, scheduler=scheduler, seed=seed, run_name=run_name,
                       n_identities=n_identities, min_images=min_images, figures_dir=figures_dir)
st = study.load(cfg)
feasibility.check(NB, st.images, cfg)
head = claims.header(st.summary, claims.run_settings(cfg))
display(Markdown("\n".join(head)))
print(f"reading tables under {cfg.figures_dir}")

# %% [markdown]
# ## The rules
# Each claim's tables, its direction rule and its magnitude rule (the constants filled in), then the
# constants with the reason for each value.

# %%
rules = claims.rules()
plots.save_table(rules, cfg.out(NB, "rules"))
tolerances = claims.tolerances()
plots.save_table(tolerances, cfg.out(NB, "tolerances"))
display(tolerances)
rules

# %% [markdown]
# ## The ledger
# Every table is checked against this run's stamp first (an error names a table another run made), and
# against the columns its producer declares (`claims.SCHEMAS`, the producers' `*_COLUMNS`: a missing
# column is an error naming the table and the column); rows are matched on the values the producers
# write (their named constants), never on reworded labels.

# %%
ledger = claims.build_ledger(cfg.figures_dir, st.summary)
plots.save_table(ledger, cfg.out(NB, "claims"))
ledger[["claim", "ours", "n", "direction", "magnitude", "verdict"]]

# %% [markdown]
# ## Ours vs published
# One row per numeric comparison: our estimate and its 95% interval (for claims the works state as
# a range over their models: the span of our models' intervals) beside the published value or range.

# %%
forest = claims.forest_rows(ledger)
plots.save_table(forest, cfg.out(NB, "forest"))
if len(forest):
    fig = plots.forest_plot(forest, title=f"this study (run {cfg.run_name}) vs the published numbers")
    plots.save_figure(fig, cfg.out(NB, "forest"))
forest_figure = f"{NB}/forest.png" if len(forest) else ""

# %%
title = f"Claims ledger · run {cfg.run_name}"
pages = claims.write_ledger(ledger, cfg.figures_dir, title=title, head=head, forest_figure=forest_figure)
print("written:", *[p.relative_to(cfg.figures_dir) for p in pages], f"{NB}/claims.csv")
display(Markdown(claims.to_markdown(ledger, title=title, head=head)))

# %% [markdown]
# ## Verdicts at a glance

# %%
order = list(claims.VERDICTS)
colours = dict(zip(order, ["#2a9d8f", "#e9c46a", "#e76f51", "#8d99ae", "#dddddd"]))
counts = (ledger.groupby(["work", "verdict"]).size().unstack(fill_value=0)
          .reindex(columns=order, fill_value=0))
fig, ax = plots.plt.subplots(figsize=(6.5, 0.6 + 0.5 * len(counts)))
counts.plot.barh(stacked=True, color=[colours[v] for v in order], ax=ax, width=0.6)
ax.set(xlabel="claims", ylabel="", title=f"verdicts per work ({len(ledger)} claims, run {cfg.run_name})")
ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
ax.xaxis.get_major_locator().set_params(integer=True)
plots.save_figure(fig, cfg.out(NB, "verdicts"))

# %% [markdown]
# ## Beside another run
# With `beside` (e.g. `-p beside quick` in the paper run), each claim's verdict, value and n from that
# run's ledger next to this run's, and whether the verdict changed: what the scale changes.
# `beside_<run>.csv`: claim, `<run>_verdict`, `<run>_ours`, `<run>_n` per run, verdict_changed.

# %%
if beside:
    compared = claims.side_by_side({beside: claims.read_ledger(cfg.figures_dir.parent / beside), cfg.run_name: ledger})
    plots.save_table(compared, cfg.out(NB, f"beside_{beside}"))
    print(f"{int(compared.verdict_changed.sum())} of {len(compared)} verdicts differ between {beside} and "
          f"{cfg.run_name}")
    display(compared)

# %% [markdown]
# ### Reading
# Written from the ledger above (regenerated with it):

# %%
display(Markdown(claims.reading(ledger, cfg.figures_dir, cfg.run_name, st.summary, cfg.profile)))
