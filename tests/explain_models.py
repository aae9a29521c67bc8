"""Small randomly initialised face-embedding models for the explainer tests and benchmark.

Two families: facenet-pytorch's InceptionResnetV1 and torchvision's ResNet-18 (fc -> a
128-d embedding). Both take RGB [0, 255] images and return the raw (unnormalised) embedding.
"""
from __future__ import annotations

import facexai  # noqa: F401  (torchvision compat layer first)
import torch
from facenet_pytorch import InceptionResnetV1
from torch import nn
from torchvision.models import resnet18

FACENET_LAYERS = {"conv4b": "net.conv2d_4b", "block35_5": "net.repeat_1.4", "mixed6a": "net.mixed_6a",
                  "block17_5": "net.repeat_2.4"}
RESNET_LAYERS = {"layer1": "net.layer1", "layer2": "net.layer2", "layer3": "net.layer3", "layer4": "net.layer4"}


class RawFacenet(nn.Module):
    """InceptionResnetV1 (random weights) on (x - 127.5) / 128, returning last_bn's output."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = InceptionResnetV1(pretrained=None)
        self.net.classify, self.net.logits = True, nn.Identity()  # skip the final L2 normalisation
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images - 127.5) / 128.0)


class RawResNet(nn.Module):
    """ResNet-18 (random weights) with ImageNet normalisation and a 128-d linear embedding."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = resnet18(weights=None, num_classes=128)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255)
        self.eval()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images - self.mean) / self.std)


def face_like_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random RGB images in [0, 255] (N, 3, size, size): low-frequency noise, not faces."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 8, generator=gen)
    return 255 * nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
