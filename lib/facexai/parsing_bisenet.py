"""Optional BiSeNet face parser for users who supply ``79999_iter.pth`` (zllrunning/face-parsing.PyTorch).

The network is rebuilt here with that repository's module names (``cp.resnet.conv1``, ``cp.arm16``,
``ffm``, ``conv_out``, ...) so its state dict loads strictly. Unlike the original, building it never
downloads ImageNet weights: every weight comes from the file. Its 19 CelebAMask-HQ classes map onto
:data:`facexai.parsing.CLASSES` by :data:`BISENET_TO_CLASS` (see facexai.parsing for the
left/right reading). The weights are not obtainable on this project's machine, so only the
architecture and file format are tested (random weights saved in the real layout).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from facexai.models.registry import UserWeights, WeightsError, weights_dir
from facexai.parsing import CLASS_IDS, ParseResult, _check_crops

BISENET_WEIGHTS = UserWeights(
    "79999_iter.pth", "https://github.com/zllrunning/face-parsing.PyTorch (README: the pretrained model link; "
    "BiSeNet-ResNet18 trained on CelebAMask-HQ)")
# The network's output order (face-parsing.PyTorch; CelebAMask-HQ names).
BISENET_CLASSES = ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear",
                   "ear_r", "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat")
# Glasses (eye_g) become "other", like ears, hair, neck and clothes: the landmark parsers cannot see
# them, and the eye under a lens is labelled eye_g, not l_eye/r_eye, by the network.
BISENET_TO_CLASS = {"background": "other", "skin": "skin", "l_brow": "left_brow", "r_brow": "right_brow",
                    "l_eye": "left_eye", "r_eye": "right_eye", "eye_g": "other", "l_ear": "other",
                    "r_ear": "other", "ear_r": "other", "nose": "nose", "mouth": "inner_mouth",
                    "u_lip": "upper_lip", "l_lip": "lower_lip", "neck": "other", "neck_l": "other",
                    "cloth": "other", "hair": "other", "hat": "other"}
INPUT_SIZE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConvBNReLU(nn.Module):
    def __init__(self, in_chan: int, out_chan: int, ks: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_chan, out_chan, ks, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_chan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, in_chan: int, out_chan: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chan, out_chan, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chan)
        self.conv2 = nn.Conv2d(out_chan, out_chan, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chan)
        self.downsample = None
        if in_chan != out_chan or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(in_chan, out_chan, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_chan))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


def _layer(in_chan: int, out_chan: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(in_chan, out_chan, stride), BasicBlock(out_chan, out_chan, 1))


class Resnet18(nn.Module):
    """ResNet-18 trunk returning the 1/8, 1/16 and 1/32 feature maps (no ImageNet download)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _layer(64, 64, 1)
        self.layer2 = _layer(64, 128, 2)
        self.layer3 = _layer(128, 256, 2)
        self.layer4 = _layer(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        feat8 = self.layer2(x)
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class AttentionRefinementModule(nn.Module):
    def __init__(self, in_chan: int, out_chan: int):
        super().__init__()
        self.conv = ConvBNReLU(in_chan, out_chan)
        self.conv_atten = nn.Conv2d(out_chan, out_chan, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_chan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(F.adaptive_avg_pool2d(feat, 1))))


class ContextPath(nn.Module):
    def __init__(self):
        super().__init__()
        self.resnet = Resnet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, ks=1, padding=0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        avg = F.interpolate(self.conv_avg(F.adaptive_avg_pool2d(feat32, 1)), feat32.shape[2:], mode="nearest")
        feat32_up = self.conv_head32(F.interpolate(self.arm32(feat32) + avg, feat16.shape[2:], mode="nearest"))
        feat16_up = self.conv_head16(F.interpolate(self.arm16(feat16) + feat32_up, feat8.shape[2:], mode="nearest"))
        return feat8, feat16_up, feat32_up


class FeatureFusionModule(nn.Module):
    def __init__(self, in_chan: int, out_chan: int):
        super().__init__()
        self.convblk = ConvBNReLU(in_chan, out_chan, ks=1, padding=0)
        self.conv1 = nn.Conv2d(out_chan, out_chan // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_chan // 4, out_chan, 1, bias=False)

    def forward(self, fsp: torch.Tensor, fcp: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(feat, 1)))))
        return feat * atten + feat


class BiSeNetOutput(nn.Module):
    def __init__(self, in_chan: int, mid_chan: int, n_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(in_chan, mid_chan)
        self.conv_out = nn.Conv2d(mid_chan, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """face-parsing.PyTorch's BiSeNet (ResNet-18 context path; the 1/8 ResNet feature as spatial path)."""

    def __init__(self, n_classes: int = len(BISENET_CLASSES)):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, n_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, n_classes)  # training-time auxiliary heads, kept for
        self.conv_out32 = BiSeNetOutput(128, 64, n_classes)  # the state-dict layout; unused at inference

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, 19, H, W) of the main head."""
        feat_res8, feat_cp8, _ = self.cp(x)
        out = self.conv_out(self.ffm(feat_res8, feat_cp8))
        return F.interpolate(out, x.shape[2:], mode="bilinear", align_corners=True)


def load_bisenet(path: str | os.PathLike | None = None) -> BiSeNet:
    """BiSeNet in eval mode with the weights of ``path`` (default: 79999_iter.pth in the user weights folder)."""
    path = Path(path) if path is not None else BISENET_WEIGHTS.locate(weights_dir())
    if not path.is_file():
        raise WeightsError(f"BiSeNet weights {path} not found: obtain '{BISENET_WEIGHTS.filename}' from "
                           f"{BISENET_WEIGHTS.obtain}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = BiSeNet()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, AttributeError, TypeError) as err:
        raise WeightsError(f"{path} is not a face-parsing.PyTorch BiSeNet state dict: {err}") from err
    return model.eval()


_LOOKUP = np.array([CLASS_IDS[BISENET_TO_CLASS[name]] for name in BISENET_CLASSES], dtype=np.uint8)


@torch.no_grad()
def parse_bisenet(crops: np.ndarray, model: nn.Module, batch_size: int = 8, progress: bool = True) -> ParseResult:
    """Label maps of crops (N, H, W, 3) uint8 RGB: 512x512 bilinear input, logits resized back, argmax, mapped."""
    crops = _check_crops(crops)
    n, h, w = crops.shape[:3]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    labels = np.zeros((n, h, w), np.uint8)
    for start in tqdm(range(0, n, batch_size), desc="parse (bisenet)", disable=not progress):
        x = torch.from_numpy(crops[start:start + batch_size]).permute(0, 3, 1, 2).float() / 255.0
        x = F.interpolate(x, (INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        logits = model((x - mean) / std)
        logits = F.interpolate(logits, (h, w), mode="bilinear", align_corners=False)
        labels[start:start + batch_size] = _LOOKUP[logits.argmax(1).numpy()]
    return ParseResult(labels, np.zeros((n, 0, 2), np.float32), np.ones(n, bool), "bisenet")
