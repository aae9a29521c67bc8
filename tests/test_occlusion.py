"""Occlusion: top-k and random masks, fills touch exactly the masked pixels, cross-geometry warps, split."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from facexai import align, data, occlusion


def _images(n: int = 3, h: int = 20, w: int = 24, dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    """Random RGB images with values in [1, 254], so black and white always change a pixel."""
    return np.random.default_rng(seed).integers(1, 255, (n, h, w, 3)).astype(dtype)


# --- masks -----------------------------------------------------------------------------------------

def test_critical_mask_is_the_top_k_pixels() -> None:
    sal = np.random.default_rng(1).random((4, 16, 25))
    mask = occlusion.critical_mask(sal, q=10.0)
    assert mask.shape == sal.shape and (mask.sum((1, 2)) == 40).all()
    for m, s in zip(mask, sal):
        assert s[m].min() > s[~m].max()


def test_critical_mask_constant_map_takes_first_pixel_indices() -> None:
    mask = occlusion.critical_mask(np.full((2, 8, 10), 0.3), q=5.0)  # k = 4
    expected = np.zeros(80, bool)
    expected[:4] = True
    assert all(np.array_equal(m.ravel(), expected) for m in mask)


@pytest.mark.parametrize(("q", "size", "k"), [(1.0, 112, 125), (1.0, 150, 225), (1.0, 160, 256), (0.5, 3, 1),
                                              (0.001, 10, 1), (100.0, 7, 49), (2.5, 30, 23)])
def test_critical_mask_k_rounds_half_up(q: float, size: int, k: int) -> None:
    """k = round(q / 100 * H * W), halves up, at least 1 (1% of 112x112 = 125.44 -> 125; 2.5% of 900 = 22.5 -> 23)."""
    sal = np.random.default_rng(2).random((size, size))
    assert occlusion.critical_mask(sal, q).sum() == k


def test_critical_mask_whole_percentages_are_exact() -> None:
    sal = np.random.default_rng(3).random((10, 10))
    assert [occlusion.critical_mask(sal, q).sum() for q in (7.0, 14.0, 28.0)] == [7, 14, 28]


def test_random_mask_count_seed_and_spread() -> None:
    mask = occlusion.random_mask((500, 6, 5), k=3, seed=4)
    assert mask.shape == (500, 6, 5) and (mask.sum((1, 2)) == 3).all()
    assert np.array_equal(mask, occlusion.random_mask((500, 6, 5), k=3, seed=4))
    assert not np.array_equal(mask, occlusion.random_mask((500, 6, 5), k=3, seed=5))
    assert len({m.tobytes() for m in mask}) > 400  # maps are drawn independently
    hits = mask.sum(0).ravel()  # expected 500 * 3 / 30 = 50 per pixel, sd ~6.7
    assert hits.min() > 25 and hits.max() < 75
    assert occlusion.random_mask((6, 5), k=30, seed=0).all()
    with pytest.raises(ValueError, match="k must be"):
        occlusion.random_mask((6, 5), k=31)


# --- fills -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def masks() -> np.ndarray:
    return occlusion.random_mask((3, 20, 24), k=60, seed=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("kind", occlusion.FILLS)
def test_fill_changes_exactly_the_masked_pixels(kind: str, dtype: type, masks: np.ndarray) -> None:
    images = _images(dtype=dtype)
    before = images.copy()
    out = occlusion.fill(images, masks, kind, seed=3, mean_colour=np.array([10.4, 200.6, 77.5]))
    assert out.dtype == images.dtype and out.shape == images.shape
    assert np.array_equal(images, before)  # input untouched
    assert np.array_equal(out[~masks].view(np.uint8), images[~masks].view(np.uint8))  # bit-identical
    changed = (out != images).any(-1)
    assert changed[masks].mean() > 0.95 and not changed[~masks].any()


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_fill_constant_values(dtype: type, masks: np.ndarray) -> None:
    images = _images(dtype=dtype)
    colour = np.array([10.4, 200.6, 77.5])
    assert (occlusion.fill(images, masks, "black")[masks] == 0).all()
    assert (occlusion.fill(images, masks, "white")[masks] == 255).all()
    mean = occlusion.fill(images, masks, "mean", mean_colour=colour)[masks]
    assert np.array_equal(mean, np.broadcast_to([10, 201, 78] if dtype == np.uint8 else colour, mean.shape))


def test_dataset_mean_colour() -> None:
    crops = _images(n=5)
    np.testing.assert_allclose(occlusion.dataset_mean_colour(crops),
                               [crops[..., c].astype(float).mean() for c in range(3)])
    with pytest.raises(ValueError, match="RGB"):
        occlusion.dataset_mean_colour(np.zeros((4, 4)))


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_fill_random_is_seeded_uniform_noise(dtype: type) -> None:
    images = _images(n=4, h=40, w=40, dtype=dtype)
    big = np.zeros((4, 40, 40), bool)
    big[:, :30] = True
    small = big & (np.arange(40) < 10)
    a = occlusion.fill(images, big, "random", seed=7)
    noise = a[big]
    assert np.array_equal(noise, np.round(noise)) and noise.min() == 0 and noise.max() == 255
    assert abs(noise.mean() - 127.5) < 3  # 14,400 uniform values: sd of the mean ~0.6
    assert np.array_equal(a, occlusion.fill(images, big, "random", seed=7))
    assert (occlusion.fill(images, big, "random", seed=8)[big] != noise).mean() > 0.9
    # a pixel's noise depends on the seed and its position only, not on the rest of the mask
    assert np.array_equal(occlusion.fill(images, small, "random", seed=7)[small], a[small])


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_fill_blur_matches_reference_gaussian(dtype: type, masks: np.ndarray) -> None:
    images = _images(dtype=dtype)
    sigma = 2.0
    out = occlusion.fill(images, masks, "blur", blur_sigma=sigma)
    radius = (occlusion.blur_kernel_size(sigma) - 1) // 2
    # scipy's "mirror" border is OpenCV's reflect-101; same kernel radius
    ref = np.stack([gaussian_filter(img.astype(np.float64), (sigma, sigma, 0), mode="mirror",
                                    truncate=radius / sigma) for img in images])
    if dtype == np.uint8:
        assert np.abs(out[masks].astype(int) - np.rint(ref[masks])).max() <= 1
    else:
        np.testing.assert_allclose(out[masks], ref[masks], atol=1e-3)
    assert occlusion.blur_kernel_size(5.0) == 31


def test_fill_one_mask_for_all_images() -> None:
    images = _images()
    mask = occlusion.random_mask((20, 24), k=10, seed=1)
    assert np.array_equal(occlusion.fill(images, mask, "black"),
                          occlusion.fill(images, np.broadcast_to(mask, (3, 20, 24)), "black"))


def test_fill_bad_input() -> None:
    images, mask = _images(), np.zeros((3, 20, 24), bool)
    with pytest.raises(ValueError, match="black.*white.*random.*mean.*blur"):
        occlusion.fill(images, mask, "grey")
    with pytest.raises(ValueError, match="mean_colour"):
        occlusion.fill(images, mask, "mean")
    with pytest.raises(TypeError, match="numpy"):
        occlusion.fill(torch.zeros(3, 3, 20, 24), mask, "black")
    with pytest.raises(ValueError, match="do not fit"):
        occlusion.fill(images, np.zeros((3, 24, 20), bool), "black")
    with pytest.raises(ValueError, match="boolean"):
        occlusion.fill(images, mask.astype(np.uint8), "black")


# --- warps between geometries --------------------------------------------------------------------

def _blob(size: int, centre: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    return np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma ** 2))


def _peak(image: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (x, y) of the pixels above half maximum."""
    y, x = np.nonzero(image > image.max() / 2)
    w = image[y, x]
    return np.array([np.average(x, weights=w), np.average(y, weights=w)])


