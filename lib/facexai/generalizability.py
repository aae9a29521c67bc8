"""XAI generalizability (notebook 08): every technique through one occlusion protocol, its sweeps, its cost.

The second work's Table 1 asks, per technique and data set: after occluding each individual's 1%
most relevant pixels (chosen on generation images, applied to held-out images, black fill), what
share of genuine pairs is still accepted at the clean threshold? Lower = the technique found what
the model relies on. This module runs every technique of :mod:`facexai.techniques` through the
occlusion runner and turns the runs into that table (per model and averaged over models; "not
available" rows for data sets that are not on this machine), the same table per fill type, the
hyperparameter sweeps with their best settings, and the explainers' wall time per image.
Published numbers are only read from :data:`facexai.published.PUBLISHED`.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from facexai import data, embed, occlusion_runner, occlusion_summary, saliency, study, techniques
from facexai.explain import CosineTarget
from facexai.models.registry import FaceModel
from facexai.occlusion_protocol import Protocol, make_protocol
from facexai.occlusion_runner import OcclusionRun
from facexai.person_maps import PersonMaps, generation_maps
from facexai.profiles import Config, parse_list
from facexai.published import PUBLISHED, Published

log = logging.getLogger(__name__)

RANDOM = "random"  # the floor: as many uniformly random pixels
LABELS = {**{t.name: t.label for t in techniques.TECHNIQUES.values()}, RANDOM: "random pixels"}
GRAD_CAMS = tuple(techniques.names(tuned=True))  # layer and loss tuned by the second work
RISE = tuple(techniques.names("rise"))
RISE_CELL = techniques.RISE_CELL  # the maps' default grid
DATASETS = ("LFW", "CALFW", "CPLFW")
DATASET_ENV = {"CALFW": "FACEXAI_CALFW", "CPLFW": "FACEXAI_CPLFW"}
OK, NOT_AVAILABLE, NOT_GIVEN = "ok", "not available", "not given here"
TABLE1 = "xai_table1"  # key of the second work's Table 1 in facexai.published.PUBLISHED
MEAN = "mean"  # the model column of rows averaged over models
ALL, RISE_SUBSET = "all", "rise subset"  # which held-out images a row covers
MEASURES = ["recognition_rate", "balanced_accuracy", "mean_drop"]
LAYER_SWEEP, LOSS_SWEEP = "layer", "loss"  # the hyperparameter column of the tuned techniques' sweeps
COSINE_LOSS, ARCFACE_LOSS = "cosine", "arcface m="  # the loss sweep's values: "cosine", "arcface m=<margin>"
#: main_table.csv / fill_table.csv / rise_subset_table.csv
TABLE_COLUMNS = ["technique", "dataset", "fill", "model", *MEASURES, "n_images", "status", "subset",
                 "clean_recognition_rate", "published_recognition_rate", "note"]
TABLE_NUMERIC = [*MEASURES, "n_images", "clean_recognition_rate"]  # published_recognition_rate: a number or NOT_GIVEN
#: sweeps.csv
#: sweeps.csv; ci_lo / ci_hi: the cosine drop's 95% interval, rr_ci_lo / rr_ci_hi: the recognition rate's
SWEEP_INTERVALS = ["ci_lo", "ci_hi", "rr_ci_lo", "rr_ci_hi"]
SWEEP_COLUMNS = ["technique", "model", "hyperparameter", "value", *MEASURES, *SWEEP_INTERVALS, "position", "n_images"]
SWEEP_NUMERIC = [*MEASURES, *SWEEP_INTERVALS, "position", "n_images"]
#: best_settings.csv
BEST_COLUMNS = ["technique", "model", "hyperparameter", "best_value", "recognition_rate", "balanced_accuracy",
                "mean_drop", "position", "tied_values", "n_values"]
BEST_NUMERIC = [*MEASURES, "position", "n_values"]
#: cost.csv
COST_COLUMNS = ["technique", "model", "seconds_per_image", "n_images", "forward_passes_per_image",
                "backward_passes_per_image", "measured"]
COST_NUMERIC = ["seconds_per_image", "n_images", "forward_passes_per_image", "backward_passes_per_image"]


# ---------------------------------------------------------------- settings

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
    return [(COSINE_LOSS, {"target": "cosine"})] + [
        (f"{ARCFACE_LOSS}{float(m):g}", {"target": "arcface", "margin": float(m)}) for m in margins]


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

def load_datasets(cfg: Config, names: Sequence[str], models: Sequence[str], lfw: study.Study,
                  roots: Mapping[str, str] | None = None) -> tuple[dict[str, study.Study], dict[str, str]]:
    """The named data sets as studies: LFW is this run's (``lfw``, notebook 00), CALFW / CPLFW load with
    :func:`pair_list_study` from ``roots`` or their environment variables; a missing one goes into the
    second dict {name: reason} instead (its rows read "not available")."""
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise ValueError(f"unknown data sets {unknown}; valid: {list(DATASETS)}")
    studies, unavailable = {}, {}
    for name in names:
        if name == "LFW":
            studies[name] = lfw
            continue
        try:
            studies[name] = pair_list_study(cfg, dataset_root(name, (roots or {}).get(name, "")), name.lower(), models)
        except data.DatasetMissing as err:
            unavailable[name] = str(err)
    return studies, unavailable


def dataset_protocols(cfg: Config, studies: Mapping[str, study.Study], n_impostors: int = 5) -> dict[str, Protocol]:
    """The occlusion protocol of each data set: LFW's pairs are official when the run reads a pair list,
    CALFW's and CPLFW's always."""
    return {d: make_protocol(s, cfg.occlusion_n_eval, cfg.seed, n_impostors=n_impostors,
                             official=(cfg.pairs is not None) if d == "LFW" else True)
            for d, s in studies.items()}


def overview(protocols: Mapping[str, Protocol], unavailable: Mapping[str, str]) -> pd.DataFrame:
    """One row per data set: people, generation and held-out images, pairs (or why it is not available)."""
    rows = [{"dataset": d, "status": OK, "people": len(p.generation), "generation images": len(p.generation_paths),
             "held-out images": sum(map(len, p.occluded.values())), "genuine pairs": int(p.pairs.same.sum()),
             "impostor pairs": int((~p.pairs.same).sum()), "pairs": p.pair_source} for d, p in protocols.items()]
    return pd.DataFrame(rows + [{"dataset": d, "status": NOT_AVAILABLE, "pairs": why} for d, why in unavailable.items()])


# ---------------------------------------------------------------- maps and occlusion

def layer_plan(zoo: Mapping[str, FaceModel], sweep_names: Sequence[str], cam_layer: int, n_swept: int
               ) -> tuple[dict[str, str], dict[str, list[tuple[str, int]]]]:
    """The main layer of one-layer techniques per model (index ``cam_layer`` of its named layers) and the
    swept layers (:func:`sweep_layers`) of the sweep models."""
    main = {name: list(m.layers)[cam_layer] for name, m in zoo.items()}
    swept = {name: sweep_layers(list(zoo[name].layers), n_swept) for name in sweep_names}
    return main, swept


def cam_layers(main_layer: str, swept: Sequence[tuple[str, int]] = ()) -> list[str]:
    """Layers one pass of a one-layer technique explains: the main layer, plus the swept ones (one pass serves both)."""
    return list(dict.fromkeys([main_layer, *(layer for layer, _ in swept)]))


def technique_maps(cfg: Config, model: FaceModel, protocol: Protocol, technique: str, main_layer: str,
                   layers: Sequence[str] = (), **overrides) -> PersonMaps:
    """The person maps a table row of ``technique`` occludes: one-layer techniques at ``main_layer``
    (computed in one pass with ``layers``), the others' overall map (LEAM: every named layer)."""
    tech = techniques.get(technique)
    if tech.layers != "one":
        return generation_maps(cfg, model, protocol, technique, **overrides)
    pm = generation_maps(cfg, model, protocol, technique, layers=list(dict.fromkeys([main_layer, *layers])),
                         **overrides)
    return pm.layer(main_layer)


