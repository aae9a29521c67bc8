"""IR18 / IR50 / IR100: insightface arcface_torch IResNet backbones, loaded from a user's ``backbone.pth``.

The architecture and every module name follow insightface's
``recognition/arcface_torch/backbones/iresnet.py`` (fp16 off, dropout 0, 512-d), so the
``backbone.pth`` that arcface_torch saves (``torch.save(backbone.state_dict(), ...)``) loads with
``strict=True``. Input: 112x112 ArcFace-aligned RGB, normalised as (x/255 - 0.5)/0.5.
The weights cannot be downloaded here; users bring them.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from facexai.models.checkpoint import load_strict, read_state_dict

INPUT_SIZE = 112
EMBEDDING_DIM = 512

#: Depth -> IBasicBlocks per stage (insightface's iresnet18 .. iresnet200).
DEPTHS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 200: (6, 26, 60, 6),
}
OBTAIN = ("the insightface model zoo / arcface_torch releases (github.com/deepinsight/insightface, "
          "recognition/arcface_torch: the backbone.pth of an r18/r50/r100 model)")

#: Stages an explainer hooks, input to output: the stem's PReLU and the four residual stages.
#: Version of this module's conversion and preprocessing code: cache keys carry it, so bump it on any change
#: that alters weights or model inputs (converted weights, embeddings and maps are then recomputed).
VERSION = 1

LAYERS: dict[str, str] = {"stem": "prelu", "layer1": "layer1", "layer2": "layer2", "layer3": "layer3",
                          "layer4": "layer4"}  # spatial 112, 56, 28, 14, 7


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """Pre-activation residual block: BN -> conv3x3 -> BN -> PReLU -> conv3x3 (stride) -> BN, plus shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity  # insightface adds in place; out-of-place keeps hooked activations intact


class IResNet(nn.Module):
    """insightface's IResNet: stem, four stride-2 stages, then BN -> flatten -> dropout -> fc -> BN1d."""

    def __init__(self, blocks: tuple[int, int, int, int], num_features: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
            downsample = nn.Sequential(nn.Conv2d(inplanes, planes, kernel_size=1, stride=2, bias=False),
                                       nn.BatchNorm2d(planes, eps=1e-5))
            stage = [IBasicBlock(inplanes, planes, 2, downsample)]
            stage += [IBasicBlock(planes, planes) for _ in range(1, count)]
            self.add_module(f"layer{index}", nn.Sequential(*stage))
            inplanes = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def _blocks(depth: int) -> tuple[int, int, int, int]:
    """Blocks per stage of IResNet-``depth``; ValueError listing the valid depths."""
    if depth not in DEPTHS:
        raise ValueError(f"unknown IResNet depth {depth}; valid depths: {sorted(DEPTHS)}")
    return DEPTHS[depth]


def build(depth: int) -> IResNet:
    """A randomly initialised IResNet-``depth`` (preprocessed (N,3,112,112) -> raw (N,512))."""
    return IResNet(_blocks(depth))


class Preprocess(nn.Module):
    """RGB [0,255] -> (x/255 - 0.5)/0.5 = (x - 127.5)/127.5, arcface_torch's normalisation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 127.5) / 127.5


def checkpoint_depth(state: dict[str, torch.Tensor]) -> int | None:
    """The depth whose blocks-per-stage match the state_dict's ``layerK.J.`` keys, else None."""
    counts = []
    for stage in range(1, 5):
        indices = {int(m.group(1)) for key in state if (m := re.match(rf"layer{stage}\.(\d+)\.", key))}
        counts.append(max(indices) + 1 if indices else 0)
    return next((depth for depth, blocks in DEPTHS.items() if blocks == tuple(counts)), None)


def load_backbone(path: Path, depth: int) -> IResNet:
    """Load a user's arcface_torch ``backbone.pth`` into IResNet-``depth``, in eval mode.

    FileNotFoundError names the file and where to obtain it; ValueError when the file is not a
    state_dict, holds another depth (the message names the depth it holds) or does not fit.
    """
    path = Path(path)
    _blocks(depth)  # an unknown depth fails before the file is read
    state = read_state_dict(path, OBTAIN)
    found = checkpoint_depth(state)
    if found != depth:
        held = f"an IResNet-{found} backbone" if found else "no IResNet backbone with a known depth"
        raise ValueError(f"{path} holds {held}, not IResNet-{depth}"
                         + (f"; load it with depth={found}" if found else f" (known depths {sorted(DEPTHS)})"))
    return load_strict(build(depth), state, path, f"insightface IResNet-{depth}").eval()