def _similarity(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def test_warp_synthetic_similarities() -> None:
    m_from, m_to = _similarity(0.2, 0.5, (-20, 10)), _similarity(-0.1, 0.8, (-40, -30))
    source = np.array([110.0, 90.0])  # a point of the source image, seen in both crops
    point_from, point_to = align.transform_points(source, m_from), align.transform_points(source, m_to)
    assert (5 < point_from).all() and (point_from < 95).all() and (5 < point_to).all() and (point_to < 115).all()
    warped = occlusion.warp_mask_to(_blob(100, point_from), m_from, m_to, 120)
    assert warped.shape == (120, 120) and warped.dtype == np.float32
    assert np.linalg.norm(_peak(warped) - point_to) < 0.3
    top = np.argwhere(occlusion.critical_mask(warped, q=0.01))[0][::-1]  # the single top pixel, (x, y)
    assert np.linalg.norm(top - point_to) <= 1.0
    same = np.random.default_rng(0).random((50, 50))
    np.testing.assert_allclose(occlusion.warp_mask_to(same, m_from, m_from, 50), same, atol=1e-5)


def test_warp_fills_outside_with_minimum() -> None:
    sal = np.random.default_rng(0).random((40, 40)) + 2.0
    shifted = occlusion.warp_mask_to(sal, np.eye(2, 3), np.array([[1.0, 0, 30], [0, 1, 0]]), 40)
    assert np.allclose(shifted[:, :29], sal.min()) and shifted[:, 31:].min() > sal.min() - 1e-6


def test_warp_person_map_to_many_images() -> None:
    rng = np.random.default_rng(5)
    person = rng.random((30, 30))
    m_from = np.stack([_similarity(a, 0.6, (-5, -5)) for a in rng.uniform(-0.3, 0.3, 4)])
    m_to = np.stack([_similarity(a, 0.9, (-8, -6)) for a in rng.uniform(-0.3, 0.3, 4)])
    out = occlusion.warp_mask_to(person, m_from, m_to, 36)
    assert out.shape == (4, 36, 36)
    for i in range(4):
        np.testing.assert_array_equal(out[i], occlusion.warp_mask_to(person, m_from[i], m_to[i], 36))
    with pytest.raises(ValueError, match="counts"):
        occlusion.warp_mask_to(np.stack([person] * 3), m_from, m_to, 36)


@pytest.fixture(scope="module")
def real_face(sample_dir: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Matrices of one real sample face in every geometry, and its 5 MTCNN landmarks (source pixels)."""
    path = next(iter(data.load_lfw(sample_dir).identities.values()))[0]
    image = data.load_image(path)
    det = align.detect_faces([image])[0]
    assert det is not None, f"MTCNN found no face in {path}"
    mats = {g: align.crop_face(image, g, det.landmarks, det.box)[1] for g in align.GEOMETRIES}
    return mats, det.landmarks


@pytest.mark.parametrize(("src", "dst"), [("arcface112", "dlib150"), ("arcface112", "facenet160"),
                                          ("facenet160", "dlib150"), ("dlib150", "arcface112")])
def test_warp_blob_on_a_landmark_follows_it(real_face, src: str, dst: str) -> None:
    mats, landmarks = real_face
    for point in landmarks[[0, 2, 4]]:  # left eye, nose, right mouth corner
        at_src = align.transform_points(point, mats[src])
        at_dst = align.transform_points(point, mats[dst])
        blob = _blob(align.GEOMETRIES[src].size, at_src, sigma=3.0)
        warped = occlusion.warp_mask_to(blob, mats[src], mats[dst], align.GEOMETRIES[dst].size)
        assert np.linalg.norm(_peak(warped) - at_dst) < 0.5, (src, dst, point)


# --- generation / evaluation split ---------------------------------------------------------------

PEOPLE = {"ann": [f"ann_{i}.jpg" for i in range(10)], "bob": ["bob_0.jpg", "bob_1.jpg"],
          "cy": ["cy_0.jpg"], "dee": [f"dee_{i}.jpg" for i in range(5)], "eve": ["eve_0.jpg", "eve_0.jpg"]}


def test_split_is_disjoint_and_complete(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="facexai.occlusion"):
        gen, held = occlusion.split_generation_evaluation(PEOPLE, n_eval=3, seed=0)
    assert list(gen) == list(held) == ["ann", "bob", "dee"]
    assert "2 of 5 people have fewer than 2 images" in caplog.text  # cy, and eve's duplicate
    assert {p: len(v) for p, v in held.items()} == {"ann": 3, "bob": 1, "dee": 3}
    for p in gen:
        assert not set(gen[p]) & set(held[p]) and sorted(gen[p] + held[p]) == sorted(PEOPLE[p])


def test_split_reproducible_and_seeded() -> None:
    first = occlusion.split_generation_evaluation(PEOPLE, 0.3, seed=1)
    assert first == occlusion.split_generation_evaluation(dict(reversed(list(PEOPLE.items()))), 0.3, seed=1)
    assert {p: len(v) for p, v in first[1].items()} == {"ann": 3, "bob": 1, "dee": 2}  # round(0.3 n), >= 1
    others = [occlusion.split_generation_evaluation(PEOPLE, 0.3, seed=s)[1]["ann"] for s in range(2, 7)]
    assert any(o != first[1]["ann"] for o in others)
    alone = occlusion.split_generation_evaluation({"ann": PEOPLE["ann"]}, 0.3, seed=1)
    assert alone[1]["ann"] == first[1]["ann"]  # one person's split ignores the others


@pytest.mark.parametrize("n_eval", [0, -2, 0.0, 1.0, 1.5, True, "2"])
def test_split_bad_n_eval(n_eval) -> None:
    with pytest.raises(ValueError, match="n_eval"):
        occlusion.split_generation_evaluation(PEOPLE, n_eval)


def test_the_example_image_is_of_a_person_every_model_has_a_map_of() -> None:
    """A person with one generation image gets no person map (the full-LFW run met one in the example cell)."""
    import pandas as pd

    from facexai.occlusion_protocol import Protocol
    from facexai.occlusion_runner import example_image
    from facexai.person_maps import PersonMaps

    people = ["A", "B", "C"]
    held = {p: [f"{p}/held.jpg"] for p in people}
    protocol = Protocol(pd.DataFrame(), {p: [f"{p}/gen.jpg"] for p in people}, held, False, pd.DataFrame(), "t",
                        pd.DataFrame())

    def maps(covered: list[str]) -> PersonMaps:
        return PersonMaps("M", "arcface112", "leam", ["overall"], covered, {p: [] for p in covered},
                          np.full((len(covered), 1, 2, 2), 0.25, np.float32))

    everyone = [maps(people), maps(people)]
    assert example_image(protocol, everyone, seed=0) == example_image(protocol, everyone, seed=0)
    assert {example_image(protocol, everyone, seed)[0] for seed in range(20)} == set(people)  # a seeded draw
    assert {example_image(protocol, [maps(people), maps(["B"])], seed) for seed in range(20)} == {("B", "B/held.jpg")}
    with pytest.raises(ValueError, match="no occluded person has a person map"):
        example_image(protocol, [maps(["A"]), maps(["C"])], seed=0)