def covers_subset(maps: PersonMaps, protocol: Protocol) -> bool:
    """True when the maps cover fewer people than can have one (>= 2 generation images): RISE on the
    profile's ``rise_images``."""
    return len(maps) < sum(len(v) >= 2 for v in protocol.generation.values())


@dataclass
class TechniqueRuns:
    """The main loop's occlusion runs (labelled with dataset and subset), its work log, and per data
    set the held-out images of the people a subset technique explained."""

    runs: list[OcclusionRun]
    work: pd.DataFrame
    subset_paths: dict[str, set[str]] = field(default_factory=dict)


def run_techniques(cfg: Config, zoo: Mapping[str, FaceModel], protocols: Mapping[str, Protocol],
                   technique_names: Sequence[str], fills: Sequence[str], q: float, seeds: Sequence[int],
                   main_layer: Mapping[str, str], swept: Mapping[str, Sequence[tuple[str, int]]] | None = None,
                   sweep_dataset: str = "LFW") -> TechniqueRuns:
    """Every data set x model x technique: person maps from the generation images, their top q% occluded
    with every fill on the held-out images. The first technique that covers everyone also occludes
    the random floor (``seeds``). On ``sweep_dataset`` the one-layer techniques explain the swept
    layers in the same pass (so :func:`run_sweeps` reuses the maps)."""
    floor = next((t for t in technique_names if techniques.get(t).family != "rise"), technique_names[0])
    out = TechniqueRuns([], pd.DataFrame(), {d: set() for d in protocols})
    log_rows = []
    for dname, prot in protocols.items():
        for name, model in zoo.items():
            extra = cam_layers(main_layer[name], (swept or {}).get(name, ())) if dname == sweep_dataset else ()
            for tech in technique_names:
                maps = technique_maps(cfg, model, prot, tech, main_layer[name], extra)
                subset = RISE_SUBSET if covers_subset(maps, prot) else ALL
                run = occlusion_runner.occlusion_experiment(cfg, model, maps, prot, fills=fills, qs=[q],
                                                            random_seeds=seeds if tech == floor else ())
                out.runs.append(occlusion_runner.label(run, dataset=dname, subset=subset))
                if subset == RISE_SUBSET:
                    out.subset_paths[dname] |= set(run.images.path)
                log_rows.append({"dataset": dname, "model": name, "technique": tech, "person maps": len(maps),
                                 "images explained": sum(map(len, maps.images.values())),
                                 "map forwards": maps.forward_passes, "map s": round(maps.seconds, 1),
                                 "occlusion forwards": run.forward_passes, "occlusion s": round(run.seconds, 1)})
                log.info("%s %s %s: %d person maps (%d forwards, %.0f s); occlusion %d forwards, %.0f s", dname,
                         name, tech, len(maps), maps.forward_passes, maps.seconds, run.forward_passes, run.seconds)
    out.work = pd.DataFrame(log_rows)
    return out


