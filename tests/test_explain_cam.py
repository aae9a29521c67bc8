"""LEAM and the CAM family: properties, an independent by-hand computation, bad input."""
import logging

import facexai  # noqa: F401
import pytest
import torch
import torch.nn.functional as F
from explain_models import FACENET_LAYERS, RESNET_LAYERS, RawFacenet, RawResNet, face_like_images

from facexai.explain import (
    LEAM,
    CosineTarget,
    GradCAM,
    GradCAMPlusPlus,
    LayerCAM,
    normalise_maps,
)


@pytest.fixture(scope="module")
def resnet():
    return RawResNet()


@pytest.fixture(scope="module")
def facenet():
    return RawFacenet()


def random_target(model, images, seed=3):
    dim = model(images).shape[1]
    return CosineTarget(-F.normalize(torch.randn(dim, generator=torch.Generator().manual_seed(seed)), dim=0))


def test_maps_shape_sum_and_determinism(resnet):
    images = face_like_images(3, 64)
    target = random_target(resnet, images)
    explainer = LEAM(resnet, RESNET_LAYERS)
    maps = explainer(images, target)
    assert maps.shape == (3, 4, 64, 64) and maps.dtype == torch.float32
    assert explainer.layer_names == list(RESNET_LAYERS)
    assert (maps >= 0).all()
    torch.testing.assert_close(maps.sum((-2, -1)), torch.ones(3, 4), rtol=0, atol=1e-5)
    assert torch.equal(maps, explainer(images, target))
    assert explainer.n_uniform == 0


@pytest.mark.parametrize("family", ["inception", "resnet"])
def test_all_layers_at_once_equals_one_layer_per_call(family, facenet, resnet):
    model, layers, size = (facenet, FACENET_LAYERS, 96) if family == "inception" else (resnet, RESNET_LAYERS, 64)
    images = face_like_images(2, size, seed=1)
    target = random_target(model, images)
    together = LEAM(model, layers)(images, target)
    for i, (name, path) in enumerate(layers.items()):
        alone = LEAM(model, {name: path})(images, target)
        torch.testing.assert_close(together[:, i:i + 1], alone, rtol=1e-5, atol=1e-9)


def test_leam_equals_independent_computation(resnet):
    """Split the ResNet by hand at layer3: A = its output, G = d s / d A by autograd."""
    images = face_like_images(2, 64, seed=2)
    target = random_target(resnet, images)
    net = resnet.net
    x = (images - resnet.mean) / resnet.std
    with torch.no_grad():
        a = net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x)))))))
    a.requires_grad_(True)
    emb = net.fc(torch.flatten(net.avgpool(net.layer4(a)), 1))
    (g,) = torch.autograd.grad(target(emb).sum(), a)
    by_hand = (g.clamp_min(0) * a.detach()).sum(1).clamp_min(0)
    by_hand = F.interpolate(by_hand[:, None], size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    by_hand = by_hand / by_hand.sum((-2, -1), keepdim=True)
    maps = LEAM(resnet, ["net.layer3"])(images, target)[:, 0]
    torch.testing.assert_close(maps, by_hand, rtol=1e-5, atol=1e-9)


def test_layercam_is_leam_and_weighting_option_matches_subclasses(resnet):
    images = face_like_images(2, 64, seed=4)
    target = random_target(resnet, images)
    assert torch.equal(LayerCAM(resnet, RESNET_LAYERS)(images, target), LEAM(resnet, RESNET_LAYERS)(images, target))
    for weighting, cls in [("gradcam", GradCAM), ("gradcam++", GradCAMPlusPlus)]:
        got = LEAM(resnet, RESNET_LAYERS, weighting=weighting)(images, target)
        assert torch.equal(got, cls(resnet, RESNET_LAYERS)(images, target))
        assert not torch.allclose(got, LEAM(resnet, RESNET_LAYERS)(images, target))


def test_zero_map_becomes_uniform_with_warning_and_count(resnet, caplog):
    images = face_like_images(2, 32)
    explainer = LEAM(resnet, RESNET_LAYERS)
    with caplog.at_level(logging.WARNING):
        maps = explainer(images, lambda emb: 0 * emb.sum(-1))
    assert explainer.n_uniform == 2 * 4
    assert torch.allclose(maps, torch.full_like(maps, 1 / 32 ** 2))
    assert "all-zero" in caplog.text


def test_nan_map_raises(resnet):
    with pytest.raises(FloatingPointError, match="NaN"):
        LEAM(resnet, RESNET_LAYERS)(face_like_images(1, 32), lambda emb: emb.sum(-1) * float("nan"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_normalise_maps_refuses_any_non_finite_pixel(bad):
    """One bad pixel in one map (also +inf beside -inf, whose sum is NaN) raises; the check reads the sums."""
    maps = torch.rand(3, 2, 8, 8)
    maps[1, 1, 4, 5] = bad
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        normalise_maps(maps)
    maps[1, 1, 4, 5], maps[2, 0, 0, 0], maps[2, 0, 0, 1] = 0.5, float("inf"), -float("inf")
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        normalise_maps(maps)


def test_normalise_maps_equals_division_by_the_sum():
    maps = torch.rand(4, 3, 16, 16, dtype=torch.float64)
    maps[2, 1] = 0
    out, n_zero = normalise_maps(maps)
    assert n_zero == 1
    torch.testing.assert_close(out[2, 1], torch.full((16, 16), 1 / 256, dtype=torch.float64))
    keep = torch.ones(4, 3, dtype=torch.bool)
    keep[2, 1] = False
    torch.testing.assert_close(out[keep], (maps / maps.sum((-2, -1), keepdim=True))[keep], rtol=0, atol=0)


def test_bad_layers_and_images_give_clear_errors(resnet, facenet):
    with pytest.raises(ValueError, match=r"unknown layer 'net\.layr4'.*did you mean.*net\.layer4.*valid layers"):
        LEAM(resnet, ["net.layr4"])
    explainer = LEAM(resnet, RESNET_LAYERS, input_size=64)
    target = lambda emb: emb.sum(-1)  # noqa: E731
    with pytest.raises(ValueError, match=r"expects \(64, 64\) images, got \(32, 32\)"):
        explainer(face_like_images(1, 32), target)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        explainer(face_like_images(2, 64)[None], target)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        explainer(face_like_images(2, 64)[:, :2], target)
    with pytest.raises(ValueError, match="wrong size for the model"):
        LEAM(facenet, FACENET_LAYERS)(face_like_images(1, 24), target)
    with pytest.raises(ValueError, match="one score per image"):
        explainer(face_like_images(2, 64), lambda emb: emb)
    with pytest.raises(ValueError, match="unknown weighting"):
        LEAM(resnet, RESNET_LAYERS, weighting="mean")


@pytest.mark.parametrize("path, message", [
    ("net.layer1.0.bn1", "modified in place"),  # followed by ReLU(inplace=True)
    ("net.layer1.0.relu", "ran 2 times"),  # BasicBlock calls its ReLU twice
    ("net.fc", "4-D activation"),
])
def test_unsuitable_layers_are_refused(resnet, path, message):
    with pytest.raises(ValueError, match=message):
        LEAM(resnet, [path])(face_like_images(1, 32), lambda emb: emb.sum(-1))


