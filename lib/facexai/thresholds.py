"""Operating points of a verifier: where the accept threshold on a similarity score is put.

A pair is accepted when ``score >= threshold``. Each rule fits its threshold on CLEAN scores and the
occluded scores are then judged at it (notebook 10 compares the rules):

- ``kfold_balanced``: the mean of the 10-fold best-accuracy thresholds of the run's (balanced)
  verification pairs, the study's default (:func:`facexai.metrics.clean_threshold`);
- ``eer``: where the false-accept rate equals the false-reject rate;
- ``far``: the lowest threshold whose false-accept rate is at most a target (e.g. 1e-3);
- ``best_accuracy``: the accuracy-maximising threshold of the given pairs, fit on all of them.

Candidate thresholds are the midpoints between consecutive distinct scores (and one just below /
above the extremes), as in :func:`facexai.metrics.best_threshold`, so every rule is deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from facexai import metrics


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold with the error rates it has on the clean scores it was fit on."""

    rule: str
    threshold: float
    far: float  # share of impostor scores >= threshold
    frr: float  # share of genuine scores < threshold
    n_genuine: int
    n_impostor: int
    resolved: bool = True  # False: the target FAR is below 1 / n_impostor (cannot be measured)


def _finite(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"{name} must be a non-empty array of finite scores")
    return values


def candidates(*scores: np.ndarray) -> np.ndarray:
    """Sorted candidate thresholds: midpoints of the distinct scores, one below the lowest and one above the highest."""
    s = np.unique(np.concatenate([np.ravel(x) for x in scores]))
    return np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])


def error_rates(genuine: np.ndarray, impostor: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, FRR) at every threshold: share of impostors >= t, share of genuine < t (vectorised by sorting)."""
    genuine, impostor = np.sort(_finite(genuine, "genuine")), np.sort(_finite(impostor, "impostor"))
    t = np.asarray(thresholds, dtype=np.float64)
    far = 1 - np.searchsorted(impostor, t, side="left") / len(impostor)
    frr = np.searchsorted(genuine, t, side="left") / len(genuine)
    return far, frr


def _point(rule: str, t: float, genuine: np.ndarray, impostor: np.ndarray, resolved: bool = True) -> OperatingPoint:
    far, frr = error_rates(genuine, impostor, np.array([t]))
    return OperatingPoint(rule, float(t), float(far[0]), float(frr[0]), len(np.ravel(genuine)),
                          len(np.ravel(impostor)), resolved)


def eer_threshold(genuine: np.ndarray, impostor: np.ndarray) -> OperatingPoint:
    """The equal-error-rate threshold: the candidate minimising |FAR - FRR| (ties: the lowest)."""
    genuine, impostor = _finite(genuine, "genuine"), _finite(impostor, "impostor")
    cand = candidates(genuine, impostor)
    far, frr = error_rates(genuine, impostor, cand)
    return _point("eer", cand[int(np.argmin(np.abs(far - frr)))], genuine, impostor)


def far_threshold(genuine: np.ndarray, impostor: np.ndarray, target: float) -> OperatingPoint:
    """The lowest candidate threshold whose FAR on ``impostor`` is <= ``target`` (``resolved`` is False
    when ``target`` < 1 / n_impostor: then no impostor may be accepted and the FAR is only bounded)."""
    genuine, impostor = _finite(genuine, "genuine"), _finite(impostor, "impostor")
    if not 0 < target < 1:
        raise ValueError(f"target FAR must be in (0, 1), got {target}")
    cand = candidates(genuine, impostor)
    accepted = len(impostor) - np.searchsorted(np.sort(impostor), cand, side="left")  # counts: no rounding of rates
    allowed = np.floor(target * len(impostor) + 1e-9)
    t = cand[int(np.flatnonzero(accepted <= allowed)[0])]  # non-increasing; the top candidate accepts none
    return _point(f"far_{target:g}", t, genuine, impostor, resolved=target * len(impostor) >= 1)


def best_accuracy_threshold(genuine: np.ndarray, impostor: np.ndarray) -> OperatingPoint:
    """The accuracy-maximising threshold over these pairs, all fit at once (:func:`metrics.best_threshold`)."""
    genuine, impostor = _finite(genuine, "genuine"), _finite(impostor, "impostor")
    scores = np.concatenate([genuine, impostor])
    same = np.arange(len(scores)) < len(genuine)
    return _point("best_accuracy", metrics.best_threshold(scores, same), genuine, impostor)


def kfold_balanced_threshold(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> OperatingPoint:
    """The study's default: mean of the k-fold best-accuracy thresholds (:func:`metrics.clean_threshold`)."""
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=bool)
    t = metrics.clean_threshold(scores, same, np.asarray(folds))
    return _point("kfold_balanced", t, scores[same], scores[~same])


def all_pair_scores(embeddings: np.ndarray, identities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) cosine scores of EVERY unordered pair of distinct rows of ``embeddings`` (N, D)."""
    emb = np.asarray(embeddings, dtype=np.float64)
    identities = np.asarray(identities)
    if emb.ndim != 2 or len(emb) != len(identities) or len(emb) < 2:
        raise ValueError(f"need (N >= 2, D) embeddings with one identity each, got {emb.shape} and {len(identities)}")
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    scores = emb @ emb.T  # one product: memory N^2 floats, never N^2 x D (full LFW: 9k images, 0.3 GB)
    codes = np.unique(identities, return_inverse=True)[1]
    upper = np.triu(np.ones(scores.shape, dtype=bool), k=1)
    same = codes[:, None] == codes[None, :]
    genuine, impostor = scores[upper & same], scores[upper & ~same]
    if not len(genuine) or not len(impostor):
        raise ValueError("all-pair scores need both genuine and impostor pairs")
    return genuine.astype(np.float64), impostor.astype(np.float64)


def operating_points(rules: list[str], study_scores: np.ndarray, study_same: np.ndarray, study_folds: np.ndarray,
                     all_genuine: np.ndarray, all_impostor: np.ndarray) -> dict[str, OperatingPoint]:
    """Thresholds of the named ``rules`` fit on clean scores.

    ``kfold_balanced`` and ``best_accuracy`` use the run's verification pairs (``study_*``); ``eer`` and
    ``far_<target>`` (e.g. ``far_1e-3``) use every genuine and impostor pair of the run's images
    (``all_*``), so a FAR as low as 1e-3 rests on thousands of impostors.
    """
    study_scores, study_same = np.asarray(study_scores, float), np.asarray(study_same, bool)
    out = {}
    for rule in rules:
        if rule == "kfold_balanced":
            out[rule] = kfold_balanced_threshold(study_scores, study_same, study_folds)
        elif rule == "best_accuracy":
            out[rule] = best_accuracy_threshold(study_scores[study_same], study_scores[~study_same])
        elif rule == "eer":
            out[rule] = eer_threshold(all_genuine, all_impostor)
        elif rule.startswith("far_"):
            out[rule] = replace(far_threshold(all_genuine, all_impostor, float(rule.removeprefix("far_"))), rule=rule)
        else:
            raise ValueError(f"unknown operating point {rule!r}; valid: kfold_balanced, best_accuracy, eer, far_<rate>")
    return out
