"""XAI generalizability (notebook 08): every technique through one occlusion protocol, its sweeps, its cost.

The second work's Table 1 asks, per technique and data set: after occluding each individual's 1%
most relevant pixels (chosen on generation images, applied to held-out images, black fill), what
share of genuine pairs is still accepted at the clean threshold? Lower = the technique found what
the model relies on. This module runs every technique through :mod:`facexai.validation` and turns
the runs into that table (per model and averaged over models; "not available" rows for data sets
that are not on this machine), the same table per fill type, the hyperparameter sweeps with their
best settings, and the explainers' wall time per image. Published numbers are only read from
:data:`facexai.published.PUBLISHED`.
"""
from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from facexai import data, embed, saliency, study, validation
from facexai.explain import SRISE, CorrRISE, CosineTarget
from facexai.models.registry import FaceModel
from facexai.profiles import Config
from facexai.published import PUBLISHED, Published

log = logging.getLogger(__name__)

TECHNIQUES = {"leam": "LEAM", "gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "layercam": "LayerCAM",
              "srise": "S-RISE", "corrrise": "CorrRISE"}
RANDOM = "random"  # the floor: as many uniformly random pixels
LABELS = {**TECHNIQUES, RANDOM: "random pixels"}
GRAD_CAMS = ("gradcam", "gradcam++", "layercam")  # layer and loss tuned by the second work
RISE = {"srise": SRISE, "corrrise": CorrRISE}
RISE_CELL = inspect.signature(saliency.image_maps).parameters["cell_size"].default  # the maps' default grid
DATASETS = ("LFW", "CALFW", "CPLFW")
DATASET_ENV = {"CALFW": "FACEXAI_CALFW", "CPLFW": "FACEXAI_CPLFW"}
OK, NOT_AVAILABLE, NOT_GIVEN = "ok", "not available", "not given here"
TABLE1 = "xai_table1"  # key of the second work's Table 1 in facexai.published.PUBLISHED (absent here)
MEAN = "mean"  # the model column of rows averaged over models
ALL, RISE_SUBSET = "all", "rise subset"  # which held-out images a row covers
MEASURES = ["recognition_rate", "balanced_accuracy", "mean_drop"]
TABLE_COLUMNS = ["technique", "dataset", "fill", "model", *MEASURES, "n_images", "status", "subset",
                 "clean_recognition_rate", "published_recognition_rate", "note"]
SWEEP_COLUMNS = ["technique", "model", "hyperparameter", "value", *MEASURES, "position", "n_images"]
BEST_COLUMNS = ["technique", "model", "hyperparameter", "best_value", "recognition_rate", "balanced_accuracy",
                "mean_drop", "position", "tied_values", "n_values"]
COST_COLUMNS = ["technique", "model", "seconds_per_image", "n_images", "forward_passes_per_image",
                "backward_passes_per_image", "measured"]


# ---------------------------------------------------------------- settings

