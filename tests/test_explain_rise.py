"""RISE masks, S-RISE and CorrRISE against direct formulas, cv2 and scipy."""
import facexai  # noqa: F401
import cv2
import numpy as np
import pytest
import torch
from explain_models import RawResNet, face_like_images
from scipy.stats import pearsonr

from facexai.explain import SRISE, CorrRISE, CosineTarget, PearsonAccumulator, RiseMasks


def all_masks(masks: RiseMasks, chunk: int = 16) -> np.ndarray:
    return torch.cat(list(masks.chunks(chunk))).numpy()


def test_masks_follow_rise_construction():
    masks = RiseMasks(50, (30, 20), cell_size=8, p=0.3, seed=1)
    got = all_masks(masks)
    assert got.shape == (50, 30, 20) and got.min() >= 0 and got.max() <= 1
    grids = masks.grids.numpy().astype(np.float32)
    assert grids.shape == (50, 4, 3)  # ceil(30/8) x ceil(20/8) cells
    for i in range(50):  # independent: cv2's bilinear upsampling to (grid + 1) * cell, shifted crop
        big = cv2.resize(grids[i], (4 * 8, 5 * 8), interpolation=cv2.INTER_LINEAR)
        dy, dx = masks.shifts[i].tolist()
        np.testing.assert_allclose(got[i], big[dy:dy + 30, dx:dx + 20], atol=1e-6)


def test_masks_seeded_and_chunk_independent():
    a = all_masks(RiseMasks(40, 24, cell_size=6, p=0.5, seed=7), chunk=3)
    assert np.array_equal(a, all_masks(RiseMasks(40, 24, cell_size=6, p=0.5, seed=7), chunk=40))
    assert not np.array_equal(a, all_masks(RiseMasks(40, 24, cell_size=6, p=0.5, seed=8)))
    assert abs(all_masks(RiseMasks(2000, 24, cell_size=6, p=0.3)).mean() - 0.3) < 0.02


@pytest.mark.parametrize("kwargs", [dict(n_masks=0), dict(p=0.0), dict(p=1.0), dict(p=1.5), dict(cell_size=0)])
def test_bad_mask_parameters(kwargs):
    params = dict(n_masks=10, cell_size=4, p=0.5) | kwargs
    with pytest.raises(ValueError):
        SRISE(torch.nn.Identity(), **params)
    with pytest.raises(ValueError):
        CorrRISE(torch.nn.Identity(), **params)


def test_corrrise_needs_two_masks():
    with pytest.raises(ValueError, match="n_masks >= 2"):
        CorrRISE(torch.nn.Identity(), n_masks=1)


class ChannelMean(torch.nn.Module):
    """A parameter-free 'embedding': the mean of each colour channel, (N, 3)."""

    def forward(self, images):
        return images.mean((-2, -1))


def test_srise_and_fill_match_the_formula():
    images = face_like_images(2, 16)
    fill = torch.full((3, 1, 1), 100.0)
    target = lambda emb: emb[:, 0]  # noqa: E731  (red-channel mean)
    sal = SRISE(ChannelMean(), n_masks=30, cell_size=4, p=0.4, seed=2, batch_size=7, fill=fill,
                progress=False)(images, target).numpy()
    masks = all_masks(RiseMasks(30, 16, cell_size=4, p=0.4, seed=2))
    for b in range(2):
        x = images[b, 0].numpy()
        scores = np.array([(100 + (x - 100) * m).mean() for m in masks])
        expected = (scores[:, None, None] * masks).sum(0) / (30 * 0.4)
        np.testing.assert_allclose(sal[b], expected, rtol=1e-5)


@pytest.fixture(scope="module")
def resnet_case():
    model = RawResNet()
    images = face_like_images(2, 32, seed=5)
    ref = torch.nn.functional.normalize(torch.randn(128, generator=torch.Generator().manual_seed(0)), dim=0)
    return model, images, CosineTarget(torch.stack([ref, -ref]))


def test_srise_on_a_network_equals_masks_scored_one_by_one(resnet_case):
    model, images, target = resnet_case
    sal = SRISE(model, n_masks=24, cell_size=8, p=0.5, batch_size=10, progress=False)(images, target).numpy()
    masks = torch.from_numpy(all_masks(RiseMasks(24, 32, cell_size=8, p=0.5)))
    for b in range(2):
        with torch.no_grad():
            scores = torch.stack([target.select(b)(model(images[b:b + 1] * m)[0]) for m in masks])
        expected = (scores[:, None, None] * masks).sum(0) / (24 * 0.5)
        np.testing.assert_allclose(sal[b], expected.numpy(), rtol=1e-4, atol=1e-7)


def test_corrrise_equals_scipy_pearsonr_per_pixel(resnet_case):
    model, images, target = resnet_case
    corr = CorrRISE(model, n_masks=40, cell_size=8, p=0.5, batch_size=16, progress=False)
    got = corr(images, target).numpy()
    again = CorrRISE(model, n_masks=40, cell_size=8, p=0.5, batch_size=40, progress=False)(images, target)
    np.testing.assert_allclose(again.numpy(), got, atol=1e-6)
    masks = all_masks(RiseMasks(40, 32, cell_size=8, p=0.5))
    for b in range(2):
        with torch.no_grad():
            scores = target.select(b)(model(images[b] * torch.from_numpy(masks)[:, None])).numpy()
        flat = masks.reshape(40, -1)
        expected = np.array([pearsonr(flat[:, j], scores).statistic for j in range(flat.shape[1])])
        np.testing.assert_allclose(got[b].ravel(), expected, atol=1e-5)
    assert np.abs(got).max() <= 1 + 1e-6 and got.std() > 0


def test_pearson_accumulator_streams_and_refuses_undefined():
    rng = np.random.default_rng(0)
    m, s = rng.random((100, 7)), rng.random(100)
    acc = PearsonAccumulator(7)
    for start in range(0, 100, 33):
        acc.update(torch.from_numpy(m[start:start + 33]), torch.from_numpy(s[start:start + 33]))
    expected = [np.corrcoef(m[:, j], s)[0, 1] for j in range(7)]
    np.testing.assert_allclose(acc.result().numpy(), expected, atol=1e-12)
    const = PearsonAccumulator(7)
    const.update(torch.from_numpy(m), torch.ones(100))
    with pytest.raises(ValueError, match="scores are constant"):
        const.result()
    flat = PearsonAccumulator(2)
    flat.update(torch.from_numpy(np.c_[m[:, 0], np.full(100, 0.5)]), torch.from_numpy(s))
    with pytest.raises(ValueError, match="1 pixel"):
        flat.result()


def test_rise_checks_target_output():
    with pytest.raises(ValueError, match="finite scores"):
        SRISE(ChannelMean(), n_masks=4, cell_size=4, progress=False)(face_like_images(1, 8), lambda e: e)