def subset_runs(result: TechniqueRuns) -> list[OcclusionRun]:
    """Every technique's and the floor's rows restricted to the people the subset technique explained
    (labelled subset ``rise subset``), so the comparison is like for like; empty when none is a subset."""
    out = []
    for run in result.runs:
        if not len(run.images):
            continue
        dname, subset = run.images.dataset.iloc[0], run.images.subset.iloc[0]
        if subset == RISE_SUBSET:
            out.append(run)
        elif result.subset_paths.get(dname):
            out.append(occlusion_runner.label(occlusion_runner.restrict(run, result.subset_paths[dname]),
                                              subset=RISE_SUBSET))
    return out if any(result.subset_paths.values()) else []


# ---------------------------------------------------------------- tables

def technique_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`facexai.occlusion_summary.summarize` rows (by dataset and subset) as table rows: a critical selection is
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


def table1(main_table: pd.DataFrame) -> pd.DataFrame:
    """The reader's Table 1: techniques x (data set, measure) of the ``mean`` rows: recognition rate and
    balanced accuracy ("not available" where a data set is missing) and the work's published rate."""
    parts = {label: wide(main_table, col, "dataset", mask=col != "published_recognition_rate", model=MEAN)
             for col, label in [("recognition_rate", "recognition rate"), ("balanced_accuracy", "balanced accuracy"),
                                ("published_recognition_rate", "published")]}
    out = pd.concat(parts, axis=1).swaplevel(axis=1)
    present = [d for d in DATASETS if d in set(main_table.dataset)]
    return out[[(d, m) for d in present for m in ["recognition rate", "balanced accuracy", "published"]]]