def parse_list(value: str | Sequence | None, cast: type = str) -> list:
    """A profile list or a comma-separated notebook parameter as a list of ``cast`` values."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [cast(v.strip() if isinstance(v, str) else v) for v in items if str(v).strip()]


def xai_models(cfg: Config) -> list[str]:
    """The run's models to explain: those of cfg.xai_models the run has (all the run's models if none is named)."""
    wanted = parse_list(cfg.xai_models)
    chosen = [m for m in cfg.models if m in wanted]
    if wanted and not chosen:
        log.warning("none of xai_models %s is among the run's models %s: explaining all of them", wanted, cfg.models)
    return chosen or list(cfg.models)


def sweep_models(cfg: Config, models: Sequence[str]) -> list[str]:
    """Models of the hyperparameter sweeps: those of cfg.xai_sweep_models among ``models`` (all if none is named)."""
    wanted = parse_list(cfg.xai_sweep_models)
    chosen = [m for m in models if m in wanted]
    if wanted and not chosen:
        log.warning("none of xai_sweep_models %s is explained %s: sweeping all of them", wanted, list(models))
    return chosen or list(models)


def sweep_layers(names: Sequence[str], n: int = 0) -> list[tuple[str, int]]:
    """(layer, position from the end: 0 = last) of the layer sweep, deepest first: the last and
    second-to-last named layers, then ``n - 2`` earlier ones evenly spaced from the first (0: all)."""
    names = list(names)
    if not names:
        raise ValueError("the model has no named layers to sweep")
    if n < 0:
        raise ValueError(f"the number of swept layers must be >= 0, got {n}")
    if n == 0 or n >= len(names):
        picked = list(range(len(names)))
    else:
        tail = list(range(len(names) - min(n, 2), len(names)))
        earlier = n - len(tail)
        picked = [int(np.floor(i)) for i in np.linspace(0, len(names) - 2, earlier, endpoint=False)] + tail
    return [(names[i], len(names) - 1 - i) for i in sorted(picked, reverse=True)]


def loss_settings(margins: Sequence[float]) -> list[tuple[str, dict]]:
    """The loss sweep: ("cosine", image_maps kwargs), then ("arcface m=<m>", ...) per ArcFace margin."""
    return [("cosine", {"target": "cosine"})] + [(f"arcface m={float(m):g}", {"target": "arcface", "margin": float(m)})
                                                 for m in margins]


def rise_sweep(cfg: Config) -> dict[str, list[int]]:
    """RISE values swept: mask counts (always cfg.rise_masks) and grid cell sizes (always the default)."""
    return {"n_masks": sorted({int(cfg.rise_masks), *parse_list(cfg.xai_rise_mask_counts, int)}),
            "cell_size": sorted({int(RISE_CELL), *parse_list(cfg.xai_rise_cell_sizes, int)})}


# ---------------------------------------------------------------- data sets

def dataset_root(name: str, given: str = "") -> str:
    """A data set's folder: the notebook parameter, else its environment variable (FACEXAI_CALFW / FACEXAI_CPLFW)."""
    return str(given).strip() or os.environ.get(DATASET_ENV[name], "").strip()


