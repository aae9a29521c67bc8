"""Face verification of the study's pairs: cosine scores of each pair's embeddings, and the k-fold
accuracy table beside each model's published LFW figure (notebook 01).

The protocol itself (thresholds fit on the other folds) is :func:`facexai.metrics.kfold_verification`.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from facexai import embed, metrics, study
from facexai.cache import file_sha256
from facexai.models.registry import FaceModel
from facexai.profiles import REPO_ROOT, Config

#: lfw_accuracy.csv (:func:`accuracy_table`): per model, the mean and standard deviation over folds of
#: the held-out accuracy (fractions), the published accuracy (a fraction, NaN when none), the gap in
#: percentage points, the pairs and folds counted, and where the pairs came from (no machine path).
LFW_ACCURACY_COLUMNS = ("model", "accuracy", "std", "published", "gap (points)", "pairs", "folds", "pairs source")
LFW_ACCURACY_NUMERIC = ("accuracy", "std", "published", "gap (points)", "pairs", "folds")


def pair_scores(cfg: Config, model: FaceModel, pairs: pd.DataFrame) -> np.ndarray:
    """Cosine similarity of the embeddings of each pair [path_a, path_b] (crops in the model's geometry,
    each image embedded once, from the embedding cache)."""
    paths = list(dict.fromkeys([*pairs.path_a, *pairs.path_b]))
    crops, keys = study.crops(cfg, paths, model.spec.geometry)
    emb = embed.cached_embed(model, crops, keys, cfg.cache_root)
    row_of = {p: i for i, p in enumerate(paths)}
    return metrics.cosine_similarity(emb[[row_of[p] for p in pairs.path_a]], emb[[row_of[p] for p in pairs.path_b]])


def pairs_source_label(source: str, data_root: str | Path) -> str:
    """Where the pairs came from, with no machine path: a pairs file as its path relative to the data
    root (else to the repository, else its name) and its SHA-256; any other description unchanged."""
    path = Path(source)
    if not path.is_absolute() or not path.is_file():
        return source
    for root in (Path(data_root), REPO_ROOT):
        if path.resolve().is_relative_to(root.resolve()):
            shown = path.resolve().relative_to(root.resolve()).as_posix()
            break
    else:
        shown = path.name
    return f"{shown} (sha256 {file_sha256(path)[:16]})"


def accuracy_table(scores: Mapping[str, np.ndarray], pairs: pd.DataFrame, published: Mapping[str, float | None],
                   pairs_source: str) -> pd.DataFrame:
    """k-fold verification accuracy of each model's ``scores`` on ``pairs`` [same, fold] beside its
    published accuracy (:data:`LFW_ACCURACY_COLUMNS`)."""
    rows = []
    for name, s in scores.items():
        if len(s) != len(pairs):
            raise ValueError(f"{name}: {len(s)} scores for {len(pairs)} pairs")
        res = metrics.kfold_verification(s, pairs.same.to_numpy(), pairs.fold.to_numpy())
        ref = np.nan if published.get(name) is None else float(published[name])
        rows.append((name, res.mean, res.std, ref, 100 * (res.mean - ref), len(pairs), pairs.fold.nunique(),
                     pairs_source))
    return pd.DataFrame(rows, columns=list(LFW_ACCURACY_COLUMNS))


def accuracy_intervals(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Rows for :func:`facexai.plots.forest_plot` from an :func:`accuracy_table`: each model's accuracy with a 95%
    Wilson interval over its pairs (bounded by 1, and not empty when every fold is perfect) beside its published
    value, so the figure shows the gap and its uncertainty rather than bars near 1."""
    bounds = np.array([metrics.wilson(float(a), float(n)) for a, n in zip(accuracy["accuracy"], accuracy["pairs"])])
    published = accuracy["published"].astype(float)
    return pd.DataFrame({"label": accuracy["model"], "unit": "verification accuracy (95% Wilson interval over pairs)",
                         "estimate": accuracy["accuracy"], "lo": bounds[:, 0], "hi": bounds[:, 1],
                         "published_lo": published, "published_hi": published})


def score_table(scores: Mapping[str, np.ndarray], pairs: pd.DataFrame) -> pd.DataFrame:
    """Long table model, cosine, pair (genuine / impostor) of every model's pair scores (for plots)."""
    kind = np.where(pairs.same.to_numpy(bool), "genuine", "impostor")
    return pd.concat([pd.DataFrame({"model": name, "cosine": s, "pair": kind}) for name, s in scores.items()])
