"""critical_mask: top q% pixels, deterministic ties."""
import numpy as np
import pytest
import torch

from facexai.explain import critical_mask


def test_top_pixels_and_count():
    rng = np.random.default_rng(0)
    sal = rng.random((2, 3, 20, 30))
    mask = critical_mask(sal, q=5.0)
    assert mask.shape == sal.shape and mask.dtype == bool
    assert (mask.sum((-2, -1)) == 30).all()  # 5% of 600
    for m, s in zip(mask.reshape(-1, 600), sal.reshape(-1, 600)):
        assert s[m].min() > s[~m].max()
    assert np.array_equal(critical_mask(torch.from_numpy(sal), 5.0), mask)
    assert critical_mask(sal[0, 0], q=0.01).sum() == 1


def test_ties_broken_by_pixel_index():
    sal = np.zeros((4, 5))
    sal[3, 4] = 1.0
    mask = critical_mask(sal, q=20.0)  # 4 pixels: the max, then the 3 lowest-index zeros
    expected = np.zeros(20, bool)
    expected[[0, 1, 2, 19]] = True
    assert np.array_equal(mask.ravel(), expected)


@pytest.mark.parametrize("q", [0, -1, 100.5])
def test_bad_q(q):
    with pytest.raises(ValueError, match="percentage"):
        critical_mask(np.ones((4, 4)), q=q)


def test_nan_raises():
    with pytest.raises(ValueError, match="NaN"):
        critical_mask(np.full((4, 4), np.nan))
