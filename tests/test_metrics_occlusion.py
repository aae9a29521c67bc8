"""Occlusion-study metrics: recognition rate, balanced accuracy, clean threshold, bootstrap, Bhattacharyya."""
import numpy as np
import pytest

from facexai import metrics


def test_recognition_rate_hand_case() -> None:
    scores = np.array([0.9, 0.5, 0.3, 0.7])
    assert metrics.recognition_rate(scores, 0.5) == 0.75  # a score equal to the threshold is accepted
    assert metrics.recognition_rate(scores, 0.95) == 0.0
    with pytest.raises(ValueError, match="scores"):
        metrics.recognition_rate(np.array([0.1, np.nan]), 0.5)


def test_balanced_accuracy_hand_case() -> None:
    genuine = np.array([0.9, 0.5, 0.3, 0.7])  # 3 of 4 accepted at 0.5
    impostor = np.array([0.1, 0.6, 0.2])  # 2 of 3 rejected at 0.5
    assert metrics.balanced_accuracy(genuine, impostor, 0.5) == pytest.approx((3 / 4 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="impostor_scores"):
        metrics.balanced_accuracy(genuine, np.array([]), 0.5)


def test_clean_threshold_is_mean_of_fold_thresholds() -> None:
    # fold 0: genuine 0.8, impostor 0.2 (its best threshold 0.5); fold 1: 0.9 vs 0.5 (best 0.7).
    # Each fold's threshold is fit on the other fold, so the mean is (0.7 + 0.5) / 2.
    scores = np.array([0.8, 0.2, 0.9, 0.5])
    same = np.array([True, False, True, False])
    folds = np.array([0, 0, 1, 1])
    assert metrics.clean_threshold(scores, same, folds) == pytest.approx(0.6)


def test_bootstrap_ci_contains_mean_and_shrinks() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.normal(1.0, 2.0, 400), rng.normal(1.0, 2.0, 1600)
    lo_s, hi_s = metrics.bootstrap_ci(small)
    lo_l, hi_l = metrics.bootstrap_ci(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert 1.6 < (hi_s - lo_s) / (hi_l - lo_l) < 2.5  # width ~ 1 / sqrt(size)
    normal_width = 2 * 1.96 * large.std() / np.sqrt(large.size)
    assert abs((hi_l - lo_l) / normal_width - 1) < 0.1
    assert metrics.bootstrap_ci(small, seed=3) == metrics.bootstrap_ci(small, seed=3)
    assert metrics.bootstrap_ci(small, alpha=0.2)[1] - metrics.bootstrap_ci(small, alpha=0.2)[0] < hi_s - lo_s


def test_bootstrap_ci_equals_loop_reference() -> None:
    """Chunked, vectorised resampling gives the same resamples as one draw of (n, size) indices."""
    values = np.random.default_rng(1).exponential(size=5000)  # 800 resamples per chunk -> 3 chunks
    idx = np.random.default_rng(9).integers(0, values.size, (2000, values.size))
    ref = np.quantile([np.median(values[i]) for i in idx], [0.025, 0.975])
    np.testing.assert_allclose(metrics.bootstrap_ci(values, np.median, seed=9), ref)


def test_bhattacharyya_properties() -> None:
    rng = np.random.default_rng(2)
    p, q = rng.random((8, 9)), rng.random((8, 9))
    assert metrics.bhattacharyya(p, p) == pytest.approx(1.0)
    assert metrics.bhattacharyya(p, 5 * p) == pytest.approx(1.0)  # maps are normalised first
    assert metrics.bhattacharyya(p, q) == pytest.approx(metrics.bhattacharyya(q, p))
    assert 0 < metrics.bhattacharyya(p, q) < 1
    left, right = np.zeros((8, 9)), np.zeros((8, 9))
    left[:, :4], right[:, 4:] = 1.0, 2.0
    assert metrics.bhattacharyya(left, right) == 0.0
    half = np.zeros((8, 9))
    half[:, :2] = 1.0
    assert metrics.bhattacharyya(left, half) == pytest.approx(np.sqrt(0.5))  # 16 px of 1/32 vs 1/16
    with pytest.raises(ValueError, match="non-negative"):
        metrics.bhattacharyya(p - 0.5, q)
    with pytest.raises(ValueError, match="sums to zero"):
        metrics.bhattacharyya(np.zeros((8, 9)), q)


def test_pairwise_bhattacharyya_equals_loop_and_broadcast() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random((4, 10, 12)) ** 3, rng.random((6, 10, 12)) ** 3
    loop = np.array([[metrics.bhattacharyya(x, y) for y in b] for x in a])
    pair = metrics.pairwise_bhattacharyya(a, b)
    assert pair.shape == (4, 6)
    np.testing.assert_allclose(pair, loop, rtol=1e-12)
    np.testing.assert_allclose(metrics.bhattacharyya(a[:, None], b[None]), loop, rtol=1e-12)
    np.testing.assert_allclose(np.diag(metrics.pairwise_bhattacharyya(a, a)), 1.0)
    with pytest.raises(ValueError, match="one size"):
        metrics.pairwise_bhattacharyya(a, b[:, :5])
