"""FN_V / FN_C_PT: facenet-pytorch's released ``.pt`` checkpoints, loaded from a user's file with no download.

``20180402-114759-vggface2.pt`` (FN_V, 8631-class head) and ``20180408-102900-casia-webface.pt``
(10575-class head) are plain state_dicts of facenet-pytorch's ``InceptionResnetV1`` including
the classifier ``logits``. facenet-pytorch's own ``pretrained=`` path downloads them; here the
model is built with ``pretrained=None`` and the user's file is loaded strictly. The backbone
returns the raw 512-d ``last_bn`` output (facenet-pytorch would L2-normalise it).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import facexai  # noqa: F401  (installs the torchvision compat layer before facenet_pytorch)
from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1

from facexai.models.checkpoint import load_strict, read_state_dict

INPUT_SIZE = 160
EMBEDDING_DIM = 512

#: Classifier head size of each released checkpoint.
HEADS: dict[str, int] = {"20180402-114759-vggface2.pt": 8631, "20180408-102900-casia-webface.pt": 10575}
OBTAIN = "the facenet-pytorch GitHub releases (github.com/timesler/facenet-pytorch/releases, tag v2.2.9)"

#: Stages an explainer hooks, input to output: friendly name -> dotted path in ``build()``.
#: Version of this module's conversion and preprocessing code: cache keys carry it, so bump it on any change
#: that alters weights or model inputs (converted weights, embeddings and maps are then recomputed).
VERSION = 1

LAYERS: dict[str, str] = {
    name: name
    for name in ("conv2d_2b", "conv2d_4b", "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8")
}


def build() -> InceptionResnetV1:
    """facenet-pytorch's InceptionResnetV1 returning the raw embedding (preprocessed (N,3,160,160) -> (N,512))."""
    # pretrained=None: nothing is downloaded. classify=True with an identity head makes forward
    # stop right after last_bn, before the F.normalize that classify=False applies.
    model = InceptionResnetV1(pretrained=None, classify=True, num_classes=EMBEDDING_DIM)
    model.logits = nn.Identity()
    return model


class Preprocess(nn.Module):
    """RGB [0,255] -> (x - 127.5) / 128, facenet-pytorch's ``fixed_image_standardization``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 127.5) / 128.0


def load_backbone(path: Path, num_classes: int = 8631) -> InceptionResnetV1:
    """Load a user's facenet-pytorch ``.pt`` (head of ``num_classes``) into :func:`build`, in eval mode.

    The classifier head is checked (size ``num_classes`` x 512) and dropped; every other tensor
    must fit strictly. FileNotFoundError names the file and where to obtain it.
    """
    path = Path(path)
    state = read_state_dict(path, OBTAIN)
    head = {key: state.pop(key) for key in ("logits.weight", "logits.bias") if key in state}
    shapes = {key: tuple(value.shape) for key, value in head.items()}
    if shapes != {"logits.weight": (num_classes, EMBEDDING_DIM), "logits.bias": (num_classes,)}:
        known = ", ".join(f"{name}: {n}" for name, n in HEADS.items())
        raise ValueError(f"{path} has classifier head {shapes or 'none'}, expected {num_classes} classes "
                         f"(logits.weight {(num_classes, EMBEDDING_DIM)}); released heads: {known}")
    return load_strict(build(), state, path, "facenet-pytorch InceptionResnetV1").eval()