def subsample_pairs(pairs: pd.DataFrame, n_folds: int, per_fold: int) -> pd.DataFrame:
    """The first ``per_fold // 2`` genuine and impostor pairs of each of the first ``n_folds`` folds (list order)."""
    keep = pairs[pairs.fold < n_folds]
    return keep[keep.groupby(["fold", "same"]).cumcount() < per_fold // 2].reset_index(drop=True)


def pair_list_study(cfg: Config, root: str | os.PathLike, kind: str, models: Sequence[str]) -> study.Study:
    """CALFW / CPLFW as a :class:`study.Study` like 00 makes for LFW: cfg.n_identities people with >=
    cfg.min_images images (seeded), the pair list subsampled to the profile's folds and pairs, all
    aligned for ``models``; images without a detected face are left out (``failures``).
    DatasetMissing when the folder is not given or holds no pair list."""
    if not str(root).strip():
        raise data.DatasetMissing(f"{kind.upper()} folder not given (set {DATASET_ENV[kind.upper()]} or the "
                                  f"notebook parameter {kind}_root)")
    dataset, pairs = data.load_pair_list_dataset(root, kind, on_missing="skip", n_folds=cfg.n_folds)
    selected = dataset.subset(data.select_identities(dataset, cfg.n_identities, cfg.min_images, cfg.seed))
    pairs = subsample_pairs(pairs, cfg.n_folds, cfg.pairs_per_fold)
    images, kept, failures, _ = study.align_selection(cfg, selected, pairs, models)
    summary = {"dataset": kind.upper(), "data_root": str(dataset.root), "selected_identities": int(images.identity.nunique()),
               "selected_images": len(images), "pairs": len(pairs), "pairs_kept": len(kept),
               "alignment_failures": len(failures), "skipped_files": len(dataset.skipped)}
    return study.Study(images, kept, failures, summary)


# ---------------------------------------------------------------- maps and occlusion

@dataclass
class LayerMaps:
    """One technique's person maps on one model, from the generation images: {identity: (L, S, S)} over ``layers``."""

    technique: str
    layers: list[str]
    maps: dict[str, np.ndarray]
    n_images: int  # generation images explained
    forward_passes: int  # images the model actually forwarded (cache hits need none)
    seconds: float

    def overall(self) -> dict[str, np.ndarray]:
        """{identity: mean over layers} (LEAM's overall map; the single map of one-layer techniques)."""
        return {who: m.mean(axis=0) for who, m in self.maps.items()}

    def layer(self, name: str) -> dict[str, np.ndarray]:
        """{identity: the map of layer ``name``}."""
        if name not in self.layers:
            raise KeyError(f"layer {name!r} was not explained; layers: {self.layers}")
        j = self.layers.index(name)
        return {who: m[j] for who, m in self.maps.items()}


def technique_maps(cfg: Config, model: FaceModel, protocol: validation.Protocol, technique: str, *,
                   layers: list[str] | None = None, **map_kwargs) -> LayerMaps:
    """Person maps of ``technique`` from the protocol's generation images, per layer (cached by saliency.image_maps).

    As :func:`validation.generation_maps` (people with >= 2 generation images, whose maps use
    leave-one-out references among them), but keeping every explained layer so one pass serves a
    whole layer sweep. RISE explains cfg.rise_images generation images (whole people, seeded; 0: all).
    """
    if technique not in TECHNIQUES:
        raise ValueError(f"unknown technique {technique!r}; valid: {list(TECHNIQUES)}")
    start, passes = time.perf_counter(), [0]
    keep = [p for p, paths in protocol.generation.items() if len(paths) >= 2]
    if len(keep) < len(protocol.generation):
        log.warning("%d people have fewer than 2 generation images and get no map",
                    len(protocol.generation) - len(keep))
    wanted = {p for person in keep for p in protocol.generation[person]}
    images = protocol.images[protocol.images.path.isin(wanted)].reset_index(drop=True)
    if technique in RISE:
        map_kwargs.setdefault("max_images", cfg.rise_images or None)
    hook = model.register_forward_hook(lambda _m, _i, out: passes.__setitem__(0, passes[0] + len(out)))
    try:
        ms = saliency.image_maps(cfg, model, images, explainer=technique, layers=layers, **map_kwargs)
    finally:
        hook.remove()
    ids, maps = ms.person_maps(paths=protocol.generation_paths)
    return LayerMaps(technique, list(ms.layers), dict(zip(ids, maps)), len(ms.images), passes[0],
                     time.perf_counter() - start)


def label(run: validation.OcclusionRun, **columns) -> validation.OcclusionRun:
    """The run with constant columns (e.g. dataset, subset, a sweep's setting) on its image and pair rows."""
    return validation.OcclusionRun(run.images.assign(**columns), run.pairs.assign(**columns), run.forward_passes,
                                   run.seconds, run.skipped_people)


def restrict(run: validation.OcclusionRun, paths: set[str]) -> validation.OcclusionRun:
    """The run's rows of occluded images in ``paths`` (e.g. the people RISE explained)."""
    return validation.OcclusionRun(run.images[run.images.path.isin(paths)].reset_index(drop=True),
                                   run.pairs[run.pairs.path.isin(paths)].reset_index(drop=True))


# ---------------------------------------------------------------- tables

def technique_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`validation.summarize` rows (by dataset and subset) as table rows: a critical selection is
    its technique, a random selection the floor ``random``; status ``ok``."""
    missing = {"dataset", "subset", "selection", "explainer"} - set(summary.columns)
    if missing:
        raise ValueError(f"summary lacks {sorted(missing)}: summarize runs labelled with dataset and subset")
    rows = summary.assign(technique=np.where(summary.selection == "random", RANDOM, summary.explainer),
                          status=OK, note="")
    key = ["technique", "dataset", "fill", "model", "subset"]
    dup = rows[rows.duplicated(key, keep=False)]
    if len(dup):
        raise ValueError(f"two rows for {dup[key].iloc[0].tolist()}: give random seeds to one run per model, "
                         "data set and fill, and summarize each sweep setting apart")
    return rows[[*key, *MEASURES, "n_images", "status", "clean_recognition_rate", "note"]]


def with_means(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows plus one ``model = "mean"`` row per technique, data set, fill and subset: measures
    averaged over the models with a result (equal weights), n_images summed."""
    ok = rows[rows.status == OK]
    keys = ["technique", "dataset", "fill", "subset"]
    means = ok.groupby(keys, sort=False).agg(
        **{m: (m, "mean") for m in [*MEASURES, "clean_recognition_rate"]}, n_images=("n_images", "sum"),
        n_models=("model", "nunique")).reset_index()
    means = means.assign(model=MEAN, status=OK, note=[f"mean of {k} model(s)" for k in means.n_models])
    return pd.concat([rows, means.drop(columns="n_models")], ignore_index=True)


def unavailable_rows(dataset: str, reason: str, techniques: Sequence[str], fills: Sequence[str],
                     models: Sequence[str]) -> pd.DataFrame:
    """One ``not available`` row per technique (and the floor), fill and model (and the mean) of a missing data set."""
    grid = [(t, f, m) for t in [*techniques, RANDOM] for f in fills for m in [*models, MEAN]]
    out = pd.DataFrame(grid, columns=["technique", "fill", "model"])
    return out.assign(dataset=dataset, subset=ALL, n_images=0, status=NOT_AVAILABLE, note=reason,
                      **{m: np.nan for m in [*MEASURES, "clean_recognition_rate"]})


def published_rate(technique: str, dataset: str, fill: str = "black",
                   published: Mapping[str, Published] | None = None) -> float | str:
    """The second work's Table-1 recognition rate of (technique, data set, fill), else ``"not given here"``.

    Read from ``PUBLISHED["xai_table1"].values`` (:mod:`facexai.published`, or ``published``), keyed
    ``"<technique>|<DATASET>|<fill>"`` or, for the black fill, ``"<technique>|<DATASET>"``.
    """
    entry = (PUBLISHED if published is None else published).get(TABLE1)
    keys = [f"{technique}|{dataset.upper()}|{fill}"] + ([f"{technique}|{dataset.upper()}"] if fill == "black" else [])
    found = [entry.values[k] for k in keys if entry is not None and k in entry.values]
    return float(found[0]) if found else NOT_GIVEN


def result_table(rows: pd.DataFrame, unavailable: Mapping[str, str], techniques: Sequence[str], fills: Sequence[str],
                 models: Sequence[str], published: Mapping[str, Published] | None = None) -> pd.DataFrame:
    """The tidy Table-1 frame (:data:`TABLE_COLUMNS`): per-model and mean rows of every technique and the
    random floor, ``not available`` rows for each missing data set {name: reason}, and the work's value
    beside every mean row (``published_recognition_rate``; per-model rows: empty, the work used other models)."""
    parts = [with_means(rows)] + [unavailable_rows(d, why, techniques, fills, models) for d, why in unavailable.items()]
    out = pd.concat(parts, ignore_index=True)
    out["published_recognition_rate"] = [published_rate(t, d, f, published) if m == MEAN else ""
                                         for t, d, f, m in zip(out.technique, out.dataset, out.fill, out.model)]
    order = {"technique": [*techniques, RANDOM], "dataset": list(DATASETS), "fill": list(fills),
             "model": [MEAN, *models], "subset": [ALL, RISE_SUBSET]}
    for col, values in order.items():
        extra = [v for v in out[col].unique() if v not in values]
        out[col] = pd.Categorical(out[col], categories=[*values, *extra], ordered=True)
    out = out.sort_values(["dataset", "fill", "subset", "technique", "model"], kind="stable")
    return out.astype({col: object for col in order})[TABLE_COLUMNS].reset_index(drop=True)


def wide(table: pd.DataFrame, value: str = "recognition_rate", columns: str = "dataset", mask: bool = True,
         **equal: str) -> pd.DataFrame:
    """A reader's view of the tidy table: techniques (rows, in table order) x ``columns`` of ``value``,
    for the rows whose columns equal ``equal`` (e.g. fill="black", model="mean"); with ``mask``
    the cells of rows that are not ``ok`` read "not available"."""
    rows = table
    for col, v in equal.items():
        rows = rows[rows[col] == v]
    if rows.duplicated(["technique", columns]).any():
        raise ValueError(f"several rows per technique and {columns}: fix more columns (given {equal})")
    cells = rows[value].astype(object)
    if mask:
        cells = cells.where(rows.status == OK, NOT_AVAILABLE)
    grid = rows.assign(cell=cells).pivot(index="technique", columns=columns, values="cell")
    grid = grid.reindex(index=list(dict.fromkeys(rows.technique)), columns=list(dict.fromkeys(rows[columns])))
    return grid.rename(index=LABELS).rename_axis(index="technique", columns=columns)


# ---------------------------------------------------------------- sweeps

def sweep_rows(summary: pd.DataFrame, hyperparameter: str, value: object, position: float = np.nan) -> pd.DataFrame:
    """One sweep setting's critical-selection summary rows as :data:`SWEEP_COLUMNS` rows (technique = explainer)."""
    crit = summary[summary.selection == "critical"]
    return pd.DataFrame({"technique": crit.explainer, "model": crit.model, "hyperparameter": hyperparameter,
                         "value": [value] * len(crit), **{m: crit[m] for m in MEASURES}, "position": position,
                         "n_images": crit.n_images})[SWEEP_COLUMNS].reset_index(drop=True)


def best_settings(sweeps: pd.DataFrame) -> pd.DataFrame:
    """Per technique, model and hyperparameter the value with the lowest recognition rate (ties: the larger
    cosine drop, then the first value swept); ``tied_values`` lists every value at that rate."""
    rows = []
    for (tech, model, hyper), g in sweeps.groupby(["technique", "model", "hyperparameter"], sort=False):
        g = g.dropna(subset=["recognition_rate"])
        if g.empty:
            continue
        tied = g[np.isclose(g.recognition_rate, g.recognition_rate.min())]
        best = tied.loc[tied.mean_drop.fillna(-np.inf).idxmax()]
        rows.append({"technique": tech, "model": model, "hyperparameter": hyper, "best_value": best.value,
                     "recognition_rate": best.recognition_rate, "balanced_accuracy": best.balanced_accuracy,
                     "mean_drop": best.mean_drop, "position": best.position,
                     "tied_values": ", ".join(map(str, tied.value)), "n_values": len(g)})
    return pd.DataFrame(rows, columns=BEST_COLUMNS)


# ---------------------------------------------------------------- cost

def time_explainer(model: FaceModel, crops: np.ndarray, technique: str, *, layers: list[str] | None = None,
                   n_masks: int = 1000, cell_size: int = RISE_CELL, batch_size: int = 16, seed: int = 0,
                   repeats: int = 1) -> float:
    """Wall seconds per image of ``technique``'s maps of ``crops`` (N, S, S, 3), computed afresh (no cache);
    the fastest of ``repeats`` runs (other jobs on a shared machine only ever slow a run down).

    Built as saliency.image_maps builds them (CAMs: ``layers``, default every named layer; RISE:
    ``n_masks`` masked forwards per image, ``batch_size`` at a time); the target is each image's
    cosine to its own clean embedding (the cost does not depend on the target's value). CAMs are
    warmed up on the first image first (hook set-up); RISE's own first chunk is noise in n_masks.
    """
    if technique not in TECHNIQUES:
        raise ValueError(f"unknown technique {technique!r}; valid: {list(TECHNIQUES)}")
    x = embed.to_tensor(crops, next(model.parameters()).device)
    with torch.no_grad():
        target = CosineTarget(model(x))  # also warms the model up
    if technique in RISE:
        runner = RISE[technique](model, n_masks=n_masks, cell_size=cell_size, seed=seed, batch_size=batch_size,
                                 input_size=model.spec.input_size, progress=False)
    else:
        names = layers or list(model.layers)
        runner = saliency.CAM_EXPLAINERS[technique](model, {n: model.layer_path(n) for n in names},
                                                    model.spec.input_size)
        runner(x[:1], target.select(slice(0, 1)))
    best = np.inf
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        runner(x, target)
        best = min(best, time.perf_counter() - start)
    return best / len(crops)


def cost_row(technique: str, model: str, seconds_per_image: float, n_images: int, n_masks: int = 0,
             repeats: int = 1) -> dict:
    """A :data:`COST_COLUMNS` row; passes per image: CAMs one forward and one backward, RISE ``n_masks`` forwards."""
    rise = technique in RISE
    how = f"fresh computation (no cache) of a fixed batch, fastest of {repeats} run(s)"
    return {"technique": technique, "model": model, "seconds_per_image": seconds_per_image, "n_images": n_images,
            "forward_passes_per_image": n_masks if rise else 1, "backward_passes_per_image": 0 if rise else 1,
            "measured": how + (f", {n_masks} masks" if rise else "")}
