"""Control masks keep what they promise: pixel count, component sizes, placement inside the face."""
import numpy as np
import pytest

from facexai import controls
from facexai.explain.topk import critical_mask


@pytest.fixture
def blob_masks():
    """Top-1% masks of smooth random maps (a few blobs each, like upsampled CAM maps), 112 x 112."""
    rng = np.random.default_rng(3)
    coarse = rng.random((6, 7, 7))
    maps = np.stack([np.kron(c, np.ones((16, 16))) + 1e-3 * rng.random((112, 112)) for c in coarse])
    return critical_mask(maps, 2.0)


def test_component_sizes_hand_case():
    m = np.zeros((6, 6), bool)
    m[0, 0] = m[1, 1] = True  # diagonal neighbours: one 8-connected component
    m[4:6, 3:6] = True
    assert controls.component_sizes(m) == [6, 2]


def test_shifted_is_a_translation(blob_masks):
    out = controls.shifted_masks(blob_masks, seed=1)
    assert out.dtype == bool and out.shape == blob_masks.shape
    np.testing.assert_array_equal(out.sum((1, 2)), blob_masks.sum((1, 2)))
    for a, b in zip(blob_masks, out):
        assert controls.component_sizes(a) == controls.component_sizes(b)
        (ra, ca), (rb, cb) = np.argwhere(a).min(0), np.argwhere(b).min(0)
        ya, xa = np.nonzero(a)
        assert not np.array_equal(a, b)
        assert b[ya + (rb - ra), xa + (cb - ca)].all()  # every pixel moved by one common offset
    np.testing.assert_array_equal(out, controls.shifted_masks(blob_masks, seed=1))  # seeded
    assert not np.array_equal(out, controls.shifted_masks(blob_masks, seed=2))


def test_components_keep_sizes_and_move(blob_masks):
    out = controls.component_masks(blob_masks, seed=0)
    np.testing.assert_array_equal(out.sum((1, 2)), blob_masks.sum((1, 2)))
    for a, b in zip(blob_masks, out):
        assert controls.component_sizes(a) == controls.component_sizes(b)
    assert (out & blob_masks).sum() < 0.5 * blob_masks.sum()  # the layout is new, not the old one


def test_components_of_scattered_pixels_stay_single():
    m = np.zeros((1, 20, 20), bool)
    m[0, ::4, ::4] = True  # 25 isolated pixels
    out = controls.component_masks(m, seed=5)
    assert controls.component_sizes(out[0]) == [1] * 25


def test_region_random_masks_inside_the_face():
    regions = np.zeros((3, 40, 40), bool)
    regions[:, 10:30, 12:28] = True
    out = controls.region_random_masks(regions, 16, seed=0)
    assert (out.sum((1, 2)) == 16).all() and not (out & ~regions).any()
    with pytest.raises(ValueError, match="do not fit"):
        controls.region_random_masks(regions, 321, seed=0)


def test_face_regions_fall_back_to_the_crop():
    labels = np.zeros((3, 8, 8), np.uint8)
    labels[0, 2:6, 2:6] = 1
    labels[1, 2:6, 2:6] = 6
    regions, n = controls.face_regions(labels, np.array([True, False, True]))
    assert n == 2 and regions[0].sum() == 16 and regions[1].all() and regions[2].all()


def test_bad_masks_are_rejected():
    with pytest.raises(ValueError, match="boolean"):
        controls.shifted_masks(np.ones((1, 4, 4)))
    with pytest.raises(ValueError, match="at least one pixel"):
        controls.component_masks(np.zeros((1, 4, 4), bool))
    with pytest.raises(ValueError, match="whole crop"):
        controls.shifted_masks(np.ones((1, 4, 4), bool))
