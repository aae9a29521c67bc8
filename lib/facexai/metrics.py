"""Numbers the study reports: verification accuracy with 10-fold thresholds, and friends."""
from __future__ import annotations

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
