"""Loaders for user-supplied checkpoints (insightface IResNet backbone.pth, facenet-pytorch .pt).

The real files cannot be downloaded here, so each test writes a randomly initialised model in
the real on-disk format (a plain state_dict saved with torch.save) and loads it back.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import facexai  # noqa: F401  (before facenet_pytorch)
from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1

from facexai.models import facenet_pt, iresnet

#: Parameter counts commonly reported for insightface's IResNet-18/50/100, in millions.
PUBLISHED_PARAMS_M = {18: 24.0, 50: 43.6, 100: 65.2}


def _randomise_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial running statistics and affine terms, so a mis-mapped batch norm would show."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            with torch.no_grad():
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
    return model.eval()


def _save_iresnet(tmp_path, depth: int) -> tuple[torch.nn.Module, object]:
    torch.manual_seed(depth)
    model = _randomise_bn(iresnet.build(depth))
    path = tmp_path / f"ir{depth}_backbone.pth"
    torch.save(model.state_dict(), path)
    return model, path


@pytest.mark.parametrize("depth", [18, 50, pytest.param(100, marks=pytest.mark.slow)])
def test_iresnet_roundtrip(tmp_path, depth):
    reference, path = _save_iresnet(tmp_path, depth)
    loaded = iresnet.load_backbone(path, depth)
    assert not loaded.training
    pixels = torch.rand(2, 3, iresnet.INPUT_SIZE, iresnet.INPUT_SIZE) * 255
    with torch.no_grad():
        x = iresnet.Preprocess()(pixels)
        expected, got = reference(x), loaded(x)
    assert got.shape == (2, iresnet.EMBEDDING_DIM)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("depth", [18, 50, 100])
def test_iresnet_matches_insightface_layout(depth):
    """Key names and sizes that insightface's own iresnet.py gives (independent of our loader)."""
    state = iresnet.build(depth).state_dict()
    blocks = iresnet.DEPTHS[depth]
    assert round(sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k)
                 / 1e6, 1) == PUBLISHED_PARAMS_M[depth]
    for stage, count in enumerate(blocks, start=1):
        assert f"layer{stage}.0.downsample.0.weight" in state and f"layer{stage}.0.downsample.1.running_var" in state
        assert f"layer{stage}.{count - 1}.bn3.weight" in state and f"layer{stage}.{count}.bn1.weight" not in state
        assert f"layer{stage}.1.downsample.0.weight" not in state
    assert {"conv1.weight", "bn1.running_mean", "prelu.weight", "bn2.weight", "features.running_var"} <= set(state)
    assert tuple(state["fc.weight"].shape) == (512, 512 * 7 * 7)
    assert tuple(state["layer1.0.prelu.weight"].shape) == (64,)


def test_iresnet_layers_and_gradients():
    model = iresnet.build(18).eval()
    shapes = {}
    for name, path in iresnet.LAYERS.items():
        model.get_submodule(path).register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape)))
    pixels = (torch.rand(1, 3, 112, 112) * 255).requires_grad_()
    model(iresnet.Preprocess()(pixels)).sum().backward()
    assert [s[2] for s in shapes.values()] == [112, 56, 28, 14, 7] and all(len(s) == 4 for s in shapes.values())
    assert torch.isfinite(pixels.grad).all() and pixels.grad.abs().sum() > 0


def test_iresnet_wrong_depth_is_explained(tmp_path):
    _, path = _save_iresnet(tmp_path, 18)
    with pytest.raises(ValueError, match=r"IResNet-18.*not IResNet-50.*depth=18"):
        iresnet.load_backbone(path, 50)
    with pytest.raises(ValueError, match="valid depths"):
        iresnet.build(42)


def test_iresnet_missing_and_corrupt_files_are_named(tmp_path):
    missing = tmp_path / "ir50_backbone.pth"
    with pytest.raises(FileNotFoundError, match=r"ir50_backbone\.pth.*insightface"):
        iresnet.load_backbone(missing, 50)
    corrupt = tmp_path / "corrupt_backbone.pth"
    corrupt.write_bytes(b"not a torch zip archive" * 10)
    with pytest.raises(ValueError, match=r"corrupt_backbone\.pth"):
        iresnet.load_backbone(corrupt, 18)


def test_iresnet_state_that_does_not_fit_is_named(tmp_path):
    _, path = _save_iresnet(tmp_path, 18)
    state = torch.load(path, weights_only=True)
    state["fc.weight"] = state["fc.weight"][:128]  # a 128-d head instead of 512
    state["fc.bias"] = state["fc.bias"][:128]
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"(?s)ir18_backbone\.pth does not fit.*fc\.weight"):
        iresnet.load_backbone(path, 18)


@pytest.fixture
def vggface2_file(tmp_path, monkeypatch):
    """A random InceptionResnetV1 with the VGGFace2 head, saved as facenet-pytorch's release is."""
    def no_download(*args, **kwargs):
        raise AssertionError("facenet-pytorch tried to download weights")

    monkeypatch.setattr("facenet_pytorch.models.inception_resnet_v1.download_url_to_file", no_download)
    torch.manual_seed(0)
    reference = _randomise_bn(InceptionResnetV1(pretrained=None, classify=True, num_classes=8631))
    path = tmp_path / "20180402-114759-vggface2.pt"
    torch.save(reference.state_dict(), path)
    return reference, path


def test_facenet_roundtrip_raw_embedding(vggface2_file):
    reference, path = vggface2_file
    loaded = facenet_pt.load_backbone(path, num_classes=facenet_pt.HEADS[path.name])
    assert not loaded.training
    captured = {}
    reference.last_bn.register_forward_hook(lambda _m, _i, out: captured.__setitem__("raw", out))
    x = facenet_pt.Preprocess()(torch.rand(2, 3, 160, 160) * 255)
    with torch.no_grad():
        logits = reference(x)
        got = loaded(x)
    assert logits.shape == (2, 8631) and got.shape == (2, facenet_pt.EMBEDDING_DIM)
    assert torch.equal(got, captured["raw"])  # raw, not L2-normalised
    reference.classify = False  # facenet-pytorch's own embedding mode: the normalised vector
    with torch.no_grad():
        assert torch.allclose(F.normalize(got), reference(x), atol=1e-6)


def test_facenet_wrong_head_and_missing_file(vggface2_file, tmp_path):
    _, path = vggface2_file
    with pytest.raises(ValueError, match=r"vggface2\.pt has classifier head.*10575"):
        facenet_pt.load_backbone(path, num_classes=10575)
    missing = tmp_path / "20180408-102900-casia-webface.pt"
    with pytest.raises(FileNotFoundError, match=r"20180408-102900-casia-webface\.pt.*facenet-pytorch"):
        facenet_pt.load_backbone(missing, num_classes=10575)


def test_facenet_layers_and_gradients():
    model = facenet_pt.build().eval()
    shapes = []
    for path in facenet_pt.LAYERS.values():
        model.get_submodule(path).register_forward_hook(lambda _m, _i, out: shapes.append(out.ndim))
    pixels = (torch.rand(1, 3, 160, 160) * 255).requires_grad_()
    out = model(facenet_pt.Preprocess()(pixels))
    assert out.shape == (1, 512) and not torch.allclose(out.norm(dim=1), torch.ones(1))
    out.sum().backward()
    assert shapes == [4] * len(facenet_pt.LAYERS)
    assert torch.isfinite(pixels.grad).all() and pixels.grad.abs().sum() > 0
