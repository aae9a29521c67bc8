"""Operating points on constructed score sets whose thresholds are known by hand."""
import numpy as np
import pytest

from facexai import metrics, thresholds


def test_error_rates_hand_case():
    far, frr = thresholds.error_rates([0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.65], np.array([0.0, 0.625, 0.95]))
    np.testing.assert_allclose(far, [1.0, 0.25, 0.0])
    np.testing.assert_allclose(frr, [0.0, 0.25, 1.0])


def test_eer_threshold_known_answer():
    # one impostor (0.65) sits among the genuine scores: FAR = FRR = 1/4 for t in (0.6, 0.65]
    pt = thresholds.eer_threshold([0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.65])
    assert pt.threshold == pytest.approx(0.625) and pt.far == pt.frr == 0.25


def test_eer_of_separable_scores_is_zero():
    pt = thresholds.eer_threshold([0.8, 0.9], [0.1, 0.2, 0.3])
    assert pt.far == pt.frr == 0 and 0.3 < pt.threshold < 0.8


def test_far_threshold_accepts_exactly_the_allowed_impostors():
    impostor = np.arange(1000) / 1000  # 0.000 ... 0.999
    genuine = np.array([0.995, 1.2])
    pt = thresholds.far_threshold(genuine, impostor, 1e-2)
    assert 0.989 < pt.threshold < 0.990 and pt.far == pytest.approx(0.01) and pt.resolved
    assert np.sum(impostor >= pt.threshold) == 10
    pt3 = thresholds.far_threshold(genuine, impostor, 1e-3)
    assert np.sum(impostor >= pt3.threshold) == 1 and pt3.threshold > pt.threshold


def test_far_below_resolution_is_flagged():
    pt = thresholds.far_threshold([0.9], [0.1, 0.5, 0.3], 1e-3)  # 3 impostors cannot measure 1e-3
    assert not pt.resolved and pt.far == 0 and pt.threshold > 0.5
    with pytest.raises(ValueError, match="target FAR"):
        thresholds.far_threshold([0.9], [0.1], 0)


def test_best_accuracy_matches_metrics():
    rng = np.random.default_rng(1)
    gen, imp = rng.normal(0.6, 0.1, 200), rng.normal(0.3, 0.1, 300)
    pt = thresholds.best_accuracy_threshold(gen, imp)
    scores = np.concatenate([gen, imp])
    assert pt.threshold == metrics.best_threshold(scores, np.arange(500) < 200)
    acc = lambda t: (np.sum(gen >= t) + np.sum(imp < t)) / 500  # noqa: E731
    assert acc(pt.threshold) >= max(acc(t) for t in np.linspace(0, 1, 201))


def test_all_pair_scores_counts_and_values():
    emb = np.array([[1.0, 0], [1.0, 0.0], [0.0, 1.0], [0.0, 2.0]])
    gen, imp = thresholds.all_pair_scores(emb, np.array(["a", "a", "b", "b"]))
    np.testing.assert_allclose(np.sort(gen), [1.0, 1.0])
    np.testing.assert_allclose(imp, [0.0] * 4)
    with pytest.raises(ValueError, match="genuine and impostor"):
        thresholds.all_pair_scores(emb, np.array(["a"] * 4))


def test_operating_points_dispatch_and_unknown_rule():
    gen, imp = np.array([0.6, 0.7, 0.8, 0.9]), np.array([0.1, 0.2, 0.3, 0.65])
    scores = np.concatenate([gen, imp])
    same = np.arange(8) < 4
    folds = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    pts = thresholds.operating_points(["kfold_balanced", "eer", "far_1e-2", "best_accuracy"], scores, same, folds,
                                      gen, imp)
    assert list(pts) == ["kfold_balanced", "eer", "far_1e-2", "best_accuracy"]
    assert pts["far_1e-2"].rule == "far_1e-2" and pts["far_1e-2"].far == 0 and not pts["far_1e-2"].resolved
    assert pts["kfold_balanced"].threshold == pytest.approx(metrics.clean_threshold(scores, same, folds))
    with pytest.raises(ValueError, match="unknown operating point"):
        thresholds.operating_points(["median"], scores, same, folds, gen, imp)