def per_model(main_table: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Techniques x models of ``dataset``'s recognition rate, with the subset each technique's rows cover."""
    out = wide(main_table, "recognition_rate", "model", dataset=dataset)
    means = main_table[(main_table.dataset == dataset) & (main_table.model == MEAN)]
    out["subset"] = means.set_index(means.technique.map(LABELS)).subset
    return out


def fill_ranges(table: pd.DataFrame) -> pd.DataFrame:
    """Per data set and technique, the range (max - min) of the mean recognition rate across the fills."""
    ok = table[(table.model == MEAN) & (table.status == OK)]
    return (ok.groupby(["dataset", "technique"], sort=False).recognition_rate.agg(lambda s: s.max() - s.min())
            .rename("range across fills").reset_index())


# ---------------------------------------------------------------- sweeps

def sweep_rows(summary: pd.DataFrame, hyperparameter: str, value: object, position: float = np.nan) -> pd.DataFrame:
    """One sweep setting's critical-selection summary rows as :data:`SWEEP_COLUMNS` rows (technique = explainer)."""
    crit = summary[summary.selection == "critical"]
    return pd.DataFrame({"technique": crit.explainer, "model": crit.model, "hyperparameter": hyperparameter,
                         "value": [value] * len(crit), **{m: crit[m] for m in [*MEASURES, *SWEEP_INTERVALS]},
                         "position": position,
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

def run_sweeps(cfg: Config, zoo: Mapping[str, FaceModel], protocol: Protocol, technique_names: Sequence[str],
               main_layer: Mapping[str, str], swept: Mapping[str, Sequence[tuple[str, int]]], fill: str, q: float,
               n_boot: int = 200) -> tuple[pd.DataFrame, int]:
    """The second work's hyperparameters on the sweep models (the keys of ``swept``): layer and loss of the
    tuned techniques, mask count and grid cell of RISE. Each setting is occluded like the main table
    (``fill``, top ``q``%, no random floor). Returns the :data:`SWEEP_COLUMNS` rows and the forward passes."""
    parts, forwards = [], 0

    def made(maps: PersonMaps) -> PersonMaps:
        nonlocal forwards
        forwards += maps.forward_passes
        return maps

    def point(model: FaceModel, maps: PersonMaps, hyperparameter: str, value: object, position: float = np.nan):
        nonlocal forwards
        run = occlusion_runner.occlusion_experiment(cfg, model, maps, protocol, fills=[fill], qs=[q], random_seeds=())
        forwards += run.forward_passes
        summary = occlusion_summary.summarize(run, n_boot=n_boot, seed=cfg.seed)
        parts.append(sweep_rows(summary, hyperparameter, value, position))

    for name, layers in swept.items():
        model = zoo[name]
        main_pos = len(model.layers) - 1 - list(model.layers).index(main_layer[name])
        for tech in [t for t in technique_names if t in GRAD_CAMS]:
            every = made(generation_maps(cfg, model, protocol, tech, layers=cam_layers(main_layer[name], layers)))
            for layer, pos in layers:
                point(model, every.layer(layer), LAYER_SWEEP, layer, pos)
            for value, kwargs in loss_settings(parse_list(cfg.xai_margins, float)):
                maps = (every.layer(main_layer[name]) if kwargs["target"] == "cosine" else
                        made(generation_maps(cfg, model, protocol, tech, layers=[main_layer[name]], **kwargs)))
                point(model, maps, LOSS_SWEEP, value, main_pos)
        for tech in [t for t in technique_names if t in RISE]:
            for hyper, values in rise_sweep(cfg).items():
                for value in values:
                    point(model, made(generation_maps(cfg, model, protocol, tech, **{hyper: value})), hyper, value)
    sweeps = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=SWEEP_COLUMNS)
    return sweeps, forwards


def sweep_panels(sweeps: pd.DataFrame, fill: str, q: float) -> list[tuple[str, pd.DataFrame, str, str]]:
    """The sweep figures' data: (file stem, rows with an ``x`` label column, panel column, title) for the
    layer sweep (deepest layer last), the loss sweep and the RISE sweeps."""
    layers = sweeps[sweeps.hyperparameter == LAYER_SWEEP].sort_values("position", ascending=False, kind="stable")
    layers = layers.assign(x=[f"{v} ({int(k)})" for v, k in zip(layers.value, layers.position)])
    loss = sweeps[sweeps.hyperparameter == LOSS_SWEEP].assign(x=lambda d: d.value.astype(str))
    rise = sweeps[sweeps.hyperparameter.isin(["n_masks", "cell_size"])].assign(x=lambda d: d.value.astype(str))
    return [("sweep_layer", layers, "model",
             f"Layer (position from the end; 0 = last), cosine target, {fill} fill, top {q:g}%"),
            ("sweep_loss", loss, "model", f"Loss: cosine vs ArcFace margin (main layer, {fill} fill, top {q:g}%)"),
            ("sweep_rise", rise, "hyperparameter", f"RISE: mask count and grid cell size, px ({fill} fill, top {q:g}%)")]


# ---------------------------------------------------------------- cost

def time_explainer(model: FaceModel, crops: np.ndarray, technique: str, *, layers: list[str] | None = None,
                   n_masks: int = 1000, cell_size: int = RISE_CELL, batch_size: int = 16, seed: int = 0,
                   repeats: int = 1) -> float:
    """Wall seconds per image of ``technique``'s maps of ``crops`` (N, S, S, 3), computed afresh (no cache);
    the fastest of ``repeats`` runs (other jobs on a shared machine only ever slow a run down).

    Built by the runners :func:`facexai.saliency.image_maps` uses (CAMs: ``layers``, default every
    named layer; RISE: ``n_masks`` masked forwards per image, ``batch_size`` at a time, this
    technique's statistic alone); the target is each image's cosine to its own clean embedding (the
    cost does not depend on the target's value). CAMs are warmed up on the first image first (hook
    set-up); RISE's own first chunk is noise in n_masks.
    """
    tech = techniques.get(technique)
    x = embed.to_tensor(crops, next(model.parameters()).device)
    with torch.no_grad():
        target = CosineTarget(model(x))  # also warms the model up
    if tech.family == "rise":
        settings = tech.settings(n_masks=n_masks, cell_size=cell_size, batch_size=batch_size)
        runner = saliency.rise_runner(model, settings, seed, statistics=tech.explainer.statistics, progress=False)
    else:
        runner = saliency.cam_runner(tech, model, layers or list(model.layers), tech.settings())
        runner(x[:1], target.select(slice(0, 1)))
    best = np.inf
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        runner(x, target)
        best = min(best, time.perf_counter() - start)
    return best / len(crops)


def cost_table(cfg: Config, zoo: Mapping[str, FaceModel], protocol: Protocol, technique_names: Sequence[str],
               main_layer: Mapping[str, str]) -> pd.DataFrame:
    """:data:`COST_COLUMNS` rows of every model x technique on a fixed batch: the first cfg.xai_cost_images
    generation images (sorted paths) for the CAM family (the fastest of 3 runs; one-layer techniques at the
    main layer), the first of them for RISE (cfg.rise_masks masked forwards, one run)."""
    paths = sorted(protocol.generation_paths)[:cfg.xai_cost_images]
    rows = []
    for name, model in zoo.items():
        crops, _ = study.crops(cfg, paths, model.spec.geometry)
        for tech in technique_names:
            t = techniques.get(tech)
            n, repeats = (1, 1) if t.family == "rise" else (len(crops), 3)
            sec = time_explainer(model, crops[:n], tech, layers=[main_layer[name]] if t.layers == "one" else None,
                                 n_masks=cfg.rise_masks, seed=cfg.seed, repeats=repeats)
            rows.append(cost_row(tech, name, sec, n, cfg.rise_masks if t.family == "rise" else 0, repeats))
    return pd.DataFrame(rows, columns=COST_COLUMNS)


def cost_row(technique: str, model: str, seconds_per_image: float, n_images: int, n_masks: int = 0,
             repeats: int = 1) -> dict:
    """A :data:`COST_COLUMNS` row; passes per image: CAMs one forward and one backward, RISE ``n_masks`` forwards."""
    rise = techniques.get(technique).family == "rise"
    how = f"fresh computation (no cache) of a fixed batch, fastest of {repeats} run(s)"
    return {"technique": technique, "model": model, "seconds_per_image": seconds_per_image, "n_images": n_images,
            "forward_passes_per_image": n_masks if rise else 1, "backward_passes_per_image": 0 if rise else 1,
            "measured": how + (f", {n_masks} masks" if rise else "")}
