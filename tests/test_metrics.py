"""Verification, Bhattacharyya and sample-comparison metrics against hand-checked cases."""
import numpy as np
import pytest

from facexai import metrics


def test_cosine_similarity():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [-1.0, -1.0]])
    np.testing.assert_allclose(metrics.cosine_similarity(a, b), [1.0, -1.0])


def test_best_threshold_hand_case():
    # genuine at 0.9, 0.8, 0.4; impostor at 0.5, 0.3, 0.1 -> best t between 0.5 and 0.8 (5/6 correct)
    scores = np.array([0.9, 0.8, 0.4, 0.5, 0.3, 0.1])
    same = np.array([1, 1, 1, 0, 0, 0], bool)
    t = metrics.best_threshold(scores, same)
    assert 0.5 < t < 0.8 or 0.3 < t < 0.4
    assert np.mean((scores >= t) == same) == pytest.approx(5 / 6)


def test_best_threshold_separable_is_perfect():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.uniform(0.6, 1, 50), rng.uniform(-1, 0.5, 50)])
    same = np.arange(100) < 50
    t = metrics.best_threshold(scores, same)
    assert np.all((scores >= t) == same)


def test_kfold_uses_other_folds_only():
    # fold 0 alone would pick a different threshold than folds 1..2; the result must use the others.
    scores = np.array([0.9, 0.2, 0.7, 0.6, 0.75, 0.65])
    same = np.array([1, 0, 1, 0, 1, 0], bool)
    folds = np.array([0, 0, 1, 1, 2, 2])
    res = metrics.kfold_verification(scores, same, folds)
    # fold 0 threshold is fit on folds 1,2: scores 0.7,0.6,0.75,0.65 -> t in (0.65, 0.7]
    assert 0.65 < res.thresholds[0] <= 0.7
    # fold 1 (fit on 0.9g 0.2i 0.75g 0.65i): t = 0.70 -> 0.7g accepted, 0.6i rejected
    # fold 2 (fit on 0.9g 0.2i 0.7g 0.6i): t = 0.65 -> 0.75g accepted, 0.65i accepted (score >= t)
    np.testing.assert_allclose(res.thresholds, [0.675, 0.70, 0.65])
    np.testing.assert_allclose(res.accuracies, [1.0, 1.0, 0.5])
    assert res.mean == pytest.approx(2.5 / 3)


def test_kfold_rejects_bad_input():
    with pytest.raises(ValueError):
        metrics.kfold_verification(np.ones(3), np.ones(2, bool), np.zeros(3))
    with pytest.raises(ValueError):
        metrics.kfold_verification(np.ones(3), np.ones(3, bool), np.zeros(3))


def test_layer_bhattacharyya_is_mean_of_pairwise_bc():
    rng = np.random.default_rng(1)
    maps = rng.random((5, 3, 8, 8)) ** 4
    got = metrics.layer_bhattacharyya(maps)
    want = np.array([[np.mean([metrics.bhattacharyya(m[i], m[j]) for m in maps]) for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(np.diag(got), 1.0)
    assert np.allclose(got, got.T) and (got < 1 + 1e-12).all()


def test_pair_bhattacharyya_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    maps = rng.random((5, 3, 6, 7))
    pairs = np.array([[0, 1], [2, 4], [3, 3], [4, 0]])
    got = metrics.pair_bhattacharyya(maps, pairs, chunk=3)
    p = maps / maps.sum((-2, -1), keepdims=True)
    want = np.array([[np.sqrt(p[i, c] * p[j, c]).sum() for c in range(3)] for i, j in pairs])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(got[2], 1.0)
    disjoint = np.zeros((2, 4, 4))
    disjoint[0, :2], disjoint[1, 2:] = 1, 1
    assert metrics.pair_bhattacharyya(disjoint, np.array([[0, 1]]))[0] == 0.0
    with pytest.raises(ValueError, match=r"pair indices must lie in \[0, 5\)"):
        metrics.pair_bhattacharyya(maps, np.array([[0, 5]]))


def test_compare_samples_hand_case() -> None:
    """same = [3, 4] vs different = [1, 2]: U = 4 of 4, exact one-sided p = 1 / C(4, 2), d = 2 / sqrt(0.5)."""
    out = metrics.compare_samples(np.array([3.0, 4.0]), np.array([1.0, 2.0]))
    assert out["U"] == 4.0 and out["rank_biserial"] == 1.0
    assert out["p_value"] == pytest.approx(1 / 6)
    assert out["cohens_d"] == pytest.approx(2 / np.sqrt(0.5))
    tied = metrics.compare_samples(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert tied["rank_biserial"] == 0.0 and tied["cohens_d"] == 0.0 and tied["U"] == 4.5
    assert np.isnan(metrics.compare_samples(np.array([1.0]), np.array([0.0, 0.5]))["cohens_d"])


def test_percentile_interval_leaves_out_non_finite_values():
    """The 2.5 / 97.5 percentiles of the finite values; none finite gives (nan, nan); alpha widens it."""
    boots = np.concatenate([np.arange(1001.0), [np.nan, np.inf, -np.inf]])
    assert metrics.percentile_interval(boots) == (25.0, 975.0)
    assert metrics.percentile_interval(boots, alpha=0.5) == (250.0, 750.0)
    assert all(np.isnan(metrics.percentile_interval(np.array([np.nan, np.inf]))))
