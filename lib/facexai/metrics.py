"""Numbers the study reports: verification accuracy with 10-fold thresholds, and friends."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """Threshold maximising accuracy of ``score >= t`` on these pairs (midpoints between scores).

    Ties between equally accurate thresholds go to the smallest one, so the result is deterministic.
    """
    s = np.unique(scores)
    candidates = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
    # accuracy for every candidate at once via sorting: accepted = scores >= t
    order = np.argsort(scores)
    sorted_scores, sorted_same = scores[order], same[order].astype(np.int64)
    # number of pairs below each candidate, and how many of those are genuine
    below = np.searchsorted(sorted_scores, candidates, side="left")
    genuine_below = np.concatenate([[0], np.cumsum(sorted_same)])[below]
    impostor_below = below - genuine_below
    genuine_total = sorted_same.sum()
    correct = impostor_below + (genuine_total - genuine_below)
    return float(candidates[int(np.argmax(correct))])


@dataclass(frozen=True)
class KFoldResult:
    """Per-fold thresholds (fit on the other folds) and held-out accuracies."""

    thresholds: np.ndarray
    accuracies: np.ndarray

    @property
    def mean(self) -> float:
        return float(self.accuracies.mean())

    @property
    def std(self) -> float:
        return float(self.accuracies.std())


def kfold_verification(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> KFoldResult:
    """LFW View 2 protocol: for each fold, fit the threshold on the others, test on it."""
    scores, same, folds = np.asarray(scores, float), np.asarray(same, bool), np.asarray(folds)
    if not (len(scores) == len(same) == len(folds)):
        raise ValueError("scores, same and folds must have the same length")
    fold_ids = np.unique(folds)
    if len(fold_ids) < 2:
        raise ValueError("k-fold verification needs at least two folds")
    thresholds, accuracies = [], []
    for k in fold_ids:
        test = folds == k
        t = best_threshold(scores[~test], same[~test])
        thresholds.append(t)
        accuracies.append(np.mean((scores[test] >= t) == same[test]))
    return KFoldResult(np.array(thresholds), np.array(accuracies))


def _scores(values: np.ndarray, name: str) -> np.ndarray:
    """1-D finite, non-empty float array, or a ValueError naming the argument."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"{name} must be a non-empty array of finite numbers")
    return values


def recognition_rate(scores: np.ndarray, threshold: float) -> float:
    """Fraction of genuine-pair scores still accepted (``score >= threshold``) at a threshold fixed on clean data."""
    return float(np.mean(_scores(scores, "scores") >= threshold))


def balanced_accuracy(genuine_scores: np.ndarray, impostor_scores: np.ndarray, threshold: float) -> float:
    """(TPR + TNR) / 2 at ``threshold``: genuine accepted (>= t) and impostors rejected (< t), equally weighted."""
    tpr = np.mean(_scores(genuine_scores, "genuine_scores") >= threshold)
    tnr = np.mean(_scores(impostor_scores, "impostor_scores") < threshold)
    return float((tpr + tnr) / 2)


