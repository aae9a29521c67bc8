"""Our Grad-CAM, Grad-CAM++ and LayerCAM against pytorch-grad-cam on identical inputs.

Two model families (InceptionResnetV1, ResNet-18; random weights), a cosine-to-reference target,
one layer. Compared twice: the raw map at the layer's own resolution (pytorch-grad-cam's
``get_cam_image`` on its own stored activations and gradients) and its final output (cv2 resize
+ per-image min-max), each after the same min-max scaling, within 1e-4.
"""
import facexai  # noqa: F401
import numpy as np
import pytest
import pytorch_grad_cam as pgc
import torch
from explain_models import RawFacenet, RawResNet, face_like_images

from facexai.explain import CosineTarget, GradCAM, GradCAMPlusPlus, LayerCAM

FAMILIES = {"inception": (RawFacenet, "net.conv2d_4b", 112), "resnet": (RawResNet, "net.layer2", 96)}
METHODS = {"gradcam": (GradCAM, pgc.GradCAM), "gradcam++": (GradCAMPlusPlus, pgc.GradCAMPlusPlus),
           "layercam": (LayerCAM, pgc.LayerCAM)}


@pytest.fixture(scope="module")
def setups():
    built = {}
    for family, (cls, path, size) in FAMILIES.items():
        model = cls()
        images = face_like_images(2, size)
        dim = model(images).shape[1]
        # a fixed random reference (a random net's embeddings of these images are nearly parallel)
        reference = -torch.nn.functional.normalize(torch.randn(dim, generator=torch.Generator().manual_seed(3)), dim=0)
        built[family] = (model, path, images, CosineTarget(reference))
    return built


def minmax(maps: np.ndarray) -> np.ndarray:
    maps = maps - maps.min(axis=(-2, -1), keepdims=True)
    return maps / maps.max(axis=(-2, -1), keepdims=True)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
def test_matches_pytorch_grad_cam(setups, family, method):
    model, path, images, target = setups[family]
    ours, theirs = METHODS[method]
    layer = model.get_submodule(path)
    cam = theirs(model, [layer])
    try:
        final = cam(images, [target.select(i) for i in range(len(images))])
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        raw_theirs = np.maximum(cam.get_cam_image(images, layer, None, acts, grads, eigen_smooth=False), 0)
    finally:
        cam.activations_and_grads.release()
    # the comparison must not be vacuous: a map with structure, not all zero or constant
    assert (raw_theirs > 0).mean() > 0.2 and np.ptp(raw_theirs, axis=(1, 2)).min() > 0

    explainer = ours(model, [path])
    raw_ours = explainer.raw_maps(images, target)[0].numpy()
    np.testing.assert_allclose(minmax(raw_ours), minmax(raw_theirs), rtol=0, atol=1e-4)
    maps = explainer(images, target)[:, 0].numpy()
    assert maps.shape == final.shape
    np.testing.assert_allclose(minmax(maps), final, rtol=0, atol=1e-4)
