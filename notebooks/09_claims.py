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

# %% [markdown]
# # 09 · Claims ledger: what the two works say, what this run measured
#
# One row per claim of the LEAM work and of the XAI-generalizability work: the work's number, this
# study's number on the same measure, what it was measured on, a verdict and the table or figure
# behind it. Nothing here computes a result: every number of ours is **read from a table an earlier
# notebook wrote** (`figures/<run>/<notebook>/*.csv`), through the claim specs in
# `facexai.claims` (a source table, a function of that table, a verdict rule with explicit
# tolerances); the works' numbers sit in one place, `facexai.published`.
#
# Verdicts: **reproduced**, **partly**, **not reproduced**, or **not testable here** (with the reason:
# the notebook that makes the table did not run, or its table cannot answer the claim). Rules that count
# cases (models, model pairs, datasets) say *reproduced* when every case holds, *partly* when some do,
# *not reproduced* when none does.
#
# Outputs: `figures/<run>/claims.md` and `claims.html` (the page to read), and
# `figures/<run>/09_claims/claims.csv` with one row per claim and the columns
# `claim, work, published, ours, verdict, reason, measured_on, data, link, figure, source,
# source_sha256, source_mtime, values, published_values` (`values`: our numbers as JSON, traced by the
# tests to `source`; paths relative to `figures/<run>/`).

# %%
import pandas as pd
from IPython.display import Markdown, display

from facexai import claims, plots, profiles, study

plots.use_style()
cfg = profiles.resolve(profile, data_root=data_root, pairs=pairs, models=models, device=device,
                       cache_root=cache_root, seed=seed, run_name=run_name)
st = study.load(cfg)
print(claims.describe_data(st.summary))
print(f"reading tables under {cfg.figures_dir}")

# %% [markdown]
# ## The rules
# Each claim's source table and verdict rule, with the tolerances filled in.

# %%
rules = claims.rules()
plots.save_table(rules, cfg.out("09_claims", "rules"))
rules

# %% [markdown]
# ## The ledger

# %%
ledger = claims.build_ledger(cfg.figures_dir, st.summary)
plots.save_table(ledger, cfg.out("09_claims", "claims"))
pages = claims.write_ledger(ledger, cfg.figures_dir, title=f"Claims ledger · run {cfg.run_name}")
print("written:", *[p.relative_to(cfg.figures_dir) for p in pages], "09_claims/claims.csv")
display(Markdown(claims.to_markdown(ledger, title=f"Claims ledger · run {cfg.run_name}")))

# %% [markdown]
# ## Verdicts at a glance

# %%
order = list(claims.VERDICTS)
colours = dict(zip(order, ["#2a9d8f", "#e9c46a", "#e76f51", "#bbbbbb"]))
counts = (ledger.groupby(["work", "verdict"]).size().unstack(fill_value=0)
          .reindex(columns=order, fill_value=0))
fig, ax = plots.plt.subplots(figsize=(6.5, 0.6 + 0.5 * len(counts)))
counts.plot.barh(stacked=True, color=[colours[v] for v in order], ax=ax, width=0.6)
ax.set(xlabel="claims", ylabel="", title=f"verdicts per work ({len(ledger)} claims, run {cfg.run_name})")
ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
ax.xaxis.get_major_locator().set_params(integer=True)
plots.save_figure(fig, cfg.out("09_claims", "verdicts"))

# %% [markdown]
# ### Reading
# Written from the ledger above (regenerated with it):

# %%
tested = ledger[ledger.verdict != claims.NOT_TESTABLE]
lines = [f"- {len(tested)} of {len(ledger)} claims could be tested in run `{cfg.run_name}` "
         f"({claims.describe_data(st.summary)})."]
for verdict in order[:3]:
    keys = tested.claim[tested.verdict == verdict].tolist()
    if keys:
        lines.append(f"- **{verdict}**: {', '.join(keys)}.")
missing = sorted(set(ledger.source[ledger.reason.str.contains("not produced")]))
if missing:
    lines.append(f"- not testable because these tables were not produced: {', '.join(missing)}.")
if cfg.profile != "paper":
    lines.append(f"- Profile `{cfg.profile}` runs on a small sample; verdicts here say whether the pipeline "
                 "agrees with the works at this scale, not more.")
display(Markdown("\n".join(lines)))
