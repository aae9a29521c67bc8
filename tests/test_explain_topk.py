"""critical_mask: top q% pixels, deterministic ties."""
import numpy as np
import pytest
import torch

from facexai.explain import critical_mask
from facexai.explain.topk import critical_masks


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


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_the_partition_equals_a_stable_descending_sort(dtype):
    """critical_mask finds the top k by a partition; it must pick what the first k of a stable sort pick."""
    rng = np.random.default_rng(0)
    for maps in (rng.integers(0, 4, (6, 2, 15, 15)), rng.random((6, 15, 15)), np.zeros((3, 7, 7))):
        maps = maps.astype(dtype)
        flat = maps.reshape(-1, maps.shape[-2] * maps.shape[-1]).astype(np.float64)
        for q in (0.5, 1.0, 10.0, 33.3, 100.0):
            k = max(1, int(np.floor(q * flat.shape[1] / 100 + 0.5)))
            expected = np.zeros(flat.shape, bool)
            np.put_along_axis(expected, np.argsort(-flat, axis=1, kind="stable")[:, :k], True, axis=1)
            np.testing.assert_array_equal(critical_mask(maps, q), expected.reshape(maps.shape))


def test_masks_of_several_q_from_one_sort_equal_one_call_each():
    maps = np.random.default_rng(5).integers(0, 4, (9, 10, 11)).astype(np.float32)  # ties at most k-th values
    qs = [25.0, 1.0, 100.0, 10.0]
    for q, mask in zip(qs, critical_masks(maps, qs), strict=True):
        np.testing.assert_array_equal(mask, critical_mask(maps, q))
    with pytest.raises(ValueError, match="percentage"):
        next(critical_masks(maps, [1.0, 0.0]))
