"""Summaries of occlusion runs: per-condition tables, the transfer (Table 2) layout, the published
comparison, and subgroups from an external annotation.

Producers' schemas are constants here (:data:`SUMMARY_COLUMNS`, :data:`TRANSFER_COLUMNS`, ...), so
readers such as the claims ledger name columns instead of guessing them.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facexai import metrics
from facexai.occlusion_runner import CONDITION, CRITICAL, RANDOM, OcclusionRun
from facexai.profiles import REPO_ROOT
from facexai.published import PUBLISHED, WORKS

PUBLISHED_Q = 1.0  # the works occlude the top 1% of pixels (a fact of the works, not a setting)
#: Columns of :func:`summarize` in the order the notebooks save them (occlusion_summary.csv, occlusion_curves.csv).
SUMMARY_COLUMNS = ["model", "explainer", "fill", "q", "selection", "mean_drop", "ci_lo", "ci_hi", "recognition_rate",
                   "balanced_accuracy", "n_images", "generation_model", "in_sample", "rr_ci_lo", "rr_ci_hi",
                   "clean_recognition_rate", "clean_balanced_accuracy", "mean_clean_cos", "mean_occluded_cos",
                   "n_seeds", "n_genuine", "n_impostor", "threshold"]
#: Numeric columns of :data:`SUMMARY_COLUMNS` (rates and cosines in [0, 1] or [-1, 1], never percent).
SUMMARY_NUMERIC = ["q", "mean_drop", "ci_lo", "ci_hi", "recognition_rate", "balanced_accuracy", "n_images",
                   "rr_ci_lo", "rr_ci_hi", "clean_recognition_rate", "clean_balanced_accuracy", "mean_clean_cos",
                   "mean_occluded_cos", "n_seeds", "n_genuine", "n_impostor", "threshold"]
#: Columns of :func:`transfer_table` (transfer_table.csv): one row per generation x evaluation model.
TRANSFER_COLUMNS = ["generation", "evaluation", "explainer", "fill", "q", "recognition_rate", "balanced_accuracy",
                    "mean_drop", "n_images", "in_sample", "ci_lo", "ci_hi", "clean_recognition_rate"]
TRANSFER_NUMERIC = ["q", "recognition_rate", "balanced_accuracy", "mean_drop", "n_images", "ci_lo", "ci_hi",
                    "clean_recognition_rate"]
#: occlusion_subgroups.csv (:func:`summarize` of a run :func:`with_groups`): the summary per ``GROUP`` value.
GROUP = "group"
SUBGROUP_COLUMNS = [GROUP, *SUMMARY_COLUMNS]
RANDOM_ROW = "random"  # the generation of the random-pixel floor
CLEAN_ROW = "clean (no occlusion)"  # the Table-2 row of unoccluded images
TABLE2_INDEX = "generation \\ evaluation"  # first column of transfer_table2_*.csv
#: Columns of :func:`published_comparison` (published_comparison.csv).
PUBLISHED_COLUMNS = ["claim", "selection", "published", "model", "explainer", "in_sample", "fill", "ours", "ci_lo",
                     "ci_hi", "n_images", "work", "where", "statement"]


def _rate_ci(accepted: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    return metrics.bootstrap_ci(accepted.astype(float), n=n_boot, seed=seed) if len(accepted) else (np.nan, np.nan)


def summarize(run: OcclusionRun, by: Sequence[str] = (), n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per condition (and ``by`` columns, e.g. a subgroup): mean drop with bootstrap CI, recognition, balanced accuracy.

    Random selections pool their seeds: an image's drop is its mean over seeds, and the CI resamples
    images. The recognition rate is the share of genuine pairs still accepted at the clean
    threshold (CI resamples pairs); balanced accuracy weighs genuine acceptance and impostor
    rejection equally. ``clean_*`` columns give the same on unoccluded images.
    """
    keys = [*CONDITION, *by]
    pairs_by = {k: g for k, g in run.pairs.groupby(keys, sort=False, dropna=False)}
    rows = []
    for cond, grp in run.images.groupby(keys, sort=False, dropna=False):
        per_image = grp.groupby("path")["drop"].mean().to_numpy()
        lo, hi = metrics.bootstrap_ci(per_image, n=n_boot, seed=seed)
        p = pairs_by.get(cond, run.pairs.iloc[:0])
        gen, imp = p[p.same], p[~p.same]
        thr = float(p.threshold.iloc[0]) if len(p) else np.nan
        row = dict(zip(keys, cond))
        row.update(mean_drop=float(per_image.mean()), ci_lo=lo, ci_hi=hi,
                   recognition_rate=metrics.recognition_rate(gen.occluded_score, thr) if len(gen) else np.nan,
                   balanced_accuracy=(metrics.balanced_accuracy(gen.occluded_score, imp.occluded_score, thr)
                                      if len(gen) and len(imp) else np.nan),
                   n_images=len(per_image))
        rr_lo, rr_hi = _rate_ci((gen.occluded_score >= thr).to_numpy(), n_boot, seed)
        row.update(rr_ci_lo=rr_lo, rr_ci_hi=rr_hi,
                   clean_recognition_rate=metrics.recognition_rate(gen.clean_score, thr) if len(gen) else np.nan,
                   clean_balanced_accuracy=(metrics.balanced_accuracy(gen.clean_score, imp.clean_score, thr)
                                            if len(gen) and len(imp) else np.nan),
                   mean_clean_cos=float(grp.clean_cos.mean()), mean_occluded_cos=float(grp.occluded_cos.mean()),
                   n_seeds=grp.seed.nunique(), n_genuine=len(gen), n_impostor=len(imp), threshold=thr)
        rows.append(row)
    return pd.DataFrame(rows)