def clean_threshold(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> float:
    """Decision threshold fixed on clean pairs: the mean of the k-fold thresholds of :func:`kfold_verification`.

    The mean of the thresholds behind the reported clean accuracy, rather than one threshold refit on
    all pairs, so the occluded results use the operating point the clean accuracy describes.
    """
    return float(kfold_verification(scores, same, folds).thresholds.mean())


def bootstrap_ci(values: np.ndarray, stat: Callable[..., np.ndarray] = np.mean, n: int = 2000,
                 alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap (1 - alpha) interval of ``stat`` over ``values`` with ``n`` resamples.

    ``stat`` must reduce along an ``axis`` keyword (numpy reductions do): all resamples of a chunk
    are evaluated in one call.
    """
    values = _scores(values, "values")
    if n < 1 or not 0 < alpha < 1:
        raise ValueError(f"need n >= 1 and alpha in (0, 1), got n={n}, alpha={alpha}")
    rng = np.random.default_rng(seed)
    rows = max(1, 4_000_000 // values.size)  # resamples per chunk: bounds memory to ~32 MB
    stats = np.concatenate([stat(values[rng.integers(0, values.size, (min(rows, n - start), values.size))], axis=1)
                            for start in range(0, n, rows)])
    return percentile_interval(stats, alpha)


Z95 = 1.959964  # two-sided 95% normal quantile


def wilson(rate: float, n: float) -> tuple[float, float]:
    """95% Wilson interval of a proportion ``rate`` observed on ``n`` units."""
    if not n or n <= 0 or not np.isfinite(rate):
        return float("nan"), float("nan")
    z2 = Z95 ** 2
    centre = (rate + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(rate * (1 - rate) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, min(rate, centre - half)), min(1.0, max(rate, centre + half))  # rounding at 0 and 1


def percentile_interval(boots: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile (1 - alpha) interval of bootstrap values; non-finite ones (e.g. ratios over 0) are left
    out, and none finite gives (nan, nan)."""
    boots = np.asarray(boots, dtype=float)
    finite = boots[np.isfinite(boots)]
    if not len(finite):
        return np.nan, np.nan
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _unit_mass(maps: np.ndarray) -> np.ndarray:
    """Non-negative maps (..., H, W) scaled to sum 1 over (H, W)."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim < 2:
        raise ValueError(f"maps must have shape (..., H, W), got {maps.shape}")
    if not np.isfinite(maps).all() or (maps < 0).any():
        raise ValueError("maps must be finite and non-negative (Bhattacharyya compares distributions)")
    total = maps.sum(axis=(-2, -1), keepdims=True)
    if (total == 0).any():
        raise ValueError("a map sums to zero and cannot be normalised to a distribution")
    return maps / total


def bhattacharyya(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Bhattacharyya coefficient sum(sqrt(P * Q)) of maps (..., H, W) normalised to sum 1 (broadcasting).

    1 for identical maps, 0 for disjoint supports.
    """
    return np.sqrt(_unit_mass(p) * _unit_mass(q)).sum(axis=(-2, -1))


def pairwise_bhattacharyya(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) Bhattacharyya coefficients of every map of ``a`` (N, H, W) with every map of ``b`` (M, H, W)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 3 or b.ndim != 3 or a.shape[1:] != b.shape[1:]:
        raise ValueError(f"expected (N, H, W) and (M, H, W) maps of one size, got {a.shape} and {b.shape}")
    return np.sqrt(_unit_mass(a)).reshape(len(a), -1) @ np.sqrt(_unit_mass(b)).reshape(len(b), -1).T


def layer_bhattacharyya(person_maps: np.ndarray) -> np.ndarray:
    """Mean over people of the BC between every two layers' maps: [person, layer, H, W] -> [layer, layer]."""
    roots = np.sqrt(_unit_mass(person_maps)).reshape(*person_maps.shape[:2], -1)
    return np.matmul(roots, roots.transpose(0, 2, 1)).sum(0) / len(person_maps)  # one GEMM per person: 30x einsum


def pair_bhattacharyya(maps: np.ndarray, pairs: np.ndarray, chunk: int = 256) -> np.ndarray:
    """BC of the maps of each index pair (n, 2) of ``maps`` (N, ..., H, W) -> (n, ...).

    One map channel (e.g. layer) at a time: its N square-rooted distributions are made once, then
    the pairs are summed in chunks, so memory stays near one channel of maps.
    """
    maps, pairs = np.asarray(maps), np.asarray(pairs, dtype=np.int64)
    if maps.ndim < 3:
        raise ValueError(f"maps must be (N, ..., H, W), got {maps.shape}")
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must be (n, 2) row indices, got {pairs.shape}")
    if len(pairs) and (pairs.min() < 0 or pairs.max() >= len(maps)):
        raise ValueError(f"pair indices must lie in [0, {len(maps)}), got {pairs.min()}..{pairs.max()}")
    flat = maps.reshape(len(maps), -1, *maps.shape[-2:])
    out = np.empty((len(pairs), flat.shape[1]))
    for c in range(flat.shape[1]):
        roots = np.sqrt(_unit_mass(flat[:, c])).reshape(len(maps), -1)
        for s in range(0, len(pairs), chunk):
            a, b = pairs[s:s + chunk, 0], pairs[s:s + chunk, 1]
            out[s:s + chunk, c] = np.einsum("ij,ij->i", roots[a], roots[b])
    return out.reshape(len(pairs), *maps.shape[1:-2])


def compare_samples(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """One-sided Mann-Whitney U test of a > b with two effect sizes.

    ``U`` is a's statistic; ``rank_biserial`` = 2U / (n_a n_b) - 1 (= Cliff's delta: P(a > b) - P(a < b));
    ``cohens_d`` = (mean a - mean b) / pooled standard deviation (ddof 1; NaN when it is undefined).
    """
    from scipy.stats import mannwhitneyu

    a, b = _scores(a, "a"), _scores(b, "b")
    u, p = mannwhitneyu(a, b, alternative="greater")
    d = np.nan
    if min(len(a), len(b)) >= 2:
        pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
        d = (a.mean() - b.mean()) / pooled if pooled > 0 else np.nan
    return {"U": float(u), "p_value": float(p), "rank_biserial": float(2 * u / (len(a) * len(b)) - 1),
            "cohens_d": float(d)}