def transfer_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Generation x evaluation rows (Table-2 form); random selections become generation ``"random"`` (the floor)."""
    crit = summary[summary.selection == CRITICAL].assign(generation=lambda d: d.generation_model)
    rand = summary[summary.selection == RANDOM].assign(generation=RANDOM_ROW)
    rand = rand.drop_duplicates(["model", "explainer", "fill", "q", "in_sample"])
    out = pd.concat([crit, rand], ignore_index=True).rename(columns={"model": "evaluation"})
    return out[TRANSFER_COLUMNS].reset_index(drop=True)


def table2(table: pd.DataFrame, models: Sequence[str], value: str = "recognition_rate") -> pd.DataFrame:
    """The second work's Table-2 layout of a :func:`transfer_table`: rows generation model (then the
    random floor and, for the recognition rate, the clean row), columns evaluation model, cells ``value``."""
    models = list(models)
    grid = table.pivot(index="generation", columns="evaluation", values=value).reindex(
        index=[*models, RANDOM_ROW], columns=models)
    if value == "recognition_rate":
        clean = table.drop_duplicates("evaluation").set_index("evaluation").clean_recognition_rate
        grid.loc[CLEAN_ROW] = clean.reindex(models)
    grid.index.name, grid.columns.name = TABLE2_INDEX, None
    return grid


def published_comparison(summary: pd.DataFrame, fill: str = "black") -> pd.DataFrame:
    """The published occlusion drops (:data:`facexai.published.PUBLISHED`) next to this run's, per model.

    Same-model maps, the works' top 1% (:data:`PUBLISHED_Q`), ``fill`` (the LEAM abstract does not name its fill type).
    """
    pub = PUBLISHED["occlusion_drop"]
    own = summary[(summary.model == summary.generation_model) & np.isclose(summary.q, PUBLISHED_Q) & (summary.fill == fill)]
    rows = []
    for selection, key in ((CRITICAL, "map"), (RANDOM, "random")):
        for r in own[own.selection == selection].itertuples():
            rows.append({"claim": "occlusion_drop", "selection": selection, "published": pub.values[key],
                         "model": r.model, "explainer": r.explainer, "in_sample": r.in_sample, "fill": r.fill,
                         "ours": r.mean_drop, "ci_lo": r.ci_lo, "ci_hi": r.ci_hi, "n_images": r.n_images,
                         "work": WORKS[pub.work], "where": pub.where, "statement": pub.text})
    return pd.DataFrame(rows, columns=PUBLISHED_COLUMNS)


def read_attributes(files: Sequence[str | Path], images: pd.DataFrame) -> tuple[pd.Series, dict]:
    """Per-image groups {path: group} of the selected ``images`` from an external annotation, and a report.

    ``files``: one CSV with columns ``path_or_name,group`` (a full path, an image file name or a
    person's name), or several name lists (one image file name a line; the group is the file's
    stem without ``_names``, e.g. female_names.txt -> female). Images labelled with two groups
    (conflicts) and images in no list (gaps) are left out and counted in the report.
    """
    files = [Path(f) for f in files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"attribute file(s) not found: {missing}")
    if len(files) == 1 and files[0].suffix.lower() == ".csv":
        table = pd.read_csv(files[0], dtype=str)
        if not {"path_or_name", "group"} <= set(table.columns):
            raise ValueError(f"{files[0]}: needs columns path_or_name,group; has {list(table.columns)}")
    elif all(f.suffix.lower() == ".txt" for f in files):
        table = pd.concat([pd.DataFrame({"path_or_name": [s.strip() for s in f.read_text().splitlines() if s.strip()],
                                         "group": f.stem.removesuffix("_names")}) for f in files])
    else:
        raise ValueError(f"attribute files must be one .csv (path_or_name,group) or name lists (.txt), got {files}")
    labels: dict[str, set[str]] = {}
    for key, group in zip(table.path_or_name, table.group):
        labels.setdefault(key, set()).add(group)
    groups, conflicts, gaps = {}, [], []
    for who, path in zip(images.identity, images.path):
        found = set().union(*(labels.get(k, set()) for k in (path, Path(path).name, who)))
        if len(found) == 1:
            groups[path] = found.pop()
        elif found:
            conflicts.append(Path(path).name)
        else:
            gaps.append(Path(path).name)
    series = pd.Series(groups, name="group", dtype=str)
    report = {"files": [str(f) for f in files], "entries": len(table),
              "entries_in_two_groups": sum(len(g) > 1 for g in labels.values()),
              "selected_images": len(images), "labelled": len(series), "conflicts": len(conflicts),
              "gaps": len(gaps), "conflict_examples": conflicts[:5], "gap_examples": gaps[:5],
              "groups": series.value_counts().to_dict()}
    return series, report


def with_groups(run: OcclusionRun, groups: pd.Series) -> OcclusionRun:
    """The run restricted to occluded images that have a group, with a :data:`GROUP` column."""
    images = run.images[run.images.path.isin(groups.index)].assign(**{GROUP: lambda d: d.path.map(groups)})
    pairs = run.pairs[run.pairs.path.isin(groups.index)].assign(**{GROUP: lambda d: d.path.map(groups)})
    return OcclusionRun(images.reset_index(drop=True), pairs.reset_index(drop=True))


def resolve_files(spec: str) -> list[Path]:
    """Comma-separated file names, relative ones taken from the repository root."""
    paths = [Path(s.strip()).expanduser() for s in spec.split(",") if s.strip()]
    return [p if p.is_absolute() else (REPO_ROOT / p).resolve() for p in paths]


def transfer_file(technique: str, stem: str = "transfer_table", dataset: str = "LFW") -> str:
    """The file stem of notebook 07's outputs for ``technique`` on ``dataset``: LEAM on LFW keeps the plain
    stem (``transfer_table``), other techniques add their name with ``+`` spelled ``p`` (``transfer_table_gradcampp``),
    other data sets add the data set (``transfer_table_CALFW``)."""
    parts = [stem] + ([] if technique == "leam" else [technique.replace("+", "p")]) + ([] if dataset == "LFW" else [dataset])
    return "_".join(parts)
